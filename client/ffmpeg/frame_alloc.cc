// FramePool's decoder allocation: AVFrames whose planes are pool buffers,
// for a caller (AllocVideo) or as a decoder's get_buffer2 (Install).
#include <algorithm>
#include <string>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include "absl/strings/str_format.h"
#include "memd/ffmpeg.h"

namespace memd::ffmpeg {
namespace {

// Padding past each plane, as libavcodec's own pools (16 + STRIDE_ALIGN - 1).
constexpr size_t kPlanePaddingBytes = 16 + 64 - 1;
constexpr int kLinesizeAlign = 64;

// Linesizes for `width` that are multiples of `align[p]`, grown the way
// libavcodec's own frame pool grows them (so chroma linesizes stay in
// proportion, which mpegvideo-based decoders require).
absl::Status FillLinesizes(AVPixelFormat format, int width, const int align[4], int linesize[4]) {
  for (int w = width;; w += w & ~(w - 1)) {
    if (av_image_fill_linesizes(linesize, format, w) < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "no linesizes for pixel format %d at width %d", static_cast<int>(format), width));
    }
    bool aligned = true;
    for (int p = 0; p < 4; ++p) aligned &= linesize[p] % std::max(align[p], 1) == 0;
    if (aligned) return absl::OkStatus();
    if (w > (1 << 24)) {
      return absl::InvalidArgumentError(absl::StrFormat("width %d cannot be aligned", width));
    }
  }
}

// Gives `frame` pool buffers for `height` rows of `width` pixels per plane.
absl::Status FillVideo(FramePool& pool, AVFrame* frame, int width, int height,
                       const int align[4]) {
  auto format = static_cast<AVPixelFormat>(frame->format);
  if (av_pix_fmt_desc_get(format) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame format %d is not a pixel format", frame->format));
  }
  if (av_image_check_size(width, height, 0, nullptr) < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame size %dx%d is not valid", width, height));
  }
  int linesize[4];
  if (absl::Status s = FillLinesizes(format, width, align, linesize); !s.ok()) return s;
  ptrdiff_t linesizes[4] = {linesize[0], linesize[1], linesize[2], linesize[3]};
  size_t sizes[4];
  if (av_image_fill_plane_sizes(sizes, format, height, linesizes) < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame size %dx%d overflows", width, height));
  }
  for (int p = 0; p < 4 && sizes[p] > 0; ++p) {
    AVBufferRef* buf = pool.Get(sizes[p] + kPlanePaddingBytes);
    if (buf == nullptr) {
      for (AVBufferRef*& b : frame->buf) av_buffer_unref(&b);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "no pool buffer of %u bytes for plane %d of a %dx%d frame in pool '%s'",
          sizes[p] + kPlanePaddingBytes, p, width, height, pool.client().pool().name));
    }
    frame->buf[p] = buf;
    frame->data[p] = buf->data;
    frame->linesize[p] = linesize[p];
  }
  frame->extended_data = frame->data;
  return absl::OkStatus();
}

}  // namespace

absl::Status FramePool::AllocVideo(AVFrame* frame) {
  const int align[4] = {kLinesizeAlign, kLinesizeAlign, kLinesizeAlign, kLinesizeAlign};
  return FillVideo(*this, frame, frame->width, frame->height, align);
}

void FramePool::Install(AVCodecContext* codec) {
  codec->opaque = this;
  codec->get_buffer2 = &FramePool::GetBuffer2;
#if FF_API_THREAD_SAFE_CALLBACKS
  // libavcodec 59 still asks, and warns about frame threading otherwise;
  // GetBuffer2 may be called from any decoder thread.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  codec->thread_safe_callbacks = 1;
#pragma GCC diagnostic pop
#endif
}

int FramePool::GetBuffer2(AVCodecContext* codec, AVFrame* frame, int flags) {
  auto* pool = static_cast<FramePool*>(codec->opaque);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
  if (codec->codec_type != AVMEDIA_TYPE_VIDEO || desc == nullptr ||
      (desc->flags & AV_PIX_FMT_FLAG_HWACCEL) != 0) {
    return avcodec_default_get_buffer2(codec, frame, flags);
  }
  int width = frame->width, height = frame->height;
  int align[AV_NUM_DATA_POINTERS];
  avcodec_align_dimensions2(codec, &width, &height, align);
  absl::Status s = FillVideo(*pool, frame, width, height, align);
  if (!s.ok()) {
    av_log(codec, AV_LOG_ERROR, "memd get_buffer2: %s\n", std::string(s.message()).c_str());
    return AVERROR(ENOMEM);
  }
  return 0;
}

}  // namespace memd::ffmpeg
