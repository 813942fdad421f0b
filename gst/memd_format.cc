#include "memd_format.h"

#include "memd_channels.h"

#include <string>

namespace memd::gst {
namespace {

struct VideoRow {
  RawFormat raw;
  GstVideoFormat gst;
};
// docs/wire-format.md, GStreamer column (video).
constexpr VideoRow kVideo[] = {
    {RawFormat::kNv12, GST_VIDEO_FORMAT_NV12},
    {RawFormat::kI420, GST_VIDEO_FORMAT_I420},
    {RawFormat::kP010, GST_VIDEO_FORMAT_P010_10LE},
    {RawFormat::kRgb, GST_VIDEO_FORMAT_RGB},
    {RawFormat::kRgba, GST_VIDEO_FORMAT_RGBA},
    {RawFormat::kBgra, GST_VIDEO_FORMAT_BGRA},
    {RawFormat::kGray8, GST_VIDEO_FORMAT_GRAY8},
    {RawFormat::kYuy2, GST_VIDEO_FORMAT_YUY2},
    {RawFormat::kNv21, GST_VIDEO_FORMAT_NV21},
    {RawFormat::kI422, GST_VIDEO_FORMAT_Y42B},
    {RawFormat::kY444, GST_VIDEO_FORMAT_Y444},
    {RawFormat::kUyvy, GST_VIDEO_FORMAT_UYVY},
    {RawFormat::kBgr, GST_VIDEO_FORMAT_BGR},
    {RawFormat::kRgbx, GST_VIDEO_FORMAT_RGBx},
    {RawFormat::kBgrx, GST_VIDEO_FORMAT_BGRx},
    {RawFormat::kGray16, GST_VIDEO_FORMAT_GRAY16_LE},
    {RawFormat::kI420p10, GST_VIDEO_FORMAT_I420_10LE},
};

struct AudioRow {
  RawFormat raw;
  GstAudioFormat gst;
  GstAudioLayout layout;
};
// docs/wire-format.md, GStreamer column (audio).
constexpr AudioRow kAudio[] = {
    {RawFormat::kS16, GST_AUDIO_FORMAT_S16LE, GST_AUDIO_LAYOUT_INTERLEAVED},
    {RawFormat::kS16Planar, GST_AUDIO_FORMAT_S16LE, GST_AUDIO_LAYOUT_NON_INTERLEAVED},
    {RawFormat::kS32, GST_AUDIO_FORMAT_S32LE, GST_AUDIO_LAYOUT_INTERLEAVED},
    {RawFormat::kS32Planar, GST_AUDIO_FORMAT_S32LE, GST_AUDIO_LAYOUT_NON_INTERLEAVED},
    {RawFormat::kF32, GST_AUDIO_FORMAT_F32LE, GST_AUDIO_LAYOUT_INTERLEAVED},
    {RawFormat::kF32Planar, GST_AUDIO_FORMAT_F32LE, GST_AUDIO_LAYOUT_NON_INTERLEAVED},
    {RawFormat::kF64, GST_AUDIO_FORMAT_F64LE, GST_AUDIO_LAYOUT_INTERLEAVED},
    {RawFormat::kF64Planar, GST_AUDIO_FORMAT_F64LE, GST_AUDIO_LAYOUT_NON_INTERLEAVED},
    {RawFormat::kU8, GST_AUDIO_FORMAT_U8, GST_AUDIO_LAYOUT_INTERLEAVED},
};

// Colour: H.273 code points on the wire, GStreamer's enums in caps.
void ToRawColor(const GstVideoColorimetry& c, RawColor* out) {
  out->range = c.range == GST_VIDEO_COLOR_RANGE_16_235  ? 1
               : c.range == GST_VIDEO_COLOR_RANGE_0_255 ? 2
                                                        : 0;
  out->matrix = static_cast<uint8_t>(gst_video_color_matrix_to_iso(c.matrix));
  out->transfer = static_cast<uint8_t>(gst_video_transfer_function_to_iso(c.transfer));
  out->primaries = static_cast<uint8_t>(gst_video_color_primaries_to_iso(c.primaries));
}

bool HasColor(const RawColor& c) {
  return c.range != 0 || c.matrix != 2 || c.transfer != 2 || c.primaries != 2;
}

}  // namespace

RawFormat FromVideoFormat(GstVideoFormat format) {
  for (const VideoRow& row : kVideo) {
    if (row.gst == format) return row.raw;
  }
  return RawFormat::kUnknown;
}

RawFormat FromAudioFormat(GstAudioFormat format, GstAudioLayout layout) {
  for (const AudioRow& row : kAudio) {
    if (row.gst == format && row.layout == layout) return row.raw;
  }
  return RawFormat::kUnknown;
}

GstVideoFormat ToVideoFormat(RawFormat format) {
  for (const VideoRow& row : kVideo) {
    if (row.raw == format) return row.gst;
  }
  return GST_VIDEO_FORMAT_UNKNOWN;
}

GstAudioFormat ToAudioFormat(RawFormat format, GstAudioLayout* layout) {
  for (const AudioRow& row : kAudio) {
    if (row.raw == format) {
      *layout = row.layout;
      return row.gst;
    }
  }
  return GST_AUDIO_FORMAT_UNKNOWN;
}

bool ParseCaps(GstCaps* caps, StreamFormat* out, std::string* error) {
  GstStructure* s = gst_caps_get_structure(caps, 0);
  out->audio = gst_structure_has_name(s, "audio/x-raw");
  if (out->audio) {
    if (!gst_audio_info_from_caps(&out->audio_info, caps)) {
      *error = "caps are not valid raw audio";
      return false;
    }
    out->raw = FromAudioFormat(GST_AUDIO_INFO_FORMAT(&out->audio_info),
                               GST_AUDIO_INFO_LAYOUT(&out->audio_info));
  } else {
    if (!gst_video_info_from_caps(&out->video, caps)) {
      *error = "caps are not valid raw video";
      return false;
    }
    out->raw = FromVideoFormat(GST_VIDEO_INFO_FORMAT(&out->video));
  }
  if (out->raw == RawFormat::kUnknown) {
    gchar* text = gst_caps_to_string(caps);
    *error = std::string("memd has no raw format for caps ") + text +
             " (docs/wire-format.md lists the formats)";
    g_free(text);
    return false;
  }
  return true;
}

void DescribeStream(const StreamFormat& stream, RawFrame* frame) {
  frame->format = stream.raw;
  if (stream.audio) {
    frame->sample_rate_hz = static_cast<uint32_t>(GST_AUDIO_INFO_RATE(&stream.audio_info));
    frame->channels = static_cast<uint32_t>(GST_AUDIO_INFO_CHANNELS(&stream.audio_info));
    frame->channel_mask = ChannelMaskOf(stream.audio_info);
    return;
  }
  const GstVideoInfo& v = stream.video;
  frame->width = static_cast<uint32_t>(GST_VIDEO_INFO_WIDTH(&v));
  frame->height = static_cast<uint32_t>(GST_VIDEO_INFO_HEIGHT(&v));
  if (GST_VIDEO_INFO_FPS_N(&v) > 0 && GST_VIDEO_INFO_FPS_D(&v) > 0) {
    frame->fps_num = static_cast<uint32_t>(GST_VIDEO_INFO_FPS_N(&v));
    frame->fps_den = static_cast<uint32_t>(GST_VIDEO_INFO_FPS_D(&v));
  }
  if (GST_VIDEO_INFO_PAR_N(&v) > 0 && GST_VIDEO_INFO_PAR_D(&v) > 0) {
    frame->par_num = static_cast<uint32_t>(GST_VIDEO_INFO_PAR_N(&v));
    frame->par_den = static_cast<uint32_t>(GST_VIDEO_INFO_PAR_D(&v));
  }
  ToRawColor(v.colorimetry, &frame->color);
}

GstCaps* CapsOf(const RawFrame& frame) {
  const RawFormatInfo* info = FindRawFormat(frame.format);
  if (info == nullptr) return nullptr;
  if (info->audio) {
    GstAudioLayout layout = GST_AUDIO_LAYOUT_INTERLEAVED;
    GstAudioFormat format = ToAudioFormat(frame.format, &layout);
    GstAudioInfo audio;
    GstAudioChannelPosition positions[kMaxRawChannels];
    bool positioned = frame.channels <= kMaxRawChannels &&
                      PositionsOf(frame.channel_mask, frame.channels, positions);
    gst_audio_info_set_format(&audio, format, static_cast<gint>(frame.sample_rate_hz),
                              static_cast<gint>(frame.channels), positioned ? positions : nullptr);
    audio.layout = layout;
    return gst_audio_info_to_caps(&audio);
  }
  GstVideoInfo video;
  if (!gst_video_info_set_format(&video, ToVideoFormat(frame.format), frame.width, frame.height)) {
    return nullptr;
  }
  GST_VIDEO_INFO_FPS_N(&video) = frame.fps_den > 0 ? static_cast<gint>(frame.fps_num) : 0;
  GST_VIDEO_INFO_FPS_D(&video) = frame.fps_den > 0 ? static_cast<gint>(frame.fps_den) : 1;
  if (frame.par_num > 0 && frame.par_den > 0) {
    GST_VIDEO_INFO_PAR_N(&video) = static_cast<gint>(frame.par_num);
    GST_VIDEO_INFO_PAR_D(&video) = static_cast<gint>(frame.par_den);
  }
  if (HasColor(frame.color)) {
    GstVideoColorimetry& c = video.colorimetry;
    c.range = frame.color.range == 1   ? GST_VIDEO_COLOR_RANGE_16_235
              : frame.color.range == 2 ? GST_VIDEO_COLOR_RANGE_0_255
                                       : GST_VIDEO_COLOR_RANGE_UNKNOWN;
    c.matrix = gst_video_color_matrix_from_iso(frame.color.matrix);
    c.transfer = gst_video_transfer_function_from_iso(frame.color.transfer);
    c.primaries = gst_video_color_primaries_from_iso(frame.color.primaries);
  }
  return gst_video_info_to_caps(&video);
}

bool SameCaps(const RawFrame& a, const RawFrame& b) {
  return a.format == b.format && a.width == b.width && a.height == b.height &&
         a.fps_num == b.fps_num && a.fps_den == b.fps_den && a.par_num == b.par_num &&
         a.par_den == b.par_den && a.sample_rate_hz == b.sample_rate_hz &&
         a.channels == b.channels && a.channel_mask == b.channel_mask &&
         a.color.range == b.color.range &&
         a.color.matrix == b.color.matrix && a.color.transfer == b.color.transfer &&
         a.color.primaries == b.color.primaries;
}

GstCaps* TemplateCaps() {
  GstCaps* caps = gst_caps_new_empty();
  GValue formats = G_VALUE_INIT;
  g_value_init(&formats, GST_TYPE_LIST);
  for (const VideoRow& row : kVideo) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_static_string(&v, gst_video_format_to_string(row.gst));
    gst_value_list_append_and_take_value(&formats, &v);
  }
  GstStructure* video = gst_structure_new(
      "video/x-raw", "width", GST_TYPE_INT_RANGE, 1, static_cast<int>(kMaxRawDimension), "height",
      GST_TYPE_INT_RANGE, 1, static_cast<int>(kMaxRawDimension), "framerate",
      GST_TYPE_FRACTION_RANGE, 0, 1, G_MAXINT, 1, nullptr);
  gst_structure_take_value(video, "format", &formats);
  gst_caps_append_structure(caps, video);
  g_value_init(&formats, GST_TYPE_LIST);
  for (const AudioRow& row : kAudio) {
    if (row.layout != GST_AUDIO_LAYOUT_INTERLEAVED) continue;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_static_string(&v, gst_audio_format_to_string(row.gst));
    gst_value_list_append_and_take_value(&formats, &v);
  }
  GValue layouts = G_VALUE_INIT;
  g_value_init(&layouts, GST_TYPE_LIST);
  for (const char* name : {"interleaved", "non-interleaved"}) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_static_string(&v, name);
    gst_value_list_append_and_take_value(&layouts, &v);
  }
  GstStructure* audio = gst_structure_new(
      "audio/x-raw", "rate", GST_TYPE_INT_RANGE, 1, static_cast<int>(kMaxRawSampleRateHz),
      "channels", GST_TYPE_INT_RANGE, 1, static_cast<int>(kMaxRawChannels), nullptr);
  gst_structure_take_value(audio, "format", &formats);
  gst_structure_take_value(audio, "layout", &layouts);
  gst_caps_append_structure(caps, audio);
  return caps;
}

}  // namespace memd::gst
