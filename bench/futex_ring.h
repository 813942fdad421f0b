// Row L's floor: a frame ring between two processes written by hand, as a
// skilled engineer would without memd. One shared mapping (a memfd) holds a
// header and kRingSlots reused frame slots; two single-producer/single-
// consumer queues of slot indices hand slots over: `full` (producer ->
// consumer) and `free` (consumer -> producer). A side that finds its queue
// empty says so in the queue's `waiting` word and sleeps on a futex; the
// other side wakes it only when that word is set (the lanes' protocol,
// memd/shared/lane.h). Nothing spins.
//
// One FutexRing per producer/consumer pair. It is not thread-safe: each
// queue has exactly one pushing and one popping process.
#ifndef MEMD_BENCH_FUTEX_RING_H_
#define MEMD_BENCH_FUTEX_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace memd::bench {

// Frames in flight (issue 25: depth 4).
inline constexpr uint32_t kRingSlots = 4;
// Pushed on `full` after the last frame: the consumer stops.
inline constexpr uint32_t kRingEnd = 0xffffffffu;

// A single-producer/single-consumer queue of slot indices. It never fills:
// it has room for every slot plus the end marker.
struct alignas(64) SlotQueue {
  alignas(64) std::atomic<uint32_t> tail;     // pushed count (the popper's futex word)
  std::atomic<uint32_t> waiting;              // 1 while the popper sleeps (or is about to)
  alignas(64) std::atomic<uint32_t> head;     // popped count, written by the popper only
  uint32_t entries[2 * kRingSlots];

  // The pushing side: publishes `value`, wakes the popper if it waits.
  void Push(uint32_t value) noexcept;
  // The popping side: the oldest value, sleeping while there is none.
  uint32_t Pop() noexcept;
};

// The start of the shared mapping; the frames follow at frames_offset.
struct RingHeader {
  uint64_t magic;          // kRingMagic
  uint32_t version;        // kRingVersion
  uint32_t slots;          // kRingSlots
  uint64_t frame_bytes;    // bytes of one frame
  uint64_t slot_bytes;     // frame_bytes rounded up to 4 KiB
  uint64_t frames_offset;  // offset of slot 0 from the header
  SlotQueue full;          // slots holding a frame, producer -> consumer
  SlotQueue free;          // slots to fill, consumer -> producer
};
inline constexpr uint64_t kRingMagic = 0x474e495258455446ull;  // "FTEXRING"
inline constexpr uint32_t kRingVersion = 1;
static_assert(sizeof(SlotQueue) == 128);
static_assert(offsetof(SlotQueue, head) == 64);
static_assert(offsetof(RingHeader, full) == 64);
static_assert(sizeof(RingHeader) <= 4096);

// A mapped ring. Create() before fork(): the children share the mapping.
class FutexRing {
 public:
  // A memfd of a header and kRingSlots slots of `frame_bytes`, mapped, every
  // page faulted in, the free queue holding every slot. nullptr on failure.
  static FutexRing* Create(size_t frame_bytes);
  ~FutexRing();
  FutexRing(const FutexRing&) = delete;
  FutexRing& operator=(const FutexRing&) = delete;

  RingHeader& header() { return *header_; }
  uint8_t* slot(uint32_t index) {
    return reinterpret_cast<uint8_t*>(header_) + header_->frames_offset + index * header_->slot_bytes;
  }

 private:
  explicit FutexRing(RingHeader* header) : header_(header) {}
  RingHeader* header_;
};

}  // namespace memd::bench

#endif  // MEMD_BENCH_FUTEX_RING_H_
