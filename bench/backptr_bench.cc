// Row G: memd_memcpy_backptr against libavutil's av_memcpy_backptr, bytes/s,
// for back in {1,2,3,4,7,16,64} and cnt in {4096, 65536}.
#include <vector>

#include <benchmark/benchmark.h>

extern "C" {
#include <libavutil/mem.h>
}
#include "memd/memd.h"

namespace {

template <void (*Fn)(uint8_t*, int, int)>
void BM_Backptr(benchmark::State& state) {
  int back = static_cast<int>(state.range(0));
  int cnt = static_cast<int>(state.range(1));
  std::vector<uint8_t> buffer(64 + static_cast<size_t>(cnt) + 64);
  for (int i = 0; i < 64; ++i) buffer[i] = static_cast<uint8_t>(i * 7);
  for (auto _ : state) {
    Fn(buffer.data() + 64, back, cnt);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * cnt);
}

void Args(benchmark::internal::Benchmark* b) {
  for (int back : {1, 2, 3, 4, 7, 16, 64}) {
    for (int cnt : {4096, 65536}) b->Args({back, cnt});
  }
}

BENCHMARK(BM_Backptr<memd_memcpy_backptr>)->Name("G/backptr/memd")->Apply(Args);
BENCHMARK(BM_Backptr<av_memcpy_backptr>)->Name("G/backptr/libavutil")->Apply(Args);

}  // namespace
