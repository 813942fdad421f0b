#include "pool/handle_table.h"

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"

namespace memd {

uint64_t HandleTable::Insert(TlsfAllocator::BlockId block, uint32_t slack_bytes) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(Entry{.generation_word = 1});
  }
  Entry& entry = slots_[slot];
  entry.refs = 1;
  entry.block = block;
  entry.slack_bytes = slack_bytes;
  ++live_;
  return EncodeHandle({pool_index_, entry.generation(), slot});
}

HandleTable::Entry* HandleTable::Find(uint64_t handle) {
  return const_cast<Entry*>(static_cast<const HandleTable*>(this)->Find(handle));
}

const HandleTable::Entry* HandleTable::Find(uint64_t handle) const {
  HandleParts parts = DecodeHandle(handle);
  if (parts.pool_index != pool_index_ || parts.slot >= slots_.size()) return nullptr;
  const Entry& entry = slots_[parts.slot];
  if (entry.refs == 0 || entry.generation() != parts.generation) return nullptr;
  return &entry;
}

void HandleTable::Erase(uint64_t handle) {
  HandleParts parts = DecodeHandle(handle);
  Entry& entry = slots_[parts.slot];
  entry.refs = 0;
  entry.block = TlsfAllocator::kNoBlock;
  entry.slack_bytes = 0;
  --live_;
  if (entry.generation() == kMaxGeneration) {
    entry.generation_word |= Entry::kRetiredBit;
    ++retired_;  // never reuse: its next handle would repeat generation 1
    return;
  }
  ++entry.generation_word;
  free_slots_.push_back(parts.slot);
}

void HandleTable::Restore(std::vector<Entry> slots) {
  slots_ = std::move(slots);
  free_slots_.clear();
  live_ = retired_ = 0;
  // Reverse order, so the lowest free slot is reused first (as Insert does).
  for (uint32_t slot = static_cast<uint32_t>(slots_.size()); slot-- > 0;) {
    const Entry& e = slots_[slot];
    if (e.refs > 0) {
      ++live_;
    } else if (e.retired()) {
      ++retired_;
    } else {
      free_slots_.push_back(slot);
    }
  }
}

uint64_t HandleTable::HandleOf(uint32_t slot) const {
  return EncodeHandle({pool_index_, slots_[slot].generation(), slot});
}

std::string HandleTable::DescribeMissing(uint64_t handle) const {
  HandleParts parts = DecodeHandle(handle);
  if (parts.pool_index != pool_index_) {
    return absl::StrFormat("handle 0x%016x belongs to pool index %u, not this pool (index %u)",
                           handle, parts.pool_index, pool_index_);
  }
  if (parts.generation == 0 || parts.slot >= slots_.size() ||
      parts.generation > slots_[parts.slot].generation()) {
    return absl::StrFormat("handle 0x%016x was never issued", handle);
  }
  return absl::StrFormat("handle 0x%016x was freed (stale)", handle);
}

}  // namespace memd
