// ChunkSource: the arena's one port to the daemon (grant, register, report,
// query, release). The arena keeps allocator state only; everything it asks
// of the daemon goes through this interface, implemented over the session
// link (LinkChunkSource, link_chunk_source.*) and, in the arena's unit test,
// by a fake. An implementation records what it is granted in the session's
// Holdings (chunks as Kind::kChunk, registrations as live ranges), as the
// link does for every answer. Private to libmemd.
//
// Threads: called by the arena under its mutex, from any client thread and
// the client's housekeeping thread; an implementation must not call back
// into the arena.
#ifndef MEMD_CLIENT_CHUNK_SOURCE_H_
#define MEMD_CLIENT_CHUNK_SOURCE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "memd/v1/memory.pb.h"

namespace memd {

// What the arena did (ArenaCounters on the wire).
struct ArenaStats {
  uint64_t reserved_bytes = 0;  // chunks held
  uint64_t in_use_bytes = 0;    // capacity of live blocks
  uint64_t local_allocs = 0;    // allocations served without the daemon
};

class ChunkSource {
 public:
  struct Chunk {
    uint64_t handle = 0;
    uint64_t offset_bytes = 0;    // from the start of the pool's memory
    uint64_t capacity_bytes = 0;  // usable bytes (>= asked)
  };
  virtual ~ChunkSource() = default;

  // A buffer of at least `bytes` the session holds once, recorded in its
  // holdings as a chunk. RESOURCE_EXHAUSTED: the pool or a quota has no room.
  virtual absl::StatusOr<Chunk> Grant(uint64_t bytes) = 0;
  // Registers a block of a chunk under a fresh handle the session holds
  // (recorded in its holdings as a live range); the handle.
  virtual absl::StatusOr<uint64_t> Register(const v1::ArenaRegisterRequest& range) = 0;
  // Tells the daemon which chunks are `idle` (pool pressure may take them)
  // and which it uses again (`use`), with the arena's counters. Returns the
  // chunks of `use` the daemon took back meanwhile (no longer held).
  virtual absl::StatusOr<std::vector<uint64_t>> Report(const std::vector<uint64_t>& idle,
                                                       const std::vector<uint64_t>& use,
                                                       const ArenaStats& counters) = 0;
  // References anyone holds to each handle (0: nobody), in order.
  virtual absl::StatusOr<std::vector<uint32_t>> Query(const std::vector<uint64_t>& handles) = 0;
  // Gives up one reference this session holds, now (while the daemon is
  // away: noted locally, the daemon drops it).
  virtual void Release(uint64_t handle) = 0;
  // Gives it up with the next request, or within a tick.
  virtual void ReleaseLater(uint64_t handle) = 0;
};

}  // namespace memd

#endif  // MEMD_CLIENT_CHUNK_SOURCE_H_
