// DualCopy: how a fixed-size record in a daemon-private file survives a crash
// at any instruction. Each record is stored twice; a write fills the older
// copy, clearing its check value first and storing it last, so a crash
// mid-write leaves the newer copy intact and the reader takes the valid copy
// with the higher sequence number. A copy that is all zeroes is never valid
// (check values are odd).
//
// Used by StateTable (slots) and HoldingsFile (who holds what). A Copy type
// has `uint32_t seq` and `uint32_t check` members; `check_of(index, copy)`
// computes its check value over every other field and the record's index.
// Not thread-safe: the owner of the file serializes writes.
#ifndef MEMD_SERVER_SHM_DUAL_COPY_H_
#define MEMD_SERVER_SHM_DUAL_COPY_H_

#include <atomic>
#include <cstdint>

namespace memd::dual_copy {

// splitmix64's finalizer: the mixing step of every check value.
inline uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Index of the newest valid copy, or -1 when neither is valid.
template <typename Copy, typename CheckOf>
int Newest(uint32_t index, const Copy (&copies)[2], CheckOf check_of) {
  bool valid0 = copies[0].check == check_of(index, copies[0]);
  bool valid1 = copies[1].check == check_of(index, copies[1]);
  if (valid0 && valid1) {
    return static_cast<int32_t>(copies[1].seq - copies[0].seq) > 0 ? 1 : 0;
  }
  return valid0 ? 0 : (valid1 ? 1 : -1);
}

// Writes a new version of record `index`: `fill(copy)` sets the fields of
// the older copy (not seq or check).
template <typename Copy, typename CheckOf, typename Fill>
void Write(uint32_t index, Copy (&copies)[2], CheckOf check_of, Fill fill) {
  int newest = Newest(index, copies, check_of);
  Copy& target = copies[newest == 0 ? 1 : 0];
  uint32_t seq = newest < 0 ? 1 : copies[newest].seq + 1;
  target.check = 0;  // invalid while its fields change
  std::atomic_signal_fence(std::memory_order_seq_cst);
  fill(target);
  target.seq = seq;
  Copy computed = target;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the check value goes last
  target.check = check_of(index, computed);
}

}  // namespace memd::dual_copy

#endif  // MEMD_SERVER_SHM_DUAL_COPY_H_
