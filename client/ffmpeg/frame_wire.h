// FrameWire: an AVFrame's description as a memd raw frame (memd/raw_frame.h,
// docs/wire-format.md), the format GStreamer's memdsink/memdsrc and Python
// speak too. The bytes travel as buffer references. Private to memd::ffmpeg.
//
// This file owns the FFmpeg column of the format table (AVPixelFormat and
// AVSampleFormat <-> memd::RawFormat) and the FFmpeg extension entries:
// properties without a raw-frame field (timestamps in the sender's time
// base, pict_type, ...) and side data. A raw frame from another sender
// (no FFmpeg entries) decodes with its timestamps in a time base of
// 1/framerate when the frame rate is known, else 1/1000000000.
//
// Thread-safety: pure functions; safe from any thread.
#ifndef MEMD_FFMPEG_FRAME_WIRE_H_
#define MEMD_FFMPEG_FRAME_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/frame.h>
}

#include "absl/status/statusor.h"
#include "memd/raw_frame.h"

namespace memd::ffmpeg {

enum class WireKind : uint16_t { kVideo = 0, kAudio = 1, kEndOfStream = 2 };

// One plane of a decoded frame: where it is in the message's buffers.
struct WirePlane {
  int32_t linesize;       // bytes per row (video) or per plane (audio)
  uint32_t buffer;        // index into the message's buffers
  uint64_t offset_bytes;  // from the start of that buffer
};

// A decoded frame's properties in FFmpeg's terms (not a wire layout: the
// wire carries a memd::RawWireHeader and extension entries).
struct WireFrame {
  uint16_t kind = 0;  // WireKind
  int32_t format = -1, width = 0, height = 0, nb_samples = 0, sample_rate = 0;
  int32_t ch_order = 0, ch_count = 0;
  uint32_t plane_count = 0;
  uint64_t ch_mask = 0;
  int64_t pts = 0, pkt_dts = 0, pkt_duration = 0, best_effort_timestamp = 0;
  int32_t time_base_num = 0, time_base_den = 1, sar_num = 0, sar_den = 1;
  int32_t color_range = 0, color_primaries = 2, color_trc = 2, colorspace = 2, chroma_location = 0;
  int32_t key_frame = 0, pict_type = 0, interlaced_frame = 0, top_field_first = 0, repeat_pict = 0,
          flags = 0;
  uint32_t buffer_count = 0;
  WirePlane planes[AV_NUM_DATA_POINTERS] = {};
};
static_assert(AV_NUM_DATA_POINTERS == kMaxRawPlanes);

// The FFmpeg properties extension entry (type kRawExtensionFfmpeg), 56 bytes.
struct WireFfmpegProperties {
  int64_t pts, pkt_dts, pkt_duration, best_effort_timestamp;  // time_base units
  int32_t time_base_num, time_base_den;
  int32_t pict_type, repeat_pict, flags, ch_order;
};
static_assert(sizeof(WireFfmpegProperties) == 56, "on the wire: document a change");
// Side data of AVFrameSideDataType t travels as extension type kSideDataBase + t.
inline constexpr uint32_t kSideDataBase = kRawExtensionFfmpeg | 0x100;

// FFmpeg's formats for a memd format and back; AV_PIX_FMT_NONE /
// AV_SAMPLE_FMT_NONE / RawFormat::kUnknown when there is none.
int ToAvFormat(RawFormat format);
RawFormat FromAvPixelFormat(int pix_fmt);
RawFormat FromAvSampleFormat(int sample_fmt);

// Describes `frame`, whose buf[i] are the message's buffers in order.
// INVALID_ARGUMENT when a plane is outside every buffer, the format has no
// memd raw format, a linesize is negative, or the side data is larger than
// `max_side_data_bytes`.
absl::StatusOr<std::string> EncodeFrame(const AVFrame* frame, size_t max_side_data_bytes);
std::string EncodeEndOfStream();

struct DecodedFrame {
  WireFrame header;
  struct SideData {
    int32_t type;
    std::string bytes;
  };
  std::vector<SideData> side_data;
};
// Parses and checks metadata against `buffer_sizes` (the message's buffers):
// INVALID_ARGUMENT naming the field for anything out of range.
absl::StatusOr<DecodedFrame> DecodeFrame(const std::string& metadata,
                                         const std::vector<uint64_t>& buffer_sizes);

// Copies the header's properties (not data, buf, linesize) into `frame`.
void ApplyProperties(const WireFrame& header, AVFrame* frame);

}  // namespace memd::ffmpeg

#endif  // MEMD_FFMPEG_FRAME_WIRE_H_
