// FrameWire: how an AVFrame's description travels as channel metadata (the
// bytes travel as buffer references). Private to memd::ffmpeg.
//
// Layout: one WireFrame (fixed size, little-endian, versioned) followed by
// `side_data_count` entries of {WireSideData, bytes}. Planes point into the
// message's buffers by index and offset, never by address: every process
// maps the pool at its own address.
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

namespace memd::ffmpeg {

inline constexpr uint32_t kWireMagic = 0x5246444d;  // "MDFR"
inline constexpr uint16_t kWireVersion = 1;

enum class WireKind : uint16_t { kVideo = 0, kAudio = 1, kEndOfStream = 2 };

struct WirePlane {
  int32_t linesize;      // bytes per row (video) or per plane (audio)
  uint32_t buffer;       // index into the message's buffers
  uint64_t offset_bytes;  // from the start of that buffer
};
static_assert(sizeof(WirePlane) == 16);

struct WireFrame {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;  // WireKind
  int32_t format, width, height, nb_samples, sample_rate;
  int32_t ch_order, ch_count;
  uint32_t plane_count;  // data[] entries set (<= AV_NUM_DATA_POINTERS)
  uint64_t ch_mask;
  int64_t pts, pkt_dts, pkt_duration, best_effort_timestamp;
  int32_t time_base_num, time_base_den, sar_num, sar_den;
  int32_t color_range, color_primaries, color_trc, colorspace, chroma_location;
  int32_t key_frame, pict_type, interlaced_frame, top_field_first, repeat_pict, flags;
  uint32_t buffer_count;  // buf[] entries (== the message's handles)
  uint32_t side_data_count;
  uint32_t reserved;      // 0
  WirePlane planes[AV_NUM_DATA_POINTERS];
};
static_assert(AV_NUM_DATA_POINTERS == 8);
// No implicit padding: every byte that crosses processes is written.
static_assert(offsetof(WireFrame, ch_mask) == 40 && offsetof(WireFrame, planes) == 152);
static_assert(sizeof(WireFrame) == 280, "WireFrame crosses processes: change kWireVersion");

struct WireSideData {
  int32_t type;    // enum AVFrameSideDataType
  uint32_t size;   // bytes that follow
};
static_assert(sizeof(WireSideData) == 8);

// Describes `frame`, whose buf[i] are the message's buffers in order.
// INVALID_ARGUMENT when a plane is outside every buffer or the side data is
// larger than `max_side_data_bytes`.
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
