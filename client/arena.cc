// Arena: size classes, chunks and slabs, registration (handles on demand),
// parked blocks, idle chunks and the tick. The lock-free common path and
// the thread caches: arena_cache.cc.
#include "arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"

namespace memd {
namespace {

using arena_layout::kPage;
using arena_layout::RoundUp;
// Chunks: the first 1 MiB, each next one twice the last, at most 4 MiB; a
// grant the pool refuses is asked again at half the size, down to one slab.
constexpr uint64_t kFirstChunkBytes = 1 << 20;
constexpr uint64_t kMaxChunkBytes = 4 << 20;
// A slab holds at least 4 blocks and 16 KiB.
constexpr uint64_t kMinSlabBytes = 16 * 1024;
// An idle chunk is released after this many ticks of 25 ms (5 s); the
// session always keeps its last chunk.
constexpr uint32_t kReturnTicks = 200;

uint64_t SlabBytes(uint32_t block_bytes) {
  return RoundUp(std::max<uint64_t>(kMinSlabBytes, 4 * uint64_t{block_bytes}), kPage);
}

}  // namespace

Arena::Arena(ChunkSource& source, Holdings& holdings, Pool pool, uint64_t threshold_bytes)
    : source_(source),
      holdings_(holdings),
      id_(RegisterArena(this)),
      threshold_(threshold_bytes),
      alignment_(pool.alignment_bytes),
      align_log2_(std::countr_zero(pool.alignment_bytes)),
      base_(pool.base),
      pool_bytes_(pool.bytes),
      next_chunk_bytes_(kFirstChunkBytes) {
  // Classes: every alignment multiple up to 1 KiB (or 16 of them), then four
  // per doubling, each a multiple of the alignment, the last the threshold.
  uint64_t linear_end = std::max<uint64_t>(1024, 16 * alignment_);
  for (uint64_t c = alignment_; c < threshold_;) {
    class_bytes_.push_back(static_cast<uint32_t>(c));
    uint64_t step = c < linear_end ? alignment_ : std::max(alignment_, std::bit_floor(c) / 4);
    c = RoundUp(c + step, alignment_);
  }
  class_bytes_.push_back(static_cast<uint32_t>(RoundUp(threshold_, alignment_)));
  class_of_.resize((RoundUp(threshold_, alignment_) >> align_log2_) + 1);
  int cls = 0;
  for (size_t units = 0; units < class_of_.size(); ++units) {
    while ((uint64_t{class_bytes_[cls]} >> align_log2_) < units) ++cls;
    class_of_[units] = static_cast<uint8_t>(cls);
  }
  central_.reset(new Central[class_bytes_.size()]);
  page_count_ = pool_bytes_ / kPage;
  void* pages = ::mmap(nullptr, page_count_ * sizeof(std::atomic<Slab*>), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (pages == MAP_FAILED) {
    page_count_ = 0;  // serves nothing: every allocation takes the daemon path
  } else {
    pages_ = static_cast<std::atomic<Slab*>*>(pages);
  }
}

Arena::~Arena() {
  UnregisterArena(id_);
  if (pages_ != nullptr) ::munmap(pages_, page_count_ * sizeof(std::atomic<Slab*>));
}

void Arena::Prepare() {
  MutexLock lock(&mu_);
  if (chunks_.empty() && page_count_ > 0) NewChunkLocked(next_chunk_bytes_);
}

Arena::Chunk* Arena::NewChunkLocked(uint64_t bytes) {
  for (auto& chunk : chunks_) {  // an idle chunk the daemon may still let us have
    if (!chunk->idle || chunk->bytes < bytes) continue;
    std::vector<uint64_t> taken;
    ReportLocked({}, {chunk->handle}, &taken);
    if (!taken.empty()) {
      ForgetLocked(chunk.get());
      return NewChunkLocked(bytes);
    }
    chunk->idle = false;
    chunk->carve = chunk->offset;
    return chunk.get();
  }
  uint64_t ask = std::max(bytes, next_chunk_bytes_);
  for (;;) {
    absl::StatusOr<ChunkSource::Chunk> granted = source_.Grant(ask);
    if (granted.ok()) {
      auto chunk = std::make_unique<Chunk>();
      chunk->handle = granted->handle;
      chunk->offset = granted->offset_bytes;
      chunk->bytes = granted->capacity_bytes;
      chunk->carve = chunk->offset;
      next_chunk_bytes_ = std::min(kMaxChunkBytes, 2 * ask);
      reserved_bytes_.fetch_add(chunk->bytes, std::memory_order_relaxed);
      chunks_.push_back(std::move(chunk));
      return chunks_.back().get();
    }
    if (!absl::IsResourceExhausted(granted.status()) || ask / 2 < bytes) return nullptr;
    ask /= 2;  // the pool (or the session's quota) has no room for that much
  }
}

Arena::Slab* Arena::NewSlabLocked() {
  if (spare_slabs_.empty()) {
    slabs_.push_back(std::make_unique<Slab>());
    return slabs_.back().get();
  }
  Slab* slab = spare_slabs_.back();
  spare_slabs_.pop_back();
  return slab;
}

bool Arena::CarveLocked(int cls) {
  const uint32_t block = class_bytes_[cls];
  const uint64_t slab_bytes = SlabBytes(block);
  Chunk* home = nullptr;
  for (auto& chunk : chunks_) {
    if (!chunk->idle && !chunk->large &&
        RoundUp(chunk->carve, kPage) + slab_bytes <= chunk->offset + chunk->bytes) {
      home = chunk.get();
      break;
    }
  }
  if (home == nullptr) home = NewChunkLocked(slab_bytes + kPage);
  if (home == nullptr) return false;
  Slab* slab = NewSlabLocked();
  slab->start = RoundUp(home->carve, kPage);
  slab->bytes = slab_bytes;
  slab->block_bytes = block;
  slab->blocks = static_cast<uint32_t>(slab_bytes / block);
  slab->cls = cls;
  slab->chunk = home;
  slab->sizes.assign(slab->blocks, 0);
  slab->registered.store(0, std::memory_order_relaxed);
  home->carve = slab->start + slab_bytes;
  home->slabs.push_back(slab);
  SetPages(slab->start, slab_bytes, slab);
  Central& central = central_[cls];
  MutexLock lock(&central.mu);
  for (uint32_t i = slab->blocks; i-- > 0;) central.free.push_back(slab->start + uint64_t{i} * block);
  return true;
}

void Arena::DissolveLocked(Chunk& chunk) {
  for (Slab* slab : chunk.slabs) {
    if (slab->cls == kLargeClass) {  // its one block is in no free list
      SetPages(slab->start, slab->bytes, nullptr);
      spare_slabs_.push_back(slab);
      continue;
    }
    Central& central = central_[slab->cls];
    MutexLock lock(&central.mu);
    std::erase_if(central.free, [slab](uint64_t o) {
      return o >= slab->start && o < slab->start + slab->bytes;
    });
    SetPages(slab->start, slab->bytes, nullptr);
    spare_slabs_.push_back(slab);
  }
  chunk.slabs.clear();
  chunk.carve = chunk.offset;
}

void Arena::IdleLocked(Chunk& chunk) {
  if (chunk.registered > 0) return;
  // Hold every class list the chunk has blocks in, so no refill takes one
  // while we look (only here are two class mutexes held: ascending order).
  std::vector<int> classes;
  for (Slab* slab : chunk.slabs) classes.push_back(slab->cls);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  for (int c : classes) central_[c].mu.lock();
  bool empty = chunk.outside.load(std::memory_order_acquire) == 0;
  for (int c : classes) central_[c].mu.unlock();
  if (!empty) return;
  // Nothing is outside the free lists, and only mu_'s holder (us) carves
  // or refills from a dissolved chunk: it stays empty.
  DissolveLocked(chunk);
  chunk.idle = true;
  chunk.idle_ticks = 0;
  ReportLocked({chunk.handle}, {}, nullptr);
}

void Arena::ForgetLocked(Chunk* chunk) {
  // Its blocks' range slots went with it in the Holdings (a chunk no longer
  // held has none), so the memory may come back as another chunk.
  std::erase(large_cache_, chunk);
  DissolveLocked(*chunk);
  reserved_bytes_.fetch_sub(chunk->bytes, std::memory_order_relaxed);
  std::erase_if(chunks_, [chunk](const auto& c) { return c.get() == chunk; });
}

void Arena::ReportLocked(const std::vector<uint64_t>& idle, const std::vector<uint64_t>& use,
                         std::vector<uint64_t>* taken) {
  ArenaStats stats = Stats();
  absl::StatusOr<std::vector<uint64_t>> answer = source_.Report(idle, use, stats);
  if (answer.ok()) {
    reported_ = stats;
    if (taken != nullptr) *taken = std::move(*answer);
  } else if (taken != nullptr) {
    *taken = use;  // cannot tell: treat as taken (the chunk is forgotten, not misused)
  }
}

Arena::Chunk* Arena::ChunkOfLocked(uint64_t handle) {
  for (auto& chunk : chunks_) {
    if (chunk->handle == handle) return chunk.get();
  }
  return nullptr;
}

void Arena::AbsorbEventsLocked() {
  for (uint64_t handle : holdings_.TakeLostChunks()) {
    if (Chunk* chunk = ChunkOfLocked(handle)) ForgetLocked(chunk);  // else: released by us
  }
  for (const Holdings::SentAway& sent : holdings_.TakeSentAway()) {
    std::optional<Holdings::Range> range = holdings_.RangeAt(sent.offset_bytes);
    // Only while the slot is still that handle's parked one: an event that
    // comes after the slot was unparked and reused is stale. (A slot is
    // unparked only once its event was taken: it is live until then.)
    if (!range || range->handle != sent.handle || range->state != Holdings::RangeState::kParked) {
      continue;
    }
    if (sent.registered) {  // registered by the send itself: counted here
      if (Slab* slab = SlabAt(sent.offset_bytes)) CountRegisteredLocked(*slab);
    }
    SlotGoneLocked(sent.offset_bytes);
  }
}

void Arena::TakeEvents() {
  MutexLock lock(&mu_);
  AbsorbEventsLocked();
}

bool Arena::UnparkLocked() {
  AbsorbEventsLocked();  // a slot sent away stops being live before it can be reused
  std::vector<uint64_t> offsets, handles;
  for (const auto& [offset, handle] : holdings_.Parked(limits::kMaxBatch)) {
    const Slab* slab = SlabAt(offset);
    // A slot still live was sent away after the events above: next time.
    if (slab == nullptr || slab->sizes[(offset - slab->start) / slab->block_bytes] != 0) continue;
    offsets.push_back(offset);
    handles.push_back(handle);
  }
  if (offsets.empty()) return false;
  absl::StatusOr<std::vector<uint32_t>> counts = source_.Query(handles);
  if (!counts.ok()) return false;
  bool any = false;
  for (size_t i = 0; i < offsets.size() && i < counts->size(); ++i) {
    if ((*counts)[i] != 0) continue;
    holdings_.EraseRange(offsets[i]);
    Slab* slab = SlabAt(offsets[i]);
    slab->registered.fetch_sub(1, std::memory_order_relaxed);
    --slab->chunk->registered;
    if (slab->cls == kLargeClass) {
      CacheLargeLocked(slab->chunk);
      any = true;
      continue;
    }
    std::vector<Chunk*> emptied;
    FlushItems(slab->cls, &offsets[i], 1, &emptied);
    for (Chunk* chunk : emptied) {
      if (!chunk->idle) IdleLocked(*chunk);
    }
    any = true;
  }
  return any;
}

std::optional<absl::StatusOr<Arena::Block>> Arena::Find(const void* ptr) const {
  auto* p = static_cast<const uint8_t*>(ptr);
  if (p < base_ || p >= base_ + pool_bytes_) return std::nullopt;
  const uint64_t offset = p - base_;
  const Slab* slab = SlabAt(offset);
  if (slab == nullptr) return std::nullopt;
  const uint64_t rel = offset - slab->start;
  if (offset < slab->start || rel % slab->block_bytes != 0 ||
      slab->sizes[rel / slab->block_bytes] == 0) {
    if (std::optional<uint64_t> lost = holdings_.LostAtOffset(offset)) {
      return Holdings::LostError(ptr, *lost);  // a restart took it (issue 24)
    }
    return absl::NotFoundError(absl::StrFormat(
        "%p is not the start of a live arena block (interior, or already freed)", ptr));
  }
  Block block{offset, slab->sizes[rel / slab->block_bytes] - 1u, slab->block_bytes, 0};
  if (slab->registered.load(std::memory_order_relaxed) > 0) {
    if (std::optional<Holdings::Range> range = holdings_.RangeAt(offset)) {
      if (range->state == Holdings::RangeState::kParked) {  // a send took it
        return absl::NotFoundError(absl::StrFormat(
            "%p was sent away (its handle 0x%016x is no longer this session's)", ptr,
            range->handle));
      }
      block.handle = range->handle;
    }
  }
  return block;
}

absl::StatusOr<BufferRef> Arena::Handle(const Block& block) {
  const void* ptr = base_ + block.offset_bytes;
  MutexLock lock(&mu_);
  // Looked up again under mu_: another thread may have registered the block
  // (or a send taken it) since `block` was found.
  uint64_t handle = block.handle;
  if (std::optional<Holdings::Range> range = holdings_.RangeAt(block.offset_bytes)) {
    if (range->state == Holdings::RangeState::kParked) {
      return absl::NotFoundError(absl::StrFormat(
          "%p was sent away (its handle 0x%016x is no longer this session's)", ptr, range->handle));
    }
    handle = range->handle;
  }
  if (handle != 0) {
    if (!holdings_.Holds(handle)) {
      // Its reference is gone though no send of this process took it: a
      // restart did not give it back.
      holdings_.SetRange(block.offset_bytes, handle, Holdings::RangeState::kParked);
      SlotGoneLocked(block.offset_bytes);
      if (holdings_.LostAtReconnect(handle)) return Holdings::LostError(ptr, handle);
      return absl::NotFoundError(absl::StrFormat(
          "%p is no longer this session's (its handle 0x%016x is not held)", ptr, handle));
    }
    return BufferRef{handle, block.offset_bytes, block.size_bytes, block.capacity_bytes};
  }
  Slab* slab = SlabAt(block.offset_bytes);
  v1::ArenaRegisterRequest reg;
  reg.set_chunk(slab->chunk->handle);
  reg.set_offset_bytes(block.offset_bytes);
  reg.set_size_bytes(block.size_bytes);
  reg.set_capacity_bytes(block.capacity_bytes);
  absl::StatusOr<uint64_t> registered = source_.Register(reg);  // a live range in the Holdings
  if (!registered.ok()) return registered.status();
  CountRegisteredLocked(*slab);
  return BufferRef{*registered, block.offset_bytes, block.size_bytes, block.capacity_bytes};
}

absl::Status Arena::AddToSend(const Block& block, ArenaSend* send, bool register_now) {
  if (block.handle != 0 || register_now) {
    // Handle() registers it now if need be, and knows whether it is still held.
    absl::StatusOr<BufferRef> ref = Handle(block);
    if (!ref.ok()) return ref.status();
    send->handles.push_back(ref->handle);  // the send's answer parks its slot
    return absl::OkStatus();
  }
  MutexLock lock(&mu_);
  Slab* slab = SlabAt(block.offset_bytes);
  v1::ArenaRegisterRequest& reg = send->ranges.emplace_back();
  reg.set_chunk(slab->chunk->handle);
  reg.set_offset_bytes(block.offset_bytes);
  reg.set_size_bytes(block.size_bytes);
  reg.set_capacity_bytes(block.capacity_bytes);
  send->handles.push_back(0);
  return absl::OkStatus();
}

void Arena::SlotGoneLocked(uint64_t offset) {
  Slab* slab = SlabAt(offset);
  if (slab == nullptr) return;  // a forgotten chunk's slot
  uint32_t& size = slab->sizes[(offset - slab->start) / slab->block_bytes];
  if (size == 0) return;
  size = 0;
  MutexLock lock(&caches_mu_);
  exited_.in_use_bytes -= slab->block_bytes;  // wraps back when summed in Stats()
}

void Arena::CountRegisteredLocked(Slab& slab) {
  slab.registered.fetch_add(1, std::memory_order_relaxed);
  ++slab.chunk->registered;
}

void Arena::Tick() {
  // Never waits for the arena: a thread holding mu_ may be waiting for the
  // daemon (a large block's call). A busy arena skips the tick; the next
  // comes in 25 ms.
  if (!mu_.try_lock()) return;
  MutexLock lock(&mu_, std::adopt_lock);
  AbsorbEventsLocked();
  if (holdings_.AnyParked()) UnparkLocked();
  TickLargeLocked();
  std::vector<Chunk*> expired;
  for (auto& chunk : chunks_) {
    if (chunk->large) continue;  // cached or in use: arena_large.cc
    if (chunk->idle) {
      if (++chunk->idle_ticks >= kReturnTicks && chunks_.size() - expired.size() > 1) {
        expired.push_back(chunk.get());
      }
    } else if (chunk->outside.load(std::memory_order_acquire) == 0 && chunk->registered == 0 &&
               !chunk->slabs.empty()) {
      IdleLocked(*chunk);
    }
  }
  for (Chunk* chunk : expired) {
    // Take it back from idle first: a release of a chunk pressure took
    // already would fail, and with it the batch it rides in.
    std::vector<uint64_t> taken;
    ReportLocked({}, {chunk->handle}, &taken);
    if (taken.empty()) source_.ReleaseLater(chunk->handle);
    ForgetLocked(chunk);
  }
  ArenaStats now = Stats();
  if (now.local_allocs != reported_.local_allocs || now.in_use_bytes != reported_.in_use_bytes ||
      now.reserved_bytes != reported_.reserved_bytes) {
    ReportLocked({}, {}, nullptr);
  }
}

}  // namespace memd
