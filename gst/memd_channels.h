// Audio channel positions between GStreamer and the memd raw-frame format:
// GstAudioInfo's per-channel positions <-> RawFrame::channel_mask, whose bits
// are WAVE / FFmpeg AV_CH_* positions (docs/wire-format.md). Private to the
// memd plugin; the mapping table lives once, in memd_channels.cc.
//
// Order: a channel_mask says the channels are in ascending bit order; GStreamer
// caps with a channel-mask say they are in ascending GstAudioChannelPosition
// order. The two orders agree for the common layouts (mono, stereo, 2.1, quad,
// 5.0, 5.1, 7.1, back or side); a layout whose orders differ is sent and
// received unpositioned (mask 0) rather than with channels swapped.
//
// Thread-safety: pure functions; safe from any streaming thread.
#ifndef MEMD_GST_MEMD_CHANNELS_H_
#define MEMD_GST_MEMD_CHANNELS_H_

#include <gst/audio/audio.h>

#include <cstdint>

namespace memd::gst {

// The channel_mask for a stream's positions; 0 (unknown) when the stream is
// unpositioned, a position has no WAVE bit, or the orders differ.
uint64_t ChannelMaskOf(const GstAudioInfo& info);

// Fills `positions` (`channels` entries) from a channel_mask. False (leave
// GStreamer's default positions) when the mask is 0, does not have exactly
// `channels` bits, has a bit GStreamer cannot name, or the orders differ.
bool PositionsOf(uint64_t channel_mask, uint32_t channels, GstAudioChannelPosition* positions);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_CHANNELS_H_
