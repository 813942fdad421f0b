// Arena: large blocks (above the threshold, up to kMaxLargeBytes). Each has
// a chunk of its own, granted by the daemon like any chunk, with one slab of
// one block (class kLargeClass) starting on a page boundary. A freed large
// block's chunk is *cached*: the next allocation it fits (at most twice the
// size) takes it without a daemon round trip, so a loop of memd_memdup or
// av_malloc/av_free of frame-sized blocks costs a memcpy, not a round trip.
// At most kLargeCacheChunks are cached; one unused for kLargeCacheTicks is
// released. Registered large blocks park and unpark like small ones.
#include <algorithm>

#include "arena.h"
#include "holdings.h"

namespace memd {
namespace {

using arena_layout::kPage;
using arena_layout::RoundUp;

}  // namespace

uint64_t Arena::TakeLargeLocked(size_t size, bool* cached) {
  // The smallest cached block that fits without wasting more than half.
  auto fitting = [&] {
    auto best = large_cache_.end();
    for (auto it = large_cache_.begin(); it != large_cache_.end(); ++it) {
      uint64_t bytes = (*it)->slabs[0]->block_bytes;
      if (bytes >= size && bytes <= 2 * uint64_t{size} &&
          (best == large_cache_.end() || bytes < (*best)->slabs[0]->block_bytes)) {
        best = it;
      }
    }
    return best;
  };
  auto best = fitting();
  // Registered blocks freed since the last tick wait parked until nobody
  // holds them (a frame handed to another process): ask now, as a small
  // class that runs dry does, rather than take new memory for each.
  if (best == large_cache_.end() && holdings_.AnyParked() && UnparkLocked()) best = fitting();
  if (best != large_cache_.end()) {
    Slab* slab = (*best)->slabs[0];
    large_cache_.erase(best);
    slab->sizes[0] = static_cast<uint32_t>(size) + 1;
    *cached = true;
    return slab->start;
  }
  // A chunk of its own: a page more than asked, so the block starts on a
  // page of its own (the page map's unit).
  absl::StatusOr<ChunkSource::Chunk> granted;
  for (int attempt = 0; attempt < 2; ++attempt) {
    granted = source_.Grant(RoundUp(size, kPage) + kPage);
    // The pool (or the session's quota) may be full of this cache: give it
    // back (the releases ride on the retry's request) and ask once more.
    if (granted.ok() || !absl::IsResourceExhausted(granted.status())) break;
    if (holdings_.AnyParked()) UnparkLocked();  // parked blocks nobody holds join the cache
    if (large_cache_.empty()) break;
    while (!large_cache_.empty()) ReleaseLargeLocked(large_cache_.front());
  }
  if (!granted.ok()) return 0;  // the daemon path asks again and says why
  auto chunk = std::make_unique<Chunk>();
  chunk->handle = granted->handle;
  chunk->offset = granted->offset_bytes;
  chunk->bytes = granted->capacity_bytes;
  chunk->large = true;
  chunk->carve = chunk->offset + chunk->bytes;  // never carved into slabs
  Slab* slab = NewSlabLocked();
  slab->start = RoundUp(chunk->offset, kPage);
  slab->bytes = (chunk->offset + chunk->bytes) / kPage * kPage - slab->start;
  slab->block_bytes = static_cast<uint32_t>(slab->bytes);
  slab->blocks = 1;
  slab->cls = kLargeClass;
  slab->chunk = chunk.get();
  slab->sizes.assign(1, static_cast<uint32_t>(size) + 1);
  slab->registered.store(0, std::memory_order_relaxed);
  chunk->slabs.push_back(slab);
  SetPages(slab->start, slab->bytes, slab);
  reserved_bytes_.fetch_add(chunk->bytes, std::memory_order_relaxed);
  chunks_.push_back(std::move(chunk));
  *cached = false;
  return slab->start;
}

void Arena::CacheLargeLocked(Chunk* chunk) {
  chunk->cached_ticks = 0;
  large_cache_.push_back(chunk);
  if (large_cache_.size() > kLargeCacheChunks) {
    Chunk* oldest = large_cache_.front();
    large_cache_.erase(large_cache_.begin());
    ReleaseLargeLocked(oldest);
  }
}

void Arena::ReleaseLargeLocked(Chunk* chunk) {
  source_.ReleaseLater(chunk->handle);  // rides on the next request, or the next tick
  ForgetLocked(chunk);
}

void Arena::TickLargeLocked() {
  std::vector<Chunk*> expired;
  for (Chunk* chunk : large_cache_) {
    if (++chunk->cached_ticks >= kLargeCacheTicks) expired.push_back(chunk);
  }
  for (Chunk* chunk : expired) {
    std::erase(large_cache_, chunk);
    ReleaseLargeLocked(chunk);
  }
}

}  // namespace memd
