// memd_memcpy_backptr: av_memcpy_backptr's output (each byte repeats the one
// `back` bytes before it, overlapping as a byte loop would), written with
// memcpy so it runs at copy speed: after the first `back` bytes the written
// run is itself a valid non-overlapping source, so each memcpy doubles it.
// For back 1 this is memset; for back 2..4 the period is widened to 16..24
// bytes with a few byte copies first so the doubling starts from a wide base
// (libavutil fills 4 bytes at a time there); from back 5 on, doubling straight
// from `back` is what libavutil does and is already at copy speed.
#include <cstring>

#include "memd/memd.h"

extern "C" void memd_memcpy_backptr(uint8_t* dst, int back, int cnt) {
  if (back == 0 || cnt <= 0) return;
  if (back == 1) {
    std::memset(dst, dst[-1], static_cast<size_t>(cnt));
    return;
  }
  if (back < 0) {
    // Forward source: each byte is an independent copy of a byte ahead of it.
    for (int i = 0; i < cnt; ++i) dst[i] = dst[i - back];
    return;
  }
  const uint8_t* src = dst - back;
  size_t remaining = static_cast<size_t>(cnt);
  size_t period = static_cast<size_t>(back);
  if (period < 5) {
    // Byte loop until 16 bytes (or everything) are written: cheap, exact.
    size_t head = remaining < 16 ? remaining : 16;
    for (size_t i = 0; i < head; ++i) dst[i] = dst[i - period];
    if (head == remaining) return;
    // The run [src, dst + head) is periodic; use the largest whole multiple
    // of the period that is already written as the copy unit.
    size_t run = period + head;
    period = run - run % period;
    src = dst + head - period;
    dst += head;
    remaining -= head;
  }
  // Invariant: [src, dst) is `period` bytes that repeat the pattern, and
  // dst - src == period, so memcpy(dst, src, n <= period) never overlaps.
  while (remaining > period) {
    std::memcpy(dst, src, period);
    dst += period;
    remaining -= period;
    period <<= 1;
  }
  std::memcpy(dst, src, remaining);
}
