// Pool::Adopt: a pool rebuilt from its state table has every live buffer
// with the same handle, block and references, and nothing is handed out twice.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "memd/shared/handle.h"
#include "pool/pool.h"

namespace memd {
namespace {

constexpr uint64_t kAdoptPoolSize = 1 << 20;

// A session ticket (AttachResponse.ticket): 16 bytes.
std::string Ticket(char c) { return std::string(16, c); }

class PoolAdoptTest : public testing::Test {
 protected:
  PoolAdoptTest()
      : name_("/tmp/memd-unit-adopt-" + std::to_string(getpid()) + "-" +
              testing::UnitTest::GetInstance()->current_test_info()->name()),
        memory_(kAdoptPoolSize) {
    StateTable::RemoveIfExists(name_);
  }
  ~PoolAdoptTest() override { StateTable::RemoveIfExists(name_); }

  std::unique_ptr<Pool> NewPool() {
    auto state = StateTable::Create(name_, StateIdentity{0, kAdoptPoolSize, 64, 42});
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
  PoolConfig config_{"test", kAdoptPoolSize, 64, kAdoptPoolSize};
};

TEST_F(PoolAdoptTest, LiveBuffersKeepHandlesBlocksAndReferences) {
  auto before = NewPool();
  HolderId a = before->OpenSession(1, std::nullopt, Ticket('a'));
  HolderId b = before->OpenSession(2, std::nullopt, Ticket('b'));
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
  // A handle alone, or another session's ticket, proves nothing.
  EXPECT_TRUE(absl::IsFailedPrecondition(after->Reclaim(a2, kept->handle, 1).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      after->Reclaim(b2, kept->handle, 1, HolderId::kNone, Ticket('b')).status()))
      << "b never held the kept buffer";
  EXPECT_TRUE(absl::IsFailedPrecondition(
      after->Reclaim(b2, kept->handle, 1, HolderId::kNone, Ticket('x')).status()));
  EXPECT_EQ(after->Stats().unclaimed_references, 5u) << "refusals change nothing";
  auto got = after->Reclaim(b2, shared->handle, 2, HolderId::kNone, Ticket('b'));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->references, 2u);
  EXPECT_EQ(got->info.offset_bytes, shared->offset_bytes);
  auto moved = after->Reclaim(a2, grown->handle, 1, HolderId::kNone, Ticket('a'));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->info.offset_bytes, regrown->offset_bytes);
  EXPECT_EQ(moved->info.size_bytes, 20000u);
  // a held 1 of the shared buffer's 3 references: 1 is left for it.
  auto greedy = after->Reclaim(a2, shared->handle, 5, HolderId::kNone, Ticket('a'));
  ASSERT_TRUE(greedy.ok());
  EXPECT_EQ(greedy->references, 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      after->Reclaim(a2, shared->handle, 1, HolderId::kNone, Ticket('a')).status()));
  EXPECT_TRUE(absl::IsNotFound(
      after->Reclaim(a2, freed->handle, 1, HolderId::kNone, Ticket('a')).status()))
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
    HolderId refs = pool->OpenSession(1, std::nullopt, Ticket('r'));
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
      auto got = adopted->Reclaim(back, b.handle, 1, HolderId::kNone, Ticket('r'));
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->info.offset_bytes, b.offset_bytes);
      EXPECT_EQ(got->info.capacity_bytes, b.capacity_bytes);
      EXPECT_EQ(got->info.size_bytes, b.size_bytes);
    }
  }
}

// The holdings outlive a second restart before anyone reclaimed them, and
// the new session's own references are recorded under its new ticket.
TEST_F(PoolAdoptTest, HoldersSurviveRestartsInARowAndFollowReclaims) {
  auto first = NewPool();
  HolderId a = first->OpenSession(1, std::nullopt, Ticket('a'));
  auto one = first->Allocate(a, 100, false);
  auto two = first->Allocate(a, 100, false);
  ASSERT_TRUE(one.ok() && two.ok());
  ASSERT_TRUE(first->Retain(a, one->handle).ok());
  first.reset();

  auto second = Adopt();  // nobody reclaims before it dies too
  ASSERT_NE(second, nullptr);
  HolderId a2 = second->OpenSession(2, std::nullopt, Ticket('A'));
  ASSERT_TRUE(second->Reclaim(a2, two->handle, 1, HolderId::kNone, Ticket('a')).ok());
  second.reset();

  auto third = Adopt();
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->Stats().unclaimed_references, 3u);
  HolderId c = third->OpenSession(3, std::nullopt);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      third->Reclaim(c, two->handle, 1, HolderId::kNone, Ticket('a')).status()))
      << "the buffer reclaimed by the second daemon's session is that session's now";
  auto back = third->Reclaim(c, two->handle, 1, HolderId::kNone, Ticket('A'));
  ASSERT_TRUE(back.ok()) << back.status();
  auto both = third->Reclaim(c, one->handle, 2, HolderId::kNone, Ticket('a'));
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->references, 2u);
  EXPECT_EQ(third->Stats().unclaimed_references, 0u);
  EXPECT_TRUE(third->CheckInvariants().ok()) << third->CheckInvariants();
}

// A predecessor that kept no holdings file (an older build) left references
// anyone could reclaim then; one whose file is unreadable, references nobody
// can prove: they go at the end of the grace period.
TEST_F(PoolAdoptTest, WithoutAHoldingsFileReclaimIsAsThePredecessorAllowed) {
  auto before = NewPool();
  HolderId a = before->OpenSession(1, std::nullopt, Ticket('a'));
  auto kept = before->Allocate(a, 100, false);
  ASSERT_TRUE(kept.ok());
  before.reset();
  std::string holdings = HoldingsFile::PathFor(name_);
  ASSERT_EQ(::unlink(holdings.c_str()), 0);
  auto legacy = Adopt();
  ASSERT_NE(legacy, nullptr);
  HolderId b = legacy->OpenSession(2, std::nullopt);
  EXPECT_TRUE(legacy->Reclaim(b, kept->handle, 1).ok()) << "an older build's restart";
  legacy.reset();

  // Now b's reference (untracked: no ticket) and a corrupt file.
  {
    std::FILE* f = std::fopen(holdings.c_str(), "r+");
    ASSERT_NE(f, nullptr);
    std::fputs("not a holdings file", f);
    std::fclose(f);
  }
  auto lost = Adopt();
  ASSERT_NE(lost, nullptr);
  HolderId c = lost->OpenSession(3, std::nullopt, Ticket('c'));
  EXPECT_TRUE(absl::IsFailedPrecondition(lost->Reclaim(c, kept->handle, 1).status()));
  EXPECT_EQ(lost->ReleaseUnclaimed(), 1u);
}

TEST(HoldingsFileTest, RecordsSurviveReopeningAndFreedRecordsAreReused) {
  std::string path = "/tmp/memd-unit-holdings-" + std::to_string(getpid());
  ::unlink(path.c_str());
  {
    auto file = HoldingsFile::Create(path);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE(absl::IsInvalidArgument((*file)->Set("short", 1, 1)));
    for (uint64_t h = 0; h < 3000; ++h) {  // past the first growth
      ASSERT_TRUE((*file)->Set(Ticket(static_cast<char>('a' + h % 3)), h, 1 + h % 5).ok());
    }
    for (uint64_t h = 0; h < 3000; h += 2) ASSERT_TRUE((*file)->Set(Ticket('a' + h % 3), h, 0).ok());
    EXPECT_EQ((*file)->records(), 1500u);
  }
  auto again = HoldingsFile::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  std::vector<Holding> loaded = (*again)->Load();
  ASSERT_EQ(loaded.size(), 1500u);
  for (const Holding& h : loaded) {
    EXPECT_EQ(h.handle % 2, 1u);
    EXPECT_EQ(h.refs, 1 + h.handle % 5);
    EXPECT_EQ(h.ticket, Ticket(static_cast<char>('a' + h.handle % 3)));
  }
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  for (uint64_t h = 0; h < 1500; ++h) ASSERT_TRUE((*again)->Set(Ticket('z'), 10000 + h, 1).ok());
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size) << "freed records are used again";
  ::unlink(path.c_str());
  EXPECT_TRUE(absl::IsNotFound(HoldingsFile::Open(path).status()));
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
