#include "frame_wire.h"

#include <array>
#include <cstring>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
}

#include "absl/strings/str_format.h"

namespace memd::ffmpeg {
namespace {

// Which of frame->buf[] holds `data` (its first byte), or -1.
int BufferOf(const AVFrame* frame, const uint8_t* data) {
  for (int b = 0; b < AV_NUM_DATA_POINTERS && frame->buf[b] != nullptr; ++b) {
    const AVBufferRef* buf = frame->buf[b];
    if (data >= buf->data && data < buf->data + buf->size) return b;
  }
  return -1;
}

int BufferCount(const AVFrame* frame) {
  int n = 0;
  while (n < AV_NUM_DATA_POINTERS && frame->buf[n] != nullptr) ++n;
  return n;
}

absl::Status Invalid(const char* field, int64_t value, const std::string& allowed) {
  return absl::InvalidArgumentError(
      absl::StrFormat("frame metadata field %s is %d; %s", field, value, allowed));
}

// Bytes plane `p` of a checked video header spans from its offset.
absl::StatusOr<std::array<size_t, 4>> VideoPlaneSizes(const WireFrame& h) {
  std::array<size_t, 4> sizes{};
  ptrdiff_t linesizes[4] = {};
  for (uint32_t p = 0; p < h.plane_count && p < 4; ++p) linesizes[p] = h.planes[p].linesize;
  if (av_image_fill_plane_sizes(sizes.data(), static_cast<AVPixelFormat>(h.format), h.height,
                                linesizes) < 0) {
    return Invalid("height", h.height, "the planes' sizes overflow");
  }
  return sizes;
}

}  // namespace

absl::StatusOr<std::string> EncodeFrame(const AVFrame* frame, size_t max_side_data_bytes) {
  WireFrame h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kWireMagic;
  h.version = kWireVersion;
  bool audio = frame->nb_samples > 0;
  h.kind = static_cast<uint16_t>(audio ? WireKind::kAudio : WireKind::kVideo);
  if (audio && frame->extended_data != frame->data) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "audio frame with %d channel planes; at most %d can be sent", frame->ch_layout.nb_channels,
        AV_NUM_DATA_POINTERS));
  }
  h.format = frame->format;
  h.width = frame->width;
  h.height = frame->height;
  h.nb_samples = frame->nb_samples;
  h.sample_rate = frame->sample_rate;
  h.ch_order = frame->ch_layout.order;
  h.ch_count = frame->ch_layout.nb_channels;
  h.ch_mask = frame->ch_layout.order == AV_CHANNEL_ORDER_NATIVE ? frame->ch_layout.u.mask : 0;
  h.pts = frame->pts;
  h.pkt_dts = frame->pkt_dts;
  h.pkt_duration = frame->pkt_duration;
  h.best_effort_timestamp = frame->best_effort_timestamp;
  h.time_base_num = frame->time_base.num;
  h.time_base_den = frame->time_base.den;
  h.sar_num = frame->sample_aspect_ratio.num;
  h.sar_den = frame->sample_aspect_ratio.den;
  h.color_range = frame->color_range;
  h.color_primaries = frame->color_primaries;
  h.color_trc = frame->color_trc;
  h.colorspace = frame->colorspace;
  h.chroma_location = frame->chroma_location;
  h.key_frame = frame->key_frame;
  h.pict_type = frame->pict_type;
  h.interlaced_frame = frame->interlaced_frame;
  h.top_field_first = frame->top_field_first;
  h.repeat_pict = frame->repeat_pict;
  h.flags = frame->flags;
  h.buffer_count = static_cast<uint32_t>(BufferCount(frame));
  for (int p = 0; p < AV_NUM_DATA_POINTERS && frame->data[p] != nullptr; ++p) {
    int b = BufferOf(frame, frame->data[p]);
    if (b < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "frame plane %d is not inside any of the frame's %u buffers", p, h.buffer_count));
    }
    h.planes[p] = WirePlane{frame->linesize[audio ? 0 : p], static_cast<uint32_t>(b),
                            static_cast<uint64_t>(frame->data[p] - frame->buf[b]->data)};
    h.plane_count = static_cast<uint32_t>(p + 1);
  }
  size_t side_bytes = 0;
  for (int i = 0; i < frame->nb_side_data; ++i) {
    side_bytes += sizeof(WireSideData) + frame->side_data[i]->size;
  }
  if (side_bytes > max_side_data_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "frame side data takes %u bytes (%d entries); the limit is %u", side_bytes,
        frame->nb_side_data, max_side_data_bytes));
  }
  h.side_data_count = static_cast<uint32_t>(frame->nb_side_data);
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  for (int i = 0; i < frame->nb_side_data; ++i) {
    const AVFrameSideData* sd = frame->side_data[i];
    WireSideData entry{static_cast<int32_t>(sd->type), static_cast<uint32_t>(sd->size)};
    out.append(reinterpret_cast<const char*>(&entry), sizeof(entry));
    out.append(reinterpret_cast<const char*>(sd->data), sd->size);
  }
  return out;
}

std::string EncodeEndOfStream() {
  WireFrame h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kWireMagic;
  h.version = kWireVersion;
  h.kind = static_cast<uint16_t>(WireKind::kEndOfStream);
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h));
}

absl::StatusOr<DecodedFrame> DecodeFrame(const std::string& metadata,
                                         const std::vector<uint64_t>& buffer_sizes) {
  DecodedFrame out;
  if (metadata.size() < sizeof(WireFrame)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "message of %u bytes of metadata is not a memd frame (at least %u)", metadata.size(),
        sizeof(WireFrame)));
  }
  WireFrame& h = out.header;
  std::memcpy(&h, metadata.data(), sizeof(h));
  if (h.magic != kWireMagic) return Invalid("magic", h.magic, "not a memd frame");
  if (h.version != kWireVersion) {
    return Invalid("version", h.version, absl::StrFormat("this library reads %u", kWireVersion));
  }
  if (h.kind > static_cast<uint16_t>(WireKind::kEndOfStream)) {
    return Invalid("kind", h.kind, "0 (video), 1 (audio) or 2 (end of stream) are allowed");
  }
  if (h.kind == static_cast<uint16_t>(WireKind::kEndOfStream)) return out;
  if (h.buffer_count != buffer_sizes.size()) {
    return Invalid("buffer_count", h.buffer_count,
                   absl::StrFormat("the message carries %u buffers", buffer_sizes.size()));
  }
  if (h.plane_count == 0 || h.plane_count > AV_NUM_DATA_POINTERS) {
    return Invalid("plane_count", h.plane_count, "from 1 to 8 are allowed");
  }
  for (uint32_t p = 0; p < h.plane_count; ++p) {
    const WirePlane& plane = h.planes[p];
    if (plane.buffer >= h.buffer_count) {
      return Invalid("planes[].buffer", plane.buffer,
                     absl::StrFormat("the message carries %u buffers", h.buffer_count));
    }
    if (plane.linesize <= 0) return Invalid("planes[].linesize", plane.linesize, "must be > 0");
  }
  // Every plane's extent must lie inside its buffer.
  std::array<size_t, 4> video_sizes{};
  if (h.kind == static_cast<uint16_t>(WireKind::kVideo)) {
    if (av_pix_fmt_desc_get(static_cast<AVPixelFormat>(h.format)) == nullptr) {
      return Invalid("format", h.format, "not a pixel format of this libavutil");
    }
    if (av_image_check_size(h.width, h.height, 0, nullptr) < 0) {
      return Invalid("width", h.width, absl::StrFormat("with height %d not a valid size", h.height));
    }
    absl::StatusOr<std::array<size_t, 4>> sizes = VideoPlaneSizes(h);
    if (!sizes.ok()) return sizes.status();
    video_sizes = *sizes;
  } else {
    if (av_get_bytes_per_sample(static_cast<AVSampleFormat>(h.format)) <= 0) {
      return Invalid("format", h.format, "not a sample format of this libavutil");
    }
    if (h.nb_samples <= 0) return Invalid("nb_samples", h.nb_samples, "must be > 0");
  }
  for (uint32_t p = 0; p < h.plane_count; ++p) {
    const WirePlane& plane = h.planes[p];
    uint64_t extent = h.kind == static_cast<uint16_t>(WireKind::kVideo)
                          ? (p < 4 ? video_sizes[p] : 0)
                          : static_cast<uint64_t>(h.planes[0].linesize);
    uint64_t size = buffer_sizes[plane.buffer];
    if (plane.offset_bytes > size || extent > size - plane.offset_bytes) {
      return Invalid("planes[].offset_bytes", static_cast<int64_t>(plane.offset_bytes),
                     absl::StrFormat("plane %u of %u bytes does not fit buffer %u of %u bytes", p,
                                     extent, plane.buffer, size));
    }
  }
  size_t pos = sizeof(WireFrame);
  for (uint32_t i = 0; i < h.side_data_count; ++i) {
    WireSideData entry;
    if (metadata.size() - pos < sizeof(entry)) {
      return Invalid("side_data_count", h.side_data_count, "more than the metadata holds");
    }
    std::memcpy(&entry, metadata.data() + pos, sizeof(entry));
    pos += sizeof(entry);
    if (metadata.size() - pos < entry.size) {
      return Invalid("side_data[].size", entry.size, "more than the metadata holds");
    }
    out.side_data.push_back({entry.type, metadata.substr(pos, entry.size)});
    pos += entry.size;
  }
  return out;
}

void ApplyProperties(const WireFrame& h, AVFrame* frame) {
  frame->format = h.format;
  frame->width = h.width;
  frame->height = h.height;
  frame->nb_samples = h.nb_samples;
  frame->sample_rate = h.sample_rate;
  if (h.kind == static_cast<uint16_t>(WireKind::kAudio)) {
    if (h.ch_order == AV_CHANNEL_ORDER_NATIVE && h.ch_mask != 0) {
      av_channel_layout_from_mask(&frame->ch_layout, h.ch_mask);
    } else {
      av_channel_layout_default(&frame->ch_layout, h.ch_count);
    }
  }
  frame->pts = h.pts;
  frame->pkt_dts = h.pkt_dts;
  frame->pkt_duration = h.pkt_duration;
  frame->best_effort_timestamp = h.best_effort_timestamp;
  frame->time_base = AVRational{h.time_base_num, h.time_base_den};
  frame->sample_aspect_ratio = AVRational{h.sar_num, h.sar_den};
  frame->color_range = static_cast<AVColorRange>(h.color_range);
  frame->color_primaries = static_cast<AVColorPrimaries>(h.color_primaries);
  frame->color_trc = static_cast<AVColorTransferCharacteristic>(h.color_trc);
  frame->colorspace = static_cast<AVColorSpace>(h.colorspace);
  frame->chroma_location = static_cast<AVChromaLocation>(h.chroma_location);
  frame->key_frame = h.key_frame;
  frame->pict_type = static_cast<AVPictureType>(h.pict_type);
  frame->interlaced_frame = h.interlaced_frame;
  frame->top_field_first = h.top_field_first;
  frame->repeat_pict = h.repeat_pict;
  frame->flags = h.flags;
}

}  // namespace memd::ffmpeg
