// TlsfAllocator: an O(1) two-level segregated-fit allocator over an *offset
// space* [0, size). It never touches the memory it manages: every byte of
// metadata (block records, free lists, bitmaps) lives in this object, in the
// daemon's private heap, so a client that scribbles over the shared segment
// cannot corrupt it.
//
// Ownership: one per Pool, owned by it. Not thread-safe; Pool serializes calls
// under its mutex.
//
// Granularity: every block offset and size is a multiple of `granule` (the pool
// alignment, a power of two >= 8). A request of 0 bytes gets one granule.
// Neighbouring free blocks are always coalesced. Block records keep offsets
// and sizes as uint32 counts of granules (28 bytes a record, not 40: row H of
// docs/PERFORMANCE.md), so an offset space holds at most kMaxPoolGranules
// granules (pool_config.h owns that limit; ValidatePoolConfig refuses more).
//
// Classes: first level = floor(log2(units)), 32 second-level classes each
// (Masmano et al., "TLSF: a new dynamic memory allocator for real-time
// systems", 2004). Allocation rounds the request up to the next class so any
// block in the chosen list fits (good fit in O(1)); if that finds nothing, the
// request's own class is scanned, so a pool can be filled to the last block.
#ifndef MEMD_SERVER_POOL_TLSF_ALLOCATOR_H_
#define MEMD_SERVER_POOL_TLSF_ALLOCATOR_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "pool/pool_config.h"

namespace memd {

class TlsfAllocator {
 public:
  using BlockId = uint32_t;
  static constexpr BlockId kNoBlock = UINT32_MAX;

  // REQUIRES: granule is a power of two >= 8; granule <= size_bytes <=
  // kMaxPoolGranules * granule. size_bytes is rounded down to a multiple of granule.
  TlsfAllocator(uint64_t size_bytes, uint64_t granule);

  TlsfAllocator(const TlsfAllocator&) = delete;
  TlsfAllocator& operator=(const TlsfAllocator&) = delete;

  // Returns a used block of at least max(size_bytes, 1) bytes, or nullopt when
  // no free block is large enough. O(1) except at the fill-to-last fallback.
  std::optional<BlockId> Allocate(uint64_t size_bytes);

  // Returns the block to the free structure and coalesces it. O(1).
  // REQUIRES: block is a used block returned by Allocate.
  void Free(BlockId block);

  // Grows (into a free right neighbour) or shrinks the block without moving
  // its offset. Returns false, changing nothing, when it cannot grow in place.
  bool ResizeInPlace(BlockId block, uint64_t size_bytes);

  // Sub-blocks (arena ranges registered inside a session's chunk,
  // server/pool/pool_arena.cc): a record for [offset, offset + size) inside
  // the used block `parent`, with offset() and capacity() of its own. It is
  // not in the physical chain and not counted in used_bytes()/used_blocks().
  // Free(sub) drops the record; Free(parent) while it has sub-blocks only
  // marks it released, and the parent goes back to the free structure when
  // its last sub-block is freed. Sub-blocks never overlap one another (issue
  // 24: two overlapping ranges made a restart refuse the whole pool).
  // Returns nullopt, changing nothing, when the range is empty, misaligned,
  // not inside the parent or overlaps another sub-block (OverlappingSub).
  // REQUIRES: `parent` is a used block that was not released.
  std::optional<BlockId> AddSub(BlockId parent, uint64_t offset, uint64_t size);
  // A sub-block sharing a byte with [offset, offset + size), or nullopt.
  // O(log sub-blocks). REQUIRES: offset and size are multiples of granule().
  std::optional<BlockId> OverlappingSub(uint64_t offset, uint64_t size) const;
  // Used blocks freed while sub-blocks kept them (no handle points at them).
  uint64_t held_back_blocks() const { return held_back_blocks_; }
  uint64_t sub_blocks() const { return sub_blocks_; }
  bool is_sub(BlockId block) const { return blocks_[block].state == State::kSub; }
  // Sub-blocks inside a used block.
  uint32_t sub_count(BlockId used) const { return blocks_[used].next_free; }

  // Rebuild after a daemon restart: marks [offset, offset + capacity) used,
  // splitting the free space around it. REQUIRES: no call but AdoptUsed so
  // far, in ascending offset order. Returns nullopt, changing nothing, when
  // the range is empty, misaligned, overlaps an earlier one or runs past the end.
  std::optional<BlockId> AdoptUsed(uint64_t offset, uint64_t capacity);

  uint64_t offset(BlockId block) const { return Bytes(blocks_[block].offset); }
  uint64_t capacity(BlockId block) const { return Bytes(blocks_[block].size); }
  // A used block or a sub-block.
  bool is_used(BlockId block) const {
    return block < blocks_.size() &&
           (blocks_[block].state == State::kUsed || blocks_[block].state == State::kSub);
  }

  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t granule() const { return granule_; }
  uint64_t used_bytes() const { return used_bytes_; }
  uint64_t free_bytes() const { return size_bytes_ - used_bytes_; }
  uint64_t used_blocks() const { return used_blocks_; }
  // Size of the largest free block; O(length of the top non-empty list).
  uint64_t largest_free_bytes() const;

  // Bytes the allocator would hand out for a request (rounded to granules).
  uint64_t RoundUp(uint64_t size_bytes) const;

  // Verifies every structural invariant: physical chain contiguous and
  // covering [0, size), aligned, no two adjacent free blocks, every free block
  // in exactly the list of its class, bitmaps matching the lists, counters
  // matching the blocks. Returns INTERNAL naming the first violation.
  absl::Status CheckInvariants() const;

 private:
  static constexpr int kSecondLevelLog2 = 5;
  static constexpr int kSecondLevelCount = 1 << kSecondLevelLog2;  // 32
  static constexpr int kFirstLevelCount = 64;

  enum class State : uint8_t { kFree, kUsed, kRecycled, kSub };

  // One block record: 28 bytes, daemon-private. Offsets and sizes count
  // granules (units): offset(b) = blocks_[b].offset << granule_log2_.
  struct Block {
    uint32_t offset = 0;  // granules from the start of the offset space
    uint32_t size = 0;    // granules
    BlockId prev_phys = kNoBlock;  // a sub-block: its parent
    BlockId next_phys = kNoBlock;
    // Doubly linked free list of the block's class. A used block has no free
    // links; it keeps there its sub-block count and whether it was released.
    BlockId prev_free = kNoBlock;
    BlockId next_free = kNoBlock;
    State state = State::kFree;
  };

  static_assert(sizeof(Block) == 28, "row H counts on 28-byte block records");

  struct ClassIndex {
    int first;
    int second;
  };

  static ClassIndex ClassOf(uint64_t units);
  ClassIndex ClassForRequest(uint64_t units) const;
  BlockId FindFree(ClassIndex from) const;
  BlockId ScanListForFit(ClassIndex cls, uint32_t units) const;
  uint64_t Bytes(uint64_t units) const { return units << granule_log2_; }
  // `bytes` as granules when it is a multiple of the granule that fits in a
  // record; nullopt otherwise.
  std::optional<uint32_t> Units(uint64_t bytes) const;

  void InsertFree(BlockId block);
  void RemoveFree(BlockId block);
  BlockId NewBlock();
  void RecycleBlock(BlockId block);
  // The free-list links of a used block, as sub-block bookkeeping.
  uint32_t& SubCount(BlockId used) { return blocks_[used].next_free; }
  uint32_t& Released(BlockId used) { return blocks_[used].prev_free; }
  // Free() of a used block with no sub-blocks.
  void FreeUsed(BlockId block);
  // Splits `block` so it keeps `units` granules; the remainder becomes a new
  // free block (coalesced with a free right neighbour and inserted in its list).
  void SplitTail(BlockId block, uint32_t units);

  const uint64_t granule_;
  const int granule_log2_;
  const uint64_t size_bytes_;
  uint64_t used_bytes_ = 0;
  uint64_t used_blocks_ = 0;
  uint64_t sub_blocks_ = 0;
  uint64_t held_back_blocks_ = 0;

  BlockId adopt_cursor_ = 0;  // the free block at the end, while adopting

  std::vector<Block> blocks_;
  std::vector<BlockId> recycled_ids_;
  // Every sub-block by its offset (granules): they never overlap, so the
  // one before a range and the one after are all an overlap check needs.
  absl::btree_map<uint32_t, BlockId> subs_by_offset_;
  uint64_t first_level_bitmap_ = 0;
  std::array<uint32_t, kFirstLevelCount> second_level_bitmaps_{};
  std::array<std::array<BlockId, kSecondLevelCount>, kFirstLevelCount> heads_;
};

}  // namespace memd

#endif  // MEMD_SERVER_POOL_TLSF_ALLOCATOR_H_
