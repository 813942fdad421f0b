// HolderLedger: where a holder's count of a buffer lives. The first holder of
// a buffer keeps its count in the record of the buffer's handle-table slot
// (12 bytes; most buffers have one holder); any further holder in its own
// map. A count never sits in both places for one holder. Row H of
// docs/PERFORMANCE.md explains the bytes.
#include <utility>

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"
#include "pool/holder_ledger.h"

namespace memd {
namespace {

// Records grow to a slot at most this far past their end; a handle beyond
// (never one the pool's handle table issued, which counts slots from 0)
// keeps its count in the holder's map.
constexpr uint64_t kMaxRecordGap = 1 << 16;

uint32_t TagOf(uint64_t handle) { return static_cast<uint32_t>(handle >> 32); }
uint64_t HandleOf(uint32_t tag, uint64_t slot) { return (uint64_t{tag} << 32) | slot; }

}  // namespace

uint32_t HolderLedger::NewIndex(HolderId id) {
  if (holder_by_index_.empty()) holder_by_index_.push_back(HolderId::kNone);  // 0: no holder
  if (!free_indices_.empty()) {
    uint32_t index = free_indices_.back();
    free_indices_.pop_back();
    holder_by_index_[index] = id;
    return index;
  }
  holder_by_index_.push_back(id);
  return static_cast<uint32_t>(holder_by_index_.size() - 1);
}

const HolderLedger::SlotHolder* HolderLedger::RecordOf(uint64_t handle) const {
  uint32_t slot = DecodeHandle(handle).slot;
  return slot < slot_holders_.size() ? &slot_holders_[slot] : nullptr;
}

HolderLedger::SlotHolder* HolderLedger::RecordOf(uint64_t handle, bool grow) {
  uint32_t slot = DecodeHandle(handle).slot;
  if (slot >= slot_holders_.size()) {
    if (!grow || slot - slot_holders_.size() > kMaxRecordGap) return nullptr;
    slot_holders_.resize(uint64_t{slot} + 1);  // geometric growth, as push_back
  }
  return &slot_holders_[slot];
}

uint32_t HolderLedger::CountOf(const Holder& holder, uint64_t handle) const {
  const SlotHolder* record = RecordOf(handle);
  if (record != nullptr && record->holder == holder.index && record->tag == TagOf(handle)) {
    return record->refs;
  }
  auto it = holder.counts.find(handle);
  return it == holder.counts.end() ? 0 : it->second;
}

void HolderLedger::StoreCount(Holder& holder, uint64_t handle, uint32_t before, uint32_t now) {
  holder.references += static_cast<uint64_t>(now) - before;  // modular when it falls
  SlotHolder* record = RecordOf(handle, /*grow=*/before == 0);
  if (record != nullptr && record->holder == holder.index && record->tag == TagOf(handle)) {
    if (now == 0) {
      *record = SlotHolder{};
      --holder.in_slots;
    } else {
      record->refs = now;
    }
    return;
  }
  if (before == 0 && record != nullptr && record->holder == 0) {
    *record = SlotHolder{.tag = TagOf(handle), .holder = holder.index, .refs = now};
    ++holder.in_slots;
    return;
  }
  if (now == 0) {
    holder.counts.erase(handle);
  } else {
    holder.counts[handle] = now;
  }
}

template <typename Fn>
void HolderLedger::ForEachRecord(const Holder& holder, Fn fn) const {
  uint64_t left = holder.in_slots;
  for (uint64_t slot = 0; left > 0 && slot < slot_holders_.size(); ++slot) {
    const SlotHolder& record = slot_holders_[slot];
    if (record.holder != holder.index) continue;
    fn(HandleOf(record.tag, slot), record.refs);
    --left;
  }
}

absl::flat_hash_map<uint64_t, uint32_t> HolderLedger::Holdings(HolderId id) const {
  const Holder& h = At(id);
  absl::flat_hash_map<uint64_t, uint32_t> out = h.counts;
  ForEachRecord(h, [&](uint64_t handle, uint32_t refs) { out.emplace(handle, refs); });
  return out;
}

absl::flat_hash_map<uint64_t, uint32_t> HolderLedger::TakeAll(HolderId id) {
  Holder& h = holders_.at(id);
  Account(h, Delta{.held_bytes = -static_cast<int64_t>(h.usage.held_bytes),
                   .held_buffers = -static_cast<int64_t>(h.usage.held_buffers)});
  absl::flat_hash_map<uint64_t, uint32_t> taken = std::exchange(h.counts, {});
  ForEachRecord(h, [&](uint64_t handle, uint32_t refs) {
    taken.emplace(handle, refs);
    slot_holders_[DecodeHandle(handle).slot] = SlotHolder{};
  });
  h.in_slots = 0;
  h.references = 0;
  for (const auto& [handle, refs] : taken) NoteKeyed(h, handle, 0);
  return taken;
}

absl::flat_hash_map<uint64_t, uint64_t> HolderLedger::ReferencesByHandle() const {
  absl::flat_hash_map<uint64_t, uint64_t> out;
  for (const auto& [id, holder] : holders_) {
    for (const auto& [handle, count] : holder.counts) out[handle] += count;
  }
  for (uint64_t slot = 0; slot < slot_holders_.size(); ++slot) {
    const SlotHolder& record = slot_holders_[slot];
    if (record.holder != 0) out[HandleOf(record.tag, slot)] += record.refs;
  }
  return out;
}

absl::Status HolderLedger::CheckInvariants() const {
  struct Seen {
    uint64_t records = 0, refs = 0;
  };
  absl::flat_hash_map<uint32_t, Seen> seen;  // Holder::index -> its slot records
  for (uint64_t slot = 0; slot < slot_holders_.size(); ++slot) {
    const SlotHolder& r = slot_holders_[slot];
    if (r.holder == 0) {
      if (r.tag != 0 || r.refs != 0) {
        return absl::InternalError(absl::StrFormat(
            "empty slot record %u has tag 0x%08x and %u references", slot, r.tag, r.refs));
      }
      continue;
    }
    uint64_t handle = HandleOf(r.tag, slot);
    HolderId id = r.holder < holder_by_index_.size() ? holder_by_index_[r.holder] : HolderId::kNone;
    auto h = holders_.find(id);
    if (h == holders_.end() || h->second.index != r.holder) {
      return absl::InternalError(absl::StrFormat(
          "slot record of handle 0x%016x names holder index %u, which no open holder has", handle,
          r.holder));
    }
    if (r.refs == 0) {
      return absl::InternalError(absl::StrFormat(
          "slot record of handle 0x%016x names holder %u with no reference", handle, id));
    }
    if (h->second.counts.contains(handle)) {
      return absl::InternalError(absl::StrFormat(
          "holder %u counts handle 0x%016x both in its slot record and in its map", id, handle));
    }
    ++seen[r.holder].records;
    seen[r.holder].refs += r.refs;
  }
  for (const auto& [id, h] : holders_) {
    auto it = seen.find(h.index);
    const Seen in_records = it == seen.end() ? Seen{} : it->second;
    uint64_t refs = in_records.refs;
    for (const auto& [handle, count] : h.counts) {
      if (count == 0) {
        return absl::InternalError(
            absl::StrFormat("holder %u has a zero count of handle 0x%016x", id, handle));
      }
      refs += count;
    }
    if (holder_by_index_[h.index] != id || in_records.records != h.in_slots ||
        h.references != refs || h.usage.held_buffers != h.in_slots + h.counts.size()) {
      return absl::InternalError(absl::StrFormat(
          "holder %u (index %u): %u slot records and %u map entries holding %u references, but "
          "its counters say %u records, %u buffers, %u references", id, h.index, in_records.records,
          h.counts.size(), refs, h.in_slots, h.usage.held_buffers, h.references));
    }
  }
  return absl::OkStatus();
}

}  // namespace memd
