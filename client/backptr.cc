// memd_memcpy_backptr: av_memcpy_backptr's output (each byte repeats the one
// `back` bytes before it, overlapping as a byte loop would), written with
// memcpy so it runs at copy speed: after the first `back` bytes the written
// run is itself a valid non-overlapping source, so each memcpy doubles it.
// For back 1 this is memset; back 2 and 4 (64+ bytes) store a 16-byte pattern
// register; back 3 widens the period to 18 bytes with a few byte copies so the
// doubling starts from a wide base (libavutil fills 4 bytes at a time for
// 2..4); from back 5 on, doubling straight from `back` is what libavutil does
// and is already at copy speed.
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#if defined(__SSE2__)
namespace {

// 32-byte stores where the CPU has AVX (checked once at run time; Debian's
// baseline is SSE2). REQUIRES: pattern repeats every 16 bytes, cnt >= 64.
__attribute__((target("avx"))) void FillPattern32(uint8_t* dst, const uint8_t* pattern16, size_t n) {
  const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pattern16));
  const __m256i v = _mm256_set_m128i(half, half);
  for (; n >= 128; n -= 128, dst += 128) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64), v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 96), v);
  }
  for (; n >= 16; n -= 16, dst += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), half);
  std::memcpy(dst, pattern16, n);
}

const bool kHaveAvx = __builtin_cpu_supports("avx");

}  // namespace
#endif

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
#if defined(__SSE2__)
  if ((back == 2 || back == 4) && cnt >= 64) {
    // The period divides 16: one register holds the pattern and every
    // 16-byte store continues it (libavutil stores 4 or 8 bytes at a time).
    alignas(16) uint8_t pattern[16];
    for (int i = 0; i < 16; ++i) pattern[i] = dst[(i & (back - 1)) - back];  // back is 2 or 4
    size_t remaining = static_cast<size_t>(cnt);
    if (kHaveAvx) {
      FillPattern32(dst, pattern, remaining);
      return;
    }
    const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(pattern));
    for (; remaining >= 64; remaining -= 64, dst += 64) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), v);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 32), v);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 48), v);
    }
    for (; remaining >= 16; remaining -= 16, dst += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v);
    std::memcpy(dst, pattern, remaining);
    return;
  }
#endif
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
