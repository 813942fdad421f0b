#include "pool/pool.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

// "3.0 GiB (3221225472 bytes)": people read the first, scripts the second.
std::string Bytes(uint64_t n) { return absl::StrFormat("%s (%u bytes)", FormatSize(n), n); }

constexpr uint64_t kMaxAlignment = 1 << 20;

}  // namespace

absl::Status ValidatePoolConfig(const PoolConfig& config) {
  if (absl::Status s = ValidateName("pool name", config.name); !s.ok()) return s;
  uint64_t a = config.alignment_bytes;
  if (a < 8 || a > kMaxAlignment || (a & (a - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "alignment %u of pool '%s' must be a power of two from 8 to %u", a, config.name,
        kMaxAlignment));
  }
  if (config.size_bytes < a) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "pool '%s' size %s is smaller than its alignment %u", config.name,
        Bytes(config.size_bytes), a));
  }
  if (config.max_alloc_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_alloc of pool '%s' must be at least 1 byte", config.name));
  }
  return absl::OkStatus();
}

Pool::Pool(PoolConfig config, uint32_t index, uint8_t* base, std::string shm_name,
           std::unique_ptr<StateTable> state)
    : config_(std::move(config)),
      index_(index),
      base_(base),
      shm_name_(std::move(shm_name)),
      state_(std::move(state)),
      segment_id_(state_ ? state_->identity().segment_id : 0),
      max_alloc_bytes_(config_.max_alloc_bytes),
      quotas_(config_.quotas),
      allocator_(config_.size_bytes, config_.alignment_bytes),
      handles_(index) {}

uint64_t Pool::max_alloc_bytes() const {
  MutexLock lock(&mu_);
  return max_alloc_bytes_;
}

absl::Status Pool::CheckRequestSize(uint64_t size_bytes, const char* op,
                                    FailReason* reason) const {
  *reason = FailReason::kMaxAlloc;
  if (size_bytes > max_alloc_bytes_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s of %s exceeds max_alloc %s of pool '%s'", op, Bytes(size_bytes),
        Bytes(max_alloc_bytes_), config_.name));
  }
  *reason = FailReason::kPoolSize;
  if (size_bytes > allocator_.size_bytes()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s of %s exceeds the size %s of pool '%s'",
                                                      op, Bytes(size_bytes),
                                                      Bytes(allocator_.size_bytes()), config_.name));
  }
  return absl::OkStatus();
}

absl::StatusOr<HandleTable::Entry*> Pool::FindHeld(const SessionRefs& refs, uint64_t handle,
                                                   const char* op) {
  HandleTable::Entry* entry = handles_.Find(handle);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrFormat("%s in pool '%s': %s", op, config_.name,
                                               handles_.DescribeMissing(handle)));
  }
  if (!refs.counts.contains(handle)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s in pool '%s': this session holds no reference to handle 0x%016x", op, config_.name,
        handle));
  }
  return entry;
}

BufferInfo Pool::Describe(uint64_t handle, const HandleTable::Entry& entry) const {
  return BufferInfo{handle, allocator_.offset(entry.block), entry.size_bytes,
                    allocator_.capacity(entry.block)};
}

absl::Status Pool::CheckQuotas(const SessionRefs& refs, uint64_t bytes, uint64_t buffers,
                               const char* op) const {
  const PoolQuotas& q = quotas_;
  uint64_t session_bytes = refs.held_bytes + bytes;
  uint64_t session_buffers = refs.counts.size() + buffers;
  if (q.session_bytes != 0 && session_bytes > q.session_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s of %s in pool '%s' would exceed the per-session quota of %s: the session holds %s "
        "in %u buffers", op, Bytes(bytes), config_.name, Bytes(q.session_bytes),
        Bytes(refs.held_bytes), refs.counts.size()));
  }
  if (q.session_buffers != 0 && session_buffers > q.session_buffers) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s in pool '%s' would exceed the per-session quota of %u buffers: the session "
        "references %u", op, config_.name, q.session_buffers, refs.counts.size()));
  }
  if (!refs.uid || (q.uid_bytes == 0 && q.uid_buffers == 0)) return absl::OkStatus();
  SessionUsage uid;
  if (auto it = uid_usage_.find(*refs.uid); it != uid_usage_.end()) uid = it->second;
  if (q.uid_bytes != 0 && uid.held_bytes + bytes > q.uid_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s of %s in pool '%s' would exceed the per-uid quota of %s for uid %u: its sessions "
        "hold %s in %u buffers", op, Bytes(bytes), config_.name, Bytes(q.uid_bytes), *refs.uid,
        Bytes(uid.held_bytes), uid.held_buffers));
  }
  if (q.uid_buffers != 0 && uid.held_buffers + buffers > q.uid_buffers) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s in pool '%s' would exceed the per-uid quota of %u buffers for uid %u: its sessions "
        "reference %u", op, config_.name, q.uid_buffers, *refs.uid, uid.held_buffers));
  }
  return absl::OkStatus();
}

void Pool::Account(SessionRefs& refs, int64_t bytes, int64_t buffers) {
  refs.held_bytes += static_cast<uint64_t>(bytes);  // modular: bytes may be negative
  if (!refs.uid) return;
  SessionUsage& uid = uid_usage_[*refs.uid];
  uid.held_bytes += static_cast<uint64_t>(bytes);
  uid.held_buffers += static_cast<uint64_t>(buffers);
  if (uid.held_bytes == 0 && uid.held_buffers == 0) uid_usage_.erase(*refs.uid);
}

PoolQuotas Pool::quotas() const {
  MutexLock lock(&mu_);
  return quotas_;
}

void Pool::SetQuotas(const PoolQuotas& quotas) {
  MutexLock lock(&mu_);
  quotas_ = quotas;
}

SessionUsage Pool::UidUsage(uid_t uid) const {
  MutexLock lock(&mu_);
  auto it = uid_usage_.find(uid);
  return it == uid_usage_.end() ? SessionUsage{} : it->second;
}

void Pool::NoteFailure(FailReason reason) { ++failed_[static_cast<int>(reason)]; }


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

void Pool::NoteUsed() { peak_used_bytes_ = std::max(peak_used_bytes_, allocator_.used_bytes()); }

absl::StatusOr<BufferInfo> Pool::Allocate(SessionRefs& refs, uint64_t size_bytes, bool zero) {
  BufferInfo info;
  {
    MutexLock lock(&mu_);
    FailReason reason;
    if (absl::Status s = CheckRequestSize(size_bytes, "allocation", &reason); !s.ok()) {
      NoteFailure(reason);
      return s;
    }
    if (absl::Status s = CheckQuotas(refs, allocator_.RoundUp(size_bytes), 1, "allocation");
        !s.ok()) {
      NoteFailure(FailReason::kQuota);
      return s;
    }
    if (state_) {
      if (absl::Status s = state_->Reserve(handles_.slot_count() + 1); !s.ok()) {
        NoteFailure(FailReason::kStateTable);
        return s;
      }
    }
    std::optional<TlsfAllocator::BlockId> block = allocator_.Allocate(size_bytes);
    if (!block) {
      NoteFailure(FailReason::kNoSpace);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "allocation of %s does not fit in pool '%s': largest free block is %s, %s free of %s",
          Bytes(size_bytes), config_.name, Bytes(allocator_.largest_free_bytes()),
          FormatSize(allocator_.free_bytes()), FormatSize(allocator_.size_bytes())));
    }
    uint64_t handle = handles_.Insert(*block, size_bytes);
    Persist(handle);
    refs.counts[handle] = 1;
    Account(refs, static_cast<int64_t>(allocator_.capacity(*block)), 1);
    ++allocs_;
    NoteUsed();
    info = Describe(handle, *handles_.Find(handle));
  }
  // Zero outside the lock: the block is owned by this session's single
  // in-flight request, and a 12 MiB memset must not stall other sessions.
  if (zero) std::memset(base_.load() + info.offset_bytes, 0, info.size_bytes);
  return info;
}

absl::StatusOr<BufferInfo> Pool::Realloc(SessionRefs& refs, uint64_t handle, uint64_t size_bytes) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleTable::Entry*> found = FindHeld(refs, handle, "realloc");
  if (!found.ok()) return found.status();
  HandleTable::Entry& entry = **found;
  if (entry.refs > 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "realloc of handle 0x%016x in pool '%s' refused: it has %u references and moving it "
        "would pull it from under the other holders",
        handle, config_.name, entry.refs));
  }
  FailReason reason;
  if (absl::Status s = CheckRequestSize(size_bytes, "realloc", &reason); !s.ok()) {
    NoteFailure(reason);
    return s;
  }
  uint64_t old_capacity = allocator_.capacity(entry.block);
  uint64_t new_capacity = allocator_.RoundUp(size_bytes);
  if (new_capacity > old_capacity) {
    if (absl::Status s = CheckQuotas(refs, new_capacity - old_capacity, 0, "realloc"); !s.ok()) {
      NoteFailure(FailReason::kQuota);
      return s;
    }
  }
  if (!allocator_.ResizeInPlace(entry.block, size_bytes)) {
    std::optional<TlsfAllocator::BlockId> moved = allocator_.Allocate(size_bytes);
    if (!moved) {
      NoteFailure(FailReason::kNoSpace);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "realloc of handle 0x%016x to %s does not fit in pool '%s': largest free block is %s "
          "(the old buffer is unchanged)",
          handle, Bytes(size_bytes), config_.name, Bytes(allocator_.largest_free_bytes())));
    }
    uint8_t* base = base_.load();
    std::memcpy(base + allocator_.offset(*moved), base + allocator_.offset(entry.block),
                std::min(old_capacity, allocator_.capacity(*moved)));
    allocator_.Free(entry.block);
    entry.block = *moved;
    ++allocs_;
    ++frees_;
  }
  entry.size_bytes = size_bytes;
  Persist(handle);
  Account(refs, static_cast<int64_t>(allocator_.capacity(entry.block)) -
                    static_cast<int64_t>(old_capacity), 0);
  NoteUsed();
  return Describe(handle, entry);
}

absl::StatusOr<BufferInfo> Pool::Retain(SessionRefs& refs, uint64_t handle) {
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
  uint64_t capacity = allocator_.capacity(entry->block);
  bool first = !refs.counts.contains(handle);
  if (first) {
    if (absl::Status s = CheckQuotas(refs, capacity, 1, "retain"); !s.ok()) return s;
  }
  ++entry->refs;
  Persist(handle);
  ++refs.counts[handle];
  if (first) Account(refs, static_cast<int64_t>(capacity), 1);
  return Describe(handle, *entry);
}

void Pool::FreeBlock(uint64_t handle, HandleTable::Entry& entry) {
  allocator_.Free(entry.block);
  handles_.Erase(handle);
  Persist(handle);
  ++frees_;
}

void Pool::Persist(uint64_t handle) {
  if (!state_) return;
  uint32_t slot = DecodeHandle(handle).slot;
  const HandleTable::Entry& e = handles_.At(slot);
  SlotImage image{.generation = e.generation, .refs = e.refs};
  if (e.refs > 0) {
    image.state = SlotImage::State::kLive;
    image.offset_bytes = allocator_.offset(e.block);
    image.capacity_bytes = allocator_.capacity(e.block);
    image.size_bytes = e.size_bytes;
  } else {
    image.state = e.retired ? SlotImage::State::kRetired : SlotImage::State::kFree;
  }
  state_->Write(slot, image);
}

absl::StatusOr<bool> Pool::Release(SessionRefs& refs, uint64_t handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleTable::Entry*> found = FindHeld(refs, handle, "release");
  if (!found.ok()) return found.status();
  return ReleaseHeld(refs, handle, **found);
}

bool Pool::ReleaseHeld(SessionRefs& refs, uint64_t handle, HandleTable::Entry& entry) {
  auto held = refs.counts.find(handle);
  if (--held->second == 0) {
    refs.counts.erase(held);
    Account(refs, -static_cast<int64_t>(allocator_.capacity(entry.block)), -1);
  }
  if (--entry.refs > 0) {
    Persist(handle);
    return false;
  }
  FreeBlock(handle, entry);
  return true;
}

absl::StatusOr<uint32_t> Pool::ReleaseMany(SessionRefs& refs, const std::vector<uint64_t>& handles) {
  MutexLock lock(&mu_);
  absl::flat_hash_map<uint64_t, uint32_t> wanted;
  for (uint64_t handle : handles) ++wanted[handle];
  for (const auto& [handle, count] : wanted) {  // all or nothing: check first
    absl::StatusOr<HandleTable::Entry*> found = FindHeld(refs, handle, "batch release");
    if (!found.ok()) return found.status();
    if (refs.counts[handle] < count) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "batch release in pool '%s' drops %u references to handle 0x%016x; this session "
          "holds %u (nothing was released)", config_.name, count, handle, refs.counts[handle]));
    }
  }
  uint32_t freed = 0;
  for (uint64_t handle : handles) freed += ReleaseHeld(refs, handle, *handles_.Find(handle));
  return freed;
}

absl::Status Pool::CheckHeld(const SessionRefs& refs, const std::vector<uint64_t>& handles,
                             const char* op) {
  MutexLock lock(&mu_);
  return CheckHeldLocked(refs, handles, op);
}

absl::Status Pool::CheckHeldLocked(const SessionRefs& refs, const std::vector<uint64_t>& handles,
                                   const char* op) {
  absl::flat_hash_map<uint64_t, uint32_t> wanted;
  for (uint64_t handle : handles) ++wanted[handle];
  for (const auto& [handle, count] : wanted) {
    absl::StatusOr<HandleTable::Entry*> found = FindHeld(refs, handle, op);
    if (!found.ok()) return found.status();
    uint32_t held = refs.counts.at(handle);
    if (held < count) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s in pool '%s' moves %u references to handle 0x%016x; %u are held", op,
          config_.name, count, handle, held));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BufferInfo>> Pool::Transfer(SessionRefs& from, SessionRefs& to,
                                                       const std::vector<uint64_t>& handles,
                                                       const char* op, TransferMode mode) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckHeldLocked(from, handles, op); !s.ok()) return s;
  if (mode == TransferMode::kShare) {
    absl::flat_hash_map<uint64_t, uint32_t> added;
    for (uint64_t handle : handles) ++added[handle];
    for (const auto& [handle, count] : added) {
      if (uint32_t refs = handles_.Find(handle)->refs; refs > UINT32_MAX - count) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "%s of handle 0x%016x: it has %u references, %u more exceed the maximum %u", op,
            handle, refs, count, UINT32_MAX));
      }
    }
  }
  std::vector<BufferInfo> moved;
  for (uint64_t handle : handles) {
    HandleTable::Entry& entry = *handles_.Find(handle);
    auto capacity = static_cast<int64_t>(allocator_.capacity(entry.block));
    if (mode == TransferMode::kShare) {
      ++entry.refs;
      Persist(handle);
    } else if (auto held = from.counts.find(handle); --held->second == 0) {
      from.counts.erase(held);
      Account(from, -capacity, -1);
    }
    if (to.counts[handle]++ == 0) Account(to, capacity, 1);
    moved.push_back(Describe(handle, entry));
  }
  return moved;
}

std::vector<Pool::References> Pool::Query(const SessionRefs& refs,
                                          const std::vector<uint64_t>& handles) const {
  MutexLock lock(&mu_);
  std::vector<References> out;
  out.reserve(handles.size());
  for (uint64_t handle : handles) {
    References r;
    if (const HandleTable::Entry* entry = handles_.Find(handle); entry != nullptr) {
      r.total = entry->refs;
      if (auto held = refs.counts.find(handle); held != refs.counts.end()) r.held = held->second;
    }
    out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::vector<BufferInfo>> Pool::AllocateMany(SessionRefs& refs, uint64_t size_bytes,
                                                           uint32_t count, bool zero) {
  std::vector<BufferInfo> out;
  {
    MutexLock lock(&mu_);
    FailReason reason;
    if (absl::Status s = CheckRequestSize(size_bytes, "allocation", &reason); !s.ok()) {
      NoteFailure(reason);
      return s;
    }
    if (absl::Status s = CheckQuotas(refs, allocator_.RoundUp(size_bytes) * count, count,
                                     "batch allocation");
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
    // Blocks first, handles after: a batch that does not fit changes nothing.
    std::vector<TlsfAllocator::BlockId> blocks;
    blocks.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      std::optional<TlsfAllocator::BlockId> block = allocator_.Allocate(size_bytes);
      if (!block) {
        for (TlsfAllocator::BlockId b : blocks) allocator_.Free(b);
        NoteFailure(FailReason::kNoSpace);
        return absl::ResourceExhaustedError(absl::StrFormat(
            "batch of %u allocations of %s does not fit in pool '%s': %u fit (largest free "
            "block now %s); nothing was allocated",
            count, Bytes(size_bytes), config_.name, i, Bytes(allocator_.largest_free_bytes())));
      }
      blocks.push_back(*block);
    }
    out.reserve(count);
    for (TlsfAllocator::BlockId block : blocks) {
      uint64_t handle = handles_.Insert(block, size_bytes);
      Persist(handle);
      refs.counts[handle] = 1;
      Account(refs, static_cast<int64_t>(allocator_.capacity(block)), 1);
      ++allocs_;
      out.push_back(Describe(handle, *handles_.Find(handle)));
    }
    NoteUsed();
  }
  if (zero) {  // outside the lock, as Allocate
    uint8_t* base = base_.load();
    for (const BufferInfo& info : out) std::memset(base + info.offset_bytes, 0, info.size_bytes);
  }
  return out;
}

uint64_t Pool::DropAll(SessionRefs& refs) {
  Account(refs, -static_cast<int64_t>(refs.held_bytes), -static_cast<int64_t>(refs.counts.size()));
  uint64_t released = 0;
  for (const auto& [handle, count] : refs.counts) {
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
  refs.counts.clear();
  refs.held_bytes = 0;
  return released;
}

uint64_t Pool::ReleaseAll(SessionRefs& refs) {
  MutexLock lock(&mu_);
  return DropAll(refs);
}

uint64_t Pool::ReleaseUnclaimed() {
  MutexLock lock(&mu_);
  return DropAll(unclaimed_);
}

absl::StatusOr<Reclaimed> Pool::Reclaim(SessionRefs& refs, uint64_t handle, uint32_t count) {
  MutexLock lock(&mu_);
  HandleTable::Entry* entry = handles_.Find(handle);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrFormat("reclaim in pool '%s': %s", config_.name,
                                               handles_.DescribeMissing(handle)));
  }
  auto unclaimed = unclaimed_.counts.find(handle);
  if (count == 0 || unclaimed == unclaimed_.counts.end()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "reclaim of %u references to handle 0x%016x in pool '%s': %u are unclaimed (the grace "
        "period may be over, or another session reclaimed them)",
        count, handle, config_.name,
        unclaimed == unclaimed_.counts.end() ? 0 : unclaimed->second));
  }
  uint32_t granted = std::min(count, unclaimed->second);
  uint64_t capacity = allocator_.capacity(entry->block);
  if ((unclaimed->second -= granted) == 0) {
    unclaimed_.counts.erase(unclaimed);
    Account(unclaimed_, -static_cast<int64_t>(capacity), -1);
  }
  // The references existed before the restart: quotas do not refuse them.
  bool first = !refs.counts.contains(handle);
  refs.counts[handle] += granted;
  if (first) Account(refs, static_cast<int64_t>(capacity), 1);
  return Reclaimed{Describe(handle, *entry), granted};
}

void Pool::RemoveState() {
  if (state_) state_->Remove();
}

absl::Status Pool::ChownState(uid_t uid, gid_t gid) {
  return state_ ? state_->Chown(uid, gid) : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Pool>> Pool::Adopt(PoolConfig config, uint32_t index,
                                                  uint8_t* base, std::string shm_name,
                                                  std::unique_ptr<StateTable> state) {
  std::vector<SlotImage> images = state->Load();
  std::string object = state->object_name();
  auto pool = std::make_unique<Pool>(std::move(config), index, base, std::move(shm_name),
                                     std::move(state));
  MutexLock lock(&pool->mu_);
  auto corrupt = [&](uint32_t slot, const std::string& what) {
    return absl::DataLossError(absl::StrFormat("state table '%s', slot %u: %s", object, slot, what));
  };
  std::vector<uint32_t> live;
  for (uint32_t slot = 0; slot < images.size(); ++slot) {
    const SlotImage& image = images[slot];
    if (image.generation == 0 || image.generation > kMaxGeneration) {
      return corrupt(slot, absl::StrFormat("generation %u outside 1..%u", image.generation,
                                           kMaxGeneration));
    }
    if (image.state == SlotImage::State::kLive) {
      if (image.refs == 0 || image.size_bytes > image.capacity_bytes) {
        return corrupt(slot, absl::StrFormat("live with %u references and size %u in a %u-byte block",
                                             image.refs, image.size_bytes, image.capacity_bytes));
      }
      live.push_back(slot);
    } else if (image.state != SlotImage::State::kFree && image.state != SlotImage::State::kRetired) {
      return corrupt(slot, absl::StrFormat("unknown state %d", static_cast<int>(image.state)));
    }
  }
  std::sort(live.begin(), live.end(), [&](uint32_t a, uint32_t b) {
    return images[a].offset_bytes < images[b].offset_bytes;
  });
  std::vector<HandleTable::Entry> entries(images.size());
  for (uint32_t slot : live) {
    const SlotImage& image = images[slot];
    std::optional<TlsfAllocator::BlockId> block =
        pool->allocator_.AdoptUsed(image.offset_bytes, image.capacity_bytes);
    if (!block) {
      return corrupt(slot, absl::StrFormat(
          "block at offset %u of %u bytes is misaligned, overlaps another or ends past the "
          "%u-byte pool", image.offset_bytes, image.capacity_bytes, pool->allocator_.size_bytes()));
    }
    entries[slot] = HandleTable::Entry{image.generation, image.refs, *block, image.size_bytes};
  }
  for (uint32_t slot = 0; slot < images.size(); ++slot) {
    if (images[slot].state == SlotImage::State::kLive) continue;
    entries[slot].generation = images[slot].generation;
    entries[slot].retired = images[slot].state == SlotImage::State::kRetired;
  }
  pool->handles_.Restore(std::move(entries));
  for (uint32_t slot : live) {
    uint64_t handle = pool->handles_.HandleOf(slot);
    pool->unclaimed_.counts[handle] = images[slot].refs;
    pool->unclaimed_.held_bytes += images[slot].capacity_bytes;
  }
  pool->NoteUsed();
  return pool;
}

void Pool::SessionOpened() {
  MutexLock lock(&mu_);
  ++sessions_;
}

void Pool::SessionClosed() {
  MutexLock lock(&mu_);
  --sessions_;
}

PoolStats Pool::Stats() const {
  MutexLock lock(&mu_);
  PoolStats s;
  s.size_bytes = allocator_.size_bytes();
  s.used_bytes = allocator_.used_bytes();
  s.free_bytes = allocator_.free_bytes();
  s.largest_free_bytes = allocator_.largest_free_bytes();
  s.live_buffers = handles_.live();
  s.sessions = sessions_;
  s.alignment_bytes = config_.alignment_bytes;
  s.max_alloc_bytes = max_alloc_bytes_;
  s.allocs = allocs_;
  s.frees = frees_;
  for (int r = 0; r < kFailReasons; ++r) {
    s.failed_by_reason[r] = failed_[r];
    s.failed_allocs += failed_[r];
  }
  s.peak_used_bytes = peak_used_bytes_;
  for (const auto& [handle, count] : unclaimed_.counts) s.unclaimed_references += count;
  return s;
}

SessionUsage Pool::Usage(const SessionRefs& refs) const {
  MutexLock lock(&mu_);
  return SessionUsage{refs.held_bytes, refs.counts.size()};
}

std::vector<BufferListing> Pool::ListBuffers(
    const std::vector<std::pair<uint64_t, const SessionRefs*>>& sessions, uint64_t only_session,
    size_t limit, bool* truncated) const {
  MutexLock lock(&mu_);
  std::vector<BufferListing> out;
  handles_.ForEachLive([&](uint64_t handle, const HandleTable::Entry& entry) {
    BufferListing listing;
    for (const auto& [id, refs] : sessions) {
      if (refs->counts.contains(handle)) listing.holder_session_ids.push_back(id);
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

uint64_t Pool::SetMaxAlloc(uint64_t max_alloc_bytes) {
  MutexLock lock(&mu_);
  return std::exchange(max_alloc_bytes_, max_alloc_bytes);
}

absl::Status Pool::CheckInvariants() const {
  MutexLock lock(&mu_);
  if (absl::Status s = allocator_.CheckInvariants(); !s.ok()) return s;
  if (handles_.live() != allocator_.used_blocks()) {
    return absl::InternalError(absl::StrFormat("%u live handles but %u used blocks",
                                               handles_.live(), allocator_.used_blocks()));
  }
  absl::Status status;
  handles_.ForEachLive([&](uint64_t handle, const HandleTable::Entry& entry) {
    if (status.ok() && !allocator_.is_used(entry.block)) {
      status = absl::InternalError(
          absl::StrFormat("handle 0x%016x points at block %u, which is not in use", handle, entry.block));
    }
  });
  return status;
}

}  // namespace memd
