// memd FFmpeg integration (memd::ffmpeg): libavcodec frames in memd pool
// memory, handed from process to process over memd channels by reference.
//
// A FramePool belongs to one memd::Client (one pool mapping). It gives out
// AVBufferRefs whose bytes are memd buffers: one AVBufferPool per buffer size
// (av_buffer_pool_init2 with a memd allocator), so a freed buffer goes back
// to its AVBufferPool and the next frame reuses it without a daemon call.
// Install() makes it a decoder's get_buffer2, so libavcodec decodes straight
// into pool memory.
//
// Send() puts an AVFrame on a channel: the channel gets one new memd
// reference per AVBufferRef (this process keeps its own, as av_frame_ref
// would), and the metadata carries format, geometry, linesizes, timestamps,
// colour properties and side data. Receive() rebuilds an AVFrame in the other
// process whose AVBufferRefs hold memd references and release them on unref.
// Nothing is copied. A buffer this pool lent is not given out again until
// every other process released it: the pool asks the daemon in batches (one
// query per few frames) which lent buffers came back.
//
// Ownership: REQUIRES: the Client outlives every frame and buffer the pool
// gave out or received (buffers hold a share of the pool's state, so the
// FramePool itself may go first). Thread-safe: every method may be called
// from any thread, and frames may be unreferenced from any thread.
//
// Example (decoder side):
//   memd::ffmpeg::FramePool frames(*client);
//   frames.Install(codec_context);           // decode into pool memory
//   ... avcodec_receive_frame(codec_context, frame) ...
//   frames.Send("raw", frame, /*timeout_ms=*/5000);
//   av_frame_unref(frame);
#ifndef MEMD_FFMPEG_FFMPEG_H_
#define MEMD_FFMPEG_FFMPEG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
}

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "memd/client.h"

namespace memd::ffmpeg {

struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;

// Counters of one FramePool (for tests, benchmarks and logs).
struct FramePoolStats {
  uint64_t allocated_buffers = 0;  // memd buffers allocated (daemon calls)
  uint64_t buffer_gets = 0;        // AVBufferRefs handed out
  uint64_t lent_buffers = 0;       // pool buffers other processes still hold
  uint64_t queries = 0;            // daemon queries for lent buffers
  uint64_t frames_sent = 0, frames_received = 0;
};

class FramePool {
 public:
  // Largest side data (all entries of one frame together) Send() carries.
  static constexpr size_t kMaxSideDataBytes = 3072;

  explicit FramePool(Client& client);
  ~FramePool();  // buffers still in use stay valid; the rest are released
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  // A buffer of `size_bytes` in pool memory (64-byte aligned), or nullptr
  // with last_error() when the daemon refused the allocation.
  AVBufferRef* Get(size_t size_bytes);

  // Gives `frame` (format, width and height set; data unset) buffers in pool
  // memory, one per plane, linesizes multiples of 64. Like av_frame_get_buffer.
  absl::Status AllocVideo(AVFrame* frame);

  // Makes this pool `codec`'s get_buffer2 (codec->opaque = this): video
  // frames are decoded into pool memory; other frames (audio, hardware) use
  // avcodec_default_get_buffer2. REQUIRES: the pool outlives the context.
  void Install(AVCodecContext* codec);
  static int GetBuffer2(AVCodecContext* codec, AVFrame* frame, int flags);

  // Sends `frame` on `channel` (every AVBufferRef must be memd memory of this
  // pool's Client: from Get, AllocVideo, GetBuffer2 or Receive). Waits up to
  // `timeout_ms` for room. The frame stays valid here. INVALID_ARGUMENT for
  // a buffer that is not memd memory, more than 8 buffers, or side data
  // above kMaxSideDataBytes; the channel's errors otherwise.
  absl::Status Send(const std::string& channel, const AVFrame* frame, int64_t timeout_ms);
  // Send without waiting for the daemon's answer (Client::Post): a failure
  // shows at the next Post, Send or SendEndOfStream of this pool's Client,
  // or at Client::CollectPosted. Errors found here (the frame's buffers,
  // its side data) come back at once and nothing is sent.
  absl::Status Post(const std::string& channel, const AVFrame* frame, int64_t timeout_ms,
                    PostWake wake = PostWake::kNow);
  // A message that tells the receiver the stream ended.
  absl::Status SendEndOfStream(const std::string& channel, int64_t timeout_ms);

  // The next frame of `channel`, waiting up to `timeout_ms`; nullptr (OK) at
  // end of stream. DEADLINE_EXCEEDED when nothing came in time;
  // INVALID_ARGUMENT (naming the field) for a message that is not a frame.
  absl::StatusOr<FramePtr> Receive(const std::string& channel, int64_t timeout_ms);

  // Returns idle buffers to the daemon (buffers in use return when freed).
  void Trim();

  FramePoolStats stats() const;
  Client& client() const;

  struct State;  // shared with the buffers it gave out

 private:
  // Send (post false) or Post.
  absl::Status SendFrame(const std::string& channel, const AVFrame* frame, int64_t timeout_ms,
                         bool post, PostWake wake);

  std::shared_ptr<State> state_;
};

// XXH3-64 (xxHash) of a frame's visible bytes laid end to end (each plane's
// rows without the linesize padding; audio: each channel plane's samples),
// equal for equal pictures whatever the buffers' layout.
uint64_t FrameChecksum(const AVFrame* frame);

}  // namespace memd::ffmpeg

#endif  // MEMD_FFMPEG_FFMPEG_H_
