// Arena: the client's local allocator, driven alone through a fake of its
// one port to the daemon (ChunkSource) and the session's real Holdings, the
// way SessionLink records answers. No daemon: what is checked here is the
// allocator's own state (carving, reuse, registration on demand, parking,
// idle chunks, a chunk a restart did not give back).
#include "arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "chunk_source.h"
#include "holdings.h"

namespace memd {
namespace {

constexpr uint64_t kPoolBytes = 64 << 20;

// A daemon in miniature: chunks from a bump pointer, handles counted up,
// references per handle; every grant is recorded in the Holdings as the
// session link would record the daemon's answer.
class FakeChunkSource final : public ChunkSource {
 public:
  explicit FakeChunkSource(Holdings& holdings) : holdings_(holdings) {}

  absl::StatusOr<Chunk> Grant(uint64_t bytes) override {
    uint64_t capacity = (bytes + 4095) / 4096 * 4096;
    if (refuse_grants || next_offset_ + capacity > kPoolBytes) {
      return absl::ResourceExhaustedError("fake pool full");
    }
    v1::SessionRequest request;
    request.mutable_allocate()->set_size_bytes(bytes);
    v1::SessionResponse response;
    Fill(response.mutable_buffer(), next_handle_++, next_offset_, bytes, capacity);
    holdings_.Apply(request, response);
    holdings_.MarkChunk(response.buffer().handle());
    refs[response.buffer().handle()] = 1;
    next_offset_ += capacity;
    ++grants;
    return Chunk{response.buffer().handle(), response.buffer().offset_bytes(), capacity};
  }
  absl::StatusOr<uint64_t> Register(const v1::ArenaRegisterRequest& range) override {
    v1::SessionRequest request;
    *request.mutable_arena_register() = range;
    v1::SessionResponse response;
    Fill(response.mutable_arena_registered()->mutable_range(), next_handle_++,
         range.offset_bytes(), range.size_bytes(), range.capacity_bytes());
    holdings_.Apply(request, response);
    const uint64_t handle = response.arena_registered().range().handle();
    refs[handle] = 1;
    ++registers;
    return handle;
  }
  absl::StatusOr<std::vector<uint64_t>> Report(const std::vector<uint64_t>& idle,
                                               const std::vector<uint64_t>& use,
                                               const ArenaStats& counters) override {
    reported_idle.insert(reported_idle.end(), idle.begin(), idle.end());
    last_counters = counters;
    v1::SessionRequest request;
    v1::SessionResponse response;
    request.mutable_arena_report();
    std::vector<uint64_t> taken;
    for (uint64_t h : use) {
      if (take_back.contains(h)) {
        taken.push_back(h);
        response.mutable_arena_reported()->add_taken(h);
      }
    }
    holdings_.Apply(request, response);
    return taken;
  }
  absl::StatusOr<std::vector<uint32_t>> Query(const std::vector<uint64_t>& handles) override {
    ++queries;
    std::vector<uint32_t> counts;
    for (uint64_t h : handles) counts.push_back(refs[h]);
    return counts;
  }
  void Release(uint64_t handle) override {
    if (holdings_.Remove(handle)) --refs[handle];
    released.push_back(handle);
  }
  void ReleaseLater(uint64_t handle) override { Release(handle); }

  absl::flat_hash_map<uint64_t, uint32_t> refs;  // references anyone holds
  std::set<uint64_t> take_back;                  // idle chunks "pool pressure" takes
  std::vector<uint64_t> reported_idle, released;
  ArenaStats last_counters;
  bool refuse_grants = false;
  int grants = 0, registers = 0, queries = 0;

 private:
  static void Fill(v1::BufferInfo* b, uint64_t handle, uint64_t offset, uint64_t size,
                   uint64_t capacity) {
    b->set_handle(handle);
    b->set_offset_bytes(offset);
    b->set_size_bytes(size);
    b->set_capacity_bytes(capacity);
  }

  Holdings& holdings_;
  uint64_t next_handle_ = 0x100;
  uint64_t next_offset_ = 4096;  // offset 0 is never a buffer
};

class ArenaTest : public ::testing::Test {
 protected:
  ArenaTest() {
    memory_ = static_cast<uint8_t*>(::mmap(nullptr, kPoolBytes, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    arena_ = std::make_unique<Arena>(source_, holdings_,
                                     Arena::Pool{memory_, kPoolBytes, /*alignment_bytes=*/64},
                                     Arena::kDefaultThresholdBytes);
  }
  ~ArenaTest() override {
    arena_.reset();
    ::munmap(memory_, kPoolBytes);
  }
  Arena::Block Found(void* ptr) {
    std::optional<absl::StatusOr<Arena::Block>> block = arena_->Find(ptr);
    EXPECT_TRUE(block.has_value() && block->ok()) << ptr;
    return block && block->ok() ? **block : Arena::Block{};
  }

  Holdings holdings_;
  FakeChunkSource source_{holdings_};
  uint8_t* memory_ = nullptr;
  std::unique_ptr<Arena> arena_;
};

TEST_F(ArenaTest, CarvesOneChunkAndReusesFreedBlocks) {
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    void* p = arena_->Allocate(100);
    ASSERT_NE(p, nullptr);
    std::memset(p, i, 100);
    blocks.push_back(p);
  }
  EXPECT_EQ(source_.grants, 1);  // one chunk serves them all
  std::set<void*> distinct(blocks.begin(), blocks.end());
  EXPECT_EQ(distinct.size(), blocks.size());
  for (void* p : blocks) EXPECT_TRUE(arena_->Free(p));
  EXPECT_FALSE(arena_->Free(blocks[0]));  // freed twice: not a live block
  void* again = arena_->Allocate(100);
  EXPECT_TRUE(distinct.contains(again));  // the memory is reused, no new chunk
  EXPECT_EQ(source_.grants, 1);
  EXPECT_EQ(source_.registers, 0);  // no handle was asked for
  EXPECT_TRUE(arena_->Free(again));
}

TEST_F(ArenaTest, RegistersABlockOnceOnDemand) {
  void* p = arena_->Allocate(256);
  Arena::Block block = Found(p);
  EXPECT_EQ(block.handle, 0u);
  absl::StatusOr<BufferRef> ref = arena_->Handle(block);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(source_.registers, 1);
  EXPECT_EQ(ref->offset_bytes, static_cast<uint64_t>(static_cast<uint8_t*>(p) - memory_));
  EXPECT_EQ(Found(p).handle, ref->handle);
  absl::StatusOr<BufferRef> again = arena_->Handle(Found(p));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->handle, ref->handle);
  EXPECT_EQ(source_.registers, 1);  // once
  std::optional<Holdings::Range> range = holdings_.RangeAt(ref->offset_bytes);
  ASSERT_TRUE(range);
  EXPECT_EQ(range->state, Holdings::RangeState::kLive);
}

TEST_F(ArenaTest, AHandleAskedWithAStaleLookupIsTheOneAlreadyRegistered) {
  // Two threads look the block up before either registers it: the second
  // gets the first one's handle, not a second registration (which the daemon
  // would refuse as overlapping).
  void* p = arena_->Allocate(256);
  Arena::Block seen_by_both = Found(p);
  ASSERT_EQ(seen_by_both.handle, 0u);
  absl::StatusOr<BufferRef> first = arena_->Handle(seen_by_both);
  absl::StatusOr<BufferRef> second = arena_->Handle(seen_by_both);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->handle, second->handle);
  EXPECT_EQ(source_.registers, 1);
}

TEST_F(ArenaTest, AFreedRegisteredBlockStaysParkedWhileAnyoneHoldsItsHandle) {
  void* p = arena_->Allocate(512);
  absl::StatusOr<BufferRef> ref = arena_->Handle(Found(p));
  ASSERT_TRUE(ref.ok());
  source_.refs[ref->handle] += 1;  // another process retained it
  ASSERT_TRUE(arena_->Free(p));
  EXPECT_EQ(source_.released, std::vector<uint64_t>{ref->handle});  // the one release
  EXPECT_FALSE(holdings_.Holds(ref->handle));
  ASSERT_TRUE(holdings_.RangeAt(ref->offset_bytes));
  EXPECT_EQ(holdings_.RangeAt(ref->offset_bytes)->state, Holdings::RangeState::kParked);
  // Not reused while held elsewhere, however many allocations come.
  for (int i = 0; i < 3; ++i) arena_->Tick();
  std::vector<void*> taken;
  for (int i = 0; i < 200; ++i) taken.push_back(arena_->Allocate(512));
  EXPECT_EQ(std::count(taken.begin(), taken.end(), p), 0);
  EXPECT_GT(source_.queries, 0);
  for (void* q : taken) arena_->Free(q);
  // The other holder lets go: the next tick gives the slot back.
  source_.refs[ref->handle] = 0;
  arena_->Tick();
  EXPECT_FALSE(holdings_.RangeAt(ref->offset_bytes));
  std::set<void*> reused;
  for (int i = 0; i < 400; ++i) reused.insert(arena_->Allocate(512));
  EXPECT_TRUE(reused.contains(p));
  // The reused block has no handle: the old one stays the old block's.
  EXPECT_EQ(Found(p).handle, 0u);
}

TEST_F(ArenaTest, AnEmptyChunkGoesIdleAndComesBackWhenNeeded) {
  // A thread allocates and frees; its cache goes back to the free lists when
  // it exits, so every block of the chunk is free.
  std::thread([&] {
    std::vector<void*> many;
    for (int i = 0; i < 1000; ++i) many.push_back(arena_->Allocate(64));
    for (void* q : many) EXPECT_TRUE(arena_->Free(q));
  }).join();
  ASSERT_EQ(source_.grants, 1);
  EXPECT_TRUE(source_.reported_idle.empty());
  arena_->Tick();
  ASSERT_EQ(source_.reported_idle.size(), 1u);  // the chunk, told idle
  EXPECT_EQ(source_.last_counters.in_use_bytes, 0u);
  EXPECT_EQ(source_.last_counters.reserved_bytes, uint64_t{1} << 20);
  // Used again: the arena asks for the idle chunk back, not for a new one.
  void* r = arena_->Allocate(64);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(source_.grants, 1);
  EXPECT_TRUE(arena_->Free(r));
}

TEST_F(ArenaTest, AnIdleChunkPoolPressureTookIsNotUsedAgain) {
  std::thread([&] { EXPECT_TRUE(arena_->Free(arena_->Allocate(64))); }).join();
  arena_->Tick();
  ASSERT_EQ(source_.reported_idle.size(), 1u);
  source_.take_back.insert(source_.reported_idle[0]);  // the daemon took it meanwhile
  void* r = arena_->Allocate(64);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(source_.grants, 2);  // a new chunk
  EXPECT_FALSE(holdings_.Holds(source_.reported_idle[0]));
  EXPECT_TRUE(arena_->Free(r));
}

TEST_F(ArenaTest, AChunkARestartDidNotGiveBackIsForgotten) {
  void* p = arena_->Allocate(128);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(source_.grants, 1);
  const uint64_t offset = static_cast<uint8_t*>(p) - memory_;
  // The daemon restarted and granted nothing back (the grace ended).
  EXPECT_TRUE(holdings_.KeepGranted({}).empty());
  arena_->Tick();
  // The old block is no arena block any more (its slab went with the chunk).
  std::optional<absl::StatusOr<Arena::Block>> old = arena_->Find(p);
  EXPECT_FALSE(old.has_value() && old->ok());
  EXPECT_FALSE(arena_->Free(p));
  EXPECT_TRUE(holdings_.LostAtOffset(4096).has_value());  // the chunk, at the fake's first offset
  EXPECT_GE(offset, 4096u);
  // New allocations take a new chunk.
  void* q = arena_->Allocate(128);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(source_.grants, 2);
  EXPECT_TRUE(arena_->Free(q));
}

TEST_F(ArenaTest, AMovingSendParksTheSlotAndTheSenderCannotFreeIt) {
  void* p = arena_->Allocate(1000);
  Arena::Block block = Found(p);
  ArenaSend send;
  ASSERT_TRUE(arena_->AddToSend(block, &send, /*register_now=*/false).ok());
  ASSERT_EQ(send.ranges.size(), 1u);
  EXPECT_EQ(send.handles, std::vector<uint64_t>{0});
  // The daemon registers the range with the send and answers: the channel
  // holds it (as SessionLink applies the answer).
  v1::SessionRequest request;
  request.mutable_send()->add_handles(0);
  *request.mutable_send()->add_register_first() = send.ranges[0];
  v1::SessionResponse response;
  v1::BufferInfo* registered = response.mutable_sent()->add_registered();
  registered->set_handle(0x9999);
  registered->set_offset_bytes(block.offset_bytes);
  registered->set_size_bytes(block.size_bytes);
  registered->set_capacity_bytes(block.capacity_bytes);
  holdings_.Apply(request, response);
  source_.refs[0x9999] = 1;  // the message holds it
  arena_->TakeEvents();
  std::optional<absl::StatusOr<Arena::Block>> found = arena_->Find(p);
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->ok());  // sent away
  EXPECT_FALSE(arena_->Free(p));
  // The receiver frees it: the slot comes back at a tick.
  source_.refs[0x9999] = 0;
  arena_->Tick();
  EXPECT_FALSE(holdings_.RangeAt(block.offset_bytes));
  std::set<void*> again;
  for (int i = 0; i < 100; ++i) again.insert(arena_->Allocate(1000));
  EXPECT_TRUE(again.contains(p));
}

TEST_F(ArenaTest, LargeBlocksHaveTheirOwnChunkAndAreCachedAfterFree) {
  void* big = arena_->Allocate(1 << 20);
  ASSERT_NE(big, nullptr);
  const int grants = source_.grants;
  ASSERT_TRUE(arena_->Free(big));
  void* again = arena_->Allocate((1 << 20) - 100);
  EXPECT_EQ(again, big);  // the cached chunk, no round trip
  EXPECT_EQ(source_.grants, grants);
  ASSERT_TRUE(arena_->Free(again));
  // Unused for kLargeCacheTicks: released.
  for (uint32_t i = 0; i <= Arena::kLargeCacheTicks; ++i) arena_->Tick();
  EXPECT_FALSE(source_.released.empty());
}

TEST_F(ArenaTest, NoChunkMeansTheDaemonPath) {
  source_.refuse_grants = true;
  EXPECT_EQ(arena_->Allocate(100), nullptr);
  EXPECT_EQ(arena_->Allocate(4 << 20), nullptr);
}

}  // namespace
}  // namespace memd
