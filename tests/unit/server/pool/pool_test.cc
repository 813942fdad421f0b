#include "pool/pool.h"

#include <cstring>
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace memd {
namespace {

class PoolTest : public testing::Test {
 protected:
  static constexpr uint64_t kSize = 1 << 20;
  PoolTest() : memory_(kSize), pool_(PoolConfig{"test", kSize, 64, 1 << 19}, 0, memory_.data(), "/x") {}
  void TearDown() override { ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants(); }

  std::vector<uint8_t> memory_;
  Pool pool_;
  HolderId a_ = pool_.OpenSession(1, std::nullopt);
  HolderId b_ = pool_.OpenSession(2, std::nullopt);
};

TEST_F(PoolTest, ZeroedAllocationIsZeroEvenWhenBlockIsReused) {
  auto first = pool_.Allocate(a_, 4096, false);
  ASSERT_TRUE(first.ok());
  std::memset(memory_.data() + first->offset_bytes, 0xff, 4096);
  ASSERT_TRUE(pool_.Release(a_, first->handle).ok());
  auto second = pool_.Allocate(a_, 4096, true);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->offset_bytes, first->offset_bytes);  // same block reused
  for (uint64_t i = 0; i < 4096; ++i) ASSERT_EQ(memory_[second->offset_bytes + i], 0) << i;
}

TEST_F(PoolTest, ReferencesAreCountedAcrossSessions) {
  auto buf = pool_.Allocate(a_, 100, false);
  ASSERT_TRUE(buf.ok());
  ASSERT_TRUE(pool_.Retain(b_, buf->handle).ok());
  EXPECT_EQ(*pool_.Release(a_, buf->handle), false);  // b_ still holds it
  EXPECT_EQ(pool_.Stats().live_buffers, 1u);
  EXPECT_EQ(*pool_.Release(b_, buf->handle), true);
  EXPECT_EQ(pool_.Stats().live_buffers, 0u);
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
}

TEST_F(PoolTest, ReleaseAllReturnsEverythingOfOneSessionOnly) {
  auto mine = pool_.Allocate(a_, 100, false);
  auto shared = pool_.Allocate(b_, 100, false);
  ASSERT_TRUE(pool_.Retain(a_, shared->handle).ok());
  ASSERT_TRUE(pool_.Retain(a_, shared->handle).ok());
  EXPECT_EQ(pool_.ReleaseAll(a_), 3u);
  EXPECT_EQ(pool_.Stats().live_buffers, 1u);  // b_'s buffer survives
  EXPECT_FALSE(pool_.Retain(b_, mine->handle).ok());
  EXPECT_TRUE(pool_.Release(b_, shared->handle).ok());
}

TEST_F(PoolTest, BadRequestsFailWithSpecificCodesAndChangeNothing) {
  auto buf = pool_.Allocate(a_, 100, false);
  PoolStats before = pool_.Stats();
  auto too_big = pool_.Allocate(a_, (1 << 19) + 1, false);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("max_alloc"), absl::string_view::npos);
  EXPECT_EQ(pool_.Release(b_, buf->handle).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_.Release(a_, 12345).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_.Realloc(b_, buf->handle, 10).status().code(), absl::StatusCode::kFailedPrecondition);
  PoolStats after = pool_.Stats();
  EXPECT_EQ(after.used_bytes, before.used_bytes);
  EXPECT_EQ(after.live_buffers, before.live_buffers);
  EXPECT_EQ(after.failed_allocs, before.failed_allocs + 1);
  ASSERT_TRUE(pool_.Release(a_, buf->handle).ok());
  EXPECT_EQ(pool_.Release(a_, buf->handle).status().code(), absl::StatusCode::kNotFound);  // double
}

TEST_F(PoolTest, ExhaustionIsResourceExhaustedNamingTheLargestFreeBlock) {
  auto big = pool_.Allocate(a_, 1 << 19, false);
  auto big2 = pool_.Allocate(a_, (1 << 19) - 64, false);
  ASSERT_TRUE(big.ok() && big2.ok());
  auto fail = pool_.Allocate(a_, 128, false);
  EXPECT_EQ(fail.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(fail.status().message().find("largest free block"), absl::string_view::npos);
}

TEST_F(PoolTest, ReallocGrowsInPlaceOrMovesContentAndRefusesSharedBuffers) {
  auto buf = pool_.Allocate(a_, 64, false);
  std::memcpy(memory_.data() + buf->offset_bytes, "hello", 6);
  auto grown = pool_.Realloc(a_, buf->handle, 4096);
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(grown->offset_bytes, buf->offset_bytes);  // neighbour was free
  auto blocker = pool_.Allocate(a_, 64, false);
  auto moved = pool_.Realloc(a_, buf->handle, 8192);
  ASSERT_TRUE(moved.ok());
  EXPECT_NE(moved->offset_bytes, buf->offset_bytes);
  EXPECT_EQ(moved->handle, buf->handle);
  EXPECT_STREQ(reinterpret_cast<char*>(memory_.data() + moved->offset_bytes), "hello");
  ASSERT_TRUE(pool_.Retain(b_, buf->handle).ok());
  EXPECT_EQ(pool_.Realloc(a_, buf->handle, 16).status().code(), absl::StatusCode::kFailedPrecondition);
  auto no_room = pool_.Realloc(b_, blocker->handle, 1 << 19);
  EXPECT_FALSE(no_room.ok());
  pool_.ReleaseAll(a_);
  pool_.ReleaseAll(b_);
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
}

TEST_F(PoolTest, FailedMovingReallocLeavesOldBufferIntact) {
  auto buf = pool_.Allocate(a_, 1000, false);
  auto blocker = pool_.Allocate(a_, 64, false);
  auto filler = pool_.Allocate(a_, 1 << 19, false);  // leaves < 512 KiB free
  ASSERT_TRUE(blocker.ok() && filler.ok());
  std::memset(memory_.data() + buf->offset_bytes, 0x5a, 1000);
  auto fail = pool_.Realloc(a_, buf->handle, 1 << 19);  // cannot grow, cannot move
  ASSERT_EQ(fail.status().code(), absl::StatusCode::kResourceExhausted);
  auto again = pool_.Retain(a_, buf->handle);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->offset_bytes, buf->offset_bytes);
  EXPECT_EQ(again->size_bytes, 1000u);
  EXPECT_EQ(memory_[buf->offset_bytes + 999], 0x5a);
}

TEST_F(PoolTest, SessionAttributionFollowsHeldBuffers) {
  auto buf = pool_.Allocate(a_, 100, false);
  EXPECT_EQ(pool_.Usage(a_).held_bytes, 128u);
  ASSERT_TRUE(pool_.Retain(b_, buf->handle).ok());
  EXPECT_EQ(pool_.Usage(b_).held_bytes, 128u);
  ASSERT_TRUE(pool_.Release(a_, buf->handle).ok());
  EXPECT_EQ(pool_.Usage(a_).held_bytes, 0u);
  pool_.ReleaseAll(b_);
}

TEST(PoolConfigTest, ValidationNamesTheValueAndTheLimit) {
  EXPECT_TRUE(ValidatePoolConfig({"ok", 4096, 64, 100}).ok());
  auto bad_align = ValidatePoolConfig({"p", 4096, 48, 100});
  EXPECT_NE(bad_align.message().find("48"), absl::string_view::npos);
  EXPECT_FALSE(ValidatePoolConfig({"p", 32, 64, 100}).ok());
  EXPECT_FALSE(ValidatePoolConfig({"bad.name", 4096, 64, 100}).ok());
  EXPECT_FALSE(ValidatePoolConfig({"p", 4096, 64, 0}).ok());
}

}  // namespace
}  // namespace memd

namespace memd {
namespace {

// Several threads (as gRPC's callback threads do) allocate, share, release
// and end sessions concurrently; TSan checks the locking, the model checks
// the outcome.
TEST(PoolConcurrencyTest, ThreadsSharingOnePoolKeepItConsistent) {
  constexpr uint64_t kSize = 8 << 20;
  std::vector<uint8_t> memory(kSize);
  Pool pool(PoolConfig{"mt", kSize, 64, kSize}, 0, memory.data(), "/mt");
  constexpr int kThreads = 4;
  std::atomic<uint64_t> published{0};  // a handle other threads try to retain
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HolderId refs = pool.OpenSession(t + 1, std::nullopt);
      for (int i = 0; i < 3000; ++i) {
        auto buf = pool.Allocate(refs, 64 + (i * 37 + t * 101) % 50000, i % 3 == 0);
        if (buf.ok()) {
          published.store(buf->handle, std::memory_order_relaxed);
          if (i % 5 == 0) (void)pool.Realloc(refs, buf->handle, 100 + i % 20000);
        }
        if (auto other = pool.Retain(refs, published.load(std::memory_order_relaxed)); other.ok()) {
          (void)pool.Release(refs, other->handle);
        }
        if (buf.ok() && i % 2 == 0) (void)pool.Release(refs, buf->handle);
        if (i % 500 == 499) pool.ReleaseAll(refs);
      }
      pool.ReleaseAll(refs);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(pool.Stats().used_bytes, 0u);
  EXPECT_EQ(pool.Stats().live_buffers, 0u);
  EXPECT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
}

}  // namespace
}  // namespace memd
