// Pool: arenas. A session's arena chunk is an ordinary buffer it holds once;
// its client sub-allocates from it without the daemon. Here the daemon
// (1) gives a range of a chunk a handle when the client needs one
// (registration: a fresh handle over a sub-block of the chunk's block, so a
// handle of a freed block is never seen again), and (2) frees chunks the
// client said are idle when an allocation finds no room (pool pressure).
// Ranges are ordinary handles and ledger references: crash cleanup, quotas,
// the state table and the holdings file treat them like any buffer; the
// allocator keeps a chunk's block while a range in it lives.
#include "absl/strings/str_format.h"
#include "memd/shared/size.h"
#include "pool/pool.h"

namespace memd {

absl::StatusOr<BufferInfo> Pool::ArenaRegister(HolderId holder, uint64_t chunk,
                                               uint64_t offset_bytes, uint64_t size_bytes,
                                               uint64_t capacity_bytes) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleTable::Entry*> found = FindHeld(holder, chunk, "arena registration");
  if (!found.ok()) return found.status();
  const HandleTable::Entry& entry = **found;
  if (entry.refs != 1 || allocator_.is_sub(entry.block)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "arena registration in pool '%s': handle 0x%016x is not a chunk this session alone "
        "holds (%u references%s)", config_.name, chunk, entry.refs,
        allocator_.is_sub(entry.block) ? ", a registered range itself" : ""));
  }
  const TlsfAllocator::BlockId parent = entry.block;
  if (size_bytes > capacity_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arena registration in pool '%s': size %u exceeds the range's %u bytes", config_.name,
        size_bytes, capacity_bytes));
  }
  if (capacity_bytes - size_bytes > HandleTable::kMaxSlackBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arena registration in pool '%s': a range of %u bytes for a size of %u leaves %u bytes "
        "unused, more than the limit of %u", config_.name, capacity_bytes, size_bytes,
        capacity_bytes - size_bytes, HandleTable::kMaxSlackBytes));
  }
  if (absl::Status s = CheckGrowthAndReserve(holder, capacity_bytes, 1, "arena registration");
      !s.ok()) {
    return s;
  }
  const uint64_t chunk_offset = allocator_.offset(parent), chunk_bytes = allocator_.capacity(parent);
  const bool inside = offset_bytes % allocator_.granule() == 0 &&
                      capacity_bytes % allocator_.granule() == 0 && offset_bytes >= chunk_offset &&
                      capacity_bytes <= chunk_bytes &&
                      offset_bytes - chunk_offset <= chunk_bytes - capacity_bytes;
  if (inside) {
    if (std::optional<TlsfAllocator::BlockId> other =
            allocator_.OverlappingSub(offset_bytes, capacity_bytes)) {
      // A range is registered once, and ranges never overlap: two that did
      // made a restart refuse the whole pool (issue 24).
      return absl::AlreadyExistsError(absl::StrFormat(
          "arena registration in pool '%s': range at offset %u of %u bytes overlaps the range "
          "at offset %u of %u bytes already registered in chunk 0x%016x (a range is registered "
          "once; ranges never overlap)", config_.name, offset_bytes, capacity_bytes,
          allocator_.offset(*other), allocator_.capacity(*other), chunk));
    }
  }
  std::optional<TlsfAllocator::BlockId> sub = allocator_.AddSub(parent, offset_bytes, capacity_bytes);
  if (!sub) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arena registration in pool '%s': range at offset %u of %u bytes is not a %u-byte "
        "aligned range inside chunk 0x%016x (offset %u, %u bytes)",
        config_.name, offset_bytes, capacity_bytes, allocator_.granule(), chunk, chunk_offset,
        chunk_bytes));
  }
  return AddBuffer(holder, *sub, size_bytes);
}

void Pool::ArenaIdle(HolderId holder, const std::vector<uint64_t>& chunks) {
  MutexLock lock(&mu_);
  for (uint64_t chunk : chunks) {
    if (ledger_.Held(holder, chunk) == 1) idle_chunks_[chunk] = holder;
  }
}

std::vector<uint64_t> Pool::ArenaUse(HolderId holder, const std::vector<uint64_t>& chunks) {
  MutexLock lock(&mu_);
  std::vector<uint64_t> taken;
  for (uint64_t chunk : chunks) {
    idle_chunks_.erase(chunk);
    if (ledger_.Held(holder, chunk) == 0) taken.push_back(chunk);
  }
  return taken;
}

void Pool::SetArenaUsage(HolderId holder, const ArenaUsage& usage) {
  MutexLock lock(&mu_);
  if (ledger_.Contains(holder)) arena_usage_[holder] = usage;
}

ArenaUsage Pool::ArenaUsageOf(HolderId holder) const {
  MutexLock lock(&mu_);
  auto it = arena_usage_.find(holder);
  return it == arena_usage_.end() ? ArenaUsage{} : it->second;
}

std::optional<TlsfAllocator::BlockId> Pool::AllocateBlock(uint64_t size_bytes) {
  std::optional<TlsfAllocator::BlockId> block = allocator_.Allocate(size_bytes);
  if (!block && TakeIdleChunksLocked() > 0) block = allocator_.Allocate(size_bytes);
  return block;
}

uint64_t Pool::TakeIdleChunksLocked() {
  uint64_t taken = 0;
  for (const auto& [chunk, holder] : idle_chunks_) {
    HandleTable::Entry* entry = handles_.Find(chunk);
    if (entry == nullptr || entry->refs != 1 || !ledger_.Contains(holder) ||
        ledger_.Held(holder, chunk) != 1) {
      continue;  // stale: freed, retained by another, or its session ended
    }
    DropHeld(holder, chunk, *entry);
    ++taken;
  }
  idle_chunks_.clear();
  arena_taken_ += taken;
  return taken;
}

}  // namespace memd
