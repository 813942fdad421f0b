#include <cstring>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
}

#include "memd/ffmpeg.h"

namespace memd::ffmpeg {
namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;

uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t Round(uint64_t acc, uint64_t v) { return Rotl(acc + v * kPrime2, 31) * kPrime1; }

// xxHash64-style rounds over one row: four independent lanes of 8 bytes, so
// a 4K frame (12.4 MB) hashes at memory speed rather than one multiply
// latency per word.
uint64_t HashRow(const uint8_t* p, size_t n, uint64_t seed) {
  uint64_t lane[4] = {seed + kPrime1, seed ^ kPrime2, seed - kPrime1, Rotl(seed, 17)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * k, 8);
      lane[k] = Round(lane[k], v);
    }
  }
  uint64_t h = Rotl(lane[0], 1) + Rotl(lane[1], 7) + Rotl(lane[2], 12) + Rotl(lane[3], 18);
  for (; i < n; ++i) h = Round(h, p[i]);
  return Round(h, n);
}

}  // namespace

uint64_t FrameChecksum(const AVFrame* frame) {
  uint64_t h = 0;
  if (frame->nb_samples > 0) {
    auto format = static_cast<AVSampleFormat>(frame->format);
    int channels = frame->ch_layout.nb_channels;
    bool planar = av_sample_fmt_is_planar(format) != 0;
    size_t bytes = static_cast<size_t>(frame->nb_samples) * av_get_bytes_per_sample(format) *
                   (planar ? 1 : channels);
    for (int c = 0; c < (planar ? channels : 1); ++c) h = HashRow(frame->extended_data[c], bytes, h);
    return h;
  }
  auto format = static_cast<AVPixelFormat>(frame->format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  if (desc == nullptr) return 0;
  int planes = av_pix_fmt_count_planes(format);
  for (int p = 0; p < planes; ++p) {
    int row_bytes = av_image_get_linesize(format, frame->width, p);
    bool chroma = (p == 1 || p == 2) && (desc->flags & AV_PIX_FMT_FLAG_RGB) == 0;
    int rows = chroma ? AV_CEIL_RSHIFT(frame->height, desc->log2_chroma_h) : frame->height;
    for (int y = 0; y < rows; ++y) {
      h = HashRow(frame->data[p] + static_cast<ptrdiff_t>(y) * frame->linesize[p], row_bytes, h);
    }
  }
  return h;
}

}  // namespace memd::ffmpeg
