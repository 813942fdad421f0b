// The compact records behind row H (docs/PERFORMANCE.md): block records in
// granule units up to the pool limit, 16-byte handle slots (size as slack),
// a buffer's first holder in a slot record of the ledger and further holders
// in maps; and the limits they bring, refused with the value and the limit.
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "status_text.h"

#include "memd/shared/handle.h"
#include "pool/holder_ledger.h"
#include "pool/pool.h"
#include "pool/tlsf_allocator.h"
#include "test_seed.h"

namespace memd {
namespace {

using ::memd::testing_support::MessageHas;

constexpr uint64_t kGiB = uint64_t{1} << 30;


// The allocator only does arithmetic on offsets: an offset space at the
// limit needs no memory.
TEST(TlsfCompactTest, OffsetsBeyondFourGiBRoundTripAtTheGranuleLimit) {
  TlsfAllocator a(kMaxPoolGranules * 8, 8);
  EXPECT_EQ(a.size_bytes(), kMaxPoolGranules * 8);
  std::vector<TlsfAllocator::BlockId> blocks;
  for (int i = 0; i < 6; ++i) {
    auto b = a.Allocate(5 * kGiB + 8);
    ASSERT_TRUE(b.has_value()) << i;
    EXPECT_EQ(a.offset(*b), static_cast<uint64_t>(i) * (5 * kGiB + 8));
    EXPECT_EQ(a.capacity(*b), 5 * kGiB + 8);
    blocks.push_back(*b);
  }
  // The rest of the space, to the last granule.
  uint64_t rest = a.free_bytes();
  auto last = a.Allocate(rest);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(a.offset(*last) + a.capacity(*last), a.size_bytes());
  EXPECT_FALSE(a.Allocate(8).has_value());
  // A sub-block above 16 GiB, as an arena range in a chunk there.
  auto sub = a.AddSub(blocks[4], a.offset(blocks[4]) + 3 * kGiB, 64);
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ(a.offset(*sub), 4 * (5 * kGiB + 8) + 3 * kGiB);
  EXPECT_FALSE(a.AddSub(blocks[4], a.offset(blocks[4]) + 6 * kGiB, 64).has_value())
      << "outside the chunk";
  ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
  a.Free(*sub);
  for (TlsfAllocator::BlockId b : blocks) a.Free(b);
  a.Free(*last);
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(a.largest_free_bytes(), a.size_bytes()) << "coalesced back into one block";
  ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(TlsfCompactTest, AdoptionBeyondFourGiBKeepsOffsets) {
  TlsfAllocator a(64 * kGiB, 64);
  auto b = a.AdoptUsed(40 * kGiB, 2 * kGiB);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a.offset(*b), 40 * kGiB);
  EXPECT_EQ(a.capacity(*b), 2 * kGiB);
  EXPECT_FALSE(a.AdoptUsed(63 * kGiB, 2 * kGiB).has_value()) << "runs past the end";
  ASSERT_TRUE(a.CheckInvariants().ok()) << a.CheckInvariants();
}

TEST(PoolConfigTest, APoolAboveTheGranuleLimitIsRefusedNamingSizeAndLimit) {
  const uint64_t largest = kMaxPoolGranules * 8;  // 32 GiB - 8 at alignment 8
  EXPECT_TRUE(ValidatePoolConfig({"big", largest, 8, 100}).ok());
  absl::Status too_big = ValidatePoolConfig({"big", 40 * kGiB, 8, 100});
  EXPECT_TRUE(absl::IsInvalidArgument(too_big)) << too_big;
  EXPECT_TRUE(MessageHas(too_big, "size 40.0 GiB (42949672960 bytes)")) << too_big;
  EXPECT_TRUE(MessageHas(too_big, std::to_string(largest) + " bytes) at alignment 8")) << too_big;
  EXPECT_TRUE(MessageHas(too_big, "4294967295 alignment units")) << too_big;
  EXPECT_TRUE(ValidatePoolConfig({"big", 40 * kGiB, 16, 100}).ok()) << "a larger alignment fits";
}

TEST(HandleTableCompactTest, SlotsAreSixteenBytesAndKeepRetiredApartFromTheGeneration) {
  static_assert(sizeof(HandleTable::Entry) == 16);
  HandleTable table(1);
  uint64_t h = table.Insert(5, 63);
  const HandleTable::Entry* e = table.Find(h);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->generation(), 1u);
  EXPECT_FALSE(e->retired());
  EXPECT_EQ(e->slack_bytes, 63u);
  table.Erase(h);
  EXPECT_EQ(table.At(0).generation(), 2u);
  EXPECT_EQ(table.At(0).slack_bytes, 0u);
}

TEST(HolderLedgerCompactTest, FirstHolderInTheSlotRecordOthersInMapsAndStaleHandlesHoldNothing) {
  HolderLedger ledger("p", PoolQuotas{});
  HolderId a = ledger.Open(HolderKind::kSession, Causer{1, 100});
  HolderId b = ledger.Open(HolderKind::kSession, Causer{2, 100});
  HolderId c = ledger.Open(HolderKind::kMessage, Causer{1, 100});
  const uint64_t h = EncodeHandle({0, 1, 3});
  const uint64_t stale = EncodeHandle({0, 2, 3});  // the same slot, another generation
  using Change = HolderLedger::Change;
  ledger.Apply(std::vector<Change>{{a, h, 64, 2}, {b, h, 64, 1}});
  EXPECT_EQ(ledger.Held(a, h), 2u);
  EXPECT_EQ(ledger.Held(b, h), 1u);
  EXPECT_EQ(ledger.Held(a, stale), 0u) << "a slot record answers only its own generation";
  EXPECT_EQ(ledger.References(a), 2u);
  ASSERT_TRUE(ledger.CheckInvariants().ok()) << ledger.CheckInvariants();
  // a leaves: the record is free again; b keeps its map entry, c takes the record.
  ledger.Apply(std::vector<Change>{{a, h, 64, -2}, {c, h, 64, 1}});
  EXPECT_EQ(ledger.Held(a, h), 0u);
  EXPECT_EQ(ledger.Held(b, h), 1u);
  EXPECT_EQ(ledger.Held(c, h), 1u);
  EXPECT_EQ(ledger.ReferencesByHandle().at(h), 2u);
  EXPECT_EQ(ledger.Holdings(c).at(h), 1u);
  ASSERT_TRUE(ledger.CheckInvariants().ok()) << ledger.CheckInvariants();
  // Taking everything of c empties its record; b's reference stays.
  auto taken = ledger.TakeAll(c);
  EXPECT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken.at(h), 1u);
  ledger.Close(c);
  ledger.Apply(std::vector<Change>{{b, h, 64, -1}});
  EXPECT_TRUE(ledger.ReferencesByHandle().empty());
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 0u);
  // A holder opened after c was closed reuses its index, and holds nothing of c's.
  HolderId d = ledger.Open(HolderKind::kSession, Causer{3, 100});
  EXPECT_EQ(ledger.Held(d, h), 0u);
  EXPECT_TRUE(ledger.Holdings(d).empty());
  ASSERT_TRUE(ledger.CheckInvariants().ok()) << ledger.CheckInvariants();
}

// Random allocations, retains, moves, shares, releases and closed sessions
// against a model of who holds what; the invariant checker (slot records
// included) after every step. A failure prints the seed to replay.
TEST(PoolCompactTest, RandomHoldersAgainstAModel) {
  uint32_t seed = testing_support::TestSeed();
  SCOPED_TRACE(testing::Message() << "replay with MEMD_TEST_SEED=" << seed);
  std::mt19937 rng(seed);
  constexpr uint64_t kSize = 1 << 20;
  std::vector<uint8_t> memory(kSize);
  Pool pool(PoolConfig{"r", kSize, 64, kSize}, 0, memory.data(), "/r");
  std::vector<HolderId> holders;
  for (uint64_t s = 1; s <= 4; ++s) holders.push_back(pool.OpenSession(s, std::nullopt));
  std::map<uint64_t, std::map<size_t, uint32_t>> model;  // handle -> holder index -> refs
  std::vector<uint64_t> dead;                            // freed handles
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto live_handle = [&]() { return std::next(model.begin(), pick(model.size()))->first; };
  uint64_t next_session = 5;
  for (int step = 0; step < 3000; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    size_t who = pick(holders.size());
    int op = static_cast<int>(pick(model.empty() ? 1 : 6));
    if (op == 0) {
      auto got = pool.Allocate(holders[who], 1 + pick(4000), false);
      if (got.ok()) model[got->handle][who] = 1;
    } else if (op == 1) {
      uint64_t h = live_handle();
      ASSERT_TRUE(pool.Retain(holders[who], h).ok());
      ++model[h][who];
    } else if (op == 2 || op == 3) {  // a release by one of its holders
      uint64_t h = live_handle();
      auto [holder, refs] = *std::next(model[h].begin(), pick(model[h].size()));
      ASSERT_TRUE(pool.Release(holders[holder], h).ok());
      if (--model[h][holder] == 0) model[h].erase(holder);
      if (model[h].empty()) {
        model.erase(h);
        dead.push_back(h);
      }
    } else if (op == 4) {  // move or share one reference to another holder
      uint64_t h = live_handle();
      size_t from = model[h].begin()->first;
      if (from == who) continue;
      bool share = pick(2) == 0;
      ASSERT_TRUE(pool.Transfer(holders[from], holders[who], {h}, "test",
                                share ? Pool::TransferMode::kShare : Pool::TransferMode::kMove)
                      .ok());
      ++model[h][who];
      if (!share && --model[h][from] == 0) model[h].erase(from);
    } else if (pick(10) == 0) {  // a session ends; a new one takes its place
      pool.CloseHolder(holders[who]);
      for (auto it = model.begin(); it != model.end();) {
        it->second.erase(who);
        if (it->second.empty()) {
          dead.push_back(it->first);
          it = model.erase(it);
        } else {
          ++it;
        }
      }
      holders[who] = pool.OpenSession(next_session++, std::nullopt);
    }
    ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
    for (const auto& [h, by_holder] : model) {
      uint32_t total = 0;
      for (size_t i = 0; i < holders.size(); ++i) {
        auto it = by_holder.find(i);
        uint32_t want = it == by_holder.end() ? 0 : it->second;
        total += want;
        ASSERT_EQ(pool.Query(holders[i], {h})[0].held, want) << "holder " << i;
      }
      ASSERT_EQ(pool.Query(holders[0], {h})[0].total, total);
    }
    if (!dead.empty()) {
      uint64_t h = dead[pick(dead.size())];
      ASSERT_TRUE(absl::IsNotFound(pool.Retain(holders[who], h).status())) << "stale handle";
      ASSERT_EQ(pool.Query(holders[who], {h})[0].held, 0u);
    }
  }
}

// An arena range whose size leaves more than the slot's slack field holds is
// refused naming the value and the limit. The pool's memory is a reservation
// nobody may touch: allocation without zeroing and registration never do.
TEST(PoolCompactTest, ArenaRangeBeyondTheSlackLimitIsRefusedAndChangesNothing) {
  constexpr uint64_t kSize = 8 * kGiB;
  void* reserved = mmap(nullptr, kSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
  ASSERT_NE(reserved, MAP_FAILED);
  {
    Pool pool(PoolConfig{"a", kSize, 64, kSize}, 0, static_cast<uint8_t*>(reserved), "/a");
    HolderId s = pool.OpenSession(1, std::nullopt);
    auto chunk = pool.Allocate(s, 6 * kGiB, false);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    auto refused = pool.ArenaRegister(s, chunk->handle, chunk->offset_bytes, 64, 5 * kGiB);
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
    EXPECT_TRUE(MessageHas(refused.status(), "leaves 5368709056 bytes unused, more than the limit of "
                                      "4294967295"))
        << refused.status();
    EXPECT_EQ(pool.Stats().live_buffers, 1u);
    auto fits = pool.ArenaRegister(s, chunk->handle, chunk->offset_bytes, 2 * kGiB, 5 * kGiB);
    ASSERT_TRUE(fits.ok()) << fits.status();
    EXPECT_EQ(fits->size_bytes, 2 * kGiB);
    EXPECT_EQ(fits->capacity_bytes, 5 * kGiB);
    ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
    pool.CloseHolder(s);
    EXPECT_EQ(pool.Stats().used_bytes, 0u);
  }
  munmap(reserved, kSize);
}

// A state table whose live slot leaves more slack than a slot holds (only a
// corrupt or foreign table can) is refused as corrupt, naming the slot.
TEST(PoolCompactTest, AdoptionRefusesASlotWhoseSlackExceedsTheLimit) {
  constexpr uint64_t kSize = 8 * kGiB;
  const std::string name = "/tmp/memd-unit-compact-" + std::to_string(getpid());
  StateTable::RemoveIfExists(name);
  {
    auto state = StateTable::Create(name, StateIdentity{0, kSize, 64, 42});
    ASSERT_TRUE(state.ok()) << state.status();
    (*state)->MarkReady();
    ASSERT_TRUE((*state)->Reserve(1).ok());
    (*state)->Write(0, SlotImage{.state = SlotImage::State::kLive, .generation = 1, .refs = 1,
                                 .offset_bytes = 0, .capacity_bytes = 6 * kGiB,
                                 .size_bytes = 64});
  }
  void* reserved = mmap(nullptr, kSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0);
  ASSERT_NE(reserved, MAP_FAILED);
  auto state = StateTable::Open(name);
  ASSERT_TRUE(state.ok()) << state.status();
  auto pool = Pool::Adopt(PoolConfig{"a", kSize, 64, kSize}, 0, static_cast<uint8_t*>(reserved),
                          "/a", std::move(*state));
  EXPECT_TRUE(absl::IsDataLoss(pool.status())) << pool.status();
  EXPECT_TRUE(MessageHas(pool.status(), "slot 0: live with 1 references and size 64 in a 6442450944-byte "
                                 "block"))
      << pool.status();
  munmap(reserved, kSize);
  StateTable::RemoveIfExists(name);
}

}  // namespace
}  // namespace memd
