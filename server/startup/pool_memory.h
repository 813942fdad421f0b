// PoolMemory: which memory object backs each pool, how clients get it, and
// how a restarted daemon gets its predecessor's back.
//
// A pool's memory is a sealed memfd (shm/segment.h). It has no name, so a
// daemon that restarts (killed, stopped, or replaced by a newer build) cannot
// reopen it: the clients that map it hand it back. A re-adopted pool with live
// buffers is *pending* until the first client of the previous daemon offers
// its descriptor (fd_handoff kReturnPool), which is accepted only when it is
// the very object the pool's private state table records (Segment::
// FromDescriptor). Sessions cannot attach to a pending pool (they are told to
// retry: UNAVAILABLE). When no client hands it back within the reclaim grace
// (every process that held its buffers is gone) the pool continues in new
// memory under a new segment id (Renew).
//
// Ownership: owned by the Daemon; outlives the sessions and the listener.
// Thread-safe: one mutex; descriptors are used under it, so a pool's memory
// never goes while being passed.
#ifndef MEMD_SERVER_STARTUP_POOL_MEMORY_H_
#define MEMD_SERVER_STARTUP_POOL_MEMORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "memd/shared/mutex.h"
#include "memd/shared/unique_fd.h"
#include "pool/pool.h"
#include "shm/segment.h"

namespace memd {

class PoolMemory {
 public:
  // Called with a pool and its memfd whenever the pool gets memory (Add with
  // a segment, an accepted Offer, Renew), under the lock; the Daemon keeps it
  // in systemd's file-descriptor store (startup/systemd.h). Set before Add.
  using MemoryHook = std::function<void(const Pool& pool, int fd)>;
  void SetMemoryHook(MemoryHook hook) { hook_ = std::move(hook); }

  // Adds pool `pool` (index = its position) with its memory, or null when
  // it is pending. `reserve`: whether new memory for it reserves its pages.
  void Add(Pool* pool, std::unique_ptr<Segment> segment, bool reserve);

  // Calls fn(fd, size_bytes) with the memory of pool `index` under the lock.
  // UNAVAILABLE while the pool is pending, NOT_FOUND for an unknown index.
  absl::Status WithDescriptor(uint32_t index, const std::function<void(int, uint64_t)>& fn) const;

  // A client's offer of the memory it kept across a restart. OK when the
  // pool is pending and `fd` is its memory (the pool then serves again), or
  // when the pool already has exactly this memory; FAILED_PRECONDITION when
  // the pool is another segment now; PERMISSION_DENIED when `fd` is not the
  // recorded object.
  absl::Status Offer(uint32_t index, uint64_t segment_id, UniqueFd fd);

  // Gives up waiting for a pending pool: it continues in new memory under a
  // new segment id. No-op for a pool that has its memory.
  absl::Status Renew(uint32_t index);

  // Renews every pending pool (end of the reclaim grace). Returns how many.
  int RenewPending();

  bool pending(uint32_t index) const;

 private:
  struct Slot {
    Pool* pool = nullptr;
    std::unique_ptr<Segment> segment;  // null while pending
    bool reserve = true;
  };
  absl::Status RenewLocked(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  MemoryHook hook_;  // set before the first Add, then only read
};

// A random non-zero segment id.
uint64_t NewSegmentId();

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_POOL_MEMORY_H_
