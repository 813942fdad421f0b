#include "pool/tlsf_allocator.h"

#include <algorithm>
#include <bit>
#include <iterator>

#include "absl/strings/str_format.h"

namespace memd {

TlsfAllocator::TlsfAllocator(uint64_t size_bytes, uint64_t granule)
    : granule_(granule),
      granule_log2_(std::countr_zero(granule)),
      size_bytes_(size_bytes & ~(granule - 1)) {
  for (auto& row : heads_) row.fill(kNoBlock);
  // Block 0 always starts at offset 0: merges keep the left block's id.
  BlockId whole = NewBlock();
  blocks_[whole].offset = 0;
  blocks_[whole].size = static_cast<uint32_t>(size_bytes_ >> granule_log2_);
  InsertFree(whole);
}

std::optional<uint32_t> TlsfAllocator::Units(uint64_t bytes) const {
  if (bytes % granule_ != 0 || (bytes >> granule_log2_) > kMaxPoolGranules) return std::nullopt;
  return static_cast<uint32_t>(bytes >> granule_log2_);
}

uint64_t TlsfAllocator::RoundUp(uint64_t size_bytes) const {
  if (size_bytes == 0) return granule_;
  if (size_bytes > size_bytes_) return size_bytes;  // cannot fit; avoid overflow
  return (size_bytes + granule_ - 1) & ~(granule_ - 1);
}

TlsfAllocator::ClassIndex TlsfAllocator::ClassOf(uint64_t units) {
  if (units < kSecondLevelCount) return {0, static_cast<int>(units)};
  int log2 = 63 - std::countl_zero(units);
  int second = static_cast<int>((units >> (log2 - kSecondLevelLog2)) - kSecondLevelCount);
  return {log2 - kSecondLevelLog2 + 1, second};
}

TlsfAllocator::ClassIndex TlsfAllocator::ClassForRequest(uint64_t units) const {
  if (units >= kSecondLevelCount) {
    int log2 = 63 - std::countl_zero(units);
    units += (uint64_t{1} << (log2 - kSecondLevelLog2)) - 1;
  }
  return ClassOf(units);
}

TlsfAllocator::BlockId TlsfAllocator::FindFree(ClassIndex from) const {
  int first = from.first;
  uint32_t second_map = second_level_bitmaps_[first] & (~0u << from.second);
  if (second_map == 0) {
    if (first + 1 >= kFirstLevelCount) return kNoBlock;
    uint64_t first_map = first_level_bitmap_ & (~uint64_t{0} << (first + 1));
    if (first_map == 0) return kNoBlock;
    first = std::countr_zero(first_map);
    second_map = second_level_bitmaps_[first];
  }
  return heads_[first][std::countr_zero(second_map)];
}

TlsfAllocator::BlockId TlsfAllocator::ScanListForFit(ClassIndex cls, uint32_t units) const {
  for (BlockId b = heads_[cls.first][cls.second]; b != kNoBlock; b = blocks_[b].next_free) {
    if (blocks_[b].size >= units) return b;
  }
  return kNoBlock;
}

std::optional<TlsfAllocator::BlockId> TlsfAllocator::Allocate(uint64_t size_bytes) {
  if (size_bytes > size_bytes_) return std::nullopt;
  auto units = static_cast<uint32_t>(RoundUp(size_bytes) >> granule_log2_);
  BlockId block = FindFree(ClassForRequest(units));
  if (block == kNoBlock) block = ScanListForFit(ClassOf(units), units);
  if (block == kNoBlock) return std::nullopt;
  RemoveFree(block);
  blocks_[block].state = State::kUsed;
  SubCount(block) = 0;
  Released(block) = 0;
  SplitTail(block, units);
  used_bytes_ += Bytes(units);
  ++used_blocks_;
  return block;
}

void TlsfAllocator::Free(BlockId block) {
  if (blocks_[block].state == State::kSub) {
    BlockId parent = blocks_[block].prev_phys;
    subs_by_offset_.erase(blocks_[block].offset);
    RecycleBlock(block);
    --sub_blocks_;
    if (--SubCount(parent) == 0 && Released(parent) == 1) {
      --held_back_blocks_;
      FreeUsed(parent);
    }
    return;
  }
  if (SubCount(block) > 0) {  // its sub-blocks keep it until the last goes
    Released(block) = 1;
    ++held_back_blocks_;
    return;
  }
  FreeUsed(block);
}

std::optional<TlsfAllocator::BlockId> TlsfAllocator::AddSub(BlockId parent, uint64_t offset,
                                                            uint64_t size) {
  const Block& p = blocks_[parent];
  std::optional<uint32_t> at = Units(offset), units = Units(size);
  if (!at || !units || *units == 0 || *at < p.offset || *at - p.offset > p.size ||
      *units > p.size - (*at - p.offset) || OverlappingSub(offset, size)) {
    return std::nullopt;
  }
  BlockId sub = NewBlock();  // may grow blocks_: index, never hold references
  blocks_[sub].offset = *at;
  blocks_[sub].size = *units;
  blocks_[sub].prev_phys = parent;
  blocks_[sub].state = State::kSub;
  ++SubCount(parent);
  ++sub_blocks_;
  subs_by_offset_.emplace(*at, sub);
  return sub;
}

std::optional<TlsfAllocator::BlockId> TlsfAllocator::OverlappingSub(uint64_t offset,
                                                                    uint64_t size) const {
  const uint64_t begin = offset >> granule_log2_, end = (offset + size) >> granule_log2_;
  auto after = subs_by_offset_.lower_bound(static_cast<uint32_t>(std::min<uint64_t>(begin, UINT32_MAX)));
  if (after != subs_by_offset_.end() && after->first < end) return after->second;
  if (after != subs_by_offset_.begin()) {
    const Block& before = blocks_[std::prev(after)->second];
    if (uint64_t{before.offset} + before.size > begin) return std::prev(after)->second;
  }
  return std::nullopt;
}

void TlsfAllocator::FreeUsed(BlockId block) {
  used_bytes_ -= Bytes(blocks_[block].size);
  --used_blocks_;
  blocks_[block].state = State::kFree;
  BlockId prev = blocks_[block].prev_phys;
  if (prev != kNoBlock && blocks_[prev].state == State::kFree) {
    RemoveFree(prev);
    blocks_[prev].size += blocks_[block].size;
    blocks_[prev].next_phys = blocks_[block].next_phys;
    if (blocks_[prev].next_phys != kNoBlock) blocks_[blocks_[prev].next_phys].prev_phys = prev;
    RecycleBlock(block);
    block = prev;
  }
  BlockId next = blocks_[block].next_phys;
  if (next != kNoBlock && blocks_[next].state == State::kFree) {
    RemoveFree(next);
    blocks_[block].size += blocks_[next].size;
    blocks_[block].next_phys = blocks_[next].next_phys;
    if (blocks_[block].next_phys != kNoBlock) blocks_[blocks_[block].next_phys].prev_phys = block;
    RecycleBlock(next);
  }
  InsertFree(block);
}

bool TlsfAllocator::ResizeInPlace(BlockId block, uint64_t size_bytes) {
  if (size_bytes > size_bytes_) return false;
  auto need = static_cast<uint32_t>(RoundUp(size_bytes) >> granule_log2_);
  uint32_t current = blocks_[block].size;
  if (need == current) return true;
  if (need < current) {
    used_bytes_ -= Bytes(current - need);
    SplitTail(block, need);
    return true;
  }
  BlockId next = blocks_[block].next_phys;
  uint32_t extra = need - current;
  if (next == kNoBlock || blocks_[next].state != State::kFree || blocks_[next].size < extra) {
    return false;
  }
  RemoveFree(next);
  if (blocks_[next].size == extra) {
    blocks_[block].next_phys = blocks_[next].next_phys;
    if (blocks_[block].next_phys != kNoBlock) blocks_[blocks_[block].next_phys].prev_phys = block;
    RecycleBlock(next);
  } else {
    blocks_[next].offset += extra;
    blocks_[next].size -= extra;
    InsertFree(next);
  }
  blocks_[block].size = need;
  used_bytes_ += Bytes(extra);
  return true;
}

std::optional<TlsfAllocator::BlockId> TlsfAllocator::AdoptUsed(uint64_t offset,
                                                               uint64_t capacity) {
  BlockId tail = adopt_cursor_;
  std::optional<uint32_t> at = Units(offset), units = Units(capacity);
  if (tail == kNoBlock || !at || !units || *units == 0) return std::nullopt;
  const Block& t = blocks_[tail];
  if (t.state != State::kFree || *at < t.offset || *units > t.size ||
      *at - t.offset > t.size - *units) {
    return std::nullopt;
  }
  RemoveFree(tail);
  BlockId block = tail;
  if (*at > blocks_[tail].offset) {  // the space before it stays free
    uint32_t left = *at - blocks_[tail].offset;
    block = NewBlock();  // may grow blocks_: index, never hold references
    blocks_[block].offset = *at;
    blocks_[block].size = blocks_[tail].size - left;
    blocks_[block].prev_phys = tail;
    blocks_[block].next_phys = blocks_[tail].next_phys;
    blocks_[tail].next_phys = block;
    blocks_[tail].size = left;
    InsertFree(tail);
  }
  blocks_[block].state = State::kUsed;
  SubCount(block) = 0;
  Released(block) = 0;
  SplitTail(block, *units);
  used_bytes_ += capacity;
  ++used_blocks_;
  adopt_cursor_ = blocks_[block].next_phys;  // the free rest, if any
  return block;
}

void TlsfAllocator::SplitTail(BlockId block, uint32_t size) {
  uint32_t rest = blocks_[block].size - size;
  if (rest == 0) return;
  BlockId tail = NewBlock();  // may grow blocks_: index, never hold references
  blocks_[tail].offset = blocks_[block].offset + size;
  blocks_[tail].size = rest;
  blocks_[tail].state = State::kFree;
  blocks_[tail].prev_phys = block;
  blocks_[tail].next_phys = blocks_[block].next_phys;
  if (blocks_[tail].next_phys != kNoBlock) blocks_[blocks_[tail].next_phys].prev_phys = tail;
  blocks_[block].next_phys = tail;
  blocks_[block].size = size;
  BlockId next = blocks_[tail].next_phys;
  if (next != kNoBlock && blocks_[next].state == State::kFree) {
    RemoveFree(next);
    blocks_[tail].size += blocks_[next].size;
    blocks_[tail].next_phys = blocks_[next].next_phys;
    if (blocks_[tail].next_phys != kNoBlock) blocks_[blocks_[tail].next_phys].prev_phys = tail;
    RecycleBlock(next);
  }
  InsertFree(tail);
}

uint64_t TlsfAllocator::largest_free_bytes() const {
  if (first_level_bitmap_ == 0) return 0;
  int first = 63 - std::countl_zero(first_level_bitmap_);
  int second = 31 - std::countl_zero(second_level_bitmaps_[first]);
  uint32_t largest = 0;
  for (BlockId b = heads_[first][second]; b != kNoBlock; b = blocks_[b].next_free) {
    largest = std::max(largest, blocks_[b].size);
  }
  return Bytes(largest);
}

void TlsfAllocator::InsertFree(BlockId block) {
  ClassIndex cls = ClassOf(blocks_[block].size);
  BlockId head = heads_[cls.first][cls.second];
  blocks_[block].prev_free = kNoBlock;
  blocks_[block].next_free = head;
  if (head != kNoBlock) blocks_[head].prev_free = block;
  heads_[cls.first][cls.second] = block;
  first_level_bitmap_ |= uint64_t{1} << cls.first;
  second_level_bitmaps_[cls.first] |= 1u << cls.second;
}

void TlsfAllocator::RemoveFree(BlockId block) {
  ClassIndex cls = ClassOf(blocks_[block].size);
  BlockId prev = blocks_[block].prev_free;
  BlockId next = blocks_[block].next_free;
  if (prev != kNoBlock) blocks_[prev].next_free = next;
  if (next != kNoBlock) blocks_[next].prev_free = prev;
  if (heads_[cls.first][cls.second] == block) {
    heads_[cls.first][cls.second] = next;
    if (next == kNoBlock) {
      second_level_bitmaps_[cls.first] &= ~(1u << cls.second);
      if (second_level_bitmaps_[cls.first] == 0) first_level_bitmap_ &= ~(uint64_t{1} << cls.first);
    }
  }
  blocks_[block].prev_free = blocks_[block].next_free = kNoBlock;
}

TlsfAllocator::BlockId TlsfAllocator::NewBlock() {
  if (!recycled_ids_.empty()) {
    BlockId id = recycled_ids_.back();
    recycled_ids_.pop_back();
    blocks_[id] = Block{};
    return id;
  }
  blocks_.emplace_back();
  return static_cast<BlockId>(blocks_.size() - 1);
}

void TlsfAllocator::RecycleBlock(BlockId block) {
  blocks_[block].state = State::kRecycled;
  recycled_ids_.push_back(block);
}

absl::Status TlsfAllocator::CheckInvariants() const {
  uint64_t expected_offset = 0, used = 0, used_count = 0, free_count = 0;
  BlockId prev = kNoBlock;
  size_t walked = 0;
  for (BlockId b = 0; b != kNoBlock; b = blocks_[b].next_phys) {
    const Block& block = blocks_[b];
    if (++walked > blocks_.size()) return absl::InternalError(absl::StrFormat("physical chain has a cycle"));
    if (block.state == State::kRecycled) return absl::InternalError(absl::StrFormat("recycled block %u is in the chain", b));
    if (Bytes(block.offset) != expected_offset) {
      return absl::InternalError(absl::StrFormat("block %u at offset %u, expected %u", b, Bytes(block.offset), expected_offset));
    }
    if (block.size == 0) return absl::InternalError(absl::StrFormat("block %u is empty", b));
    if (block.prev_phys != prev) return absl::InternalError(absl::StrFormat("block %u prev_phys %u, expected %u", b, block.prev_phys, prev));
    if (block.state == State::kFree) {
      ++free_count;
      if (prev != kNoBlock && blocks_[prev].state == State::kFree) {
        return absl::InternalError(absl::StrFormat("free blocks %u and %u are adjacent (not coalesced)", prev, b));
      }
    } else {
      ++used_count;
      used += Bytes(block.size);
    }
    expected_offset += Bytes(block.size);
    prev = b;
  }
  if (expected_offset != size_bytes_) {
    return absl::InternalError(absl::StrFormat("blocks cover %u bytes, pool has %u", expected_offset, size_bytes_));
  }
  if (used != used_bytes_ || used_count != used_blocks_) {
    return absl::InternalError(absl::StrFormat("counters say %u bytes in %u blocks, chain has %u in %u", used_bytes_,
                used_blocks_, used, used_count));
  }
  uint64_t listed = 0;
  for (int f = 0; f < kFirstLevelCount; ++f) {
    bool first_bit = (first_level_bitmap_ >> f) & 1;
    if (first_bit != (second_level_bitmaps_[f] != 0)) return absl::InternalError(absl::StrFormat("first-level bit %d wrong", f));
    for (int s = 0; s < kSecondLevelCount; ++s) {
      BlockId head = heads_[f][s];
      if (((second_level_bitmaps_[f] >> s) & 1) != (head != kNoBlock)) {
        return absl::InternalError(absl::StrFormat("second-level bit %d/%d wrong", f, s));
      }
      BlockId prev_free = kNoBlock;
      for (BlockId b = head; b != kNoBlock; b = blocks_[b].next_free) {
        if (++listed > blocks_.size()) return absl::InternalError(absl::StrFormat("free list %d/%d has a cycle", f, s));
        if (blocks_[b].state != State::kFree) return absl::InternalError(absl::StrFormat("non-free block %u in list %d/%d", b, f, s));
        ClassIndex cls = ClassOf(blocks_[b].size);
        if (cls.first != f || cls.second != s) {
          return absl::InternalError(absl::StrFormat("block %u of size %u is in list %d/%d, belongs in %d/%d", b,
                      Bytes(blocks_[b].size), f, s, cls.first, cls.second));
        }
        if (blocks_[b].prev_free != prev_free) return absl::InternalError(absl::StrFormat("block %u prev_free broken", b));
        prev_free = b;
      }
    }
  }
  if (listed != free_count) return absl::InternalError(absl::StrFormat("%u blocks in free lists, %u free in chain", listed, free_count));
  uint64_t subs = 0, held_back = 0;
  for (BlockId b = 0; b < blocks_.size(); ++b) {
    const Block& block = blocks_[b];
    if (block.state == State::kUsed && block.prev_free == 1) {
      ++held_back;
      if (block.next_free == 0) return absl::InternalError(absl::StrFormat("released block %u has no sub-blocks", b));
    }
    if (block.state != State::kSub) continue;
    ++subs;
    const Block& parent = blocks_[block.prev_phys];
    if (parent.state != State::kUsed || block.offset < parent.offset ||
        uint64_t{block.offset} + block.size > uint64_t{parent.offset} + parent.size) {
      return absl::InternalError(absl::StrFormat("sub-block %u is not inside used block %u", b, block.prev_phys));
    }
  }
  uint64_t sub_end = 0;  // sub-blocks in offset order end before the next begins
  for (const auto& [at, b] : subs_by_offset_) {
    if (b >= blocks_.size() || blocks_[b].state != State::kSub || blocks_[b].offset != at ||
        at < sub_end) {
      return absl::InternalError(absl::StrFormat("sub-block %u at %u overlaps the one before or is "
                                                 "not a sub-block of its offset", b, at));
    }
    sub_end = uint64_t{at} + blocks_[b].size;
  }
  if (subs_by_offset_.size() != sub_blocks_) {
    return absl::InternalError(absl::StrFormat("%u sub-blocks by offset, counter says %u",
                                               subs_by_offset_.size(), sub_blocks_));
  }
  if (subs != sub_blocks_ || held_back != held_back_blocks_) {
    return absl::InternalError(absl::StrFormat("counters say %u sub-blocks and %u held back, records have %u and %u",
                                               sub_blocks_, held_back_blocks_, subs, held_back));
  }
  if (walked + subs + recycled_ids_.size() != blocks_.size()) {
    return absl::InternalError(absl::StrFormat("%u live + %u sub + %u recycled block records != %u", walked, subs,
                recycled_ids_.size(), blocks_.size()));
  }
  return absl::OkStatus();
}

}  // namespace memd
