// Pool arenas (pool_arena.cc): registered ranges are fresh handles over
// sub-blocks of a chunk, the chunk's block lives until the chunk and every
// range were released, idle chunks go under pressure, and a restart adopts
// ranges inside their chunk.
#include <unistd.h>

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "memd/shared/handle.h"
#include "pool/pool.h"

namespace memd {
namespace {

constexpr uint64_t kArenaPoolSize = 1 << 20;

class PoolArenaTest : public testing::Test {
 protected:
  PoolArenaTest() : memory_(kArenaPoolSize), pool_(config_, 0, memory_.data(), "/x") {}
  void TearDown() override { ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants(); }

  PoolConfig config_{"test", kArenaPoolSize, 64, kArenaPoolSize};
  std::vector<uint8_t> memory_;
  Pool pool_;
  HolderId a_ = pool_.OpenSession(1, std::nullopt);
  HolderId b_ = pool_.OpenSession(2, std::nullopt);
};

TEST_F(PoolArenaTest, RangeKeepsTheChunkUntilEveryHolderReleased) {
  auto chunk = pool_.Allocate(a_, 256 * 1024, false);
  ASSERT_TRUE(chunk.ok());
  auto range = pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes + 4096, 100, 128);
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_NE(range->handle, chunk->handle);
  EXPECT_EQ(range->offset_bytes, chunk->offset_bytes + 4096);
  EXPECT_EQ(range->capacity_bytes, 128u);
  ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants();
  ASSERT_TRUE(pool_.Retain(b_, range->handle).ok());
  EXPECT_EQ(pool_.CloseHolder(a_), 2u);  // the owner dies: chunk and its range reference
  EXPECT_EQ(pool_.Stats().live_buffers, 1u);
  EXPECT_EQ(pool_.Stats().used_bytes, 256u * 1024) << "the chunk stays while the range lives";
  ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants();
  EXPECT_TRUE(*pool_.Release(b_, range->handle));
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
  EXPECT_EQ(pool_.Retain(b_, range->handle).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PoolArenaTest, BadRegistrationsAreRefusedAndChangeNothing) {
  auto chunk = pool_.Allocate(a_, 64 * 1024, false);
  ASSERT_TRUE(chunk.ok());
  PoolStats before = pool_.Stats();
  auto outside = pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes + 64 * 1024, 1, 64);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(outside.status().message().find("not a 64-byte aligned range inside chunk"),
            std::string::npos) << outside.status();
  EXPECT_EQ(pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes + 1, 1, 64).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes, 100, 64).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_.ArenaRegister(b_, chunk->handle, chunk->offset_bytes, 1, 64).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(pool_.Retain(b_, chunk->handle).ok());
  EXPECT_EQ(pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes, 1, 64).status().code(),
            absl::StatusCode::kFailedPrecondition) << "a chunk someone else holds";
  ASSERT_TRUE(pool_.Release(b_, chunk->handle).ok());
  EXPECT_EQ(pool_.Stats().live_buffers, before.live_buffers);
  auto range = pool_.ArenaRegister(a_, chunk->handle, chunk->offset_bytes, 1, 64);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(pool_.Realloc(a_, range->handle, 1000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_.Realloc(a_, chunk->handle, 1000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_.ArenaRegister(a_, range->handle, range->offset_bytes, 1, 64).status().code(),
            absl::StatusCode::kFailedPrecondition) << "a range is not a chunk";
  EXPECT_EQ(pool_.ReleaseAll(a_), 2u);
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
}

// Issue 24, defect 1 and 2: two overlapping ranges of one chunk made the next
// start refuse the whole pool, and the same range registered 50,000 times gave
// 50,000 handles. A range is registered once; an overlapping one is refused
// naming both, and nothing changes.
TEST_F(PoolArenaTest, OverlappingAndRepeatedRangesAreRefusedNamingBoth) {
  auto chunk = pool_.Allocate(a_, 64 * 1024, false);
  ASSERT_TRUE(chunk.ok());
  const uint64_t at = chunk->offset_bytes;
  auto first = pool_.ArenaRegister(a_, chunk->handle, at, 128, 128);
  ASSERT_TRUE(first.ok()) << first.status();
  PoolStats before = pool_.Stats();
  for (auto [offset, bytes] : {std::pair<uint64_t, uint64_t>{at + 64, 128}, {at, 128}, {at, 64},
                               {at + 64, 64}, {at, 4096}}) {
    auto again = pool_.ArenaRegister(a_, chunk->handle, offset, bytes, bytes);
    ASSERT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << offset - at << " " << bytes;
    EXPECT_NE(again.status().message().find(absl::StrFormat(
                  "range at offset %u of %u bytes overlaps the range at offset %u of 128 bytes",
                  offset, bytes, at)),
              std::string::npos) << again.status();
  }
  EXPECT_EQ(pool_.Stats().live_buffers, before.live_buffers) << "a refusal changes nothing";
  auto next = pool_.ArenaRegister(a_, chunk->handle, at + 128, 64, 64);
  ASSERT_TRUE(next.ok()) << "the range right after the first is its own: " << next.status();
  // Released, a range's bytes may be registered again (the arena reuses a block).
  ASSERT_TRUE(pool_.Release(a_, first->handle).ok());
  auto reused = pool_.ArenaRegister(a_, chunk->handle, at + 64, 64, 64);
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_EQ(pool_.ReleaseAll(a_), 3u);
}

TEST_F(PoolArenaTest, PressureFreesIdleChunksOnly) {
  auto busy = pool_.Allocate(a_, 256 * 1024, false);
  auto idle = pool_.Allocate(a_, 512 * 1024, false);
  ASSERT_TRUE(idle.ok() && busy.ok());
  pool_.ArenaIdle(a_, {idle->handle, busy->handle});
  EXPECT_TRUE(pool_.ArenaUse(a_, {busy->handle}).empty()) << "taken back before any pressure";
  auto big = pool_.Allocate(b_, 600 * 1024, false);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(pool_.ArenaUse(a_, {idle->handle}), std::vector<uint64_t>{idle->handle});
  EXPECT_FALSE(pool_.Retain(a_, idle->handle).ok());
  EXPECT_TRUE(pool_.Retain(b_, busy->handle).ok()) << "a chunk in use stays";
  EXPECT_EQ(pool_.ReleaseAll(a_), 1u);
  EXPECT_EQ(pool_.ReleaseAll(b_), 2u);
}

TEST(PoolArenaAdoptTest, RangesAreAdoptedInsideTheirChunk) {
  std::string name = "/tmp/memd-unit-arena-adopt-" + std::to_string(getpid());
  StateTable::RemoveIfExists(name);
  std::vector<uint8_t> memory(kArenaPoolSize);
  PoolConfig config{"test", kArenaPoolSize, 64, kArenaPoolSize};
  uint64_t chunk_handle, first_handle, second_handle;
  {
    auto state = StateTable::Create(name, StateIdentity{0, kArenaPoolSize, 64, 42});
    ASSERT_TRUE(state.ok()) << state.status();
    (*state)->MarkReady();
    Pool before(config, 0, memory.data(), "/x", std::move(*state));
    HolderId a = before.OpenSession(1, std::nullopt, std::string(16, 'a'));
    auto chunk = before.Allocate(a, 128 * 1024, false);
    ASSERT_TRUE(chunk.ok());
    auto first = before.ArenaRegister(a, chunk->handle, chunk->offset_bytes, 10, 64);
    auto second = before.ArenaRegister(a, chunk->handle, chunk->offset_bytes + 8192, 4000, 4096);
    ASSERT_TRUE(first.ok() && second.ok());
    chunk_handle = chunk->handle;
    first_handle = first->handle;
    second_handle = second->handle;
  }  // the daemon dies
  auto state = StateTable::Open(name);
  ASSERT_TRUE(state.ok()) << state.status();
  auto after = Pool::Adopt(config, 0, memory.data(), "/x", std::move(*state));
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE((*after)->CheckInvariants().ok()) << (*after)->CheckInvariants();
  PoolStats s = (*after)->Stats();
  EXPECT_EQ(s.live_buffers, 3u);
  EXPECT_EQ(s.used_bytes, 128u * 1024);
  HolderId a = (*after)->OpenSession(2, std::nullopt, std::string(16, 'b'));
  for (uint64_t h : {chunk_handle, first_handle, second_handle}) {
    ASSERT_TRUE((*after)->Reclaim(a, h, 1, HolderId::kNone, std::string(16, 'a')).ok()) << h;
  }
  EXPECT_EQ((*after)->ReleaseAll(a), 3u);
  EXPECT_EQ((*after)->Stats().used_bytes, 0u);
  ASSERT_TRUE((*after)->CheckInvariants().ok()) << (*after)->CheckInvariants();
  StateTable::RemoveIfExists(name);
}

// Issue 24, defect 1: a state table a build before the fix could leave (two
// overlapping ranges of a freed chunk) no longer stops a restart: the range
// that cannot be backed is quarantined (logged, counted, its handle gone),
// every consistent buffer is adopted, and the next start finds nothing more
// to quarantine.
TEST(PoolArenaAdoptTest, OverlappingRangesAreQuarantinedAndTheRestAdopted) {
  std::string name = "/tmp/memd-unit-arena-quarantine-" + std::to_string(getpid());
  StateTable::RemoveIfExists(name);
  std::vector<uint8_t> memory(kArenaPoolSize);
  PoolConfig config{"test", kArenaPoolSize, 64, kArenaPoolSize};
  {
    auto state = StateTable::Create(name, StateIdentity{0, kArenaPoolSize, 64, 42});
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE((*state)->Reserve(4).ok());
    // Slot 0: the chunk, freed. Slots 1 and 2: ranges [0, 128) and [64, 192)
    // registered in it. Slot 3: another client's buffer.
    (*state)->Write(0, SlotImage{.state = SlotImage::State::kFree, .generation = 2});
    (*state)->Write(1, SlotImage{SlotImage::State::kLive, 1, 1, 0, 128, 128});
    (*state)->Write(2, SlotImage{SlotImage::State::kLive, 1, 1, 64, 128, 128});
    (*state)->Write(3, SlotImage{SlotImage::State::kLive, 1, 2, 4096, 1024, 1000});
    (*state)->MarkReady();
  }
  auto adopt = [&] {
    auto state = StateTable::Open(name);
    EXPECT_TRUE(state.ok()) << state.status();
    return Pool::Adopt(config, 0, memory.data(), "/x", std::move(*state));
  };
  {
    auto after = adopt();
    ASSERT_TRUE(after.ok()) << "one session's overlapping ranges refused the whole pool: "
                            << after.status();
    ASSERT_TRUE((*after)->CheckInvariants().ok()) << (*after)->CheckInvariants();
    PoolStats s = (*after)->Stats();
    EXPECT_EQ(s.quarantined_slots, 1u);
    EXPECT_EQ(s.live_buffers, 2u);
    EXPECT_EQ(s.used_bytes, 128u + 1024u);
    EXPECT_EQ(s.unclaimed_references, 1u + 2u);
    HolderId b = (*after)->OpenSession(2, std::nullopt, std::string(16, 'b'));
    const uint64_t kept = EncodeHandle({0, 1, 1}), dropped = EncodeHandle({0, 1, 2}),
                   other = EncodeHandle({0, 1, 3});
    EXPECT_TRUE((*after)->Retain(b, kept).ok());
    EXPECT_TRUE((*after)->Retain(b, other).ok());
    EXPECT_EQ((*after)->Retain(b, dropped).status().code(), absl::StatusCode::kNotFound);
    auto fresh = (*after)->Allocate(b, 100, false);
    ASSERT_TRUE(fresh.ok());
    EXPECT_NE(fresh->handle, dropped) << "a quarantined handle is never seen again";
    ASSERT_TRUE((*after)->CheckInvariants().ok()) << (*after)->CheckInvariants();
  }  // this daemon dies too
  auto again = adopt();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Stats().quarantined_slots, 0u) << "the quarantine was persisted";
  EXPECT_EQ((*again)->Stats().live_buffers, 3u);
  StateTable::RemoveIfExists(name);
}

}  // namespace
}  // namespace memd
