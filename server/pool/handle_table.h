// HandleTable: maps 64-bit handles to live allocations of one pool.
//
// A slot is reused only with a higher generation and retired for good when
// its 24-bit generation is exhausted, so a handle value is never issued twice.
// A slot is 16 bytes (row H of docs/PERFORMANCE.md): the retired mark shares
// the generation's word, and the size the client asked for is kept as the
// slack to its block's capacity (the allocator owns the capacity).
// Daemon-private memory. Not thread-safe: Pool serializes calls.
#ifndef MEMD_SERVER_POOL_HANDLE_TABLE_H_
#define MEMD_SERVER_POOL_HANDLE_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "pool/tlsf_allocator.h"

namespace memd {

class HandleTable {
 public:
  // The most bytes a block may exceed the size asked for by: the allocator
  // rounds to one granule (at most 1 MiB); only an arena range registered
  // with a larger capacity or a corrupt state table come near it (refused).
  static constexpr uint64_t kMaxSlackBytes = UINT32_MAX;

  struct Entry {
    static constexpr uint32_t kRetiredBit = 1u << 31;
    // The slot's current generation (low 24 bits, shared/handle.h) and
    // kRetiredBit: generation exhausted, never used again.
    uint32_t generation_word = 0;
    uint32_t refs = 0;  // 0 means the slot is free
    TlsfAllocator::BlockId block = TlsfAllocator::kNoBlock;
    // Capacity of `block` minus the size the client asked for (0 when free).
    uint32_t slack_bytes = 0;

    uint32_t generation() const { return generation_word & ~kRetiredBit; }
    bool retired() const { return (generation_word & kRetiredBit) != 0; }
  };
  static_assert(sizeof(Entry) == 16, "row H counts on 16-byte slots");

  explicit HandleTable(uint32_t pool_index) : pool_index_(pool_index) {}

  // Records a new live allocation with one reference; returns its handle.
  // `slack_bytes`: the block's capacity minus the size asked for.
  uint64_t Insert(TlsfAllocator::BlockId block, uint32_t slack_bytes);

  // The live entry of `handle`, or nullptr (wrong pool, never issued, freed).
  Entry* Find(uint64_t handle);
  const Entry* Find(uint64_t handle) const;

  // Frees the slot of a live handle; every later Find(handle) is nullptr.
  // REQUIRES: Find(handle) != nullptr.
  void Erase(uint64_t handle);

  // Rebuild after a daemon restart: slot i becomes slots[i] (live when refs
  // > 0, else free or retired). REQUIRES: a new, empty table.
  void Restore(std::vector<Entry> slots);

  // The handle of a live slot; the entry of any slot. REQUIRES: slot < slot_count().
  uint64_t HandleOf(uint32_t slot) const;
  const Entry& At(uint32_t slot) const { return slots_[slot]; }
  uint64_t slot_count() const { return slots_.size(); }

  // Why Find(handle) failed, for NOT_FOUND messages: "was freed", "was never issued".
  std::string DescribeMissing(uint64_t handle) const;

  uint64_t live() const { return live_; }
  uint64_t retired_slots() const { return retired_; }

  // Calls fn(handle, entry) for every live entry, in slot order.
  template <typename Fn>
  void ForEachLive(Fn fn) const;

 private:
  const uint32_t pool_index_;
  std::vector<Entry> slots_;
  std::vector<uint32_t> free_slots_;
  uint64_t live_ = 0;
  uint64_t retired_ = 0;
};

template <typename Fn>
void HandleTable::ForEachLive(Fn fn) const {
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Entry& e = slots_[slot];
    if (e.refs == 0) continue;
    fn(HandleOf(slot), e);
  }
}

}  // namespace memd

#endif  // MEMD_SERVER_POOL_HANDLE_TABLE_H_
