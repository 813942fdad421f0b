// HolderLedger: who holds which buffer of one pool, and what each session and
// uid causes the daemon to hold there, checked against the pool's quotas and
// the daemon's bounds in one place.
//
// A holder is anything that holds references or stands for a bounded
// resource: a client session, a channel message (queued, or held by its
// parked send), a channel itself, the references a restart re-adopted that no
// session reclaimed yet. Every holder has a Causer, the session and uid whose
// quotas it counts against; a channel message keeps its sender's causer until
// a receiver takes its references (they are then the receiver's). The ledger
// keeps each holder's usage and the totals per session and per uid, so a
// quota check reads one number, and "who holds this buffer" is answered here.
//
// Ownership: one per Pool, which owns it and calls it only under the pool's
// mutex (lock order: see docs/architecture.md, "Locks"). Not thread-safe by
// itself. Sessions and channels name their holders by HolderId and never
// point into the ledger.
//
// Storage (row H of docs/PERFORMANCE.md: 12 bytes a buffer, not a hash-map
// entry): a buffer's first holder and its count sit in a record per
// handle-table slot (SlotHolder, holder_ledger_slots.cc); only further
// holders of the same buffer get an entry in their own map. Listing what one
// holder holds (Holdings, TakeAll) walks the slot records when it holds any
// there: O(slots) for a closing session, never on an allocation's path.
#ifndef MEMD_SERVER_POOL_HOLDER_LEDGER_H_
#define MEMD_SERVER_POOL_HOLDER_LEDGER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "pool/pool_config.h"

namespace memd {

// A holder's id in its pool's ledger; never reused within a pool. kNone is
// no holder.
enum class HolderId : uint64_t { kNone = 0 };

enum class HolderKind {
  kSession,    // a client session: the per-session quotas apply to what it holds
  kMessage,    // a channel message, queued or held by its parked send
  kChannel,    // a channel: holds no reference, counts as one channel of its creator
  kUnclaimed,  // references re-adopted after a restart that no session reclaimed yet
};

// Whose quotas a holder counts against.
struct Causer {
  uint64_t session_id = 0;   // 0: no session (unclaimed references)
  std::optional<uid_t> uid;  // nullopt: no uid quota applies (unclaimed, tests)
};

// What a holder holds, or a session or a uid holds and has caused, together.
struct SessionUsage {
  uint64_t held_bytes = 0;     // capacity of the distinct buffers held, counted per holder
  uint64_t held_buffers = 0;   // distinct buffers held, counted per holder
  uint64_t message_bytes = 0;  // channel messages: metadata + a fixed charge per message
  uint64_t channels = 0;       // channels created that still exist
  uint64_t parked = 0;         // parked channel sends and receives
};

// Bounds on what one client can make a pool hold besides buffer bytes (issue
// 13: every resource a client causes is bounded). Not configurable: the
// defaults are far above what a media pipeline uses (a few channels of 16
// messages with a 280-byte header each, one parked request per thread).
struct LedgerLimits {
  uint64_t session_channels = 256;              // channels one session created that exist
  uint64_t uid_channels = 1024;                 // the same for all sessions of one uid
  uint64_t session_parked = 1024;               // parked sends and receives of one session
  uint64_t uid_message_bytes = uint64_t{4} << 20;  // queued message charge of one uid
};

class HolderLedger {
 public:
  HolderLedger(std::string pool_name, PoolQuotas quotas, LedgerLimits limits = {});

  HolderLedger(const HolderLedger&) = delete;
  HolderLedger& operator=(const HolderLedger&) = delete;

  // `key` (a session's ticket) names the holder across daemon restarts: what
  // a keyed holder holds is reported to the keyed-change hook, so it can be
  // persisted and proven after a restart. REQUIRES: keys of open holders
  // are distinct ("" is no key).
  HolderId Open(HolderKind kind, Causer causer, std::string key = {});
  // Drops what `id` was charged (message bytes, a channel, parked requests)
  // and forgets it. REQUIRES: it holds no reference (see TakeAll).
  void Close(HolderId id);

  bool Contains(HolderId id) const { return holders_.contains(id); }
  // REQUIRES for these: Contains(id).
  HolderKind kind(HolderId id) const;
  const Causer& causer(HolderId id) const;
  const std::string& key(HolderId id) const;
  // References `id` holds to `handle`; 0 when none.
  uint32_t Held(HolderId id, uint64_t handle) const;
  // handle -> references, for every buffer `id` holds (a copy).
  absl::flat_hash_map<uint64_t, uint32_t> Holdings(HolderId id) const;
  // References `id` holds, all buffers together; 0 when it is not open.
  uint64_t References(HolderId id) const;
  SessionUsage Usage(HolderId id) const;
  // What all holders of `uid` hold and were charged, together.
  SessionUsage UidUsage(uid_t uid) const;
  // What all holders caused by `session_id` hold and were charged (its own
  // references, its channel messages, the channels it created, its parked
  // requests); what outlives the session stays counted here until it goes.
  SessionUsage SessionTotal(uint64_t session_id) const;
  // References per handle, all holders together (the handle table's
  // counts must agree: Pool::CheckInvariants).
  absl::flat_hash_map<uint64_t, uint64_t> ReferencesByHandle() const;
  // Open kSession holders (count).
  uint64_t sessions() const { return sessions_; }

  // Verifies the compact records against the maps and the counters: every
  // slot record names an open holder that has no map entry for that buffer,
  // each holder's counts of records, buffers and references match. INTERNAL
  // naming the first violation. (Pool::CheckInvariants adds the handle table.)
  absl::Status CheckInvariants() const;

  const PoolQuotas& quotas() const { return quotas_; }
  // New quotas apply to later checks; what is held already stays.
  void set_quotas(const PoolQuotas& quotas) { quotas_ = quotas; }
  const LedgerLimits& limits() const { return limits_; }

  // One planned change of references: `refs` more (fewer when negative)
  // references to `handle`, a block of `capacity_bytes`, for `holder`.
  struct Change {
    HolderId holder;
    uint64_t handle;
    uint64_t capacity_bytes;
    int64_t refs;
  };
  // RESOURCE_EXHAUSTED naming the quota and the usage when applying
  // `changes` would take a session or a uid above one of its quotas. Only
  // what grows is checked: a change that lowers usage or keeps it (a moving
  // send between two holders of one uid) is never refused. `op` names the
  // operation ("allocation", "channel send").
  absl::Status Check(absl::Span<const Change> changes, const char* op) const;
  // REQUIRES: every negative change is held.
  void Apply(absl::Span<const Change> changes);

  // Whether `id` may hold `bytes` and `buffers` more (new buffers, before
  // their handles exist; a buffer that grows): as Check.
  absl::Status CheckGrowth(HolderId id, int64_t bytes, int64_t buffers, const char* op) const;
  // A buffer `id` holds grew (or shrank) by `delta_bytes` (realloc).
  void Resize(HolderId id, int64_t delta_bytes);

  // Told of each change of what a keyed holder holds: its key, the handle
  // and the references it holds now (0: none). Called under the pool's
  // mutex, after the ledger changed (the Pool persists it: HoldingsFile).
  using KeyedChange = std::function<void(std::string_view key, uint64_t handle, uint32_t refs)>;
  void set_on_keyed_change(KeyedChange hook) { on_keyed_change_ = std::move(hook); }

  // Drops every reference of `id` from the ledger and returns them
  // (handle -> count); the caller drops them from the handle table.
  absl::flat_hash_map<uint64_t, uint32_t> TakeAll(HolderId id);

  // Charges `id` (and its session and uid) message bytes, a channel or
  // parked requests, after checking the bounds (RESOURCE_EXHAUSTED naming
  // the limit and the usage). `held_*` must be 0: references go by Apply.
  absl::Status Charge(HolderId id, const SessionUsage& charge, const char* op);
  // Gives back what Charge took. REQUIRES: it was charged.
  void Uncharge(HolderId id, const SessionUsage& charge);

 private:
  struct Holder {
    HolderKind kind;
    Causer causer;
    std::string key;  // "" for holders that do not outlive the daemon
    // handle -> references held, for buffers whose slot record names another
    // holder (or that have no record: a slot beyond the records)
    absl::flat_hash_map<uint64_t, uint32_t> counts;
    SessionUsage usage;
    uint32_t index = 0;        // its number in slot records; reused after Close
    uint64_t in_slots = 0;     // buffers it holds through slot records
    uint64_t references = 0;   // references it holds, all buffers together
  };
  // The first holder of the buffer whose handle-table slot is the record's
  // index: 12 bytes. Empty (holder 0) when no holder or the buffer is not live.
  struct SlotHolder {
    uint32_t tag = 0;     // the handle's upper 32 bits (pool index, generation)
    uint32_t holder = 0;  // Holder::index; 0: empty
    uint32_t refs = 0;    // references that holder holds
  };
  static_assert(sizeof(SlotHolder) == 12, "row H counts on 12-byte slot records");
  // A signed change of a SessionUsage.
  struct Delta {
    int64_t held_bytes = 0, held_buffers = 0, message_bytes = 0, channels = 0, parked = 0;
  };
  using Deltas = absl::flat_hash_map<HolderId, Delta>;

  const Holder& At(HolderId id) const;
  // The first quota or bound that `deltas` would exceed, in the order:
  // per holder (session quotas), per session, per uid.
  absl::Status CheckDeltas(const Deltas& deltas, const char* op) const;
  // The same for one holder (the common case, without maps).
  absl::Status CheckOne(HolderId id, const Delta& d, const char* op) const;
  absl::Status CheckHolder(const Holder& holder, const Delta& d, const char* op) const;
  absl::Status CheckSession(uint64_t session_id, const Delta& d, const char* op) const;
  absl::Status CheckUid(uid_t uid, const Delta& d, const char* op) const;
  // RESOURCE_EXHAUSTED "<op> in pool 'p' would exceed the limit of <limit> <what>: <usage>".
  absl::Status OverLimit(const char* op, uint64_t limit, const char* what,
                         const std::string& usage) const;
  // What `changes` do to each holder's distinct buffers and bytes.
  Deltas DeltasOf(absl::Span<const Change> changes) const;
  // Adds `d` to the holder, its session's total and its uid's.
  void Account(Holder& holder, const Delta& d);

  // --- holder_ledger_slots.cc: where a holder's count of a buffer lives ---
  // `holder`'s references to `handle`, from its slot record or its map.
  uint32_t CountOf(const Holder& holder, uint64_t handle) const;
  // Sets that count from `before` to `now`: in the slot record when it is
  // the holder's or empty (and the holder has no map entry), else its map.
  void StoreCount(Holder& holder, uint64_t handle, uint32_t before, uint32_t now);
  // The record of `handle`'s slot, or nullptr beyond the records; `grow`
  // extends the records to a slot near their end (slots are dense).
  SlotHolder* RecordOf(uint64_t handle, bool grow);
  const SlotHolder* RecordOf(uint64_t handle) const;
  // Calls fn(handle, refs) for every slot record of `holder`.
  template <typename Fn>
  void ForEachRecord(const Holder& holder, Fn fn) const;
  uint32_t NewIndex(HolderId id);

  // Reports `holder`'s count of `handle` when the holder is keyed.
  void NoteKeyed(const Holder& holder, uint64_t handle, uint32_t refs) const;

  const std::string pool_name_;
  KeyedChange on_keyed_change_;
  PoolQuotas quotas_;
  const LedgerLimits limits_;
  uint64_t next_id_ = 1;
  uint64_t sessions_ = 0;
  absl::flat_hash_map<HolderId, Holder> holders_;
  std::vector<SlotHolder> slot_holders_;    // by handle-table slot
  std::vector<HolderId> holder_by_index_;   // Holder::index -> id ([0] unused)
  std::vector<uint32_t> free_indices_;      // indices of closed holders
  absl::flat_hash_map<uint64_t, SessionUsage> session_totals_;  // by session id; no zero entries
  absl::flat_hash_map<uid_t, SessionUsage> uid_totals_;         // by uid; no zero entries
};

}  // namespace memd

#endif  // MEMD_SERVER_POOL_HOLDER_LEDGER_H_
