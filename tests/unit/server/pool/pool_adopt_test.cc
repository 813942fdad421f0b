// Pool::Adopt: a pool rebuilt from its state table has every live buffer
// with the same handle, block and references, and nothing is handed out twice.
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "memd/shared/handle.h"
#include "pool/pool.h"

namespace memd {
namespace {

constexpr uint64_t kSize = 1 << 20;

class PoolAdoptTest : public testing::Test {
 protected:
  PoolAdoptTest()
      : name_("/tmp/memd-unit-adopt-" + std::to_string(getpid()) + "-" +
              testing::UnitTest::GetInstance()->current_test_info()->name()),
        memory_(kSize) {
    StateTable::RemoveIfExists(name_);
  }
  ~PoolAdoptTest() override { StateTable::RemoveIfExists(name_); }

  std::unique_ptr<Pool> NewPool() {
    auto state = StateTable::Create(name_, StateIdentity{0, kSize, 64, 42});
    EXPECT_TRUE(state.ok()) << state.status();
    (*state)->MarkReady();
    return std::make_unique<Pool>(config_, 0, memory_.data(), "/x", std::move(*state));
  }

  // What a successor daemon does after the first one died.
  std::unique_ptr<Pool> Adopt() {
    auto state = StateTable::Open(name_);
    EXPECT_TRUE(state.ok()) << state.status();
    auto pool = Pool::Adopt(config_, 0, memory_.data(), "/x", std::move(*state));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }

  std::string name_;
  std::vector<uint8_t> memory_;
  PoolConfig config_{"test", kSize, 64, kSize};
};

TEST_F(PoolAdoptTest, LiveBuffersKeepHandlesBlocksAndReferences) {
  auto before = NewPool();
  HolderId a = before->OpenSession(1, std::nullopt), b = before->OpenSession(2, std::nullopt);
  auto kept = before->Allocate(a, 1000, false);
  auto shared = before->Allocate(a, 5000, false);
  auto freed = before->Allocate(a, 300, false);
  auto grown = before->Allocate(a, 100, false);
  ASSERT_TRUE(kept.ok() && shared.ok() && freed.ok() && grown.ok());
  ASSERT_TRUE(before->Retain(b, shared->handle).ok());
  ASSERT_TRUE(before->Retain(b, shared->handle).ok());
  ASSERT_TRUE(before->Release(a, freed->handle).ok());
  auto regrown = before->Realloc(a, grown->handle, 20000);
  ASSERT_TRUE(regrown.ok());
  PoolStats stats_before = before->Stats();
  before.reset();  // the daemon dies; its private tables are gone

  auto after = Adopt();
  ASSERT_NE(after, nullptr);
  ASSERT_TRUE(after->CheckInvariants().ok()) << after->CheckInvariants();
  PoolStats s = after->Stats();
  EXPECT_EQ(s.used_bytes, stats_before.used_bytes);
  EXPECT_EQ(s.live_buffers, 3u);
  EXPECT_EQ(s.unclaimed_references, 1u + 3u + 1u);
  EXPECT_EQ(after->segment_id(), 42u);

  HolderId a2 = after->OpenSession(3, std::nullopt), b2 = after->OpenSession(4, std::nullopt);
  auto got = after->Reclaim(b2, shared->handle, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->references, 2u);
  EXPECT_EQ(got->info.offset_bytes, shared->offset_bytes);
  auto moved = after->Reclaim(a2, grown->handle, 1);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->info.offset_bytes, regrown->offset_bytes);
  EXPECT_EQ(moved->info.size_bytes, 20000u);
  auto greedy = after->Reclaim(a2, shared->handle, 5);  // only 1 is left unclaimed
  ASSERT_TRUE(greedy.ok());
  EXPECT_EQ(greedy->references, 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(after->Reclaim(a2, shared->handle, 1).status()));
  EXPECT_TRUE(absl::IsNotFound(after->Reclaim(a2, freed->handle, 1).status()))
      << "a handle freed before the crash stays stale";

  // New allocations never overlap adopted blocks.
  HolderId c = after->OpenSession(5, std::nullopt);
  for (int i = 0; i < 20; ++i) {
    auto fresh = after->Allocate(c, 4096, false);
    ASSERT_TRUE(fresh.ok());
    EXPECT_NE(fresh->handle, freed->handle) << "handles are never issued twice";
    for (const auto* live : {&*kept, &*shared, &*regrown}) {
      bool disjoint = fresh->offset_bytes + fresh->capacity_bytes <= live->offset_bytes ||
                      live->offset_bytes + live->capacity_bytes <= fresh->offset_bytes;
      EXPECT_TRUE(disjoint) << "block at " << fresh->offset_bytes << " overlaps " << live->offset_bytes;
    }
  }
  after->ReleaseAll(c);
  // The kept buffer was never reclaimed: the grace period releases it.
  EXPECT_EQ(after->ReleaseUnclaimed(), 1u);
  EXPECT_TRUE(absl::IsNotFound(after->Retain(c, kept->handle).status()));
  after->ReleaseAll(a2);
  after->ReleaseAll(b2);
  EXPECT_EQ(after->Stats().used_bytes, 0u);
  EXPECT_TRUE(after->CheckInvariants().ok()) << after->CheckInvariants();
}

TEST_F(PoolAdoptTest, RandomHistoriesAdoptToTheSameLiveSet) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    StateTable::RemoveIfExists(name_);
    auto pool = NewPool();
    HolderId refs = pool->OpenSession(1, std::nullopt);
    std::vector<BufferInfo> live;
    for (int op = 0; op < 400; ++op) {
      int kind = static_cast<int>(rng() % 4);
      if (kind < 2 || live.empty()) {
        auto b = pool->Allocate(refs, rng() % 9000, false);
        if (b.ok()) live.push_back(*b);
      } else if (kind == 2) {
        size_t i = rng() % live.size();
        ASSERT_TRUE(pool->Release(refs, live[i].handle).ok());
        live.erase(live.begin() + static_cast<long>(i));
      } else {
        size_t i = rng() % live.size();
        auto b = pool->Realloc(refs, live[i].handle, rng() % 20000);
        if (b.ok()) live[i] = *b;
      }
    }
    pool.reset();
    auto adopted = Adopt();
    ASSERT_NE(adopted, nullptr);
    ASSERT_TRUE(adopted->CheckInvariants().ok()) << adopted->CheckInvariants();
    ASSERT_EQ(adopted->Stats().live_buffers, live.size());
    HolderId back = adopted->OpenSession(2, std::nullopt);
    for (const BufferInfo& b : live) {
      auto got = adopted->Reclaim(back, b.handle, 1);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->info.offset_bytes, b.offset_bytes);
      EXPECT_EQ(got->info.capacity_bytes, b.capacity_bytes);
      EXPECT_EQ(got->info.size_bytes, b.size_bytes);
    }
  }
}

TEST(TlsfAdoptTest, RefusesOverlapsMisalignmentAndRangesPastTheEnd) {
  TlsfAllocator tlsf(1 << 16, 64);
  EXPECT_FALSE(tlsf.AdoptUsed(32, 64)) << "misaligned";
  ASSERT_TRUE(tlsf.AdoptUsed(128, 256));
  EXPECT_FALSE(tlsf.AdoptUsed(320, 64)) << "overlaps the previous block";
  EXPECT_FALSE(tlsf.AdoptUsed(1 << 16, 64)) << "past the end";
  ASSERT_TRUE(tlsf.AdoptUsed(384, (1 << 16) - 384)) << "exactly to the end";
  EXPECT_FALSE(tlsf.AdoptUsed(1 << 16, 64));
  EXPECT_TRUE(tlsf.CheckInvariants().ok()) << tlsf.CheckInvariants();
  EXPECT_EQ(tlsf.used_bytes(), 256u + (1 << 16) - 384);
  EXPECT_EQ(tlsf.largest_free_bytes(), 128u);
}

}  // namespace
}  // namespace memd
