// memd raw frames: the format table, the plane geometry and the codec of
// the header (memd/raw_frame.h; the byte layout is docs/wire-format.md).
#include "memd/raw_frame.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace memd {
namespace {

using F = RawFormat;

// The one table of formats. Plane geometry: {unit_bytes, h_shift, v_shift}.
const std::vector<RawFormatInfo>& Table() {
  static const std::vector<RawFormatInfo> table = {
      {F::kNv12, "nv12", false, false, 2, {{1, 0, 0}, {2, 1, 1}}},
      {F::kI420, "i420", false, false, 3, {{1, 0, 0}, {1, 1, 1}, {1, 1, 1}}},
      {F::kP010, "p010", false, false, 2, {{2, 0, 0}, {4, 1, 1}}},
      {F::kRgb, "rgb", false, false, 1, {{3, 0, 0}}},
      {F::kRgba, "rgba", false, false, 1, {{4, 0, 0}}},
      {F::kBgra, "bgra", false, false, 1, {{4, 0, 0}}},
      {F::kGray8, "gray8", false, false, 1, {{1, 0, 0}}},
      {F::kYuy2, "yuy2", false, false, 1, {{4, 1, 0}}},
      {F::kNv21, "nv21", false, false, 2, {{1, 0, 0}, {2, 1, 1}}},
      {F::kI422, "i422", false, false, 3, {{1, 0, 0}, {1, 1, 0}, {1, 1, 0}}},
      {F::kY444, "y444", false, false, 3, {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}}},
      {F::kUyvy, "uyvy", false, false, 1, {{4, 1, 0}}},
      {F::kBgr, "bgr", false, false, 1, {{3, 0, 0}}},
      {F::kRgbx, "rgbx", false, false, 1, {{4, 0, 0}}},
      {F::kBgrx, "bgrx", false, false, 1, {{4, 0, 0}}},
      {F::kGray16, "gray16", false, false, 1, {{2, 0, 0}}},
      {F::kI420p10, "i420p10", false, false, 3, {{2, 0, 0}, {2, 1, 1}, {2, 1, 1}}},
      {F::kS16, "s16", true, false, 1, {{2, 0, 0}}},
      {F::kS16Planar, "s16p", true, true, 0, {{2, 0, 0}}},
      {F::kS32, "s32", true, false, 1, {{4, 0, 0}}},
      {F::kS32Planar, "s32p", true, true, 0, {{4, 0, 0}}},
      {F::kF32, "f32", true, false, 1, {{4, 0, 0}}},
      {F::kF32Planar, "f32p", true, true, 0, {{4, 0, 0}}},
      {F::kF64, "f64", true, false, 1, {{8, 0, 0}}},
      {F::kF64Planar, "f64p", true, true, 0, {{8, 0, 0}}},
      {F::kU8, "u8", true, false, 1, {{1, 0, 0}}},
  };
  return table;
}

absl::Status Invalid(std::string_view field, int64_t value, std::string_view limit) {
  return absl::InvalidArgumentError(
      absl::StrFormat("raw frame field %s is %d; %s", field, value, limit));
}

absl::Status CheckRange(std::string_view field, uint32_t value, uint32_t low, uint32_t high) {
  if (value >= low && value <= high) return absl::OkStatus();
  return Invalid(field, value, absl::StrFormat("from %u to %u are allowed", low, high));
}

uint32_t ExpectedPlanes(const RawFormatInfo& info, const RawFrame& frame) {
  return info.planar_audio ? frame.channels : info.plane_count;
}

// No two planes share a byte: a reader (GStreamer's audio and video metas,
// FFmpeg's planes) takes each plane as its own memory. Each plane spans
// RawPlaneBytes (never 0 once CheckFrame passed); offsets are compared
// without adding, so no sum can wrap. After CheckFrame (and, decoding,
// CheckPlanesFit, whose message says more about a plane too big).
absl::Status CheckNoOverlap(const RawFrame& frame) {
  for (size_t p = 1; p < frame.planes.size(); ++p) {
    const RawPlane& a = frame.planes[p];
    uint64_t a_bytes = RawPlaneBytes(frame, p);
    for (size_t q = 0; q < p; ++q) {
      const RawPlane& b = frame.planes[q];
      if (a.buffer_index != b.buffer_index) continue;
      uint64_t b_bytes = RawPlaneBytes(frame, q);
      bool overlap = a.offset_bytes < b.offset_bytes ? b.offset_bytes - a.offset_bytes < a_bytes
                                                     : a.offset_bytes - b.offset_bytes < b_bytes;
      if (!overlap) continue;
      return Invalid(absl::StrFormat("planes[%u].offset_bytes", p),
                     static_cast<int64_t>(a.offset_bytes),
                     absl::StrFormat("the plane's %u bytes overlap planes[%u] (%u bytes at offset "
                                     "%u of buffer %u); planes must not share bytes",
                                     a_bytes, q, b_bytes, b.offset_bytes, b.buffer_index));
    }
  }
  return absl::OkStatus();
}

// Everything about `frame` that does not need the buffers' sizes.
absl::Status CheckFrame(const RawFrame& frame) {
  if ((frame.flags & ~kRawFrameKnownFlags) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "raw frame field flags is 0x%x; only bits 0x%x are defined", frame.flags,
        kRawFrameKnownFlags));
  }
  if (frame.planes.size() > kMaxRawPlanes) {
    return Invalid("plane_count", static_cast<int64_t>(frame.planes.size()),
                   absl::StrFormat("at most %u are allowed", kMaxRawPlanes));
  }
  if (frame.buffer_count > kMaxRawPlanes) {
    return Invalid("buffer_count", frame.buffer_count,
                   absl::StrFormat("at most %u are allowed", kMaxRawPlanes));
  }
  if (frame.duration_ns < 0 && frame.duration_ns != kNoTimestamp) {
    return Invalid("duration_ns", frame.duration_ns, "must be >= 0 or kNoTimestamp");
  }
  if (frame.end_of_stream()) {
    if (!frame.planes.empty()) {
      return Invalid("plane_count", static_cast<int64_t>(frame.planes.size()),
                     "an end-of-stream message carries no planes");
    }
    return absl::OkStatus();
  }
  const RawFormatInfo* info = FindRawFormat(frame.format);
  if (info == nullptr) {
    return Invalid("format", static_cast<int64_t>(frame.format),
                   "not a memd format (docs/wire-format.md lists them)");
  }
  if (info->audio) {
    if (absl::Status s = CheckRange("samples", frame.samples, 1, kMaxRawSamples); !s.ok()) return s;
    if (absl::Status s = CheckRange("sample_rate_hz", frame.sample_rate_hz, 1, kMaxRawSampleRateHz);
        !s.ok()) {
      return s;
    }
    uint32_t max_channels = info->planar_audio ? kMaxRawPlanes : kMaxRawChannels;
    if (absl::Status s = CheckRange("channels", frame.channels, 1, max_channels); !s.ok()) return s;
  } else {
    if (absl::Status s = CheckRange("width", frame.width, 1, kMaxRawDimension); !s.ok()) return s;
    if (absl::Status s = CheckRange("height", frame.height, 1, kMaxRawDimension); !s.ok()) return s;
  }
  uint32_t expected = ExpectedPlanes(*info, frame);
  if (frame.planes.size() != expected) {
    return Invalid("plane_count", static_cast<int64_t>(frame.planes.size()),
                   info->planar_audio
                       ? absl::StrFormat("format %s with %u channels has %u planes", info->name,
                                         frame.channels, expected)
                       : absl::StrFormat("format %s has %u planes", info->name, expected));
  }
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    const RawPlane& plane = frame.planes[p];
    if (plane.buffer_index >= frame.buffer_count) {
      return Invalid(absl::StrFormat("planes[%u].buffer_index", p), plane.buffer_index,
                     absl::StrFormat("the frame has %u buffers", frame.buffer_count));
    }
    uint64_t least = info->audio ? RawPlaneBytes(frame, p)
                                 : RawPlaneRowBytes(*info, p, frame.width);
    if (plane.stride_bytes < least) {
      return Invalid(absl::StrFormat("planes[%u].stride_bytes", p), plane.stride_bytes,
                     absl::StrFormat("%s %s needs at least %u", info->name,
                                     info->audio ? "plane" : "row", least));
    }
  }
  for (const RawExtension& e : frame.extensions) {
    if (e.bytes.size() > std::numeric_limits<uint32_t>::max() / 2) {
      return Invalid("extensions[].size_bytes", static_cast<int64_t>(e.bytes.size()),
                     "at most 2 GiB");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPlanesFit(const RawFrame& frame, const std::vector<uint64_t>& buffer_sizes) {
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    const RawPlane& plane = frame.planes[p];
    uint64_t extent = RawPlaneBytes(frame, p);
    uint64_t size = buffer_sizes[plane.buffer_index];
    if (plane.offset_bytes > size || extent > size - plane.offset_bytes) {
      return Invalid(absl::StrFormat("planes[%u].offset_bytes", p),
                     static_cast<int64_t>(plane.offset_bytes),
                     absl::StrFormat("the plane's %u bytes do not fit buffer %u of %u bytes",
                                     extent, plane.buffer_index, size));
    }
  }
  return absl::OkStatus();
}

template <typename T>
void Append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

}  // namespace

const std::vector<RawFormatInfo>& RawFormats() { return Table(); }

const RawFormatInfo* FindRawFormat(RawFormat format) {
  for (const RawFormatInfo& info : Table()) {
    if (info.format == format) return &info;
  }
  return nullptr;
}

uint64_t RawPlaneRowBytes(const RawFormatInfo& info, size_t plane, uint32_t width) {
  const RawPlaneGeometry& g = info.planes[plane];
  uint64_t units = (static_cast<uint64_t>(width) + (1u << g.h_shift) - 1) >> g.h_shift;
  return units * g.unit_bytes;
}

uint32_t RawPlaneRows(const RawFormatInfo& info, size_t plane, uint32_t height) {
  const RawPlaneGeometry& g = info.planes[plane];
  return static_cast<uint32_t>((static_cast<uint64_t>(height) + (1u << g.v_shift) - 1) >>
                               g.v_shift);
}

uint64_t RawPlaneBytes(const RawFrame& frame, size_t plane) {
  const RawFormatInfo* info = FindRawFormat(frame.format);
  if (info == nullptr || plane >= frame.planes.size()) return 0;
  if (info->audio) {
    uint64_t values = static_cast<uint64_t>(frame.samples) *
                      (info->planar_audio ? 1 : frame.channels);
    return values * info->planes[0].unit_bytes;
  }
  return static_cast<uint64_t>(frame.planes[plane].stride_bytes) *
         RawPlaneRows(*info, plane, frame.height);
}

uint64_t LayoutRawFrame(RawFrame& frame, uint32_t stride_align) {
  const RawFormatInfo* info = FindRawFormat(frame.format);
  frame.planes.clear();
  frame.buffer_count = 1;
  if (info == nullptr) return 0;
  uint64_t align = std::max<uint32_t>(stride_align, 1);
  auto up = [align](uint64_t n) { return (n + align - 1) & ~(align - 1); };
  uint64_t offset = 0;
  uint32_t count = ExpectedPlanes(*info, frame);
  for (uint32_t p = 0; p < count && p < kMaxRawPlanes; ++p) {
    RawPlane plane;
    plane.offset_bytes = offset;
    if (info->audio) {
      uint64_t values = static_cast<uint64_t>(frame.samples) *
                        (info->planar_audio ? 1 : frame.channels);
      plane.stride_bytes = static_cast<uint32_t>(up(values * info->planes[0].unit_bytes));
      offset += plane.stride_bytes;
    } else {
      plane.stride_bytes = static_cast<uint32_t>(up(RawPlaneRowBytes(*info, p, frame.width)));
      offset += static_cast<uint64_t>(plane.stride_bytes) * RawPlaneRows(*info, p, frame.height);
    }
    frame.planes.push_back(plane);
  }
  return offset;
}

absl::StatusOr<std::string> EncodeRawFrame(const RawFrame& frame) {
  if (absl::Status s = CheckFrame(frame); !s.ok()) return s;
  if (absl::Status s = CheckNoOverlap(frame); !s.ok()) return s;
  RawWireHeader h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kRawFrameMagic;
  h.version = kRawFrameVersion;
  h.header_bytes = sizeof(RawWireHeader);
  h.format = static_cast<uint16_t>(frame.format);
  h.plane_count = static_cast<uint16_t>(frame.planes.size());
  h.buffer_count = static_cast<uint16_t>(frame.buffer_count);
  h.color_range = frame.color.range;
  h.chroma_location = frame.color.chroma_location;
  h.flags = frame.flags;
  h.width = frame.width;
  h.height = frame.height;
  h.samples = frame.samples;
  h.sample_rate_hz = frame.sample_rate_hz;
  h.channels = frame.channels;
  h.pts_ns = frame.pts_ns;
  h.duration_ns = frame.duration_ns;
  h.channel_mask = frame.channel_mask;
  h.par_num = frame.par_num;
  h.par_den = frame.par_den;
  h.fps_num = frame.fps_num;
  h.fps_den = frame.fps_den;
  h.color_matrix = frame.color.matrix;
  h.color_transfer = frame.color.transfer;
  h.color_primaries = frame.color.primaries;
  for (size_t p = 0; p < frame.planes.size(); ++p) {
    h.planes[p] = RawWirePlane{frame.planes[p].buffer_index, frame.planes[p].stride_bytes,
                               frame.planes[p].offset_bytes};
  }
  uint64_t extension_bytes = 0;
  for (const RawExtension& e : frame.extensions) extension_bytes += 8 + e.bytes.size();
  if (extension_bytes > std::numeric_limits<uint32_t>::max()) {
    return Invalid("extension_bytes", static_cast<int64_t>(extension_bytes), "at most 4 GiB");
  }
  h.extension_bytes = static_cast<uint32_t>(extension_bytes);
  std::string out;
  out.reserve(sizeof(h) + extension_bytes);
  Append(out, h);
  for (const RawExtension& e : frame.extensions) {
    Append(out, e.type);
    Append(out, static_cast<uint32_t>(e.bytes.size()));
    out.append(e.bytes);
  }
  return out;
}

bool IsRawFrame(std::string_view metadata) {
  uint32_t magic = 0;
  if (metadata.size() < sizeof(magic)) return false;
  std::memcpy(&magic, metadata.data(), sizeof(magic));
  return magic == kRawFrameMagic;
}

absl::StatusOr<RawFrame> DecodeRawFrame(std::string_view metadata,
                                        const std::vector<uint64_t>& buffer_sizes) {
  if (metadata.size() < sizeof(RawWireHeader)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "metadata of %u bytes is not a memd raw frame (its header has %u bytes)",
        metadata.size(), sizeof(RawWireHeader)));
  }
  RawWireHeader h;
  std::memcpy(&h, metadata.data(), sizeof(h));
  if (h.magic != kRawFrameMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "raw frame field magic is 0x%08x; a memd raw frame has 0x%08x", h.magic, kRawFrameMagic));
  }
  if (h.version != kRawFrameVersion) {
    return Invalid("version", h.version,
                   absl::StrFormat("this library reads %u", kRawFrameVersion));
  }
  if (h.header_bytes != sizeof(RawWireHeader)) {
    return Invalid("header_bytes", h.header_bytes,
                   absl::StrFormat("version %u has %u", kRawFrameVersion, sizeof(RawWireHeader)));
  }
  if (h.reserved0 != 0) return Invalid("reserved0", h.reserved0, "must be 0");
  if (h.reserved1 != 0) return Invalid("reserved1", static_cast<int64_t>(h.reserved1), "must be 0");
  if (h.plane_count > kMaxRawPlanes) {
    return Invalid("plane_count", h.plane_count,
                   absl::StrFormat("at most %u are allowed", kMaxRawPlanes));
  }
  if (h.buffer_count != buffer_sizes.size()) {
    return Invalid("buffer_count", h.buffer_count,
                   absl::StrFormat("the message carries %u buffers", buffer_sizes.size()));
  }
  if (h.extension_bytes != metadata.size() - sizeof(h)) {
    return Invalid("extension_bytes", h.extension_bytes,
                   absl::StrFormat("the metadata holds %u bytes after the header",
                                   metadata.size() - sizeof(h)));
  }
  RawFrame frame;
  frame.format = static_cast<RawFormat>(h.format);
  frame.flags = h.flags;
  frame.width = h.width;
  frame.height = h.height;
  frame.par_num = h.par_num;
  frame.par_den = h.par_den;
  frame.fps_num = h.fps_num;
  frame.fps_den = h.fps_den;
  frame.color = RawColor{h.color_range, h.color_matrix, h.color_transfer, h.color_primaries,
                         h.chroma_location};
  frame.samples = h.samples;
  frame.sample_rate_hz = h.sample_rate_hz;
  frame.channels = h.channels;
  frame.channel_mask = h.channel_mask;
  frame.pts_ns = h.pts_ns;
  frame.duration_ns = h.duration_ns;
  frame.buffer_count = h.buffer_count;
  for (uint16_t p = 0; p < h.plane_count; ++p) {
    frame.planes.push_back(
        RawPlane{h.planes[p].buffer_index, h.planes[p].stride_bytes, h.planes[p].offset_bytes});
  }
  if (absl::Status s = CheckFrame(frame); !s.ok()) return s;
  if (absl::Status s = CheckPlanesFit(frame, buffer_sizes); !s.ok()) return s;
  if (absl::Status s = CheckNoOverlap(frame); !s.ok()) return s;
  size_t pos = sizeof(h);
  while (pos < metadata.size()) {
    uint32_t entry[2];
    if (metadata.size() - pos < sizeof(entry)) {
      return Invalid("extension_bytes", h.extension_bytes,
                     absl::StrFormat("an entry header at byte %u runs past the end", pos));
    }
    std::memcpy(entry, metadata.data() + pos, sizeof(entry));
    pos += sizeof(entry);
    if (metadata.size() - pos < entry[1]) {
      return Invalid("extensions[].size_bytes", entry[1],
                     absl::StrFormat("%u bytes remain", metadata.size() - pos));
    }
    frame.extensions.push_back(RawExtension{entry[0], std::string(metadata.substr(pos, entry[1]))});
    pos += entry[1];
  }
  return frame;
}

}  // namespace memd
