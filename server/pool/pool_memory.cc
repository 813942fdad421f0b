// Pool: where its memory is (see memory_ready() in pool.h).
#include "pool/pool.h"

#include "absl/strings/str_format.h"

namespace memd {

void Pool::SetMemory(uint8_t* base) { base_.store(base, std::memory_order_release); }

uint64_t Pool::live_buffers() const {
  MutexLock lock(&mu_);
  return handles_.live();
}

absl::StatusOr<SegmentIdentity> Pool::recorded_memory() const {
  if (!state_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("pool '%s' keeps no state table", config_.name));
  }
  return state_->identity().memory;
}

absl::Status Pool::RenewMemory(uint8_t* base, const SegmentIdentity& memory, uint64_t segment_id) {
  MutexLock lock(&mu_);
  if (uint64_t live = handles_.live(); live > 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' still has %u live buffers in its previous memory", config_.name, live));
  }
  if (state_) state_->SetMemory(memory, segment_id);
  segment_id_.store(segment_id, std::memory_order_release);
  base_.store(base, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace memd
