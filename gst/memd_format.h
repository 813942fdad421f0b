// The GStreamer column of docs/wire-format.md's format table: GstVideoFormat
// and GstAudioFormat (+ layout) <-> memd::RawFormat, and caps <-> the parts
// of a memd::RawFrame that caps describe. Private to the memd plugin.
//
// Thread-safety: pure functions; safe from any streaming thread.
#ifndef MEMD_GST_MEMD_FORMAT_H_
#define MEMD_GST_MEMD_FORMAT_H_

#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <string>

#include "memd/raw_frame.h"

namespace memd::gst {

// What memdsink learnt from its caps: the format and the default layout.
struct StreamFormat {
  bool audio = false;
  GstVideoInfo video;       // valid when !audio
  GstAudioInfo audio_info;  // valid when audio
  RawFormat raw = RawFormat::kUnknown;
};

RawFormat FromVideoFormat(GstVideoFormat format);
RawFormat FromAudioFormat(GstAudioFormat format, GstAudioLayout layout);
GstVideoFormat ToVideoFormat(RawFormat format);
// GST_AUDIO_FORMAT_UNKNOWN when `format` is not audio.
GstAudioFormat ToAudioFormat(RawFormat format, GstAudioLayout* layout);

// Parses `caps` (fixed video/x-raw or audio/x-raw). FALSE with `error` set
// to a sentence naming the format when memd has no raw format for it.
bool ParseCaps(GstCaps* caps, StreamFormat* out, std::string* error);

// The caps-level fields of a frame (format, size, rate, channels, frame
// rate, aspect ratio, colour) from a parsed stream.
void DescribeStream(const StreamFormat& stream, RawFrame* frame);

// Caps for a received frame (memdsrc learns them from the stream).
GstCaps* CapsOf(const RawFrame& frame);
// Whether two frames need the same caps.
bool SameCaps(const RawFrame& a, const RawFrame& b);

// The template caps of both elements: every format of the table.
GstCaps* TemplateCaps();

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_FORMAT_H_
