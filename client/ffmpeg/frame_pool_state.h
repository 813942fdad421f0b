// FramePool::State: what a FramePool shares with every AVBufferRef it gave
// out or received, so a buffer freed after the FramePool still releases its
// memd reference. Private to memd::ffmpeg: frame_pool.cc keeps the pools,
// frame_alloc.cc gives decoders their buffers, frame_transfer.cc moves
// frames over channels.
//
// Which memd buffer starts at a pointer, and how many references the session
// holds, is the Client's record (Client::Held); lending is Client::Returned.
// The state keeps only what FramePool adds: the AVBufferPools, the parked
// lent buffers, and per block how many AVBuffers wrap it.
//
// Lock order: pools_mu, then tags_mu. AVBufferPool callbacks (Alloc, the
// buffers' free) take tags_mu only, so they may run under pools_mu.
#ifndef MEMD_FFMPEG_FRAME_POOL_STATE_H_
#define MEMD_FFMPEG_FRAME_POOL_STATE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

extern "C" {
#include <libavutil/buffer.h>
}

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "memd/ffmpeg.h"
#include "memd/shared/mutex.h"

namespace memd::ffmpeg {

// Lent pool buffers are checked with one daemon query (of every size) once
// this many of one size are parked: the pool then holds about (frames in
// flight + 8) buffers per size, and a yuv420p decoder, whose frames park one
// luma and two chroma buffers, pays one round trip per 4 frames.
inline constexpr size_t kParkedPerQuery = 8;

struct FramePool::State {
  explicit State(Client& c) : client(c) {}

  struct SizePool {
    AVBufferPool* pool = nullptr;
    std::vector<AVBufferRef*> parked;  // lent buffers out of circulation
    size_t query_at_parked = kParkedPerQuery;  // parked count that triggers a query
    uint64_t gets_since_query = 0;
    std::vector<BufferRef> spares;  // allocated, not yet AVBuffers (held by the session)
  };
  // What FramePool knows of one live memory block besides the Client's record.
  struct Tag {
    uint32_t buffers = 0;  // AVBuffers over this block (a pool's, received ones)
    bool pooled = false;   // one of them is an AVBufferPool entry
    bool lent = false;     // sent while pooled; not reused until others release it
  };
  // The buffers of one received frame: their references go back to the
  // daemon in one batch when the last of them is freed (one round trip per
  // frame instead of one per plane).
  struct Group {
    std::vector<uint64_t> handles;
    std::atomic<size_t> remaining{0};
  };
  // The opaque of each AVBuffer this state made.
  struct Holder {
    std::shared_ptr<State> state;
    uint64_t handle;
    std::shared_ptr<Group> group;  // null: released alone
  };

  // Wraps a memd reference this process holds as an AVBufferRef that
  // releases it when its last reference goes. With a `group`, the reference
  // joins the group's batch.
  AVBufferRef* Wrap(const BufferRef& ref, bool pooled, std::shared_ptr<Group> group = nullptr);
  // av_buffer_create's free callback of every wrapped buffer.
  static void Free(void* opaque, uint8_t* data);
  // av_buffer_pool_init2's allocator: one memd buffer of `size` bytes, from
  // the spares of a batch allocation. Runs inside av_buffer_pool_get, which
  // FramePool::Get calls with pools_mu held.
  static AVBufferRef* Alloc(void* opaque, size_t size) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Puts back into circulation the parked buffers nobody else holds now, of
  // every size in one query: a frame's planes come in two or three sizes,
  // and asking about each size on its own cost a round trip per size.
  void ReturnLent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pools_mu);
  // Frees every idle buffer; parked ones drop this process's reference.
  void Trim();

  Client& client;
  std::weak_ptr<State> self;  // set by FramePool, for Holders

  Mutex pools_mu;
  std::map<size_t, SizePool> pools ABSL_GUARDED_BY(pools_mu);

  Mutex tags_mu;
  absl::flat_hash_map<const uint8_t*, Tag> tags ABSL_GUARDED_BY(tags_mu);  // by first byte
  FramePoolStats stats ABSL_GUARDED_BY(tags_mu);
};

}  // namespace memd::ffmpeg

#endif  // MEMD_FFMPEG_FRAME_POOL_STATE_H_
