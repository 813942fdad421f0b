// Arena: a session's local allocator for small allocations (at most the
// threshold, ConnectOptions::arena_threshold_bytes), so memd_malloc and
// memd_free of small blocks cost no daemon round trip. Private to libmemd.
//
// It keeps allocator state only: size classes, chunks and the slabs carved
// into them, free lists, the page map. What the session holds (its chunks,
// and every block that has a handle, with its state) is the session's
// Holdings; everything asked of the daemon goes through one port, the
// ChunkSource (chunk_source.h). The arena calls down into both and nothing
// calls up into it: its housekeeping runs on the client's housekeeping
// thread (Tick), which also takes the Holdings' events.
//
// Memory: the arena asks for *chunks* (buffers of 1..4 MiB its session holds
// once, so they are reclaimed after a daemon restart and released when the
// process dies). A chunk is carved into *slabs* of one size class each
// (classes are multiples of the pool alignment); a block is one slot of a
// slab. Every byte of metadata is in this process's heap, never in the
// shared segment.
//
// Handles on demand: a block has no handle until Handle() (memd_handle, a
// channel send: Client::Held). Then the daemon registers the range under a
// fresh handle the session holds (a live range in the Holdings). Freeing a
// registered block releases that reference; the slot is *parked* (not
// reused) until the daemon says nobody holds the handle any more (Query, at
// the tick or when a class runs out of blocks), so a handle of a freed block
// is NOT_FOUND however often the memory is reused. A moving send parks the
// block's slot in the Holdings when it succeeds; the arena frees the slot
// for this process at its next tick (or before it unparks anything).
//
// Idle chunks: a chunk whose every block is back in the free lists is idle:
// its slabs are dissolved and the daemon is told (Report idle), so pool
// pressure can take it back. The arena asks for it again (`use`) before
// carving it anew; after kReturnTicks of idleness it is released.
//
// Threads: Allocate/Free run on per-thread caches without a lock
// (arena_cache.cc); refills and flushes take one class's mutex, carving and
// chunks the arena's mutex. Lock order: mu_ → a class's mutex; the port
// and the Holdings (leaves for the arena) may be called under mu_.
// Thread-safe.
#ifndef MEMD_CLIENT_ARENA_H_
#define MEMD_CLIENT_ARENA_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "memd/client.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.pb.h"
#include "chunk_source.h"
#include "holdings.h"

namespace memd {

// The page the arena carves slabs and large blocks at (arena.cc,
// arena_large.cc), and rounding up to it or to an alignment.
namespace arena_layout {
inline constexpr uint64_t kPage = 4096;
constexpr uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }
}  // namespace arena_layout

class Arena;
class Holdings;
struct ArenaThreadCache;

// The session's arena of `client` (null: arenas off); client.cc.
Arena* ArenaOf(const Client& client);

// A channel send of blocks (the C API's memd_channel_send): the handles in
// message order, 0 for an arena block that has none yet and is registered
// by the send itself (the next of `ranges`: ChannelSendRequest.register_first).
struct ArenaSend {
  std::vector<uint64_t> handles;
  std::vector<v1::ArenaRegisterRequest> ranges;
};

// Sends `send` to `channel` as Client::Send does (moving), in one round trip
// with its registrations; on success the Holdings park the blocks' slots
// (client.cc). REQUIRES: ArenaOf(client) is not null when `send.ranges` is
// not empty.
absl::Status SendRegistering(Client& client, const std::string& channel, const ArenaSend& send,
                             std::string_view metadata, int64_t timeout_ms);

// The process's live arenas (arena_cache.cc): an id for a new one; forget it.
uint64_t RegisterArena(Arena* arena);
void UnregisterArena(uint64_t id);

class Arena {
 public:
  // Largest threshold (bytes): four blocks of the largest class fill a slab
  // of at most 1 MiB, a quarter of the largest chunk.
  static constexpr uint64_t kMaxThresholdBytes = 256 * 1024;
  static constexpr uint64_t kDefaultThresholdBytes = 64 * 1024;
  // Large blocks (arena_large.cc): above the threshold and up to this size,
  // a block has a chunk of its own, kept after free for the next block it
  // fits: at most kLargeCacheChunks, each for kLargeCacheTicks (200 ms).
  static constexpr uint64_t kMaxLargeBytes = 32 << 20;
  static constexpr size_t kLargeCacheChunks = 4;
  static constexpr uint32_t kLargeCacheTicks = 8;
  static constexpr int kLargeClass = -1;  // Slab::cls of a large block
  // How often the client's housekeeping thread calls Tick.
  static constexpr absl::Duration kTickPeriod = absl::Milliseconds(25);

  // The pool the arena carves: the process's mapping and the pool's alignment.
  struct Pool {
    uint8_t* base = nullptr;
    uint64_t bytes = 0;
    uint64_t alignment_bytes = 0;  // a power of two <= 4096
  };
  // REQUIRES: 0 < threshold <= kMaxThresholdBytes; `source` and `holdings`
  // (the session's) outlive the arena.
  Arena(ChunkSource& source, Holdings& holdings, Pool pool, uint64_t threshold_bytes);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  uint64_t threshold_bytes() const { return threshold_; }

  // A block of max(size, 1) bytes, or nullptr when the arena does not serve
  // it (above kMaxLargeBytes, or no chunk could be had: the caller takes the
  // daemon path, which gives the daemon's error). Not zeroed.
  void* Allocate(size_t size);

  // Frees an arena block. False (nothing done) when `ptr` is not the start of
  // a live arena block: the caller tries its other records.
  bool Free(void* ptr);

  // A new size for the live block at `ptr` when it stays in the block's class
  // (realloc in place); false otherwise. REQUIRES: Find(ptr) is a block.
  bool ResizeInPlace(void* ptr, size_t size);

  // The block that starts at `ptr`: nullopt when `ptr` is not in the arena
  // at all; NOT_FOUND for an interior pointer or a free slot.
  struct Block {
    uint64_t offset_bytes = 0;
    uint64_t size_bytes = 0;      // as asked
    uint64_t capacity_bytes = 0;  // the class size
    uint64_t handle = 0;          // 0: not registered
  };
  std::optional<absl::StatusOr<Block>> Find(const void* ptr) const;

  // The handle of `block` (found by Find), registering it with the daemon
  // first if it has none (one round trip). NOT_FOUND when its reference is
  // no longer this session's.
  absl::StatusOr<BufferRef> Handle(const Block& block);

  // Adds `block` (found by Find) to `send`: its handle, or, when it has none
  // yet, 0 and the registration the send carries (no round trip of its own;
  // `register_now`: registered first, for a post, whose answer comes after
  // the caller went on). A block sent with a handle is parked by the send's
  // answer (Holdings::Apply). Two threads sending one block that has no
  // handle yet at the same time: the second send fails (the range is
  // registered already) and changes nothing.
  absl::Status AddToSend(const Block& block, ArenaSend* send, bool register_now);

  // Takes the Holdings' events now (after a send that registered blocks:
  // the sender's next memd_free of one of them is refused at once, not
  // after the tick).
  void TakeEvents();

  // Grants the first chunk now (memd_init: so the first small allocation
  // does not pay the round trip). Errors are ignored: a later allocation
  // asks again.
  void Prepare();

  // The housekeeping tick (every 25 ms, the client's housekeeping thread):
  // chunks the Holdings say are gone (a restart that did not grant them
  // back, pool pressure) are forgotten, slots sent away are freed for this
  // process, parked blocks nobody holds any more go back to their class,
  // empty chunks go idle, long-idle chunks are released, and changed
  // counters are reported. Skipped while another thread holds the arena.
  void Tick();

  ArenaStats Stats() const;

  // --- For the thread caches (arena_cache.cc). ---
  struct Slab;
  struct Chunk;
  uint64_t id() const { return id_; }
  int ClassOf(size_t size) const { return class_of_[(size + alignment_ - 1) >> align_log2_]; }
  int classes() const { return static_cast<int>(class_bytes_.size()); }
  uint32_t class_bytes(int cls) const { return class_bytes_[cls]; }
  // Moves up to `want` free blocks of class `cls` into `out`; carves a new
  // slab (asking for a chunk if needed) when the class has none. Returns how
  // many (0: out of memory).
  size_t Refill(int cls, uint64_t* out, size_t want);
  // Returns `n` blocks of class `cls` to the class's free list; chunks that
  // became empty go idle. REQUIRES: mu_ not held.
  void Flush(int cls, const uint64_t* items, size_t n);
  // Flush without the idling: the chunks that became empty go to `emptied`.
  void FlushItems(int cls, const uint64_t* items, size_t n, std::vector<Chunk*>* emptied);
  // The slab at pool offset `offset` (nullptr: not arena memory).
  Slab* SlabAt(uint64_t offset) const;
  uint8_t* base() const { return base_; }
  uint64_t pool_bytes() const { return pool_bytes_; }
  // Per-thread counters (the cache registers itself while bound).
  void AddCache(ArenaThreadCache* cache);
  void RemoveCache(ArenaThreadCache* cache);

 private:
  // Takes the Holdings' events: forgets the chunks gone, and frees for this
  // process the slots a send gave away.
  void AbsorbEventsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The block at `offset` is no longer this process's (sent away, or its
  // reference is gone): its slot stops being live; it stays parked.
  void SlotGoneLocked(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One more block of `slab` has a range slot in the Holdings.
  void CountRegisteredLocked(Slab& slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Carves a slab for `cls` into a chunk with room (granting one if none).
  // Returns false when no chunk could be had.
  bool CarveLocked(int cls) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A slab record to fill: a dissolved chunk's spare, else a new one.
  Slab* NewSlabLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A chunk of at least `bytes` from the daemon, or an idle one taken back.
  Chunk* NewChunkLocked(uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Dissolves an empty chunk's slabs (their blocks leave the free lists) and
  // tells the daemon it is idle.
  void IdleLocked(Chunk& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DissolveLocked(Chunk& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives parked blocks nobody holds back to their classes; true when any.
  bool UnparkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportLocked(const std::vector<uint64_t>& idle, const std::vector<uint64_t>& use,
                    std::vector<uint64_t>* taken) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Chunk* ChunkOfLocked(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Large blocks (arena_large.cc): the pool offset of a block of `size`
  // bytes, from the cache (`cached`) or a new chunk; 0 when the daemon
  // grants none. A freed one's chunk goes to the cache; the tick releases
  // those unused for kLargeCacheTicks.
  uint64_t TakeLargeLocked(size_t size, bool* cached) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CacheLargeLocked(Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLargeLocked(Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TickLargeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetPages(uint64_t offset, uint64_t bytes, Slab* slab);

  ChunkSource& source_;
  Holdings& holdings_;
  const uint64_t id_;  // process-unique, so thread caches tell arenas apart
  const uint64_t threshold_;
  const uint64_t alignment_;
  const int align_log2_;
  uint8_t* const base_;
  const uint64_t pool_bytes_;
  std::vector<uint32_t> class_bytes_;  // class -> block bytes
  std::vector<uint8_t> class_of_;      // ceil(size / alignment) -> class
  // Pool offset / 4 KiB -> slab (an anonymous mapping: untouched pages cost nothing).
  std::atomic<Slab*>* pages_ = nullptr;
  uint64_t page_count_ = 0;

  struct Central {
    Mutex mu;
    std::vector<uint64_t> free ABSL_GUARDED_BY(mu);  // block offsets
  };
  std::unique_ptr<Central[]> central_;

  mutable Mutex mu_;
  std::vector<std::unique_ptr<Chunk>> chunks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Slab>> slabs_ ABSL_GUARDED_BY(mu_);  // every slab ever made
  std::vector<Slab*> spare_slabs_ ABSL_GUARDED_BY(mu_);             // of dissolved chunks
  uint64_t next_chunk_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<Chunk*> large_cache_ ABSL_GUARDED_BY(mu_);  // freed large blocks' chunks, oldest first
  ArenaStats reported_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> reserved_bytes_{0};  // bytes of chunks_

  mutable Mutex caches_mu_;
  std::vector<ArenaThreadCache*> caches_ ABSL_GUARDED_BY(caches_mu_);
  // Counters of caches gone, less the blocks sent away (SlotGoneLocked).
  ArenaStats exited_ ABSL_GUARDED_BY(caches_mu_);
};

// One size class's run of blocks inside a chunk. Owned by the Arena (kept
// for reuse when its chunk is dissolved, so a stale pointer never dangles).
struct Arena::Slab {
  uint64_t start = 0;        // pool offset of block 0 (a multiple of 4 KiB)
  uint64_t bytes = 0;        // multiple of 4 KiB
  uint32_t block_bytes = 0;  // the class size
  uint32_t blocks = 0;
  int cls = 0;  // kLargeClass: a large block's slab (one block, the whole chunk)
  Chunk* chunk = nullptr;
  // Per block: size asked + 1 while live, 0 while free. Written by the
  // thread that allocates or frees the block.
  std::vector<uint32_t> sizes;
  // Blocks with a range slot in the Holdings (live, sending or parked): a
  // hint that lets Free and Find skip the Holdings' lookup when 0.
  std::atomic<uint32_t> registered{0};
};

// A chunk: a buffer the session holds once, carved into slabs.
struct Arena::Chunk {
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t carve = 0;                  // next pool offset to carve a slab at
  std::atomic<int64_t> outside{0};     // blocks not in the free lists (live, cached, parked)
  uint32_t registered = 0;             // blocks with a range slot; guarded by mu_
  std::vector<Slab*> slabs;            // guarded by mu_
  bool idle = false;                   // told the daemon; not carved until used again
  uint32_t idle_ticks = 0;
  bool large = false;                  // one large block's own chunk (arena_large.cc)
  uint32_t cached_ticks = 0;           // ticks in the large cache; guarded by mu_
};

}  // namespace memd

#endif  // MEMD_CLIENT_ARENA_H_
