#include "startup/pool_memory.h"

#include <random>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"

namespace memd {

uint64_t NewSegmentId() {
  std::random_device device;
  uint64_t id = (static_cast<uint64_t>(device()) << 32) | device();
  return id == 0 ? 1 : id;
}

void PoolMemory::Add(Pool* pool, std::unique_ptr<Segment> segment, bool reserve) {
  MutexLock lock(&mu_);
  if (hook_ && segment != nullptr) hook_(*pool, segment->fd());
  slots_.push_back(Slot{pool, std::move(segment), reserve});
}

absl::Status PoolMemory::WithDescriptor(uint32_t index,
                                        const std::function<void(int, uint64_t)>& fn) const {
  MutexLock lock(&mu_);
  if (index >= slots_.size()) {
    return absl::NotFoundError(absl::StrFormat("no pool number %u", index));
  }
  const Slot& slot = slots_[index];
  if (slot.segment == nullptr) {
    return absl::UnavailableError(absl::StrFormat(
        "pool '%s' waits for a client of the previous daemon to hand its memory back", slot.pool->name()));
  }
  fn(slot.segment->fd(), slot.segment->size_bytes());
  return absl::OkStatus();
}

absl::Status PoolMemory::Offer(uint32_t index, uint64_t segment_id, UniqueFd fd) {
  MutexLock lock(&mu_);
  if (index >= slots_.size()) {
    return absl::NotFoundError(absl::StrFormat("no pool number %u", index));
  }
  Slot& slot = slots_[index];
  Pool& pool = *slot.pool;
  if (segment_id != pool.segment_id()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' is segment 0x%016x now, not 0x%016x", pool.name(), pool.segment_id(),
        segment_id));
  }
  if (slot.segment != nullptr) return absl::OkStatus();  // another client was first
  absl::StatusOr<SegmentIdentity> expected = pool.recorded_memory();
  if (!expected.ok()) return expected.status();
  absl::StatusOr<std::unique_ptr<Segment>> segment =
      Segment::FromDescriptor(std::move(fd), *expected, pool.shm_name());
  if (!segment.ok()) return segment.status();
  slot.segment = std::move(*segment);
  pool.SetMemory(slot.segment->base());
  if (hook_) hook_(pool, slot.segment->fd());
  spdlog::warn("pool '{}': a client handed back the previous daemon's memory; serving again",
               pool.name());
  return absl::OkStatus();
}

absl::Status PoolMemory::RenewLocked(Slot& slot) {
  if (slot.segment != nullptr) return absl::OkStatus();
  Pool& pool = *slot.pool;
  absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Create(SegmentOptions{
      .label = pool.shm_name(), .size_bytes = pool.size_bytes(), .reserve = slot.reserve});
  if (!segment.ok()) return segment.status();
  if (absl::Status s = pool.RenewMemory((*segment)->base(), (*segment)->identity(), NewSegmentId());
      !s.ok()) {
    return s;
  }
  slot.segment = std::move(*segment);
  if (hook_) hook_(pool, slot.segment->fd());
  return absl::OkStatus();
}

absl::Status PoolMemory::Renew(uint32_t index) {
  MutexLock lock(&mu_);
  if (index >= slots_.size()) {
    return absl::NotFoundError(absl::StrFormat("no pool number %u", index));
  }
  return RenewLocked(slots_[index]);
}

int PoolMemory::RenewPending() {
  MutexLock lock(&mu_);
  int renewed = 0;
  for (Slot& slot : slots_) {
    if (slot.segment != nullptr) continue;
    if (absl::Status s = RenewLocked(slot); !s.ok()) {
      spdlog::error("pool '{}': cannot continue in new memory: {}", slot.pool->name(),
                    std::string(s.message()));
      continue;
    }
    spdlog::warn("pool '{}': no client handed the previous daemon's memory back within the "
                 "reclaim grace; it continues in new memory", slot.pool->name());
    ++renewed;
  }
  return renewed;
}

bool PoolMemory::pending(uint32_t index) const {
  MutexLock lock(&mu_);
  return index < slots_.size() && slots_[index].segment == nullptr;
}

}  // namespace memd
