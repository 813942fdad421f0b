// Row L's four roles (bench/handoff_bench.cc runs each in a forked process):
// producer and consumer of the futex frame ring (the floor, futex_ring.h) and
// producer and consumer through memd's public C API (memd_malloc + stamp +
// memd_channel_send; memd_channel_receive + check + memd_free). Every role
// stamps or checks frames the same way (frame_stamp.h) and measures only
// between the start signal and its last frame.
#ifndef MEMD_BENCH_HANDOFF_ROLES_H_
#define MEMD_BENCH_HANDOFF_ROLES_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "futex_ring.h"

namespace memd::bench {

inline constexpr int kMaxPairs = 16;
// Latency samples kept per consumer (more frames are counted, not sampled).
inline constexpr size_t kMaxSamples = size_t{1} << 20;

// What one role process measured, written by it alone.
struct RoleResult {
  uint64_t frames;      // frames sent (producer) or received and checked (consumer)
  uint64_t cpu_ns;      // its user+system CPU (all threads) from the start to its last frame
  uint64_t last_ns;     // CLOCK_MONOTONIC of its last frame
  uint64_t samples;     // latency samples written (consumer)
  int32_t error;        // 0, or what failed (RoleError)
  int32_t error_errno;  // the C API's negative errno, when it was one
};

enum class RoleError : int32_t {
  kNone = 0,
  kInit = 1,         // memd_init or the channel's creation failed
  kAlloc = 2,        // memd_malloc returned NULL
  kSend = 3,         // memd_channel_send failed
  kReceive = 4,      // memd_channel_receive failed
  kBadStamp = 5,     // a frame did not carry the expected sequence number on every page
  kBadSize = 6,      // a received buffer is smaller than the frame
};

// One run's shared control block (an anonymous shared mapping made before
// fork): the start and stop signals and each role's result.
struct Control {
  std::atomic<uint32_t> ready;  // roles ready to start
  std::atomic<uint32_t> go;     // 0 until the parent starts them (futex word)
  std::atomic<uint32_t> stop;   // producers send no new frame once set
  std::atomic<uint32_t> done;   // roles that have measured (futex word)
  uint64_t go_ns;               // CLOCK_MONOTONIC of the start
  RoleResult producers[kMaxPairs];
  RoleResult consumers[kMaxPairs];
};

// Waits on a shared futex word while it holds `expected`, at most timeout_ms.
void WaitWord(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms);
void WakeWord(std::atomic<uint32_t>* word);

// The roles. Each returns when its part of the run is over; `samples` is the
// consumer's slice of the latency buffer (kMaxSamples one-way latencies, ns).
void RingProducer(Control& control, FutexRing& ring, RoleResult& result);
void RingConsumer(Control& control, FutexRing& ring, RoleResult& result, uint32_t* samples);
// `channel`: this pair's channel, created by the consumer with room for
// kRingSlots messages before it reports ready.
void MemdProducer(Control& control, const std::string& channel, size_t frame_bytes, RoleResult& result);
void MemdConsumer(Control& control, const std::string& channel, size_t frame_bytes, RoleResult& result,
                  uint32_t* samples);

}  // namespace memd::bench

#endif  // MEMD_BENCH_HANDOFF_ROLES_H_
