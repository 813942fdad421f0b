#include "holdings.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace memd {

void Holdings::Apply(const v1::SessionRequest& request, const v1::SessionResponse& response) {
  MutexLock lock(&mu_);
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate:
    case v1::SessionRequest::kRetain:
      AddLocked(response.buffer(), Kind::kBuffer);
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
      for (const v1::BufferInfo& b : response.buffers().buffers()) AddLocked(b, Kind::kBuffer);
      break;
    case v1::SessionRequest::kReceive:
      for (const v1::BufferInfo& b : response.message().buffers()) AddLocked(b, Kind::kBuffer);
      break;
    case v1::SessionRequest::kArenaRegister: {
      const v1::BufferInfo& range = response.arena_registered().range();
      AddLocked(range, Kind::kRange);
      SetRangeLocked(range.offset_bytes(), range.handle(), RangeState::kLive);
      break;
    }
    case v1::SessionRequest::kArenaReport:
      // Idle chunks the daemon took back under pool pressure: no longer held.
      for (uint64_t handle : response.arena_reported().taken()) {
        while (RemoveLocked(handle)) {
        }
      }
      break;
    case v1::SessionRequest::kSend:
      if (!request.send().share()) {
        // A moving send's references are the channel's now; the arena blocks
        // it registered (handle 0 in the request) were never this session's.
        GaveToChannelLocked(request.send().handles());
        for (const v1::BufferInfo& b : response.sent().registered()) {
          SentAwayLocked(b.offset_bytes(), b.handle(), /*registered=*/true);
        }
      } else {
        // A sharing send keeps the ranges it registered.
        for (const v1::BufferInfo& b : response.sent().registered()) {
          AddLocked(b, Kind::kRange);
          SetRangeLocked(b.offset_bytes(), b.handle(), RangeState::kLive);
        }
      }
      break;
    default:
      break;
  }
}

void Holdings::GaveToChannel(absl::Span<const uint64_t> handles) {
  MutexLock lock(&mu_);
  GaveToChannelLocked(handles);
}

void Holdings::GaveToChannelLocked(absl::Span<const uint64_t> handles) {
  for (uint64_t handle : handles) {
    auto it = handle == 0 ? by_handle_.end() : by_handle_.find(handle);
    if (it == by_handle_.end()) continue;
    const Entry entry = it->second;
    RemoveLocked(handle);
    if (entry.kind == Kind::kRange && !by_handle_.contains(handle)) {
      SentAwayLocked(entry.offset_bytes, handle, /*registered=*/false);
    }
  }
}

void Holdings::SentAwayLocked(uint64_t offset, uint64_t handle, bool registered) {
  SetRangeLocked(offset, handle, RangeState::kParked);
  sent_away_.push_back(SentAway{offset, handle, registered});
}

void Holdings::AddLocked(const v1::BufferInfo& info, Kind kind) {
  auto [it, fresh] = by_handle_.try_emplace(info.handle());
  Entry& e = it->second;
  if (!fresh && e.offset_bytes != info.offset_bytes()) by_offset_.erase(e.offset_bytes);
  if (fresh) e.kind = kind;  // a retain of a chunk or range keeps its kind
  e.handle = info.handle();
  e.offset_bytes = info.offset_bytes();
  e.size_bytes = info.size_bytes();
  e.capacity_bytes = info.capacity_bytes();
  ++e.references;
  by_offset_[e.offset_bytes] = e.handle;
}

bool Holdings::RemoveLocked(uint64_t handle) {
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) return false;
  if (--it->second.references == 0) {
    const Entry gone = it->second;
    auto at = by_offset_.find(gone.offset_bytes);
    if (at != by_offset_.end() && at->second == handle) by_offset_.erase(at);
    by_handle_.erase(it);
    if (gone.kind == Kind::kChunk) ChunkGoneLocked(gone);
  }
  return true;
}

void Holdings::ChunkGoneLocked(const Entry& chunk) {
  // Its blocks' slots go with it: the memory may come back as another
  // chunk, whose blocks must not inherit a handle.
  const uint64_t end = chunk.offset_bytes + chunk.capacity_bytes;
  absl::erase_if(ranges_, [&](const auto& slot) {
    if (slot.first < chunk.offset_bytes || slot.first >= end) return false;
    if (slot.second.state == RangeState::kParked) --parked_;
    return true;
  });
  lost_chunks_.push_back(chunk.handle);
}

bool Holdings::Remove(uint64_t handle) {
  MutexLock lock(&mu_);
  return RemoveLocked(handle);
}

bool Holdings::Holds(uint64_t handle) const {
  MutexLock lock(&mu_);
  return by_handle_.contains(handle);
}

std::optional<Holdings::Entry> Holdings::AtOffset(uint64_t offset_bytes) const {
  MutexLock lock(&mu_);
  auto at = by_offset_.find(offset_bytes);
  if (at == by_offset_.end()) return std::nullopt;
  return by_handle_.at(at->second);
}

void Holdings::MarkChunk(uint64_t handle) {
  MutexLock lock(&mu_);
  if (auto it = by_handle_.find(handle); it != by_handle_.end()) it->second.kind = Kind::kChunk;
}

std::optional<Holdings::Range> Holdings::RangeAt(uint64_t offset_bytes) const {
  MutexLock lock(&mu_);
  auto it = ranges_.find(offset_bytes);
  if (it == ranges_.end()) return std::nullopt;
  return it->second;
}

void Holdings::SetRange(uint64_t offset_bytes, uint64_t handle, RangeState state) {
  MutexLock lock(&mu_);
  SetRangeLocked(offset_bytes, handle, state);
}

void Holdings::SetRangeLocked(uint64_t offset_bytes, uint64_t handle, RangeState state) {
  auto [it, fresh] = ranges_.try_emplace(offset_bytes);
  const bool was_parked = !fresh && it->second.state == RangeState::kParked;
  if (was_parked != (state == RangeState::kParked)) was_parked ? --parked_ : ++parked_;
  it->second = Range{handle, state};
}

void Holdings::EraseRange(uint64_t offset_bytes) {
  MutexLock lock(&mu_);
  auto it = ranges_.find(offset_bytes);
  if (it == ranges_.end()) return;
  if (it->second.state == RangeState::kParked) --parked_;
  ranges_.erase(it);
}

std::vector<std::pair<uint64_t, uint64_t>> Holdings::Parked(size_t max) const {
  MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, uint64_t>> parked;
  for (const auto& [offset, range] : ranges_) {
    if (parked.size() == max || parked.size() == parked_) break;
    if (range.state == RangeState::kParked) parked.emplace_back(offset, range.handle);
  }
  return parked;
}

bool Holdings::AnyParked() const {
  MutexLock lock(&mu_);
  return parked_ > 0;
}

std::vector<uint64_t> Holdings::TakeLostChunks() {
  MutexLock lock(&mu_);
  return std::exchange(lost_chunks_, {});
}

std::vector<Holdings::SentAway> Holdings::TakeSentAway() {
  MutexLock lock(&mu_);
  return std::exchange(sent_away_, {});
}

bool Holdings::empty() const {
  MutexLock lock(&mu_);
  return by_handle_.empty();
}

std::vector<std::pair<uint64_t, uint32_t>> Holdings::Snapshot() const {
  MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, uint32_t>> held;
  held.reserve(by_handle_.size());
  for (const auto& [handle, e] : by_handle_) held.emplace_back(handle, e.references);
  return held;
}

std::vector<uint64_t> Holdings::KeepGranted(
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
  std::vector<Entry> lost_chunks;
  for (const auto& [handle, entry] : by_handle_) {
    if (kept.contains(handle)) continue;
    if (entry.kind == Kind::kChunk) lost_chunks.push_back(entry);
    lost_[handle] = entry.offset_bytes;
    // An arena chunk and its first range share an offset: name the range.
    auto [at, fresh] = lost_offsets_.try_emplace(entry.offset_bytes, handle);
    if (!fresh && entry.capacity_bytes < by_handle_.at(at->second).capacity_bytes) at->second = handle;
  }
  by_handle_ = std::move(kept);  // references not granted are lost
  by_offset_ = std::move(offsets);
  for (const Entry& chunk : lost_chunks) ChunkGoneLocked(chunk);
  return excess;
}

bool Holdings::LostAtReconnect(uint64_t handle) const {
  MutexLock lock(&mu_);
  return lost_.contains(handle);
}

std::optional<uint64_t> Holdings::LostAtOffset(uint64_t offset_bytes) const {
  MutexLock lock(&mu_);
  auto it = lost_offsets_.find(offset_bytes);
  if (it == lost_offsets_.end()) return std::nullopt;
  return it->second;
}

absl::Status Holdings::LostError(const void* ptr, uint64_t handle) {
  return absl::NotFoundError(absl::StrFormat(
      "%p is gone: the daemon restarted and released its handle 0x%016x before this process "
      "reconnected to reclaim it (the reclaim grace ended while the process was stopped or "
      "could not connect); nothing was sent or freed by this process", ptr, handle));
}

void Holdings::Clear() {
  MutexLock lock(&mu_);
  for (const auto& [handle, entry] : by_handle_) {
    if (entry.kind == Kind::kChunk) lost_chunks_.push_back(handle);
  }
  by_handle_.clear();
  by_offset_.clear();
  ranges_.clear();
  parked_ = 0;
}

}  // namespace memd
