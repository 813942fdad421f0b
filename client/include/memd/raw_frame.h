// memd raw frames: the one description of a raw video or audio frame on a
// memd channel, shared by GStreamer (memdsink/memdsrc), FFmpeg (memd::ffmpeg)
// and Python. The pixels or samples travel as the message's buffer
// references; this description travels as the message's metadata. The byte
// layout is in docs/wire-format.md, with the table of FFmpeg and GStreamer
// formats that map to each RawFormat.
//
// Planes point into the message's buffers by index and byte offset, never by
// address: every process maps the pool at its own address.
//
// This file owns the format numbers, the plane geometry of each format, the
// header layout and every limit a decoder checks. The FFmpeg and GStreamer
// mappings live with their integrations (client/ffmpeg/frame_wire.cc,
// gst/memd_format.cc) and are built on RawFormatInfo.
//
// Thread-safety: plain values and pure functions; safe from any thread.
//
// Example (sender):
//   memd::RawFrame frame;
//   frame.format = memd::RawFormat::kNv12;
//   frame.width = 1920; frame.height = 1080;
//   frame.planes = {{0, 1920, 0}, {0, 1920, 1920 * 1080}};
//   frame.pts_ns = 0; frame.flags = memd::kRawFrameKeyframe;
//   absl::StatusOr<std::string> metadata = memd::EncodeRawFrame(frame);
//   client->Send("raw", {buffer.handle()}, *metadata, timeout_ms, 0, memd::SendMode::kShare);
// Receiver:
//   absl::StatusOr<memd::RawFrame> frame =
//       memd::DecodeRawFrame(message.metadata, {message.buffers[0].size_bytes});
#ifndef MEMD_CLIENT_RAW_FRAME_H_
#define MEMD_CLIENT_RAW_FRAME_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "memd/export.h"

namespace memd {

// memd's pixel and sample formats. The numbers are on the wire: never
// renumber, only add. Video formats are below 256, audio formats from 256.
enum class RawFormat : uint16_t {
  kUnknown = 0,  // only an end-of-stream message may carry no format
  // Video. Plane order and bytes as GStreamer's format of the same name.
  kNv12 = 1,       // Y plane, interleaved UV plane at half width and height
  kI420 = 2,       // Y, U, V planes; U and V at half width and height
  kP010 = 3,       // NV12 with 16-bit little-endian samples, 10 bits in the high bits
  kRgb = 4,        // packed R, G, B bytes (24 bits per pixel)
  kRgba = 5,       // R, G, B, A bytes
  kBgra = 6,       // B, G, R, A bytes
  kGray8 = 7,      // one 8-bit luma plane
  kYuy2 = 8,       // packed Y0 U Y1 V: 4 bytes per two pixels
  kNv21 = 9,       // NV12 with V before U
  kI422 = 10,      // Y, U, V planes; U and V at half width, full height
  kY444 = 11,      // Y, U, V planes at full size
  kUyvy = 12,      // packed U Y0 V Y1
  kBgr = 13,       // packed B, G, R bytes
  kRgbx = 14,      // R, G, B, unused byte
  kBgrx = 15,      // B, G, R, unused byte
  kGray16 = 16,    // one 16-bit little-endian luma plane
  kI420p10 = 17,   // I420 with 16-bit little-endian samples, 10 bits in the low bits
  // Audio. Interleaved formats have one plane of samples * channels values;
  // planar ones one plane per channel. Samples are little-endian.
  kS16 = 256,      // signed 16-bit, interleaved
  kS16Planar = 257,
  kS32 = 258,      // signed 32-bit, interleaved
  kS32Planar = 259,
  kF32 = 260,      // 32-bit float, interleaved
  kF32Planar = 261,
  kF64 = 262,      // 64-bit float, interleaved
  kF64Planar = 263,
  kU8 = 264,       // unsigned 8-bit, interleaved
};

// Flags of a frame (RawFrame::flags); any other bit is refused.
inline constexpr uint32_t kRawFrameKeyframe = 1u << 0;       // decodable by itself
inline constexpr uint32_t kRawFrameEndOfStream = 1u << 1;    // the stream ended: no planes
inline constexpr uint32_t kRawFrameDiscont = 1u << 2;        // frames were lost before this one
inline constexpr uint32_t kRawFrameCorrupt = 1u << 3;        // decoded with errors
inline constexpr uint32_t kRawFrameInterlaced = 1u << 4;     // two fields in one frame
inline constexpr uint32_t kRawFrameTopFieldFirst = 1u << 5;  // with kRawFrameInterlaced
inline constexpr uint32_t kRawFrameKnownFlags = (1u << 6) - 1;

// pts_ns / duration_ns when there is none (GStreamer's GST_CLOCK_TIME_NONE,
// FFmpeg's AV_NOPTS_VALUE).
inline constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();

// Limits a decoder enforces (the channel's metadata limit of 4096 bytes,
// owned by the daemon, bounds the extension block further).
inline constexpr uint32_t kMaxRawPlanes = 8;             // FFmpeg's AV_NUM_DATA_POINTERS
inline constexpr uint32_t kMaxRawDimension = 32768;      // pixels, width and height
inline constexpr uint32_t kMaxRawChannels = 64;          // interleaved; planar: kMaxRawPlanes
inline constexpr uint32_t kMaxRawSamples = 1u << 20;     // per channel in one frame
inline constexpr uint32_t kMaxRawSampleRateHz = 768000;

// Geometry of one format (RawFormatInfo::planes[p]): a row of plane p holds
// ceil(width / 2^h_shift) units of unit_bytes bytes, and the plane has
// ceil(height / 2^v_shift) rows. Audio formats use unit_bytes only (bytes
// per sample).
struct RawPlaneGeometry {
  uint8_t unit_bytes;
  uint8_t h_shift;
  uint8_t v_shift;
};

struct RawFormatInfo {
  RawFormat format;
  const char* name;    // memd's name, as in docs/wire-format.md ("nv12", "f32p")
  bool audio;
  bool planar_audio;   // one plane per channel
  uint8_t plane_count;  // video: planes; interleaved audio: 1; planar audio: 0 (= channels)
  RawPlaneGeometry planes[4];
};

// The table entry of `format`, or nullptr for kUnknown and numbers this
// library does not know.
MEMD_EXPORT const RawFormatInfo* FindRawFormat(RawFormat format);
// Every known format, in number order (for mapping tables and tests).
MEMD_EXPORT const std::vector<RawFormatInfo>& RawFormats();

// One plane: where its first byte is and how far apart its rows are.
struct RawPlane {
  uint32_t buffer_index = 0;   // index into the message's buffers
  uint32_t stride_bytes = 0;   // video: bytes from one row to the next; audio: the plane's bytes
  uint64_t offset_bytes = 0;   // from the start of that buffer
};

// An entry of the extension block: data one side understands and the other
// may skip (FFmpeg side data and properties, GStreamer meta, user data).
// Types are ranges per owner: docs/wire-format.md.
struct RawExtension {
  uint32_t type = 0;
  std::string bytes;
};
inline constexpr uint32_t kRawExtensionFfmpeg = 0x00010000;     // 0x0001xxxx: memd::ffmpeg
inline constexpr uint32_t kRawExtensionGstreamer = 0x00020000;  // 0x0002xxxx: the gst plugin
inline constexpr uint32_t kRawExtensionUser = 0x00800000;       // 0x0080xxxx and up: applications

// Colour properties, as ITU-T H.273 code points (the values FFmpeg's AVCOL_*
// enums use; GStreamer converts with gst_video_color_*_from_iso). 0 is
// "unspecified" for range and chroma location; 2 is H.273's "unspecified"
// for the other three.
struct RawColor {
  uint8_t range = 0;            // 0 unspecified, 1 limited (TV), 2 full (PC): AVColorRange
  uint8_t matrix = 2;           // H.273 MatrixCoefficients (AVColorSpace)
  uint8_t transfer = 2;         // H.273 TransferCharacteristics (AVColorTransferCharacteristic)
  uint8_t primaries = 2;        // H.273 ColourPrimaries (AVColorPrimaries)
  uint8_t chroma_location = 0;  // AVChromaLocation: 0 unspecified, 1 left, 2 center, 3 top-left
};

// A decoded (or to-be-encoded) description of one frame.
struct RawFrame {
  RawFormat format = RawFormat::kUnknown;
  uint32_t flags = 0;            // kRawFrame*
  // Video.
  uint32_t width = 0, height = 0;            // pixels
  uint32_t par_num = 0, par_den = 0;         // pixel aspect ratio; 0/0 unknown
  uint32_t fps_num = 0, fps_den = 0;         // nominal frame rate in frames/s; 0/0 unknown
  RawColor color;
  // Audio.
  uint32_t samples = 0;          // per channel
  uint32_t sample_rate_hz = 0;
  uint32_t channels = 0;
  uint64_t channel_mask = 0;     // WAVE / FFmpeg AV_CH_* bit order; 0 unknown
  // Both.
  int64_t pts_ns = kNoTimestamp;       // presentation time, nanoseconds
  int64_t duration_ns = kNoTimestamp;  // nanoseconds
  std::vector<RawPlane> planes;        // in the format's plane order
  uint32_t buffer_count = 0;           // buffers the message carries
  std::vector<RawExtension> extensions;

  bool end_of_stream() const { return (flags & kRawFrameEndOfStream) != 0; }
  static RawFrame EndOfStream() {
    RawFrame eos;
    eos.flags = kRawFrameEndOfStream;
    return eos;
  }
};

// Bytes per row of plane `plane` (video) for `width`, and rows for `height`.
// REQUIRES: `info` is video and plane < info.plane_count.
MEMD_EXPORT uint64_t RawPlaneRowBytes(const RawFormatInfo& info, size_t plane, uint32_t width);
MEMD_EXPORT uint32_t RawPlaneRows(const RawFormatInfo& info, size_t plane, uint32_t height);
// The bytes plane `plane` of a valid frame spans from its offset: stride *
// rows for video, samples * bytes per sample (* channels if interleaved) for
// audio. The least a plane needs; a buffer may hold more.
MEMD_EXPORT uint64_t RawPlaneBytes(const RawFrame& frame, size_t plane);
// Planes and strides packed one after the other in buffer 0 with rows
// aligned to `stride_align` bytes (a power of two): what a sender that
// allocates a frame itself writes into. Returns the total bytes.
// REQUIRES: frame.format and its size (or samples and channels) are set.
MEMD_EXPORT uint64_t LayoutRawFrame(RawFrame& frame, uint32_t stride_align);

// The header every message starts with (little-endian; the layout is the
// contract: docs/wire-format.md). Followed by `extension_bytes` bytes of
// extension entries {uint32 type, uint32 size_bytes, bytes}.
struct RawWirePlane {
  uint32_t buffer_index;
  uint32_t stride_bytes;
  uint64_t offset_bytes;
};
struct RawWireHeader {
  uint32_t magic;            // kRawFrameMagic
  uint16_t version;          // kRawFrameVersion
  uint16_t header_bytes;     // sizeof(RawWireHeader)
  uint16_t format;           // RawFormat
  uint16_t plane_count;
  uint16_t buffer_count;
  uint8_t color_range;
  uint8_t chroma_location;
  uint32_t flags;
  uint32_t width, height;
  uint32_t samples, sample_rate_hz, channels;
  int64_t pts_ns, duration_ns;
  uint64_t channel_mask;
  uint32_t par_num, par_den, fps_num, fps_den;
  uint8_t color_matrix, color_transfer, color_primaries, reserved0;  // reserved0 is 0
  uint32_t extension_bytes;
  uint64_t reserved1;        // 0
  RawWirePlane planes[kMaxRawPlanes];
};
inline constexpr uint32_t kRawFrameMagic = 0x46524d4d;  // "MMRF" in memory order
inline constexpr uint16_t kRawFrameVersion = 1;
static_assert(std::endian::native == std::endian::little,
              "RawWireHeader is copied as is: a big-endian port must swap bytes");
static_assert(sizeof(RawWirePlane) == 16);
// No implicit padding: every byte that crosses processes is written.
static_assert(offsetof(RawWireHeader, flags) == 16 && offsetof(RawWireHeader, pts_ns) == 40 &&
              offsetof(RawWireHeader, par_num) == 64 &&
              offsetof(RawWireHeader, color_matrix) == 80 &&
              offsetof(RawWireHeader, extension_bytes) == 84 &&
              offsetof(RawWireHeader, planes) == 96);
static_assert(sizeof(RawWireHeader) == 224,
              "RawWireHeader crosses processes: change kRawFrameVersion");

// The metadata of `frame`. INVALID_ARGUMENT (naming the field, its value
// and the limit) for anything Decode would refuse without buffer sizes.
MEMD_EXPORT absl::StatusOr<std::string> EncodeRawFrame(const RawFrame& frame);
// Parses `metadata` and checks it against `buffer_sizes` (the message's
// buffers, in order): every plane must lie inside its buffer. INVALID_ARGUMENT
// naming the field, its value and the limit for anything out of range.
MEMD_EXPORT absl::StatusOr<RawFrame> DecodeRawFrame(std::string_view metadata,
                                        const std::vector<uint64_t>& buffer_sizes);
// Whether `metadata` starts like a raw frame (magic), for messages of mixed kinds.
MEMD_EXPORT bool IsRawFrame(std::string_view metadata);

}  // namespace memd

#endif  // MEMD_CLIENT_RAW_FRAME_H_
