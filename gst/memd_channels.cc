#include "memd_channels.h"

extern "C" {
#include <libavutil/channel_layout.h>
}

namespace memd::gst {
namespace {

struct PositionRow {
  uint64_t av_bit;  // AV_CH_* (the wire's bit)
  GstAudioChannelPosition gst;
};
// docs/wire-format.md, "Audio channel positions". Ascending in both columns
// except where noted in ChannelMaskOf/PositionsOf (the order check).
constexpr PositionRow kPositions[] = {
    {AV_CH_FRONT_LEFT, GST_AUDIO_CHANNEL_POSITION_FRONT_LEFT},
    {AV_CH_FRONT_RIGHT, GST_AUDIO_CHANNEL_POSITION_FRONT_RIGHT},
    {AV_CH_FRONT_CENTER, GST_AUDIO_CHANNEL_POSITION_FRONT_CENTER},
    {AV_CH_LOW_FREQUENCY, GST_AUDIO_CHANNEL_POSITION_LFE1},
    {AV_CH_BACK_LEFT, GST_AUDIO_CHANNEL_POSITION_REAR_LEFT},
    {AV_CH_BACK_RIGHT, GST_AUDIO_CHANNEL_POSITION_REAR_RIGHT},
    {AV_CH_FRONT_LEFT_OF_CENTER, GST_AUDIO_CHANNEL_POSITION_FRONT_LEFT_OF_CENTER},
    {AV_CH_FRONT_RIGHT_OF_CENTER, GST_AUDIO_CHANNEL_POSITION_FRONT_RIGHT_OF_CENTER},
    {AV_CH_BACK_CENTER, GST_AUDIO_CHANNEL_POSITION_REAR_CENTER},
    {AV_CH_SIDE_LEFT, GST_AUDIO_CHANNEL_POSITION_SIDE_LEFT},
    {AV_CH_SIDE_RIGHT, GST_AUDIO_CHANNEL_POSITION_SIDE_RIGHT},
    {AV_CH_TOP_CENTER, GST_AUDIO_CHANNEL_POSITION_TOP_CENTER},
    {AV_CH_TOP_FRONT_LEFT, GST_AUDIO_CHANNEL_POSITION_TOP_FRONT_LEFT},
    {AV_CH_TOP_FRONT_CENTER, GST_AUDIO_CHANNEL_POSITION_TOP_FRONT_CENTER},
    {AV_CH_TOP_FRONT_RIGHT, GST_AUDIO_CHANNEL_POSITION_TOP_FRONT_RIGHT},
    {AV_CH_TOP_BACK_LEFT, GST_AUDIO_CHANNEL_POSITION_TOP_REAR_LEFT},
    {AV_CH_TOP_BACK_CENTER, GST_AUDIO_CHANNEL_POSITION_TOP_REAR_CENTER},
    {AV_CH_TOP_BACK_RIGHT, GST_AUDIO_CHANNEL_POSITION_TOP_REAR_RIGHT},
    {AV_CH_WIDE_LEFT, GST_AUDIO_CHANNEL_POSITION_WIDE_LEFT},
    {AV_CH_WIDE_RIGHT, GST_AUDIO_CHANNEL_POSITION_WIDE_RIGHT},
    {AV_CH_SURROUND_DIRECT_LEFT, GST_AUDIO_CHANNEL_POSITION_SURROUND_LEFT},
    {AV_CH_SURROUND_DIRECT_RIGHT, GST_AUDIO_CHANNEL_POSITION_SURROUND_RIGHT},
    {AV_CH_LOW_FREQUENCY_2, GST_AUDIO_CHANNEL_POSITION_LFE2},
    {AV_CH_TOP_SIDE_LEFT, GST_AUDIO_CHANNEL_POSITION_TOP_SIDE_LEFT},
    {AV_CH_TOP_SIDE_RIGHT, GST_AUDIO_CHANNEL_POSITION_TOP_SIDE_RIGHT},
    {AV_CH_BOTTOM_FRONT_CENTER, GST_AUDIO_CHANNEL_POSITION_BOTTOM_FRONT_CENTER},
    {AV_CH_BOTTOM_FRONT_LEFT, GST_AUDIO_CHANNEL_POSITION_BOTTOM_FRONT_LEFT},
    {AV_CH_BOTTOM_FRONT_RIGHT, GST_AUDIO_CHANNEL_POSITION_BOTTOM_FRONT_RIGHT},
};

// 0 when GStreamer's position has no WAVE bit.
uint64_t BitOf(GstAudioChannelPosition position) {
  if (position == GST_AUDIO_CHANNEL_POSITION_MONO) return AV_CH_FRONT_CENTER;  // FFmpeg's mono
  for (const PositionRow& row : kPositions) {
    if (row.gst == position) return row.av_bit;
  }
  return 0;
}

bool PositionOf(uint64_t bit, GstAudioChannelPosition* position) {
  for (const PositionRow& row : kPositions) {
    if (row.av_bit == bit) {
      *position = row.gst;
      return true;
    }
  }
  return false;
}

}  // namespace

uint64_t ChannelMaskOf(const GstAudioInfo& info) {
  if ((GST_AUDIO_INFO_FLAGS(&info) & GST_AUDIO_FLAG_UNPOSITIONED) != 0) return 0;
  const int channels = GST_AUDIO_INFO_CHANNELS(&info);
  uint64_t mask = 0, last = 0;
  for (int i = 0; i < channels; ++i) {
    uint64_t bit = BitOf(info.position[i]);
    // The buffer's order must be the mask's: each channel's bit above the last.
    if (bit == 0 || bit <= last) return 0;
    mask |= bit;
    last = bit;
  }
  return mask;
}

bool PositionsOf(uint64_t channel_mask, uint32_t channels, GstAudioChannelPosition* positions) {
  if (channel_mask == 0 || static_cast<uint32_t>(__builtin_popcountll(channel_mask)) != channels) {
    return false;
  }
  if (channels == 1 && channel_mask == AV_CH_FRONT_CENTER) {
    positions[0] = GST_AUDIO_CHANNEL_POSITION_MONO;
    return true;
  }
  uint32_t i = 0;
  for (uint64_t rest = channel_mask; rest != 0; rest &= rest - 1) {
    GstAudioChannelPosition position;
    if (!PositionOf(rest & (~rest + 1), &position)) return false;
    // GStreamer's caps order: ascending positions, as the channels arrive.
    if (i > 0 && position <= positions[i - 1]) return false;
    positions[i++] = position;
  }
  return true;
}

}  // namespace memd::gst
