// Pool: one shared-memory buffer pool as the daemon sees it: the allocator,
// the handle table (a buffer's total references), the holder ledger (who
// holds them, and quotas) and counters.
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
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "pool/handle_table.h"
#include "pool/holder_ledger.h"
#include "pool/pool_config.h"
#include "pool/tlsf_allocator.h"
#include "shm/state_table.h"

namespace memd {

// AdminService's name for a session's holder id (SessionRegistry::Record::refs
// points at its session's); new code says HolderId.
using SessionRefs = HolderId;

struct BufferInfo {
  uint64_t handle = 0;
  uint64_t offset_bytes = 0;
  uint64_t size_bytes = 0;
  uint64_t capacity_bytes = 0;
};

// One live buffer as admin listings show it.
struct BufferListing {
  BufferInfo info;
  uint32_t references = 0;
  std::vector<uint64_t> holder_session_ids;  // ascending
};

// What a session's client reports of its arena (ArenaCounters); the daemon
// only shows it.
struct ArenaUsage {
  uint64_t reserved_bytes = 0;
  uint64_t in_use_bytes = 0;
  uint64_t local_allocs = 0;
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
  // Idle arena chunks freed because an allocation found no room.
  uint64_t arena_chunks_taken = 0;
  // Buffer records of a previous daemon's state table that adoption could not
  // back (overlapping, misaligned, past the end) and dropped (Pool::Adopt).
  uint64_t quarantined_slots = 0;
  // Session arenas, summed over the open sessions as their clients reported.
  uint64_t arena_reserved_bytes = 0, arena_in_use_bytes = 0, arena_local_allocs = 0;
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
  // session reclaims them. A live record the table cannot back (a block
  // misaligned, past the pool's end, or overlapping another) is quarantined
  // (Quarantine): logged, counted, its handle gone; the rest is adopted.
  // DATA_LOSS naming the slot only when the table itself is corrupt (a
  // record no daemon writes: a bad generation or state, a live slot without
  // references or with more slack than a slot holds). (pool_adopt.cc)
  static absl::StatusOr<std::unique_ptr<Pool>> Adopt(PoolConfig config, uint32_t index,
                                                     uint8_t* base, std::string shm_name,
                                                     std::unique_ptr<StateTable> state);

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // --- Holders (the ledger; see holder_ledger.h). pool_holders.cc ---

  // A session's holder: what it holds counts against the session quotas and
  // those of `uid` (nullopt: none). It counts in Stats().sessions until closed.
  // `ticket` (AttachResponse.ticket; "" in tests without restarts) keys what
  // it holds in the state table's holdings file, so that after a restart
  // only a session proving that ticket reclaims it.
  HolderId OpenSession(uint64_t session_id, std::optional<uid_t> uid, std::string ticket = {});
  // Drops every reference and charge of `holder` and forgets it (a session
  // that ended, a channel removed, a message nobody will receive). Returns
  // how many references it dropped.
  uint64_t CloseHolder(HolderId holder);
  // Whose quotas `holder` counts against. REQUIRES: an open holder.
  Causer causer(HolderId holder) const;

  // --- Buffers. pool.cc ---

  // Allocates a block of max(size, 1) bytes held once by `holder`; zeroes the
  // first size bytes when asked (even when the block is reused).
  absl::StatusOr<BufferInfo> Allocate(HolderId holder, uint64_t size_bytes, bool zero);

  // Resizes a buffer only `holder` holds, once. Grows in place when the right
  // neighbour is free, otherwise moves the content; on failure the old buffer
  // is untouched. The handle stays the same.
  absl::StatusOr<BufferInfo> Realloc(HolderId holder, uint64_t handle, uint64_t size_bytes);

  // Adds one reference held by `holder` to a live buffer of this pool.
  absl::StatusOr<BufferInfo> Retain(HolderId holder, uint64_t handle);

  // Drops one reference held by `holder`; returns true when the block was freed.
  absl::StatusOr<bool> Release(HolderId holder, uint64_t handle);

  // `count` allocations of `size_bytes` under one lock, all or nothing.
  absl::StatusOr<std::vector<BufferInfo>> AllocateMany(HolderId holder, uint64_t size_bytes,
                                                       uint32_t count, bool zero);

  // Drops one reference per entry of `handles` (repeats allowed), all or
  // nothing. Returns how many blocks were freed.
  absl::StatusOr<uint32_t> ReleaseMany(HolderId holder, const std::vector<uint64_t>& handles);

  // Drops every reference of `holder`, which stays open. Returns how many.
  uint64_t ReleaseAll(HolderId holder);

  // --- References between holders. pool_holders.cc ---

  // How a Transfer treats the giver's references.
  enum class TransferMode {
    kMove,   // `from` gives up one reference per handle
    kShare,  // `from` keeps its references; `to` gets new ones
  };

  // Moves one reference per entry of `handles` from `from` to `to`, all or
  // nothing; the buffers always have a holder. With kShare `to` gets new
  // references instead. What `to` gains counts against its quotas
  // (RESOURCE_EXHAUSTED, nothing changes). Returns what `to` got.
  absl::StatusOr<std::vector<BufferInfo>> Transfer(HolderId from, HolderId to,
                                                   const std::vector<uint64_t>& handles,
                                                   const char* op,
                                                   TransferMode mode = TransferMode::kMove);

  // Reference counts of `handles` now: all holders together (0 for handles
  // that are not live) and `holder`'s own; and their sizes.
  struct References {
    uint32_t total = 0;
    uint32_t held = 0;
    uint64_t size_bytes = 0;  // the buffer's size (0: not live)
  };
  std::vector<References> Query(HolderId holder, const std::vector<uint64_t>& handles) const;

  // OK when `holder` holds one reference per entry of `handles` (repeats count).
  absl::Status CheckHeld(HolderId holder, const std::vector<uint64_t>& handles, const char* op);

  // Moves up to `count` references of `handle` that the previous session of
  // the reclaiming process held to `holder` (quotas do not refuse references
  // that existed before). `from`: the holder a session of the same process
  // left when its stream broke (OrphanRegistry); when kNone or gone, the
  // references a restart re-adopted for the session of `ticket` (its
  // previous ticket: ReclaimRequest.ticket). FAILED_PRECONDITION when that
  // holder has none of `handle`: a handle alone never proves a reference.
  absl::StatusOr<Reclaimed> Reclaim(HolderId holder, uint64_t handle, uint32_t count,
                                    HolderId from = HolderId::kNone,
                                    const std::string& ticket = {});

  // Drops every unclaimed reference (end of the grace period). Returns how many.
  uint64_t ReleaseUnclaimed();

  // --- Arenas (a session's chunks, sub-allocated by its client). pool_arena.cc ---

  // Gives [offset, offset + capacity) of the chunk `chunk` (a buffer
  // `holder` alone holds, once) a buffer of its own: a fresh handle whose
  // block is a sub-block of the chunk's (tlsf_allocator.h), size
  // `size_bytes`, held once by `holder`; an ordinary buffer from then on
  // (others may retain it; it counts against quotas like any buffer). The
  // chunk's block stays allocated until the chunk and every registered range
  // in it were released. Nothing changes on failure.
  absl::StatusOr<BufferInfo> ArenaRegister(HolderId holder, uint64_t chunk, uint64_t offset_bytes,
                                           uint64_t size_bytes, uint64_t capacity_bytes);
  // Marks chunks `holder` holds as idle: an allocation of any session that
  // finds no room frees them first (if `holder` is still their only holder).
  // Handles `holder` does not hold are ignored.
  void ArenaIdle(HolderId holder, const std::vector<uint64_t>& chunks);
  // Records what `holder`'s client reported of its arena (forgotten with the
  // holder); ArenaUsageOf reads it back, Stats sums it.
  void SetArenaUsage(HolderId holder, const ArenaUsage& usage);
  ArenaUsage ArenaUsageOf(HolderId holder) const;
  // Takes idle chunks back into use; returns those already freed (taken).
  std::vector<uint64_t> ArenaUse(HolderId holder, const std::vector<uint64_t>& chunks);

  // --- Channels (server/channel/). pool_holders.cc ---

  // A holder for a channel that `creator`'s session creates: it holds no
  // reference and counts as one channel against the per-session and per-uid
  // channel limits (RESOURCE_EXHAUSTED naming the limit). `op` names it.
  absl::StatusOr<HolderId> OpenChannel(HolderId creator, const std::string& op);

  // A channel message from `sender`: a new holder of the sender's session and
  // uid takes one reference per entry of `handles` (moved, or new ones with
  // kShare) and is charged `message_bytes` against the per-uid message
  // limit. All or nothing: a refusal (not held, quota, limit) changes nothing.
  absl::StatusOr<HolderId> OpenMessage(HolderId sender, const std::vector<uint64_t>& handles,
                                       TransferMode mode, uint64_t message_bytes,
                                       const std::string& op);

  // Moves a message's references to `to`, one per entry of `handles` (the
  // message's, in order), and closes the message. What `to` gains counts
  // against its quotas unless `give_back` (a parked send's references going
  // back to their sender, which held them before). On failure nothing changes.
  absl::StatusOr<std::vector<BufferInfo>> Deliver(HolderId message, HolderId to,
                                                  const std::vector<uint64_t>& handles,
                                                  const std::string& op, bool give_back = false);

  // A parked send or receive of `session`'s holder: counts against the
  // per-session parked limit (RESOURCE_EXHAUSTED naming it) until Unpark.
  absl::Status Park(HolderId session, const std::string& op);
  void Unpark(HolderId session);

  // --- State, stats and listings. pool_adopt.cc, pool_stats.cc ---

  // Unlinks the state table (clean shutdown: nothing is left to adopt).
  void RemoveState();
  // Gives the state table to the user the daemon drops to (--user).
  absl::Status ChownState(uid_t uid, gid_t gid);

  PoolStats Stats() const;
  absl::Status CheckInvariants() const;

  // What `holder` holds and was charged.
  SessionUsage Usage(HolderId holder) const;
  // What all holders of `uid` hold and were charged, together.
  SessionUsage UidUsage(uid_t uid) const;
  // Everything `session_id` caused that still exists (see HolderLedger::SessionTotal).
  SessionUsage SessionTotal(uint64_t session_id) const;
  // handle -> references `holder` holds.
  absl::flat_hash_map<uint64_t, uint32_t> Holdings(HolderId holder) const;

  // Live buffers with their holders among `sessions` (session id, its
  // holder), at most `limit`; only those `only_session` holds when it is not
  // 0. `truncated` reports whether the limit cut the list.
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
  // The daemon's mapping of the pool's memory; null while it is pending. The
  // bridge (bridge/) reads and writes bridged messages' bytes through it.
  uint8_t* memory_base() const { return base_.load(std::memory_order_acquire); }
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
  // Marked for bridging (PoolConfig::bridge).
  bool bridge() const { return config_.bridge; }

 private:
  // `reason` says which limit a refusal hit.
  absl::Status CheckRequestSize(uint64_t size_bytes, const char* op, FailReason* reason) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<HandleTable::Entry*> FindHeld(HolderId holder, uint64_t handle, const char* op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BufferInfo Describe(uint64_t handle, const HandleTable::Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Capacity(const HandleTable::Entry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return allocator_.capacity(entry.block);
  }
  // The size the client asked for (the slot keeps its slack to the capacity).
  uint64_t SizeOf(const HandleTable::Entry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Capacity(entry) - entry.slack_bytes;
  }
  // The opening checks of Allocate and AllocateMany: request size, then
  // CheckGrowthAndReserve for `count` buffers of size_bytes rounded up.
  absl::Status CheckNewBuffers(HolderId holder, uint64_t size_bytes, uint32_t count,
                               const char* op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checks before `count` new handles of `capacity_bytes` in all go to
  // `holder` (CheckNewBuffers, ArenaRegister): the holder's and its uid's
  // quotas (HolderLedger::CheckGrowth, naming `op`), then room for them in
  // the state table. Notes a failure.
  absl::Status CheckGrowthAndReserve(HolderId holder, uint64_t capacity_bytes, uint32_t count,
                                     const char* op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a new buffer in `block`, held once by `holder`. REQUIRES:
  // size_bytes <= capacity, within HandleTable::kMaxSlackBytes of it.
  BufferInfo AddBuffer(HolderId holder, TlsfAllocator::BlockId block, uint64_t size_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeBlock(uint64_t handle, HandleTable::Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // allocator_.Allocate, and when nothing fits, again after freeing the idle
  // arena chunks of every session (pool pressure; pool_arena.cc).
  std::optional<TlsfAllocator::BlockId> AllocateBlock(uint64_t size_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees every idle arena chunk whose session is still its only holder;
  // returns how many.
  uint64_t TakeIdleChunksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteUsed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteFailure(FailReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the slot of `handle` to the state table, if there is one.
  void Persist(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adoption dropped these live records (slot, why): persists them free,
  // counts them (PoolStats::quarantined_slots) and logs one line naming the
  // pool, the slots and why. (pool_adopt.cc)
  void Quarantine(const std::vector<std::pair<uint32_t, std::string>>& slots)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops every reference `holder` holds; returns how many.
  uint64_t DropAll(HolderId holder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records in the holdings file what a keyed holder holds now (the ledger's
  // keyed-change hook).
  void PersistHolding(std::string_view ticket, uint64_t handle, uint32_t refs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The unclaimed holder re-adopted for the session of `ticket`, opened on
  // first use (Adopt).
  HolderId UnclaimedOf(const std::string& ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when `holder` holds one reference per entry of `handles`; `drops`
  // when the operation releases them (the message says so), else it moves them.
  absl::Status CheckHeldLocked(HolderId holder, const std::vector<uint64_t>& handles,
                               const char* op, bool drops = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `count` references `holder` holds; true when the block was freed.
  bool DropHeld(HolderId holder, uint64_t handle, HandleTable::Entry& entry, uint32_t count = 1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<BufferInfo>> TransferLocked(HolderId from, HolderId to,
                                                         const std::vector<uint64_t>& handles,
                                                         const char* op, TransferMode mode,
                                                         bool check_quotas)
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
  TlsfAllocator allocator_ ABSL_GUARDED_BY(mu_);
  HandleTable handles_ ABSL_GUARDED_BY(mu_);
  HolderLedger ledger_ ABSL_GUARDED_BY(mu_);  // who holds what; quotas
  // Adopted references nobody reclaimed yet (holders in ledger_): those
  // whose holder the predecessor recorded, by that session's ticket, and
  // those it did not (channel messages; a crash between two writes).
  const HolderId unclaimed_;
  absl::flat_hash_map<std::string, HolderId> unclaimed_by_ticket_ ABSL_GUARDED_BY(mu_);
  // The predecessor recorded no holders (an older build): any session may
  // reclaim from unclaimed_, as that build allowed.
  bool reclaim_unproven_ ABSL_GUARDED_BY(mu_) = false;
  bool holdings_failed_ ABSL_GUARDED_BY(mu_) = false;  // logged once
  uint64_t allocs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t frees_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kFailReasons> failed_ ABSL_GUARDED_BY(mu_){};  // by FailReason
  uint64_t peak_used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Idle arena chunks (ArenaIdle) -> the session holder that idled them.
  // Stale entries (freed, closed) go at the next pressure or CloseHolder.
  absl::flat_hash_map<uint64_t, HolderId> idle_chunks_ ABSL_GUARDED_BY(mu_);
  uint64_t arena_taken_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t quarantined_slots_ ABSL_GUARDED_BY(mu_) = 0;  // at adoption (Quarantine)
  absl::flat_hash_map<HolderId, ArenaUsage> arena_usage_ ABSL_GUARDED_BY(mu_);  // idle chunks freed under pressure
};

}  // namespace memd

#endif  // MEMD_SERVER_POOL_POOL_H_
