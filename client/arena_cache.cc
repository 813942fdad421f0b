// Arena: the per-thread caches and the lock-free common path (Allocate,
// Free), and the class free lists they refill from and flush to.
#include <sys/mman.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "arena.h"

namespace memd {

// One thread's cache of free blocks per class of the arena it is bound to.
// Owned by its thread (thread_local); the arena reads its counters.
struct ArenaThreadCache {
  static constexpr uint32_t kBinMax = 64;
  // A bin holds at most 128 KiB of blocks (2..64 blocks): enough for a
  // malloc/free loop to never touch the free lists, little enough that
  // blocks parked in idle threads keep few chunks from going idle.
  static constexpr uint64_t kBinBytes = 128 * 1024;
  struct Bin {
    uint32_t n = 0;
    uint32_t cap = 0;
    uint64_t items[kBinMax];
  };

  uint64_t arena_id = 0;  // 0: unbound
  Arena* arena = nullptr;
  std::unique_ptr<Bin[]> bins;
  // Written by the owning thread only (load + store, no read-modify-write).
  std::atomic<uint64_t> allocs{0}, in_use_added{0}, in_use_removed{0};

  ~ArenaThreadCache() { Unbind(); }
  void Bind(Arena* a);
  void Unbind();
  static void Bump(std::atomic<uint64_t>& counter, uint64_t by) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

namespace {

// The arenas alive in this process, so a thread cache never flushes into one
// that is gone. Never destroyed (thread exits may run after static destructors).
struct LiveArenas {
  Mutex mu;
  absl::flat_hash_map<uint64_t, Arena*> by_id ABSL_GUARDED_BY(mu);
  uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
};
LiveArenas& Live() {
  static LiveArenas* live = new LiveArenas;
  return *live;
}

thread_local ArenaThreadCache t_cache;

}  // namespace

void ArenaThreadCache::Bind(Arena* a) {
  Unbind();
  bins.reset(new Bin[a->classes()]);
  for (int c = 0; c < a->classes(); ++c) {
    bins[c].cap = static_cast<uint32_t>(
        std::clamp<uint64_t>(kBinBytes / a->class_bytes(c), 2, kBinMax));
  }
  arena = a;
  arena_id = a->id();
  a->AddCache(this);
}

void ArenaThreadCache::Unbind() {
  if (arena_id == 0) return;
  LiveArenas& live = Live();
  MutexLock lock(&live.mu);
  if (live.by_id.contains(arena_id)) {
    // No daemon call here (a thread exit, maybe the process's): chunks this
    // leaves empty go idle at the arena's next tick.
    std::vector<Arena::Chunk*> emptied;
    for (int c = 0; c < arena->classes(); ++c) {
      if (bins[c].n > 0) arena->FlushItems(c, bins[c].items, bins[c].n, &emptied);
    }
    arena->RemoveCache(this);
  }
  arena_id = 0;
  arena = nullptr;
  bins.reset();
}

uint64_t RegisterArena(Arena* arena) {
  LiveArenas& live = Live();
  MutexLock lock(&live.mu);
  uint64_t id = live.next_id++;
  live.by_id[id] = arena;
  return id;
}

void UnregisterArena(uint64_t id) {
  LiveArenas& live = Live();
  MutexLock lock(&live.mu);
  live.by_id.erase(id);
}

void* Arena::Allocate(size_t size) {
  if (size > kMaxLargeBytes || page_count_ == 0) return nullptr;
  ArenaThreadCache& tc = t_cache;
  if (tc.arena_id != id_) tc.Bind(this);
  if (size > threshold_) {  // a large block: its own chunk (arena_large.cc)
    bool cached = false;
    uint64_t offset;
    {
      MutexLock lock(&mu_);
      offset = TakeLargeLocked(size, &cached);
    }
    if (offset == 0) return nullptr;
    if (cached) ArenaThreadCache::Bump(tc.allocs, 1);
    ArenaThreadCache::Bump(tc.in_use_added, SlabAt(offset)->block_bytes);
    return base_ + offset;
  }
  const int cls = ClassOf(size);
  ArenaThreadCache::Bin& bin = tc.bins[cls];
  for (;;) {
    if (bin.n == 0) {
      bin.n = static_cast<uint32_t>(Refill(cls, bin.items, std::max<uint32_t>(1, bin.cap / 2)));
      if (bin.n == 0) return nullptr;
    }
    uint64_t offset = bin.items[--bin.n];
    Slab* slab = SlabAt(offset);
    if (slab == nullptr) continue;  // its chunk was lost (a restart did not give it back)
    slab->sizes[(offset - slab->start) / slab->block_bytes] = static_cast<uint32_t>(size) + 1;
    ArenaThreadCache::Bump(tc.allocs, 1);
    ArenaThreadCache::Bump(tc.in_use_added, slab->block_bytes);
    return base_ + offset;
  }
}

bool Arena::Free(void* ptr) {
  auto* p = static_cast<uint8_t*>(ptr);
  if (p < base_ || p >= base_ + pool_bytes_) return false;
  const uint64_t offset = p - base_;
  Slab* slab = SlabAt(offset);
  if (slab == nullptr || offset < slab->start) return false;
  const uint64_t rel = offset - slab->start;
  if (rel % slab->block_bytes != 0 || rel / slab->block_bytes >= slab->blocks) return false;
  uint32_t& size = slab->sizes[rel / slab->block_bytes];
  if (size == 0) return false;  // a free slot: freed twice, or never allocated
  ArenaThreadCache& tc = t_cache;
  if (tc.arena_id != id_) tc.Bind(this);
  if (slab->registered.load(std::memory_order_relaxed) > 0) {
    MutexLock lock(&mu_);
    if (std::optional<Holdings::Range> range = holdings_.RangeAt(offset)) {
      // Sent away: not this process's block any more (the caller says so).
      if (range->state == Holdings::RangeState::kParked) return false;
      if (holdings_.Holds(range->handle)) {
        source_.Release(range->handle);
        if (holdings_.Holds(range->handle)) return true;  // this process holds it still
      }
      // Parked until nobody holds the handle (UnparkLocked).
      holdings_.SetRange(offset, range->handle, Holdings::RangeState::kParked);
      size = 0;
      ArenaThreadCache::Bump(tc.in_use_removed, slab->block_bytes);
      return true;
    }
  }
  ArenaThreadCache::Bump(tc.in_use_removed, slab->block_bytes);
  if (slab->cls == kLargeClass) {
    MutexLock lock(&mu_);
    size = 0;
    CacheLargeLocked(slab->chunk);
    return true;
  }
  size = 0;
  ArenaThreadCache::Bin& bin = tc.bins[slab->cls];
  if (bin.n == bin.cap) {
    uint32_t half = bin.cap / 2;
    Flush(slab->cls, bin.items, half);
    std::copy(bin.items + half, bin.items + bin.n, bin.items);
    bin.n -= half;
  }
  bin.items[bin.n++] = offset;
  return true;
}

bool Arena::ResizeInPlace(void* ptr, size_t size) {
  if (size > threshold_) return false;
  const uint64_t offset = static_cast<uint8_t*>(ptr) - base_;
  Slab* slab = SlabAt(offset);
  if (ClassOf(size) != slab->cls) return false;
  slab->sizes[(offset - slab->start) / slab->block_bytes] = static_cast<uint32_t>(size) + 1;
  return true;
}

Arena::Slab* Arena::SlabAt(uint64_t offset) const {
  uint64_t page = offset >> 12;
  return page < page_count_ ? pages_[page].load(std::memory_order_acquire) : nullptr;
}

void Arena::SetPages(uint64_t offset, uint64_t bytes, Slab* slab) {
  for (uint64_t page = offset >> 12; page < (offset + bytes) >> 12; ++page) {
    pages_[page].store(slab, std::memory_order_release);
  }
}

size_t Arena::Refill(int cls, uint64_t* out, size_t want) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    {
      Central& central = central_[cls];
      MutexLock lock(&central.mu);
      size_t n = std::min(want, central.free.size());
      for (size_t i = 0; i < n; ++i) {
        out[i] = central.free.back();
        central.free.pop_back();
        SlabAt(out[i])->chunk->outside.fetch_add(1, std::memory_order_relaxed);
      }
      if (n > 0) return n;
    }
    MutexLock lock(&mu_);
    if (holdings_.AnyParked() && UnparkLocked()) continue;
    if (!CarveLocked(cls)) return 0;
  }
  return 0;
}

void Arena::FlushItems(int cls, const uint64_t* items, size_t n, std::vector<Chunk*>* emptied) {
  Central& central = central_[cls];
  MutexLock lock(&central.mu);
  for (size_t i = 0; i < n; ++i) {
    Slab* slab = SlabAt(items[i]);
    if (slab == nullptr) continue;  // a lost chunk's block
    central.free.push_back(items[i]);
    if (slab->chunk->outside.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      emptied->push_back(slab->chunk);
    }
  }
}

void Arena::Flush(int cls, const uint64_t* items, size_t n) {
  std::vector<Chunk*> emptied;
  FlushItems(cls, items, n, &emptied);
  if (emptied.empty()) return;
  MutexLock lock(&mu_);
  for (Chunk* chunk : emptied) {
    auto it = std::find_if(chunks_.begin(), chunks_.end(),
                           [chunk](const auto& c) { return c.get() == chunk; });
    if (it != chunks_.end() && !chunk->idle) IdleLocked(*chunk);
  }
}

void Arena::AddCache(ArenaThreadCache* cache) {
  MutexLock lock(&caches_mu_);
  caches_.push_back(cache);
}

void Arena::RemoveCache(ArenaThreadCache* cache) {
  MutexLock lock(&caches_mu_);
  exited_.local_allocs += cache->allocs.load(std::memory_order_relaxed);
  exited_.in_use_bytes += cache->in_use_added.load(std::memory_order_relaxed) -
                          cache->in_use_removed.load(std::memory_order_relaxed);
  caches_.erase(std::find(caches_.begin(), caches_.end(), cache));
}

ArenaStats Arena::Stats() const {
  ArenaStats stats;
  {
    MutexLock lock(&caches_mu_);
    stats = exited_;
    for (const ArenaThreadCache* c : caches_) {
      stats.local_allocs += c->allocs.load(std::memory_order_relaxed);
      stats.in_use_bytes += c->in_use_added.load(std::memory_order_relaxed) -
                            c->in_use_removed.load(std::memory_order_relaxed);
    }
  }
  stats.reserved_bytes = reserved_bytes_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace memd
