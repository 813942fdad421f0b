#include <xxhash.h>

#include <memory>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
}

#include "memd/ffmpeg.h"

namespace memd::ffmpeg {
namespace {

// One XXH3 state per call (xxHash's own allocator: its state is 576 bytes,
// 64-aligned, and its layout is the library's business).
struct StateFree {
  void operator()(XXH3_state_t* state) const { XXH3_freeState(state); }
};

}  // namespace

// XXH3-64 (xxHash, Debian's libxxhash) of the frame's visible bytes in order:
// each plane's rows without their padding, or each channel plane's samples.
// Equal to XXH3_64bits() of those bytes laid end to end, so `xxhsum -H3` of a
// tightly packed dump gives the same value.
uint64_t FrameChecksum(const AVFrame* frame) {
  std::unique_ptr<XXH3_state_t, StateFree> state(XXH3_createState());
  if (state == nullptr || XXH3_64bits_reset(state.get()) == XXH_ERROR) return 0;
  if (frame->nb_samples > 0) {
    auto format = static_cast<AVSampleFormat>(frame->format);
    int channels = frame->ch_layout.nb_channels;
    bool planar = av_sample_fmt_is_planar(format) != 0;
    size_t bytes = static_cast<size_t>(frame->nb_samples) * av_get_bytes_per_sample(format) *
                   (planar ? 1 : channels);
    for (int c = 0; c < (planar ? channels : 1); ++c) {
      XXH3_64bits_update(state.get(), frame->extended_data[c], bytes);
    }
    return XXH3_64bits_digest(state.get());
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
      XXH3_64bits_update(state.get(),
                         frame->data[p] + static_cast<ptrdiff_t>(y) * frame->linesize[p],
                         static_cast<size_t>(row_bytes));
    }
  }
  return XXH3_64bits_digest(state.get());
}

}  // namespace memd::ffmpeg
