// RefLedger: the one record, inside a Client, of the references its session
// holds: handle → {offset, size, references}, and offset → handle for the
// C API (memd_free(ptr) finds what to release; foreign and interior
// pointers are refused without a round trip). Private to libmemd.
//
// Nobody notes a granted reference by hand: SessionLink applies every
// answered request to the ledger (Apply), so what the daemon granted is
// recorded where it came back, and a moving send's references go when it
// succeeds. Releases are the caller's decision and Remove them (Client's
// ReleaseRef before its call, so one made while the daemon is away succeeds
// locally; ReleaseRefs after; a deferred release when it is queued). After a daemon restart the link reclaims
// exactly what the ledger holds (Snapshot, KeepGranted).
//
// Owned by the Client's SessionLink. Thread-safe: one mutex, a leaf (it
// never calls out while holding it), so it may be taken under SessionLink's.
#ifndef MEMD_CLIENT_REF_LEDGER_H_
#define MEMD_CLIENT_REF_LEDGER_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.pb.h"

namespace memd {

class RefLedger {
 public:
  struct Entry {
    uint64_t handle = 0;
    uint64_t offset_bytes = 0;  // from the start of the pool's memory
    uint64_t size_bytes = 0;    // size asked for
    uint64_t capacity_bytes = 0;  // usable bytes (>= size_bytes)
    uint32_t references = 0;    // held by this session (allocate, retains, receives)
  };

  // After the daemon answered `request` with success: records the references
  // it granted (allocate, retain, allocate_batch, receive, an arena
  // registration, the ranges a sharing send registered), the buffer a realloc moved, and drops those a moving send
  // gave to its channel and the idle arena chunks the daemon took back.
  void Apply(const v1::SessionRequest& request, const v1::SessionResponse& response);

  // Gives up one reference to `handle`; false when this session does not
  // hold it.
  bool Remove(uint64_t handle);
  bool Holds(uint64_t handle) const;
  // The buffer that starts at `offset_bytes`, if this session holds it.
  std::optional<Entry> AtOffset(uint64_t offset_bytes) const;

  bool empty() const;
  // Handle and references of everything held (what a reconnect reclaims).
  std::vector<std::pair<uint64_t, uint32_t>> Snapshot() const;
  // After a reconnect: keeps of each handle at most what the new session was
  // `granted`, drops what it was not (lost), and returns one handle per
  // reference granted beyond what is still held (released meanwhile), for
  // the caller to release.
  std::vector<uint64_t> KeepGranted(const absl::flat_hash_map<uint64_t, uint32_t>& granted);
  // Whether the last KeepGranted dropped `handle` (the restarted daemon had
  // released it: its reclaim grace ended before this process reclaimed it,
  // or its record was quarantined), so an error can say what happened.
  bool LostAtReconnect(uint64_t handle) const;
  // The handle the last reconnect lost at `offset_bytes`, if any.
  std::optional<uint64_t> LostAtOffset(uint64_t offset_bytes) const;
  // NOT_FOUND for `ptr`, a buffer (handle `handle`) lost at a reconnect: the
  // one wording of what happened, for every caller that meets one.
  static absl::Status LostError(const void* ptr, uint64_t handle);
  // The pool's memory is gone: nothing is held any more.
  void Clear();

 private:
  void AddLocked(const v1::BufferInfo& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RemoveLocked(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> by_handle_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint64_t> by_offset_ ABSL_GUARDED_BY(mu_);  // → handle
  // Handles the last reconnect did not get back (KeepGranted); replaced at each.
  absl::flat_hash_map<uint64_t, uint64_t> lost_ ABSL_GUARDED_BY(mu_);  // handle → offset
  absl::flat_hash_map<uint64_t, uint64_t> lost_offsets_ ABSL_GUARDED_BY(mu_);  // → handle
};

}  // namespace memd

#endif  // MEMD_CLIENT_REF_LEDGER_H_
