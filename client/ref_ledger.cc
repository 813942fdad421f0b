#include "ref_ledger.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace memd {

void RefLedger::Apply(const v1::SessionRequest& request, const v1::SessionResponse& response) {
  MutexLock lock(&mu_);
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate:
    case v1::SessionRequest::kRetain:
      AddLocked(response.buffer());
      break;
    case v1::SessionRequest::kRealloc: {
      // Same handle and references; the block may have moved.
      auto it = by_handle_.find(response.buffer().handle());
      if (it == by_handle_.end()) break;
      by_offset_.erase(it->second.offset_bytes);
      it->second.offset_bytes = response.buffer().offset_bytes();
      it->second.size_bytes = response.buffer().size_bytes();
      it->second.capacity_bytes = response.buffer().capacity_bytes();
      by_offset_[it->second.offset_bytes] = it->first;
      break;
    }
    case v1::SessionRequest::kAllocateBatch:
      for (const v1::BufferInfo& b : response.buffers().buffers()) AddLocked(b);
      break;
    case v1::SessionRequest::kReceive:
      for (const v1::BufferInfo& b : response.message().buffers()) AddLocked(b);
      break;
    case v1::SessionRequest::kArenaRegister:
      AddLocked(response.arena_registered().range());
      break;
    case v1::SessionRequest::kArenaReport:
      // Idle chunks the daemon took back under pool pressure: no longer held.
      for (uint64_t handle : response.arena_reported().taken()) {
        while (RemoveLocked(handle)) {
        }
      }
      break;
    case v1::SessionRequest::kSend:
      // A moving send's references are the channel's now (the arena blocks
      // it registered, handle 0 in the request, were never this session's);
      // a sharing send keeps those it registered.
      if (!request.send().share()) {
        for (uint64_t handle : request.send().handles()) {
          if (handle != 0) RemoveLocked(handle);
        }
      } else {
        for (const v1::BufferInfo& b : response.sent().registered()) AddLocked(b);
      }
      break;
    default:
      break;
  }
}

void RefLedger::AddLocked(const v1::BufferInfo& info) {
  Entry& e = by_handle_[info.handle()];
  if (e.references > 0 && e.offset_bytes != info.offset_bytes()) by_offset_.erase(e.offset_bytes);
  e.handle = info.handle();
  e.offset_bytes = info.offset_bytes();
  e.size_bytes = info.size_bytes();
  e.capacity_bytes = info.capacity_bytes();
  ++e.references;
  by_offset_[e.offset_bytes] = e.handle;
}

bool RefLedger::RemoveLocked(uint64_t handle) {
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) return false;
  if (--it->second.references == 0) {
    auto at = by_offset_.find(it->second.offset_bytes);
    if (at != by_offset_.end() && at->second == handle) by_offset_.erase(at);
    by_handle_.erase(it);
  }
  return true;
}

bool RefLedger::Remove(uint64_t handle) {
  MutexLock lock(&mu_);
  return RemoveLocked(handle);
}

bool RefLedger::Holds(uint64_t handle) const {
  MutexLock lock(&mu_);
  return by_handle_.contains(handle);
}

std::optional<RefLedger::Entry> RefLedger::AtOffset(uint64_t offset_bytes) const {
  MutexLock lock(&mu_);
  auto at = by_offset_.find(offset_bytes);
  if (at == by_offset_.end()) return std::nullopt;
  return by_handle_.at(at->second);
}

bool RefLedger::empty() const {
  MutexLock lock(&mu_);
  return by_handle_.empty();
}

std::vector<std::pair<uint64_t, uint32_t>> RefLedger::Snapshot() const {
  MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, uint32_t>> held;
  held.reserve(by_handle_.size());
  for (const auto& [handle, e] : by_handle_) held.emplace_back(handle, e.references);
  return held;
}

std::vector<uint64_t> RefLedger::KeepGranted(
    const absl::flat_hash_map<uint64_t, uint32_t>& granted) {
  MutexLock lock(&mu_);
  std::vector<uint64_t> excess;
  absl::flat_hash_map<uint64_t, Entry> kept;
  absl::flat_hash_map<uint64_t, uint64_t> offsets;
  for (const auto& [handle, count] : granted) {
    auto it = by_handle_.find(handle);
    uint32_t keep = it == by_handle_.end() ? 0 : std::min(it->second.references, count);
    if (keep > 0) {
      Entry e = it->second;
      e.references = keep;
      kept[handle] = e;
      offsets[e.offset_bytes] = handle;
    }
    for (uint32_t i = keep; i < count; ++i) excess.push_back(handle);
  }
  lost_.clear();
  lost_offsets_.clear();
  for (const auto& [handle, entry] : by_handle_) {
    if (kept.contains(handle)) continue;
    lost_[handle] = entry.offset_bytes;
    // An arena chunk and its first range share an offset: name the range.
    auto [at, fresh] = lost_offsets_.try_emplace(entry.offset_bytes, handle);
    if (!fresh && entry.capacity_bytes < by_handle_.at(at->second).capacity_bytes) at->second = handle;
  }
  by_handle_ = std::move(kept);  // references not granted are lost
  by_offset_ = std::move(offsets);
  return excess;
}

bool RefLedger::LostAtReconnect(uint64_t handle) const {
  MutexLock lock(&mu_);
  return lost_.contains(handle);
}

std::optional<uint64_t> RefLedger::LostAtOffset(uint64_t offset_bytes) const {
  MutexLock lock(&mu_);
  auto it = lost_offsets_.find(offset_bytes);
  if (it == lost_offsets_.end()) return std::nullopt;
  return it->second;
}

absl::Status RefLedger::LostError(const void* ptr, uint64_t handle) {
  return absl::NotFoundError(absl::StrFormat(
      "%p is gone: the daemon restarted and released its handle 0x%016x before this process "
      "reconnected to reclaim it (the reclaim grace ended while the process was stopped or "
      "could not connect); nothing was sent or freed by this process", ptr, handle));
}

void RefLedger::Clear() {
  MutexLock lock(&mu_);
  by_handle_.clear();
  by_offset_.clear();
}

}  // namespace memd
