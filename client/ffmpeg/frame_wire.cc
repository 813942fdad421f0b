#include "frame_wire.h"

#include <algorithm>
#include <cstring>
#include <utility>

extern "C" {
#include <libavutil/mathematics.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
}

#include "absl/strings/str_format.h"

namespace memd::ffmpeg {
namespace {

constexpr AVRational kNanoseconds = {1, 1000000000};

// The FFmpeg column of docs/wire-format.md's table: one row per memd format.
struct FormatRow {
  RawFormat raw;
  int av;  // AVPixelFormat or AVSampleFormat
};
constexpr FormatRow kFormats[] = {
    {RawFormat::kNv12, AV_PIX_FMT_NV12},           {RawFormat::kI420, AV_PIX_FMT_YUV420P},
    {RawFormat::kP010, AV_PIX_FMT_P010LE},         {RawFormat::kRgb, AV_PIX_FMT_RGB24},
    {RawFormat::kRgba, AV_PIX_FMT_RGBA},           {RawFormat::kBgra, AV_PIX_FMT_BGRA},
    {RawFormat::kGray8, AV_PIX_FMT_GRAY8},         {RawFormat::kYuy2, AV_PIX_FMT_YUYV422},
    {RawFormat::kNv21, AV_PIX_FMT_NV21},           {RawFormat::kI422, AV_PIX_FMT_YUV422P},
    {RawFormat::kY444, AV_PIX_FMT_YUV444P},        {RawFormat::kUyvy, AV_PIX_FMT_UYVY422},
    {RawFormat::kBgr, AV_PIX_FMT_BGR24},           {RawFormat::kRgbx, AV_PIX_FMT_RGB0},
    {RawFormat::kBgrx, AV_PIX_FMT_BGR0},           {RawFormat::kGray16, AV_PIX_FMT_GRAY16LE},
    {RawFormat::kI420p10, AV_PIX_FMT_YUV420P10LE}, {RawFormat::kS16, AV_SAMPLE_FMT_S16},
    {RawFormat::kS16Planar, AV_SAMPLE_FMT_S16P},   {RawFormat::kS32, AV_SAMPLE_FMT_S32},
    {RawFormat::kS32Planar, AV_SAMPLE_FMT_S32P},   {RawFormat::kF32, AV_SAMPLE_FMT_FLT},
    {RawFormat::kF32Planar, AV_SAMPLE_FMT_FLTP},   {RawFormat::kF64, AV_SAMPLE_FMT_DBL},
    {RawFormat::kF64Planar, AV_SAMPLE_FMT_DBLP},   {RawFormat::kU8, AV_SAMPLE_FMT_U8},
};

bool IsAudio(RawFormat f) { return static_cast<uint16_t>(f) >= 256; }

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

bool Valid(AVRational r) { return r.num > 0 && r.den > 0; }

int64_t ToNs(int64_t value, AVRational time_base) {
  if (value == AV_NOPTS_VALUE || !Valid(time_base)) return kNoTimestamp;
  return av_rescale_q(value, time_base, kNanoseconds);
}

uint8_t Byte(int value) { return static_cast<uint8_t>(value < 0 || value > 255 ? 0 : value); }

// Fills the geometry and plane fields of `raw` from `frame`.
absl::Status DescribePlanes(const AVFrame* frame, bool audio, RawFrame& raw) {
  const RawFormatInfo* info = FindRawFormat(raw.format);
  uint32_t planes = info->planar_audio ? raw.channels : info->plane_count;
  raw.buffer_count = static_cast<uint32_t>(BufferCount(frame));
  for (uint32_t p = 0; p < planes && p < kMaxRawPlanes; ++p) {
    int linesize = frame->linesize[audio ? 0 : p];
    if (frame->data[p] == nullptr || linesize < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "frame plane %u has %s; memd raw frames need every plane with top-down rows", p,
          frame->data[p] == nullptr ? "no data" : absl::StrFormat("linesize %d", linesize)));
    }
    int b = BufferOf(frame, frame->data[p]);
    if (b < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "frame plane %u is not inside any of the frame's %u buffers", p, raw.buffer_count));
    }
    raw.planes.push_back(RawPlane{static_cast<uint32_t>(b), static_cast<uint32_t>(linesize),
                                  static_cast<uint64_t>(frame->data[p] - frame->buf[b]->data)});
  }
  return absl::OkStatus();
}

}  // namespace

int ToAvFormat(RawFormat format) {
  for (const FormatRow& row : kFormats) {
    if (row.raw == format) return row.av;
  }
  return -1;  // AV_PIX_FMT_NONE and AV_SAMPLE_FMT_NONE
}

RawFormat FromAvPixelFormat(int pix_fmt) {
  for (const FormatRow& row : kFormats) {
    if (!IsAudio(row.raw) && row.av == pix_fmt) return row.raw;
  }
  return RawFormat::kUnknown;
}

RawFormat FromAvSampleFormat(int sample_fmt) {
  for (const FormatRow& row : kFormats) {
    if (IsAudio(row.raw) && row.av == sample_fmt) return row.raw;
  }
  return RawFormat::kUnknown;
}

absl::StatusOr<std::string> EncodeFrame(const AVFrame* frame, size_t max_side_data_bytes) {
  bool audio = frame->nb_samples > 0;
  RawFrame raw;
  if (audio) {
    if (frame->extended_data != frame->data) {
      return absl::InvalidArgumentError(
          absl::StrFormat("audio frame with %d channel planes; at most %d can be sent",
                          frame->ch_layout.nb_channels, AV_NUM_DATA_POINTERS));
    }
    raw.format = FromAvSampleFormat(frame->format);
    raw.samples = static_cast<uint32_t>(frame->nb_samples);
    raw.sample_rate_hz = static_cast<uint32_t>(std::max(frame->sample_rate, 0));
    raw.channels = static_cast<uint32_t>(std::max(frame->ch_layout.nb_channels, 0));
    raw.channel_mask =
        frame->ch_layout.order == AV_CHANNEL_ORDER_NATIVE ? frame->ch_layout.u.mask : 0;
  } else {
    raw.format = FromAvPixelFormat(frame->format);
    raw.width = static_cast<uint32_t>(std::max(frame->width, 0));
    raw.height = static_cast<uint32_t>(std::max(frame->height, 0));
  }
  if (raw.format == RawFormat::kUnknown) {
    const char* name = audio ? av_get_sample_fmt_name(static_cast<AVSampleFormat>(frame->format))
                             : av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format));
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s format %s (%d) has no memd raw format (docs/wire-format.md lists them)",
        audio ? "sample" : "pixel", name != nullptr ? name : "none", frame->format));
  }
  if (absl::Status s = DescribePlanes(frame, audio, raw); !s.ok()) return s;
  if (Valid(frame->sample_aspect_ratio)) {
    raw.par_num = static_cast<uint32_t>(frame->sample_aspect_ratio.num);
    raw.par_den = static_cast<uint32_t>(frame->sample_aspect_ratio.den);
  }
  raw.color = RawColor{Byte(frame->color_range), Byte(frame->colorspace), Byte(frame->color_trc),
                       Byte(frame->color_primaries), Byte(frame->chroma_location)};
  raw.pts_ns = ToNs(frame->pts, frame->time_base);
  raw.duration_ns =
      frame->pkt_duration > 0 ? ToNs(frame->pkt_duration, frame->time_base) : kNoTimestamp;
  if (frame->key_frame) raw.flags |= kRawFrameKeyframe;
  if (frame->interlaced_frame) raw.flags |= kRawFrameInterlaced;
  if (frame->interlaced_frame && frame->top_field_first) raw.flags |= kRawFrameTopFieldFirst;
  if (frame->flags & AV_FRAME_FLAG_CORRUPT) raw.flags |= kRawFrameCorrupt;

  WireFfmpegProperties props;
  std::memset(&props, 0, sizeof(props));
  props.pts = frame->pts;
  props.pkt_dts = frame->pkt_dts;
  props.pkt_duration = frame->pkt_duration;
  props.best_effort_timestamp = frame->best_effort_timestamp;
  props.time_base_num = frame->time_base.num;
  props.time_base_den = frame->time_base.den;
  props.pict_type = frame->pict_type;
  props.repeat_pict = frame->repeat_pict;
  props.flags = frame->flags;
  props.ch_order = frame->ch_layout.order;
  raw.extensions.push_back(RawExtension{
      kRawExtensionFfmpeg, std::string(reinterpret_cast<const char*>(&props), sizeof(props))});

  size_t side_bytes = 0;
  for (int i = 0; i < frame->nb_side_data; ++i) side_bytes += 8 + frame->side_data[i]->size;
  if (side_bytes > max_side_data_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frame side data takes %u bytes (%d entries); the limit is %u", side_bytes,
                        frame->nb_side_data, max_side_data_bytes));
  }
  for (int i = 0; i < frame->nb_side_data; ++i) {
    const AVFrameSideData* sd = frame->side_data[i];
    raw.extensions.push_back(
        RawExtension{kSideDataBase + static_cast<uint32_t>(sd->type),
                     std::string(reinterpret_cast<const char*>(sd->data), sd->size)});
  }
  return EncodeRawFrame(raw);
}

std::string EncodeEndOfStream() { return *EncodeRawFrame(RawFrame::EndOfStream()); }

absl::StatusOr<DecodedFrame> DecodeFrame(const std::string& metadata,
                                         const std::vector<uint64_t>& buffer_sizes) {
  absl::StatusOr<RawFrame> raw = DecodeRawFrame(metadata, buffer_sizes);
  if (!raw.ok()) return raw.status();
  DecodedFrame out;
  WireFrame& h = out.header;
  if (raw->end_of_stream()) {
    h.kind = static_cast<uint16_t>(WireKind::kEndOfStream);
    return out;
  }
  bool audio = IsAudio(raw->format);
  h.kind = static_cast<uint16_t>(audio ? WireKind::kAudio : WireKind::kVideo);
  h.format = ToAvFormat(raw->format);
  h.width = static_cast<int32_t>(raw->width);
  h.height = static_cast<int32_t>(raw->height);
  h.nb_samples = static_cast<int32_t>(raw->samples);
  h.sample_rate = static_cast<int32_t>(raw->sample_rate_hz);
  h.ch_count = static_cast<int32_t>(raw->channels);
  h.ch_mask = raw->channel_mask;
  h.ch_order = raw->channel_mask != 0 ? AV_CHANNEL_ORDER_NATIVE : AV_CHANNEL_ORDER_UNSPEC;
  h.buffer_count = raw->buffer_count;
  h.plane_count = static_cast<uint32_t>(raw->planes.size());
  for (size_t p = 0; p < raw->planes.size(); ++p) {
    h.planes[p] = WirePlane{static_cast<int32_t>(raw->planes[p].stride_bytes),
                            raw->planes[p].buffer_index, raw->planes[p].offset_bytes};
  }
  if (raw->par_num > 0 && raw->par_den > 0) {
    h.sar_num = static_cast<int32_t>(raw->par_num);
    h.sar_den = static_cast<int32_t>(raw->par_den);
  }
  h.color_range = raw->color.range;
  h.colorspace = raw->color.matrix;
  h.color_trc = raw->color.transfer;
  h.color_primaries = raw->color.primaries;
  h.chroma_location = raw->color.chroma_location;
  h.key_frame = (raw->flags & kRawFrameKeyframe) != 0;
  h.interlaced_frame = (raw->flags & kRawFrameInterlaced) != 0;
  h.top_field_first = (raw->flags & kRawFrameTopFieldFirst) != 0;
  h.flags = (raw->flags & kRawFrameCorrupt) != 0 ? AV_FRAME_FLAG_CORRUPT : 0;
  h.pict_type = h.key_frame ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  // Timestamps of a sender without FFmpeg properties: 1/framerate when the
  // rate is known (encoders such as mpeg4 refuse a 1/1000000000 time base).
  AVRational tb = kNanoseconds;
  if (raw->fps_num > 0 && raw->fps_den > 0 && raw->fps_num <= INT32_MAX &&
      raw->fps_den <= INT32_MAX) {
    tb = AVRational{static_cast<int>(raw->fps_den), static_cast<int>(raw->fps_num)};
  }
  h.time_base_num = tb.num;
  h.time_base_den = tb.den;
  h.pts =
      raw->pts_ns == kNoTimestamp ? AV_NOPTS_VALUE : av_rescale_q(raw->pts_ns, kNanoseconds, tb);
  h.pkt_duration =
      raw->duration_ns == kNoTimestamp ? 0 : av_rescale_q(raw->duration_ns, kNanoseconds, tb);
  h.pkt_dts = AV_NOPTS_VALUE;
  h.best_effort_timestamp = h.pts;
  for (RawExtension& e : raw->extensions) {
    if (e.type == kRawExtensionFfmpeg) {
      if (e.bytes.size() != sizeof(WireFfmpegProperties)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("FFmpeg properties entry of %u bytes; version 1 has %u", e.bytes.size(),
                            sizeof(WireFfmpegProperties)));
      }
      WireFfmpegProperties props;
      std::memcpy(&props, e.bytes.data(), sizeof(props));
      h.pts = props.pts;
      h.pkt_dts = props.pkt_dts;
      h.pkt_duration = props.pkt_duration;
      h.best_effort_timestamp = props.best_effort_timestamp;
      h.time_base_num = props.time_base_num;
      h.time_base_den = props.time_base_den;
      h.pict_type = props.pict_type;
      h.repeat_pict = props.repeat_pict;
      h.flags = props.flags;
      if (audio) h.ch_order = props.ch_order;
    } else if (e.type >= kSideDataBase && e.type < kSideDataBase + 0x100) {
      out.side_data.push_back({static_cast<int32_t>(e.type - kSideDataBase), std::move(e.bytes)});
    }
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
