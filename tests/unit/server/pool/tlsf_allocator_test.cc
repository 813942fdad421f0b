#include "pool/tlsf_allocator.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

#include "test_seed.h"

namespace memd {
namespace {

TEST(TlsfAllocatorTest, OffsetsAreAlignedAndSizesRounded) {
  TlsfAllocator a(1 << 20, 64);
  for (uint64_t size : {0, 1, 63, 64, 65, 1000, 4096, 100000}) {
    auto block = a.Allocate(size);
    ASSERT_TRUE(block.has_value()) << size;
    EXPECT_EQ(a.offset(*block) % 64, 0u) << size;
    EXPECT_GE(a.capacity(*block), std::max<uint64_t>(size, 1));
    EXPECT_EQ(a.capacity(*block) % 64, 0u);
  }
  EXPECT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(TlsfAllocatorTest, ZeroSizeGetsOneGranule) {
  TlsfAllocator a(4096, 128);
  auto block = a.Allocate(0);
  ASSERT_TRUE(block);
  EXPECT_EQ(a.capacity(*block), 128u);
}

TEST(TlsfAllocatorTest, FreeNeighboursCoalesce) {
  TlsfAllocator a(64 * 10, 64);
  std::vector<TlsfAllocator::BlockId> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(*a.Allocate(64));
  EXPECT_FALSE(a.Allocate(64).has_value());
  EXPECT_EQ(a.largest_free_bytes(), 0u);
  a.Free(blocks[3]);
  a.Free(blocks[5]);
  EXPECT_EQ(a.largest_free_bytes(), 64u);
  a.Free(blocks[4]);  // joins 3 and 5
  EXPECT_EQ(a.largest_free_bytes(), 3 * 64u);
  ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
  auto big = a.Allocate(3 * 64);
  ASSERT_TRUE(big);
  EXPECT_EQ(a.offset(*big), 3 * 64u);
}

TEST(TlsfAllocatorTest, ExhaustionAndRecovery) {
  TlsfAllocator a(1 << 16, 64);
  std::vector<TlsfAllocator::BlockId> blocks;
  while (auto b = a.Allocate(1000)) blocks.push_back(*b);
  EXPECT_EQ(blocks.size(), (1u << 16) / 1024);
  EXPECT_FALSE(a.Allocate(1).has_value());
  for (auto b : blocks) a.Free(b);
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(a.largest_free_bytes(), 1u << 16);
  ASSERT_TRUE(a.CheckInvariants().ok());
  EXPECT_TRUE(a.Allocate(1 << 16).has_value());  // the whole pool again
}

TEST(TlsfAllocatorTest, FillsToTheLastBlockDespiteClassRounding) {
  // 1000 granules: a request for all of them rounds up to a larger class;
  // the fallback scan must still find the exact fit.
  TlsfAllocator a(1000 * 64, 64);
  auto block = a.Allocate(1000 * 64);
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(a.free_bytes(), 0u);
}

TEST(TlsfAllocatorTest, ResizeInPlaceGrowsIntoFreeNeighbourAndShrinks) {
  TlsfAllocator a(64 * 100, 64);
  auto first = *a.Allocate(64);
  auto second = *a.Allocate(64);
  a.Free(second);
  EXPECT_TRUE(a.ResizeInPlace(first, 64 * 50));
  EXPECT_EQ(a.offset(first), 0u);
  EXPECT_EQ(a.capacity(first), 64 * 50u);
  EXPECT_TRUE(a.ResizeInPlace(first, 64 * 10));
  EXPECT_EQ(a.capacity(first), 64 * 10u);
  EXPECT_EQ(a.free_bytes(), 64 * 90u);
  auto blocker = *a.Allocate(64 * 90);
  EXPECT_FALSE(a.ResizeInPlace(first, 64 * 11));  // neighbour used: unchanged
  EXPECT_EQ(a.capacity(first), 64 * 10u);
  a.Free(blocker);
  ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(TlsfAllocatorTest, RequestsLargerThanThePoolFailWithoutOverflow) {
  TlsfAllocator a(1 << 20, 64);
  EXPECT_FALSE(a.Allocate(UINT64_MAX).has_value());
  EXPECT_FALSE(a.Allocate((1 << 20) + 1).has_value());
  auto b = *a.Allocate(10);
  EXPECT_FALSE(a.ResizeInPlace(b, UINT64_MAX));
  EXPECT_TRUE(a.CheckInvariants().ok());
}

// Random alloc/resize/free against a model of live blocks (offset -> size);
// checks overlap, alignment and the invariant checker after every step.
// Issue 24: sub-blocks (arena ranges) never overlap one another; the
// allocator finds the one a range would overlap.
TEST(TlsfAllocatorTest, SubBlocksNeverOverlap) {
  TlsfAllocator a(1 << 16, 64);
  auto chunk = a.Allocate(4096);
  ASSERT_TRUE(chunk);
  auto first = a.AddSub(*chunk, 0, 128);
  ASSERT_TRUE(first);
  EXPECT_FALSE(a.AddSub(*chunk, 64, 128)) << "partly over the first";
  EXPECT_FALSE(a.AddSub(*chunk, 0, 128)) << "the same range again";
  EXPECT_FALSE(a.AddSub(*chunk, 64, 64)) << "inside the first";
  EXPECT_EQ(a.OverlappingSub(64, 128), first);
  EXPECT_EQ(a.OverlappingSub(128, 64), std::nullopt);
  auto second = a.AddSub(*chunk, 128, 64);
  ASSERT_TRUE(second);
  EXPECT_EQ(a.OverlappingSub(0, 4096), first) << "the lowest one";
  EXPECT_EQ(a.OverlappingSub(128, 4096 - 128), second);
  EXPECT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
  a.Free(*first);
  EXPECT_TRUE(a.AddSub(*chunk, 64, 64)) << "a freed range's bytes are free to register";
  EXPECT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(TlsfAllocatorTest, RandomizedAgainstModel) {
  uint32_t seed = testing_support::TestSeed();
  SCOPED_TRACE(testing::Message() << "replay with MEMD_TEST_SEED=" << seed);
  std::mt19937 rng(seed);
  constexpr uint64_t kSize = 8 << 20;
  TlsfAllocator a(kSize, 64);
  std::map<TlsfAllocator::BlockId, uint64_t> live;  // block -> requested size
  std::uniform_int_distribution<int> op(0, 9);
  std::uniform_real_distribution<double> log_size(0, 20);  // 1 B .. 1 MiB, log-uniform
  for (int step = 0; step < 20000; ++step) {
    int choice = op(rng);
    if (choice < 5 || live.empty()) {
      uint64_t size = static_cast<uint64_t>(std::exp2(log_size(rng)));
      auto b = a.Allocate(size);
      if (!b) {
        ASSERT_LT(a.largest_free_bytes(), a.RoundUp(size)) << "failed although a block fits";
        continue;
      }
      ASSERT_FALSE(live.contains(*b));
      live[*b] = size;
    } else if (choice < 7) {
      auto it = std::next(live.begin(), std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng));
      uint64_t size = static_cast<uint64_t>(std::exp2(log_size(rng)));
      uint64_t before_offset = a.offset(it->first), before_cap = a.capacity(it->first);
      if (a.ResizeInPlace(it->first, size)) {
        ASSERT_EQ(a.offset(it->first), before_offset);
        ASSERT_GE(a.capacity(it->first), size);
        it->second = size;
      } else {
        ASSERT_EQ(a.capacity(it->first), before_cap);
      }
    } else {
      auto it = std::next(live.begin(), std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng));
      a.Free(it->first);
      live.erase(it);
    }
    ASSERT_TRUE(a.CheckInvariants().ok()) << "step " << step << ": " << a.CheckInvariants();
    ASSERT_EQ(a.used_blocks(), live.size());
  }
  // No two live blocks overlap.
  std::map<uint64_t, uint64_t> by_offset;
  for (auto [b, size] : live) {
    ASSERT_EQ(a.offset(b) % 64, 0u);
    by_offset[a.offset(b)] = a.capacity(b);
  }
  uint64_t end = 0;
  for (auto [offset, cap] : by_offset) {
    ASSERT_GE(offset, end);
    end = offset + cap;
  }
  ASSERT_LE(end, kSize);
}

}  // namespace
}  // namespace memd
