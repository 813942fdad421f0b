// Row D: the daemon's allocator alone, in-process, against Boost.Interprocess
// (allocate_aligned(…, 64) in a managed buffer) and glibc (posix_memalign)
// on the same sequences: fixed 64 B / 4 KiB / 1 MiB, and a log-uniform
// 64 B – 4 MiB mix with 1000 live blocks. Row D2: bytes allocated from an
// empty pool with the mix before the first failure, over the pool size.
#include <cstdlib>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/interprocess/managed_external_buffer.hpp>

#include "pool/tlsf_allocator.h"

namespace {

namespace bip = boost::interprocess;

constexpr uint64_t kArenaBytes = 2ull << 30;  // room for 1000 live mix blocks
constexpr size_t kLive = 1000;

std::vector<uint64_t> MixSizes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> log2_size(6, 22);  // 64 B .. 4 MiB
  std::vector<uint64_t> sizes(n);
  for (auto& s : sizes) s = static_cast<uint64_t>(std::exp2(log2_size(rng)));
  return sizes;
}

// Each allocator behind the same two calls.
struct Tlsf {
  memd::TlsfAllocator a{kArenaBytes, 64};
  using Handle = memd::TlsfAllocator::BlockId;
  bool Alloc(uint64_t size, Handle* h) {
    auto b = a.Allocate(size);
    if (!b) return false;
    *h = *b;
    return true;
  }
  void Free(Handle h) { a.Free(h); }
};

struct Boost {
  // Boost keeps its headers inside the buffer (which memd must not do); the
  // buffer is heap memory here, so only the allocator's own work is timed.
  std::unique_ptr<char[]> memory{new char[kArenaBytes]};
  bip::managed_external_buffer heap{bip::create_only, memory.get(), kArenaBytes};
  using Handle = void*;
  bool Alloc(uint64_t size, Handle* h) {
    *h = heap.allocate_aligned(size, 64, std::nothrow);
    return *h != nullptr;
  }
  void Free(Handle h) { heap.deallocate(h); }
};

struct Glibc {
  using Handle = void*;
  bool Alloc(uint64_t size, Handle* h) { return posix_memalign(h, 64, size) == 0; }
  void Free(Handle h) { std::free(h); }
};

template <typename A>
void BM_Fixed(benchmark::State& state) {
  static A* alloc = new A;  // built once: Boost's 2 GiB buffer setup is not the subject
  uint64_t size = static_cast<uint64_t>(state.range(0));
  typename A::Handle h;
  for (auto _ : state) {
    if (!alloc->Alloc(size, &h)) state.SkipWithError("allocation failed");
    benchmark::DoNotOptimize(h);
    alloc->Free(h);
  }
  state.SetItemsProcessed(state.iterations());
}

template <typename A>
void BM_Mix(benchmark::State& state) {
  static A* alloc = new A;
  static const std::vector<uint64_t> sizes = MixSizes(1 << 16, 42);
  std::vector<typename A::Handle> live(kLive);
  for (size_t i = 0; i < kLive; ++i) {
    if (!alloc->Alloc(sizes[i], &live[i])) state.SkipWithError("warm-up allocation failed");
  }
  std::mt19937 rng(7);
  size_t next = kLive;
  for (auto _ : state) {
    size_t victim = rng() % kLive;  // free a random live block, allocate the next size
    alloc->Free(live[victim]);
    if (!alloc->Alloc(sizes[next++ & (sizes.size() - 1)], &live[victim])) {
      state.SkipWithError("mix allocation failed");
      break;
    }
  }
  for (auto h : live) alloc->Free(h);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Fixed<Tlsf>)->Name("D/fixed/memd_tlsf")->Arg(64)->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_Fixed<Boost>)->Name("D/fixed/boost_interprocess")->Arg(64)->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_Fixed<Glibc>)->Name("D/fixed/glibc_posix_memalign")->Arg(64)->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_Mix<Tlsf>)->Name("D/mix/memd_tlsf");
BENCHMARK(BM_Mix<Boost>)->Name("D/mix/boost_interprocess");
BENCHMARK(BM_Mix<Glibc>)->Name("D/mix/glibc_posix_memalign");

// D2: fill an empty 256 MiB pool with the mix until the first failure.
void BM_FillRatio(benchmark::State& state) {
  constexpr uint64_t kPool = 256ull << 20;
  const std::vector<uint64_t> sizes = MixSizes(1 << 16, 99);
  double ratio = 0;
  for (auto _ : state) {
    memd::TlsfAllocator a(kPool, 64);
    uint64_t bytes = 0;
    for (uint64_t size : sizes) {
      if (!a.Allocate(size)) break;
      bytes += size;
    }
    ratio = static_cast<double>(bytes) / static_cast<double>(kPool);
  }
  state.counters["fill_ratio"] = ratio;
}
BENCHMARK(BM_FillRatio)->Name("D2/fill_ratio/memd_tlsf")->Iterations(3);

}  // namespace

// Row H: daemon memory per live handle (allocator block record, handle slot,
// session reference entry), measured with mallinfo2 around one million
// 64-byte allocations held by one session; and the cost of Pool::Stats()
// (what `memctl stats` asks for) with them live.
#include <malloc.h>

#include "pool/pool.h"

namespace {

void BM_MillionHandles(benchmark::State& state) {
  constexpr uint64_t kHandles = 1'000'000;
  constexpr uint64_t kPool = kHandles * 64 * 2;
  static std::vector<uint8_t>* memory = new std::vector<uint8_t>(kPool);
  double bytes_per_handle = 0;
  for (auto _ : state) {
    state.PauseTiming();
    struct mallinfo2 m0 = mallinfo2();
    size_t before = m0.uordblks + m0.hblkhd;
    auto* pool = new memd::Pool(memd::PoolConfig{"h", kPool, 64, kPool}, 0, memory->data(), "/h");
    memd::HolderId refs = pool->OpenSession(1, std::nullopt);
    for (uint64_t i = 0; i < kHandles; ++i) {
      if (!pool->Allocate(refs, 64, false).ok()) state.SkipWithError("allocation failed");
    }
    struct mallinfo2 m1 = mallinfo2();
    bytes_per_handle = static_cast<double>(m1.uordblks + m1.hblkhd - before) / kHandles;
    state.ResumeTiming();
    for (int i = 0; i < 1000; ++i) benchmark::DoNotOptimize(pool->Stats());
    state.PauseTiming();
    pool->ReleaseAll(refs);
    delete pool;
    state.ResumeTiming();
  }
  state.counters["bytes_per_handle"] = bytes_per_handle;
  state.counters["stats_ns"] = benchmark::Counter(1000 * state.iterations(),
                                                  benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MillionHandles)->Name("H/million_handles/memd_pool")->Iterations(1)->Unit(benchmark::kMillisecond);

// What row H's compact records cost on the allocation path: Pool::Allocate +
// Pool::Release (the daemon's side of a malloc+free pair: allocator, handle
// slot, holder ledger; no state table) with 1000 live buffers of one session.
void BM_PoolPair(benchmark::State& state) {
  constexpr uint64_t kPool = 64 << 20;
  static std::vector<uint8_t>* memory = new std::vector<uint8_t>(kPool);
  memd::Pool pool(memd::PoolConfig{"p", kPool, 64, kPool}, 0, memory->data(), "/p");
  memd::HolderId session = pool.OpenSession(1, std::nullopt);
  std::vector<uint64_t> live;
  for (size_t i = 0; i < kLive; ++i) live.push_back(pool.Allocate(session, 64, false)->handle);
  size_t next = 0;
  for (auto _ : state) {
    auto got = pool.Allocate(session, static_cast<uint64_t>(state.range(0)), false);
    if (!got.ok() || !pool.Release(session, live[next]).ok()) state.SkipWithError("pool refused");
    live[next] = got->handle;
    next = (next + 1) % live.size();
  }
}
BENCHMARK(BM_PoolPair)->Name("H/pool_alloc_release/memd_pool")->Arg(64)->Arg(4096);

}  // namespace
