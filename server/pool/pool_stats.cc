// Pool: counters, usage, listings, invariants and the settings an admin or a
// reload changes.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "pool/pool.h"

namespace memd {

const char* FailReasonName(FailReason reason) {
  switch (reason) {
    case FailReason::kMaxAlloc: return "max_alloc";
    case FailReason::kPoolSize: return "pool_size";
    case FailReason::kNoSpace: return "no_space";
    case FailReason::kQuota: return "quota";
    case FailReason::kStateTable: return "state_table";
  }
  return "unknown";
}

uint64_t Pool::max_alloc_bytes() const {
  MutexLock lock(&mu_);
  return max_alloc_bytes_;
}

uint64_t Pool::SetMaxAlloc(uint64_t max_alloc_bytes) {
  MutexLock lock(&mu_);
  return std::exchange(max_alloc_bytes_, max_alloc_bytes);
}

PoolQuotas Pool::quotas() const {
  MutexLock lock(&mu_);
  return ledger_.quotas();
}

void Pool::SetQuotas(const PoolQuotas& quotas) {
  MutexLock lock(&mu_);
  ledger_.set_quotas(quotas);
}

SessionUsage Pool::Usage(HolderId holder) const {
  MutexLock lock(&mu_);
  return ledger_.Usage(holder);
}

SessionUsage Pool::UidUsage(uid_t uid) const {
  MutexLock lock(&mu_);
  return ledger_.UidUsage(uid);
}

SessionUsage Pool::SessionTotal(uint64_t session_id) const {
  MutexLock lock(&mu_);
  return ledger_.SessionTotal(session_id);
}

absl::flat_hash_map<uint64_t, uint32_t> Pool::Holdings(HolderId holder) const {
  MutexLock lock(&mu_);
  if (!ledger_.Contains(holder)) return {};
  return ledger_.Holdings(holder);
}

PoolStats Pool::Stats() const {
  MutexLock lock(&mu_);
  PoolStats s;
  s.size_bytes = allocator_.size_bytes();
  s.used_bytes = allocator_.used_bytes();
  s.free_bytes = allocator_.free_bytes();
  s.largest_free_bytes = allocator_.largest_free_bytes();
  s.live_buffers = handles_.live();
  s.sessions = ledger_.sessions();
  s.alignment_bytes = config_.alignment_bytes;
  s.max_alloc_bytes = max_alloc_bytes_;
  s.allocs = allocs_;
  s.frees = frees_;
  for (int r = 0; r < kFailReasons; ++r) {
    s.failed_by_reason[r] = failed_[r];
    s.failed_allocs += failed_[r];
  }
  s.peak_used_bytes = peak_used_bytes_;
  s.arena_chunks_taken = arena_taken_;
  s.quarantined_slots = quarantined_slots_;
  for (const auto& [holder, usage] : arena_usage_) {
    s.arena_reserved_bytes += usage.reserved_bytes;
    s.arena_in_use_bytes += usage.in_use_bytes;
    s.arena_local_allocs += usage.local_allocs;
  }
  s.unclaimed_references = ledger_.References(unclaimed_);
  for (const auto& [ticket, unclaimed] : unclaimed_by_ticket_) {
    s.unclaimed_references += ledger_.References(unclaimed);
  }
  return s;
}

std::vector<BufferListing> Pool::ListBuffers(
    const std::vector<std::pair<uint64_t, const SessionRefs*>>& sessions, uint64_t only_session,
    size_t limit, bool* truncated) const {
  MutexLock lock(&mu_);
  std::vector<BufferListing> out;
  handles_.ForEachLive([&](uint64_t handle, const HandleTable::Entry& entry) {
    BufferListing listing;
    for (const auto& [id, holder] : sessions) {
      if (ledger_.Held(*holder, handle) > 0) listing.holder_session_ids.push_back(id);
    }
    if (only_session != 0 && std::find(listing.holder_session_ids.begin(),
                                       listing.holder_session_ids.end(),
                                       only_session) == listing.holder_session_ids.end()) {
      return;
    }
    if (out.size() >= limit) {
      *truncated = true;
      return;
    }
    listing.info = Describe(handle, entry);
    listing.references = entry.refs;
    out.push_back(std::move(listing));
  });
  return out;
}

absl::Status Pool::CheckInvariants() const {
  MutexLock lock(&mu_);
  if (absl::Status s = allocator_.CheckInvariants(); !s.ok()) return s;
  if (absl::Status s = ledger_.CheckInvariants(); !s.ok()) return s;
  // Every used block has a handle, but one an arena range keeps after its
  // chunk was released; every arena range (sub-block) has one.
  uint64_t with_handles =
      allocator_.used_blocks() - allocator_.held_back_blocks() + allocator_.sub_blocks();
  if (handles_.live() != with_handles) {
    return absl::InternalError(absl::StrFormat(
        "%u live handles but %u used blocks (%u of them held back by arena ranges) and %u "
        "arena ranges", handles_.live(), allocator_.used_blocks(),
        allocator_.held_back_blocks(), allocator_.sub_blocks()));
  }
  absl::Status status;
  absl::flat_hash_map<uint64_t, uint64_t> held = ledger_.ReferencesByHandle();
  handles_.ForEachLive([&](uint64_t handle, const HandleTable::Entry& entry) {
    if (status.ok() && !allocator_.is_used(entry.block)) {
      status = absl::InternalError(
          absl::StrFormat("handle 0x%016x points at block %u, which is not in use", handle, entry.block));
    }
    if (status.ok() && entry.slack_bytes > Capacity(entry)) {
      status = absl::InternalError(absl::StrFormat(
          "handle 0x%016x: slack of %u bytes exceeds its block's capacity %u", handle,
          entry.slack_bytes, Capacity(entry)));
    }
    auto it = held.find(handle);
    uint64_t holders = it == held.end() ? 0 : it->second;
    if (status.ok() && holders != entry.refs) {
      status = absl::InternalError(absl::StrFormat(
          "handle 0x%016x has %u references but its holders hold %u", handle, entry.refs, holders));
    }
    if (it != held.end()) held.erase(it);
  });
  if (status.ok() && !held.empty()) {
    status = absl::InternalError(absl::StrFormat("holders hold %u handles that are not live "
                                                 "(one: 0x%016x)",
                                                 held.size(), held.begin()->first));
  }
  return status;
}

}  // namespace memd
