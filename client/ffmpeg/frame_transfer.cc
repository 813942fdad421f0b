// FramePool's channel transfer: an AVFrame sent as handles plus its wire
// header (frame_wire.h: EncodeFrame), and received back as an AVFrame whose
// buffers hold this session's references (DecodeFrame, ApplyProperties).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "frame_pool_state.h"
#include "frame_wire.h"

namespace memd::ffmpeg {

absl::Status FramePool::Send(const std::string& channel, const AVFrame* frame,
                             int64_t timeout_ms) {
  return SendFrame(channel, frame, timeout_ms, /*post=*/false, PostWake::kNow);
}

absl::Status FramePool::Post(const std::string& channel, const AVFrame* frame,
                             int64_t timeout_ms, PostWake wake) {
  return SendFrame(channel, frame, timeout_ms, /*post=*/true, wake);
}

absl::Status FramePool::SendFrame(const std::string& channel, const AVFrame* frame,
                                  int64_t timeout_ms, bool post, PostWake wake) {
  State& s = *state_;
  std::vector<uint64_t> handles;
  for (int b = 0; b < AV_NUM_DATA_POINTERS && frame->buf[b] != nullptr; ++b) {
    absl::StatusOr<BufferRef> held = s.client.Held(frame->buf[b]->data);
    if (!held.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "buffer %d of the frame is not memd memory of pool '%s' (allocate frames with "
          "FramePool::AllocVideo or decode with FramePool::Install)",
          b, s.client.pool().name));
    }
    handles.push_back(held->handle);
  }
  if (handles.empty()) {
    return absl::InvalidArgumentError("the frame has no buffers (not reference-counted)");
  }
  absl::StatusOr<std::string> metadata = EncodeFrame(frame, kMaxSideDataBytes);
  if (!metadata.ok()) return metadata.status();
  {
    // Marked before the send: once sent, the receiver may read at any time.
    MutexLock lock(&s.tags_mu);
    for (int b = 0; b < static_cast<int>(handles.size()); ++b) {
      auto it = s.tags.find(frame->buf[b]->data);
      if (it == s.tags.end()) continue;  // not a buffer of this FramePool
      State::Tag& tag = it->second;
      if (tag.pooled && !tag.lent) {
        tag.lent = true;
        ++s.stats.lent_buffers;
      }
    }
  }
  absl::Status sent =
      post ? s.client.Post(channel, handles, *metadata, timeout_ms, 0, SendMode::kShare, wake)
           : s.client.Send(channel, handles, *metadata, timeout_ms, 0, SendMode::kShare);
  if (sent.ok()) {
    MutexLock lock(&s.tags_mu);
    ++s.stats.frames_sent;
  }
  return sent;
}

absl::Status FramePool::SendEndOfStream(const std::string& channel, int64_t timeout_ms) {
  return state_->client.Send(channel, {}, EncodeEndOfStream(), timeout_ms);
}

absl::StatusOr<FramePtr> FramePool::Receive(const std::string& channel, int64_t timeout_ms) {
  State& s = *state_;
  absl::StatusOr<ChannelMessage> message = s.client.Receive(channel, timeout_ms);
  if (!message.ok()) return message.status();
  // Every buffer of the message is this session's now: wrap them first, so
  // any failure below releases them with the frame.
  std::vector<uint64_t> handles, sizes;
  for (const BufferRef& ref : message->buffers) {
    handles.push_back(ref.handle);
    sizes.push_back(ref.size_bytes);
  }
  FramePtr frame(av_frame_alloc());
  if (frame == nullptr || handles.size() > AV_NUM_DATA_POINTERS) {
    if (!handles.empty()) s.client.ReleaseRefs(handles).IgnoreError();
    return absl::InvalidArgumentError(absl::StrFormat(
        "message on channel '%s' carries %u buffers; a frame has at most %d", channel,
        handles.size(), AV_NUM_DATA_POINTERS));
  }
  auto group = std::make_shared<State::Group>();
  for (size_t i = 0; i < message->buffers.size(); ++i) {
    frame->buf[i] = s.Wrap(message->buffers[i], false, group);
    if (frame->buf[i] == nullptr) {
      for (size_t j = i + 1; j < message->buffers.size(); ++j) {
        s.client.ReleaseRef(message->buffers[j].handle).IgnoreError();
      }
      return absl::ResourceExhaustedError("out of memory for the frame's AVBufferRefs");
    }
  }
  absl::StatusOr<DecodedFrame> decoded = DecodeFrame(message->metadata, sizes);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("message on channel '%s': %s", channel,
                                                      decoded.status().message()));
  }
  const WireFrame& h = decoded->header;
  if (h.kind == static_cast<uint16_t>(WireKind::kEndOfStream)) return FramePtr();
  for (uint32_t p = 0; p < h.plane_count; ++p) {
    frame->data[p] = frame->buf[h.planes[p].buffer]->data + h.planes[p].offset_bytes;
    frame->linesize[p] = h.kind == static_cast<uint16_t>(WireKind::kAudio) ? (p == 0 ? h.planes[0].linesize : 0)
                                                                              : h.planes[p].linesize;
  }
  frame->extended_data = frame->data;
  ApplyProperties(h, frame.get());
  for (const DecodedFrame::SideData& sd : decoded->side_data) {
    AVFrameSideData* entry = av_frame_new_side_data(
        frame.get(), static_cast<AVFrameSideDataType>(sd.type), sd.bytes.size());
    if (entry == nullptr) return absl::ResourceExhaustedError("out of memory for frame side data");
    std::copy(sd.bytes.begin(), sd.bytes.end(), entry->data);
  }
  MutexLock lock(&s.tags_mu);
  ++s.stats.frames_received;
  return frame;
}

}  // namespace memd::ffmpeg
