// Holdings: the one record, inside a Client, of what its session holds,
// mirroring the daemon's HolderLedger. Private to libmemd.
//
// - References: handle → {offset, size, references, kind}. The kind says
//   what the reference is for: a buffer the caller asked for, an arena
//   *chunk* (the arena carves it; ChunkSource grants it), or an arena
//   *range* (a block of a chunk registered under a handle of its own).
// - Range slots: pool offset → {handle, state} for every arena block that
//   has a handle: *live* (this process uses the block and holds its
//   reference; also while a send of it waits for its answer) or *parked*
//   (freed, or a moving send succeeded: the slot is not reused until nobody
//   holds the handle, so a handle of a freed block stays NOT_FOUND).
// - What a restart lost (KeepGranted), for errors that say what happened.
//
// Nobody notes a granted reference by hand: SessionLink applies every
// answered request (Apply), so what the daemon granted is recorded where it
// came back, and a moving send's references go when it succeeds (their
// range slots are parked at once). Releases are the caller's decision:
// SessionLink::Release removes one before telling the daemon.
//
// The arena reads and writes range slots and takes two event lists at its
// tick: chunks no longer held (a restart did not give them back, pool
// pressure took an idle one) and range slots a send gave away. Holdings
// calls nothing: the walk is always caller → holdings.
//
// Owned by the Client's SessionLink. Thread-safe: one mutex, a leaf (it
// never calls out while holding it), so it may be taken under SessionLink's
// or the arena's.
#ifndef MEMD_CLIENT_HOLDINGS_H_
#define MEMD_CLIENT_HOLDINGS_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.pb.h"

namespace memd {

class Holdings {
 public:
  enum class Kind : uint8_t { kBuffer, kChunk, kRange };
  struct Entry {
    uint64_t handle = 0;
    uint64_t offset_bytes = 0;    // from the start of the pool's memory
    uint64_t size_bytes = 0;      // size asked for
    uint64_t capacity_bytes = 0;  // usable bytes (>= size_bytes)
    uint32_t references = 0;      // held by this session (allocate, retains, receives)
    Kind kind = Kind::kBuffer;
  };
  enum class RangeState : uint8_t { kLive, kParked };
  struct Range {
    uint64_t handle = 0;
    RangeState state = RangeState::kLive;
  };

  // After the daemon answered `request` with success: records the references
  // it granted (allocate, retain, allocate_batch, receive, an arena
  // registration, the ranges a send registered), the buffer a realloc
  // moved, and drops those a moving send gave to its channel and the idle
  // arena chunks the daemon took back.
  void Apply(const v1::SessionRequest& request, const v1::SessionResponse& response);
  // A moving send or post succeeded: one reference per handle is the
  // channel's now; range slots this session no longer holds are parked and
  // listed for the arena (TakeSentAway).
  void GaveToChannel(absl::Span<const uint64_t> handles);

  // Gives up one reference to `handle`; false when this session does not
  // hold it.
  bool Remove(uint64_t handle);
  bool Holds(uint64_t handle) const;
  // The buffer that starts at `offset_bytes`, if this session holds it.
  std::optional<Entry> AtOffset(uint64_t offset_bytes) const;

  // --- Arena chunks and ranges. ---
  // A buffer this session holds is an arena chunk (ChunkSource::Grant).
  void MarkChunk(uint64_t handle);
  // The range slot at `offset_bytes`, if the block there has a handle.
  std::optional<Range> RangeAt(uint64_t offset_bytes) const;
  // Records or updates the range slot at `offset_bytes`.
  void SetRange(uint64_t offset_bytes, uint64_t handle, RangeState state);
  void EraseRange(uint64_t offset_bytes);
  // Up to `max` parked slots: {offset, handle}.
  std::vector<std::pair<uint64_t, uint64_t>> Parked(size_t max) const;
  bool AnyParked() const;
  // Events since the last call (the arena's tick): handles of chunks no
  // longer held (their range slots are gone with them), and offsets of
  // range slots a send gave away (parked).
  std::vector<uint64_t> TakeLostChunks();
  struct SentAway {
    uint64_t offset_bytes = 0;
    uint64_t handle = 0;
    bool registered = false;  // registered by that send (the arena never saw its handle)
  };
  std::vector<SentAway> TakeSentAway();

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
  void AddLocked(const v1::BufferInfo& info, Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RemoveLocked(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GaveToChannelLocked(absl::Span<const uint64_t> handles) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetRangeLocked(uint64_t offset_bytes, uint64_t handle, RangeState state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A chunk is no longer held: its range slots go, the arena is told.
  void ChunkGoneLocked(const Entry& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The slot of `handle` at `offset` is parked and listed as sent away.
  void SentAwayLocked(uint64_t offset, uint64_t handle, bool registered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> by_handle_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint64_t> by_offset_ ABSL_GUARDED_BY(mu_);  // → handle
  absl::flat_hash_map<uint64_t, Range> ranges_ ABSL_GUARDED_BY(mu_);        // offset →
  size_t parked_ ABSL_GUARDED_BY(mu_) = 0;  // slots of ranges_ in kParked
  std::vector<uint64_t> lost_chunks_ ABSL_GUARDED_BY(mu_);
  std::vector<SentAway> sent_away_ ABSL_GUARDED_BY(mu_);
  // Handles the last reconnect did not get back (KeepGranted); replaced at each.
  absl::flat_hash_map<uint64_t, uint64_t> lost_ ABSL_GUARDED_BY(mu_);  // handle → offset
  absl::flat_hash_map<uint64_t, uint64_t> lost_offsets_ ABSL_GUARDED_BY(mu_);  // → handle
};

}  // namespace memd

#endif  // MEMD_CLIENT_HOLDINGS_H_
