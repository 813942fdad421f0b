// Row L's stamp, the same on both sides (the futex ring and memd): the
// producer writes one byte per 4 KiB page after the first (the frame's
// sequence number, low byte), then the sequence number and a CLOCK_MONOTONIC
// timestamp in the first 16 bytes, last, just before it publishes. The
// consumer reads the clock as soon as it has the frame, then checks the
// sequence number and every page byte: one-way latency is the difference.
// Touching a byte per page costs each side a cache miss per page, not a copy
// of the frame (760 pages at 1080p NV12, 16 at 64 KiB).
#ifndef MEMD_BENCH_FRAME_STAMP_H_
#define MEMD_BENCH_FRAME_STAMP_H_

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace memd::bench {

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline constexpr size_t kStampPageBytes = 4096;

// REQUIRES: frame_bytes >= 16.
inline void StampFrame(uint8_t* frame, size_t frame_bytes, uint64_t seq) {
  for (size_t at = kStampPageBytes; at < frame_bytes; at += kStampPageBytes) {
    frame[at] = static_cast<uint8_t>(seq);
  }
  uint64_t now = MonotonicNs();
  std::memcpy(frame, &seq, 8);
  std::memcpy(frame + 8, &now, 8);
}

// The stamp's timestamp if the frame carries `seq` on every page; 0 if not.
inline uint64_t CheckStamp(const uint8_t* frame, size_t frame_bytes, uint64_t seq) {
  uint64_t got, stamped;
  std::memcpy(&got, frame, 8);
  std::memcpy(&stamped, frame + 8, 8);
  if (got != seq) return 0;
  for (size_t at = kStampPageBytes; at < frame_bytes; at += kStampPageBytes) {
    if (frame[at] != static_cast<uint8_t>(seq)) return 0;
  }
  return stamped;
}

}  // namespace memd::bench

#endif  // MEMD_BENCH_FRAME_STAMP_H_
