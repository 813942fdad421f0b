// Pool: one shared-memory buffer pool as the daemon sees it: the allocator,
// the handle table, reference counts, per-session attribution and counters.
//
// Ownership: owned by the PoolRegistry for the daemon's lifetime. The memory
// at `base` (the daemon's mapping of the segment) is owned by a Segment that
// outlives the pool. Thread-safe: every public method may be called from any
// gRPC thread; one mutex serializes them (the daemon is the only allocator,
// so no lock ever lives in client-writable memory).
#ifndef MEMD_SERVER_POOL_POOL_H_
#define MEMD_SERVER_POOL_POOL_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "pool/handle_table.h"
#include "pool/tlsf_allocator.h"
#include "shm/state_table.h"

namespace memd {

// Who may use a pool: its segment's owner, group and mode. The kernel
// enforces them on the shared-memory object; the daemon applies the same rule
// to every attach, so a peer that could not map the pool cannot use it.
struct PoolAccess {
  uid_t owner_uid = 0;
  gid_t group_gid = 0;
  mode_t mode = 0600;
};

// Per-pool quotas; 0 means no limit. Bytes are block capacities; a buffer
// counts once per session that references it.
struct PoolQuotas {
  uint64_t session_bytes = 0;    // held by one session
  uint64_t session_buffers = 0;  // distinct buffers one session references
  uint64_t uid_bytes = 0;        // held by all sessions of one uid together
  uint64_t uid_buffers = 0;      // referenced by all sessions of one uid together
};

struct PoolConfig {
  std::string name;
  uint64_t size_bytes = 0;
  uint64_t alignment_bytes = 64;             // power of two, 8..1 MiB
  uint64_t max_alloc_bytes = INT_MAX;        // libavutil's default max_alloc_size
  PoolAccess access;
  PoolQuotas quotas;
  std::optional<bool> prefault;  // reserve pages at start; unset: the daemon's --no-reserve
};

// The references one session holds in one pool. Owned by the session; every
// field is read and written only under the owning Pool's mutex.
struct SessionRefs {
  absl::flat_hash_map<uint64_t, uint32_t> counts;  // handle -> references held
  uint64_t held_bytes = 0;                         // capacity of distinct handles held
  // Whose quota the references count against; nullopt: no uid (TCP, tests,
  // the unclaimed references of a restart), so only session quotas apply.
  std::optional<uid_t> uid;
};

struct BufferInfo {
  uint64_t handle = 0;
  uint64_t offset_bytes = 0;
  uint64_t size_bytes = 0;
  uint64_t capacity_bytes = 0;
};

// What one session holds in one pool.
struct SessionUsage {
  uint64_t held_bytes = 0;
  uint64_t held_buffers = 0;
};

// One live buffer as admin listings show it.
struct BufferListing {
  BufferInfo info;
  uint32_t references = 0;
  std::vector<uint64_t> holder_session_ids;  // ascending
};

// Why an allocation or realloc was refused (metrics label values).
enum class FailReason { kMaxAlloc, kPoolSize, kNoSpace, kQuota, kStateTable };
inline constexpr int kFailReasons = 5;
const char* FailReasonName(FailReason reason);  // "max_alloc", "no_space", ...

struct PoolStats {
  uint64_t size_bytes = 0, used_bytes = 0, free_bytes = 0, largest_free_bytes = 0;
  uint64_t live_buffers = 0, sessions = 0, alignment_bytes = 0, max_alloc_bytes = 0;
  uint64_t allocs = 0, frees = 0, failed_allocs = 0, peak_used_bytes = 0;
  // References re-adopted after a daemon restart that no session has
  // reclaimed yet; released when the grace period ends.
  uint64_t unclaimed_references = 0;
  // failed_allocs split by FailReason (indexed by its value).
  std::array<uint64_t, kFailReasons> failed_by_reason{};
};

// A reclaimed reference: the buffer as it is now and how many references the
// session got back.
struct Reclaimed {
  BufferInfo info;
  uint32_t references = 0;
};

class Pool {
 public:
  // REQUIRES: base points to config.size_bytes writable bytes that outlive
  // the pool; config was validated (see ValidatePoolConfig). With a `state`
  // table, every change is persisted there before it is answered.
  Pool(PoolConfig config, uint32_t index, uint8_t* base, std::string shm_name,
       std::unique_ptr<StateTable> state = nullptr);

  // Rebuilds a pool a killed daemon left: every live buffer of `state` keeps
  // its handle, block and content; its references are unclaimed until a
  // session reclaims them. DATA_LOSS naming the slot when the table is
  // inconsistent (overlapping or out-of-range blocks).
  static absl::StatusOr<std::unique_ptr<Pool>> Adopt(PoolConfig config, uint32_t index,
                                                     uint8_t* base, std::string shm_name,
                                                     std::unique_ptr<StateTable> state);

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Allocates a block of max(size, 1) bytes held once by `refs`; zeroes the
  // first size bytes when asked (even when the block is reused).
  absl::StatusOr<BufferInfo> Allocate(SessionRefs& refs, uint64_t size_bytes, bool zero);

  // Resizes a buffer only `refs` holds, once. Grows in place when the right
  // neighbour is free, otherwise moves the content; on failure the old buffer
  // is untouched. The handle stays the same.
  absl::StatusOr<BufferInfo> Realloc(SessionRefs& refs, uint64_t handle, uint64_t size_bytes);

  // Adds one reference held by `refs` to a live buffer of this pool.
  absl::StatusOr<BufferInfo> Retain(SessionRefs& refs, uint64_t handle);

  // Drops one reference held by `refs`; returns true when the block was freed.
  absl::StatusOr<bool> Release(SessionRefs& refs, uint64_t handle);

  // `count` allocations of `size_bytes` under one lock, all or nothing.
  absl::StatusOr<std::vector<BufferInfo>> AllocateMany(SessionRefs& refs, uint64_t size_bytes,
                                                       uint32_t count, bool zero);

  // Drops one reference per entry of `handles` (repeats allowed), all or
  // nothing. Returns how many blocks were freed.
  absl::StatusOr<uint32_t> ReleaseMany(SessionRefs& refs, const std::vector<uint64_t>& handles);

  // How a Transfer treats the giver's references.
  enum class TransferMode {
    kMove,   // `from` gives up one reference per handle
    kShare,  // `from` keeps its references; `to` gets new ones
  };

  // Moves one reference per entry of `handles` from `from` to `to` (a channel
  // taking a sent buffer, a receiver taking it from the channel), all or
  // nothing; the buffers always have a holder. With kShare `to` gets new
  // references instead. Returns what `to` got.
  absl::StatusOr<std::vector<BufferInfo>> Transfer(SessionRefs& from, SessionRefs& to,
                                                   const std::vector<uint64_t>& handles,
                                                   const char* op,
                                                   TransferMode mode = TransferMode::kMove);

  // Reference counts of `handles` now: all holders together (0 for handles
  // that are not live) and `refs`'s own.
  struct References {
    uint32_t total = 0;
    uint32_t held = 0;
  };
  std::vector<References> Query(const SessionRefs& refs, const std::vector<uint64_t>& handles) const;

  // OK when `refs` holds one reference per entry of `handles` (repeats count).
  absl::Status CheckHeld(const SessionRefs& refs, const std::vector<uint64_t>& handles,
                         const char* op);

  // Drops every reference of `refs` (session end). Returns how many.
  uint64_t ReleaseAll(SessionRefs& refs);

  // Moves up to `count` unclaimed references of `handle` to `refs` (a client
  // back after a daemon restart). FAILED_PRECONDITION when none is unclaimed.
  absl::StatusOr<Reclaimed> Reclaim(SessionRefs& refs, uint64_t handle, uint32_t count);

  // Drops every unclaimed reference (end of the grace period). Returns how many.
  uint64_t ReleaseUnclaimed();

  // Unlinks the state table (clean shutdown: nothing is left to adopt).
  void RemoveState();
  // Gives the state table to the user the daemon drops to (--user).
  absl::Status ChownState(uid_t uid, gid_t gid);

  void SessionOpened();
  void SessionClosed();

  PoolStats Stats() const;
  absl::Status CheckInvariants() const;

  SessionUsage Usage(const SessionRefs& refs) const;

  // Live buffers with their holders among `sessions` (id, refs), at most
  // `limit`; only those `only_session` holds when it is not 0. `truncated`
  // reports whether the limit cut the list.
  std::vector<BufferListing> ListBuffers(
      const std::vector<std::pair<uint64_t, const SessionRefs*>>& sessions, uint64_t only_session,
      size_t limit, bool* truncated) const;

  // REQUIRES: max_alloc_bytes >= 1. Returns the previous value.
  uint64_t SetMaxAlloc(uint64_t max_alloc_bytes);

  const std::string& name() const { return config_.name; }
  const std::string& shm_name() const { return shm_name_; }
  uint32_t index() const { return index_; }
  // Random id of the segment (0 without a state table); a client compares it
  // after a reconnect to know its mapping is still the pool's memory.
  uint64_t segment_id() const { return segment_id_.load(std::memory_order_acquire); }
  // Whether the pool has its memory: false while a restarted daemon waits for
  // a client to hand its predecessor's memory back (startup/pool_memory.h);
  // sessions may attach only once it is true.
  bool memory_ready() const { return base_.load(std::memory_order_acquire) != nullptr; }
  // The pool's memory arrived (a client handed it back). REQUIRES: it is the
  // memory the state table names.
  void SetMemory(uint8_t* base);
  // The predecessor's memory is given up: the pool continues in new memory
  // under a new segment id, recorded in the state table. REQUIRES: no live
  // buffer (they would point into the old memory). (pool_memory.cc)
  absl::Status RenewMemory(uint8_t* base, const SegmentIdentity& memory, uint64_t segment_id);
  // Live buffers now (count).
  uint64_t live_buffers() const;
  // The memory object the state table records for the pool.
  absl::StatusOr<SegmentIdentity> recorded_memory() const;
  // Whether every page of the segment was reserved at start.
  bool prefaulted() const { return config_.prefault.value_or(false); }
  uint64_t size_bytes() const { return config_.size_bytes; }
  uint64_t alignment_bytes() const { return config_.alignment_bytes; }
  uint64_t max_alloc_bytes() const;
  PoolQuotas quotas() const;
  // A configuration reload: new quotas apply to later requests; what is held
  // already stays (it may be above the new quota until released).
  void SetQuotas(const PoolQuotas& quotas);
  const PoolAccess& access() const { return config_.access; }
  // What all sessions of `uid` hold together.
  SessionUsage UidUsage(uid_t uid) const;

 private:
  // `reason` says which limit a refusal hit.
  absl::Status CheckRequestSize(uint64_t size_bytes, const char* op, FailReason* reason) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<HandleTable::Entry*> FindHeld(const SessionRefs& refs, uint64_t handle,
                                               const char* op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BufferInfo Describe(uint64_t handle, const HandleTable::Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeBlock(uint64_t handle, HandleTable::Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteUsed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteFailure(FailReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED naming the quota when `refs` taking `bytes` more
  // (and `buffers` more distinct buffers) would exceed one.
  absl::Status CheckQuotas(const SessionRefs& refs, uint64_t bytes, uint64_t buffers,
                           const char* op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records that `refs` holds `bytes` more (or fewer) and `buffers` more
  // distinct buffers, for its session and its uid.
  void Account(SessionRefs& refs, int64_t bytes, int64_t buffers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the slot of `handle` to the state table, if there is one.
  void Persist(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t DropAll(SessionRefs& refs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckHeldLocked(const SessionRefs& refs, const std::vector<uint64_t>& handles,
                               const char* op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops one held reference; true when the block was freed.
  bool ReleaseHeld(SessionRefs& refs, uint64_t handle, HandleTable::Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PoolConfig config_;
  const uint32_t index_;
  // The daemon's mapping; null while the memory is pending. Changes only
  // while no session is attached (memory_ready() gates attach).
  std::atomic<uint8_t*> base_;
  const std::string shm_name_;
  const std::unique_ptr<StateTable> state_;  // nullptr: not persisted (tests)
  std::atomic<uint64_t> segment_id_;

  mutable Mutex mu_;
  uint64_t max_alloc_bytes_ ABSL_GUARDED_BY(mu_);
  PoolQuotas quotas_ ABSL_GUARDED_BY(mu_);
  TlsfAllocator allocator_ ABSL_GUARDED_BY(mu_);
  HandleTable handles_ ABSL_GUARDED_BY(mu_);
  SessionRefs unclaimed_ ABSL_GUARDED_BY(mu_);  // adopted references nobody reclaimed yet
  absl::flat_hash_map<uid_t, SessionUsage> uid_usage_ ABSL_GUARDED_BY(mu_);  // for uid quotas
  uint64_t sessions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t allocs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t frees_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kFailReasons> failed_ ABSL_GUARDED_BY(mu_){};  // by FailReason
  uint64_t peak_used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Checks a pool configuration: name, alignment (power of two in 8..1 MiB),
// size (at least one alignment unit), max_alloc (at least 1).
absl::Status ValidatePoolConfig(const PoolConfig& config);

}  // namespace memd

#endif  // MEMD_SERVER_POOL_POOL_H_
