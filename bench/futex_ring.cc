#include "futex_ring.h"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace memd::bench {
namespace {

// Shared (not FUTEX_PRIVATE): the two sides are different processes.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, nullptr, nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

constexpr uint64_t kPageBytes = 4096;

}  // namespace

void SlotQueue::Push(uint32_t value) noexcept {
  uint32_t t = tail.load(std::memory_order_relaxed);
  entries[t % (2 * kRingSlots)] = value;
  // seq_cst store, then seq_cst load of `waiting`: with the popper's seq_cst
  // store of `waiting` and load of `tail`, one of the two sees the other.
  tail.store(t + 1, std::memory_order_seq_cst);
  if (waiting.load(std::memory_order_seq_cst) != 0) FutexWake(&tail);
}

uint32_t SlotQueue::Pop() noexcept {
  uint32_t h = head.load(std::memory_order_relaxed);
  while (tail.load(std::memory_order_acquire) == h) {
    waiting.store(1, std::memory_order_seq_cst);
    uint32_t t = tail.load(std::memory_order_seq_cst);
    if (t == h) FutexWait(&tail, t);  // returns at once if tail moved meanwhile
    waiting.store(0, std::memory_order_relaxed);
  }
  uint32_t value = entries[h % (2 * kRingSlots)];
  head.store(h + 1, std::memory_order_release);
  return value;
}

FutexRing* FutexRing::Create(size_t frame_bytes) {
  uint64_t slot_bytes = (frame_bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
  uint64_t total = kPageBytes + slot_bytes * kRingSlots;
  int fd = memfd_create("memd-bench-futex-ring", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  if (ftruncate(fd, static_cast<off_t>(total)) != 0) {
    close(fd);
    return nullptr;
  }
  // MAP_POPULATE: every page faulted in before fork, so no side pays a
  // first-touch fault during the run (the slots are reused).
  void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  close(fd);
  if (base == MAP_FAILED) return nullptr;
  auto* header = new (base) RingHeader{};
  header->magic = kRingMagic;
  header->version = kRingVersion;
  header->slots = kRingSlots;
  header->frame_bytes = frame_bytes;
  header->slot_bytes = slot_bytes;
  header->frames_offset = kPageBytes;
  for (uint32_t i = 0; i < kRingSlots; ++i) header->free.Push(i);
  return new FutexRing(header);
}

FutexRing::~FutexRing() {
  munmap(header_, header_->frames_offset + header_->slot_bytes * header_->slots);
}

}  // namespace memd::bench
