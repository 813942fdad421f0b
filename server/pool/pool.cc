// Pool: buffers (allocate, realloc, retain, release) and the helpers every
// pool file uses. References between holders: pool_holders.cc; restart
// adoption: pool_adopt.cc; stats and listings: pool_stats.cc.
#include "pool/pool.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"
#include "memd/shared/size.h"
#include "spdlog/spdlog.h"

namespace memd {

Pool::Pool(PoolConfig config, uint32_t index, uint8_t* base, std::string shm_name,
           std::unique_ptr<StateTable> state)
    : config_(std::move(config)),
      index_(index),
      base_(base),
      shm_name_(std::move(shm_name)),
      state_(std::move(state)),
      segment_id_(state_ ? state_->identity().segment_id : 0),
      max_alloc_bytes_(config_.max_alloc_bytes),
      allocator_(config_.size_bytes, config_.alignment_bytes),
      handles_(index),
      ledger_(config_.name, config_.quotas),
      unclaimed_(ledger_.Open(HolderKind::kUnclaimed, Causer{})) {
  if (state_) {
    // Runs under mu_: the ledger calls it from its own changes, which the
    // pool makes only under mu_.
    ledger_.set_on_keyed_change([this](std::string_view ticket, uint64_t handle, uint32_t refs) {
      PersistHolding(ticket, handle, refs);
    });
  }
}

void Pool::PersistHolding(std::string_view ticket, uint64_t handle, uint32_t refs) {
  absl::Status s = state_->holdings().Set(ticket, handle, refs);
  if (!s.ok() && !holdings_failed_) {
    holdings_failed_ = true;
    spdlog::error("pool '{}': {}; after a restart, references not recorded there stay "
                  "unclaimed and go after the grace period", config_.name,
                  std::string(s.message()));
  }
}

absl::Status Pool::CheckRequestSize(uint64_t size_bytes, const char* op,
                                    FailReason* reason) const {
  *reason = FailReason::kMaxAlloc;
  if (size_bytes > max_alloc_bytes_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s of %s exceeds max_alloc %s of pool '%s'", op, BytesText(size_bytes),
        BytesText(max_alloc_bytes_), config_.name));
  }
  *reason = FailReason::kPoolSize;
  if (size_bytes > allocator_.size_bytes()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s of %s exceeds the size %s of pool '%s'", op, BytesText(size_bytes),
        BytesText(allocator_.size_bytes()), config_.name));
  }
  return absl::OkStatus();
}

absl::StatusOr<HandleTable::Entry*> Pool::FindHeld(HolderId holder, uint64_t handle,
                                                   const char* op) {
  HandleTable::Entry* entry = handles_.Find(handle);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrFormat("%s in pool '%s': %s", op, config_.name,
                                               handles_.DescribeMissing(handle)));
  }
  if (ledger_.Held(holder, handle) == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s in pool '%s': this session holds no reference to handle 0x%016x", op, config_.name,
        handle));
  }
  return entry;
}

BufferInfo Pool::Describe(uint64_t handle, const HandleTable::Entry& entry) const {
  return BufferInfo{handle, allocator_.offset(entry.block), SizeOf(entry), Capacity(entry)};
}

void Pool::NoteFailure(FailReason reason) { ++failed_[static_cast<int>(reason)]; }

void Pool::NoteUsed() { peak_used_bytes_ = std::max(peak_used_bytes_, allocator_.used_bytes()); }

void Pool::Persist(uint64_t handle) {
  if (!state_) return;
  uint32_t slot = DecodeHandle(handle).slot;
  const HandleTable::Entry& e = handles_.At(slot);
  SlotImage image{.generation = e.generation(), .refs = e.refs};
  if (e.refs > 0) {
    image.state = SlotImage::State::kLive;
    image.offset_bytes = allocator_.offset(e.block);
    image.capacity_bytes = allocator_.capacity(e.block);
    image.size_bytes = SizeOf(e);
  } else {
    image.state = e.retired() ? SlotImage::State::kRetired : SlotImage::State::kFree;
  }
  state_->Write(slot, image);
}

void Pool::FreeBlock(uint64_t handle, HandleTable::Entry& entry) {
  allocator_.Free(entry.block);
  handles_.Erase(handle);
  Persist(handle);
  ++frees_;
}

absl::Status Pool::CheckNewBuffers(HolderId holder, uint64_t size_bytes, uint32_t count,
                                   const char* op) {
  FailReason reason;
  if (absl::Status s = CheckRequestSize(size_bytes, "allocation", &reason); !s.ok()) {
    NoteFailure(reason);
    return s;
  }
  return CheckGrowthAndReserve(holder, allocator_.RoundUp(size_bytes) * count, count, op);
}

absl::Status Pool::CheckGrowthAndReserve(HolderId holder, uint64_t capacity_bytes, uint32_t count,
                                         const char* op) {
  if (absl::Status s =
          ledger_.CheckGrowth(holder, static_cast<int64_t>(capacity_bytes), count, op);
      !s.ok()) {
    NoteFailure(FailReason::kQuota);
    return s;
  }
  if (state_) {
    if (absl::Status s = state_->Reserve(handles_.slot_count() + count); !s.ok()) {
      NoteFailure(FailReason::kStateTable);
      return s;
    }
  }
  return absl::OkStatus();
}

BufferInfo Pool::AddBuffer(HolderId holder, TlsfAllocator::BlockId block, uint64_t size_bytes) {
  uint64_t handle =
      handles_.Insert(block, static_cast<uint32_t>(allocator_.capacity(block) - size_bytes));
  Persist(handle);
  const HandleTable::Entry& entry = *handles_.Find(handle);
  HolderLedger::Change added{holder, handle, Capacity(entry), 1};
  ledger_.Apply({&added, 1});
  ++allocs_;
  return Describe(handle, entry);
}

absl::StatusOr<BufferInfo> Pool::Allocate(HolderId holder, uint64_t size_bytes, bool zero) {
  BufferInfo info;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckNewBuffers(holder, size_bytes, 1, "allocation"); !s.ok()) return s;
    std::optional<TlsfAllocator::BlockId> block = AllocateBlock(size_bytes);
    if (!block) {
      NoteFailure(FailReason::kNoSpace);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "allocation of %s does not fit in pool '%s': largest free block is %s, %s free of %s",
          BytesText(size_bytes), config_.name, BytesText(allocator_.largest_free_bytes()),
          FormatSize(allocator_.free_bytes()), FormatSize(allocator_.size_bytes())));
    }
    info = AddBuffer(holder, *block, size_bytes);
    NoteUsed();
  }
  // Zero outside the lock: the block is owned by this session's single
  // in-flight request, and a 12 MiB memset must not stall other sessions.
  if (zero) std::memset(base_.load() + info.offset_bytes, 0, info.size_bytes);
  return info;
}

absl::StatusOr<std::vector<BufferInfo>> Pool::AllocateMany(HolderId holder, uint64_t size_bytes,
                                                           uint32_t count, bool zero) {
  std::vector<BufferInfo> out;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckNewBuffers(holder, size_bytes, count, "batch allocation"); !s.ok()) {
      return s;
    }
    // Blocks first, handles after: a batch that does not fit changes nothing.
    std::vector<TlsfAllocator::BlockId> blocks;
    blocks.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      std::optional<TlsfAllocator::BlockId> block = AllocateBlock(size_bytes);
      if (!block) {
        for (TlsfAllocator::BlockId b : blocks) allocator_.Free(b);
        NoteFailure(FailReason::kNoSpace);
        return absl::ResourceExhaustedError(absl::StrFormat(
            "batch of %u allocations of %s does not fit in pool '%s': %u fit (largest free "
            "block now %s); nothing was allocated",
            count, BytesText(size_bytes), config_.name, i,
            BytesText(allocator_.largest_free_bytes())));
      }
      blocks.push_back(*block);
    }
    out.reserve(count);
    for (TlsfAllocator::BlockId block : blocks) out.push_back(AddBuffer(holder, block, size_bytes));
    NoteUsed();
  }
  if (zero) {  // outside the lock, as Allocate
    uint8_t* base = base_.load();
    for (const BufferInfo& info : out) std::memset(base + info.offset_bytes, 0, info.size_bytes);
  }
  return out;
}

absl::StatusOr<BufferInfo> Pool::Realloc(HolderId holder, uint64_t handle, uint64_t size_bytes) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleTable::Entry*> found = FindHeld(holder, handle, "realloc");
  if (!found.ok()) return found.status();
  HandleTable::Entry& entry = **found;
  if (entry.refs > 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "realloc of handle 0x%016x in pool '%s' refused: it has %u references and moving it "
        "would pull it from under the other holders",
        handle, config_.name, entry.refs));
  }
  if (allocator_.is_sub(entry.block) || allocator_.sub_count(entry.block) > 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "realloc of handle 0x%016x in pool '%s' refused: it is %s", handle, config_.name,
        allocator_.is_sub(entry.block) ? "a range registered inside an arena chunk"
                                       : "an arena chunk with registered ranges in it"));
  }
  FailReason reason;
  if (absl::Status s = CheckRequestSize(size_bytes, "realloc", &reason); !s.ok()) {
    NoteFailure(reason);
    return s;
  }
  uint64_t old_capacity = Capacity(entry);
  uint64_t new_capacity = allocator_.RoundUp(size_bytes);
  if (new_capacity > old_capacity) {
    if (absl::Status s = ledger_.CheckGrowth(
            holder, static_cast<int64_t>(new_capacity - old_capacity), 0, "realloc");
        !s.ok()) {
      NoteFailure(FailReason::kQuota);
      return s;
    }
  }
  if (!allocator_.ResizeInPlace(entry.block, size_bytes)) {
    std::optional<TlsfAllocator::BlockId> moved = AllocateBlock(size_bytes);
    if (!moved) {
      NoteFailure(FailReason::kNoSpace);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "realloc of handle 0x%016x to %s does not fit in pool '%s': largest free block is %s "
          "(the old buffer is unchanged)",
          handle, BytesText(size_bytes), config_.name, BytesText(allocator_.largest_free_bytes())));
    }
    uint8_t* base = base_.load();
    std::memcpy(base + allocator_.offset(*moved), base + allocator_.offset(entry.block),
                std::min(old_capacity, allocator_.capacity(*moved)));
    allocator_.Free(entry.block);
    entry.block = *moved;
    ++allocs_;
    ++frees_;
  }
  entry.slack_bytes = static_cast<uint32_t>(Capacity(entry) - size_bytes);  // < one granule
  Persist(handle);
  ledger_.Resize(holder,
                 static_cast<int64_t>(Capacity(entry)) - static_cast<int64_t>(old_capacity));
  NoteUsed();
  return Describe(handle, entry);
}

absl::StatusOr<BufferInfo> Pool::Retain(HolderId holder, uint64_t handle) {
  MutexLock lock(&mu_);
  HandleTable::Entry* entry = handles_.Find(handle);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrFormat("retain in pool '%s': %s", config_.name,
                                               handles_.DescribeMissing(handle)));
  }
  if (entry->refs == UINT32_MAX) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "retain of handle 0x%016x: it already has the maximum %u references", handle, UINT32_MAX));
  }
  HolderLedger::Change added{holder, handle, Capacity(*entry), 1};
  if (absl::Status s = ledger_.Check({&added, 1}, "retain"); !s.ok()) return s;
  ++entry->refs;
  Persist(handle);
  ledger_.Apply({&added, 1});
  return Describe(handle, *entry);
}

bool Pool::DropHeld(HolderId holder, uint64_t handle, HandleTable::Entry& entry, uint32_t count) {
  HolderLedger::Change dropped{holder, handle, Capacity(entry), -static_cast<int64_t>(count)};
  ledger_.Apply({&dropped, 1});
  if ((entry.refs -= count) > 0) {
    Persist(handle);
    return false;
  }
  FreeBlock(handle, entry);
  return true;
}

absl::StatusOr<bool> Pool::Release(HolderId holder, uint64_t handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleTable::Entry*> found = FindHeld(holder, handle, "release");
  if (!found.ok()) return found.status();
  return DropHeld(holder, handle, **found);
}

absl::StatusOr<uint32_t> Pool::ReleaseMany(HolderId holder, const std::vector<uint64_t>& handles) {
  MutexLock lock(&mu_);
  // All or nothing: check first.
  if (absl::Status s = CheckHeldLocked(holder, handles, "batch release", /*drops=*/true); !s.ok()) {
    return s;
  }
  uint32_t freed = 0;
  for (uint64_t handle : handles) freed += DropHeld(holder, handle, *handles_.Find(handle));
  return freed;
}

uint64_t Pool::DropAll(HolderId holder) {
  uint64_t released = 0;
  for (const auto& [handle, count] : ledger_.TakeAll(holder)) {
    HandleTable::Entry* entry = handles_.Find(handle);
    if (entry == nullptr) continue;  // cannot happen: held handles stay live
    released += count;
    entry->refs -= count;
    if (entry->refs == 0) {
      FreeBlock(handle, *entry);
    } else {
      Persist(handle);
    }
  }
  return released;
}

uint64_t Pool::ReleaseAll(HolderId holder) {
  MutexLock lock(&mu_);
  return DropAll(holder);
}

}  // namespace memd
