// Holdings: the one record of what a Client's session holds, kept from the
// daemon's answers (no NoteHeld by hand), and what a reconnect keeps.
#include "holdings.h"

#include <gtest/gtest.h>

namespace memd {
namespace {

v1::BufferInfo Info(uint64_t handle, uint64_t offset, uint64_t size = 100) {
  v1::BufferInfo b;
  b.set_handle(handle);
  b.set_offset_bytes(offset);
  b.set_size_bytes(size);
  b.set_capacity_bytes(128);
  return b;
}

v1::SessionResponse BufferAnswer(uint64_t handle, uint64_t offset) {
  v1::SessionResponse r;
  *r.mutable_buffer() = Info(handle, offset);
  return r;
}

// An allocate of `handle` at `offset`, answered.
void Allocated(Holdings& ledger, uint64_t handle, uint64_t offset) {
  v1::SessionRequest allocate;
  allocate.mutable_allocate()->set_size_bytes(100);
  ledger.Apply(allocate, BufferAnswer(handle, offset));
}

TEST(HoldingsTest, GrantsAreRecordedFromTheAnswers) {
  Holdings ledger;
  Allocated(ledger, 7, 4096);
  v1::SessionRequest retain;
  retain.mutable_retain()->set_handle(7);
  ledger.Apply(retain, BufferAnswer(7, 4096));
  v1::SessionRequest batch;
  batch.mutable_allocate_batch()->set_count(2);
  v1::SessionResponse two;
  *two.mutable_buffers()->add_buffers() = Info(8, 8192);
  *two.mutable_buffers()->add_buffers() = Info(9, 12288);
  ledger.Apply(batch, two);
  v1::SessionRequest receive;
  receive.mutable_receive()->set_channel("c");
  v1::SessionResponse message;
  *message.mutable_message()->add_buffers() = Info(10, 16384);
  ledger.Apply(receive, message);

  std::optional<Holdings::Entry> at = ledger.AtOffset(4096);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->handle, 7u);
  EXPECT_EQ(at->references, 2u);
  EXPECT_EQ(at->capacity_bytes, 128u);
  EXPECT_TRUE(ledger.Holds(9));
  EXPECT_TRUE(ledger.Holds(10));
  EXPECT_FALSE(ledger.AtOffset(4097).has_value()) << "an interior pointer is nobody's";
  EXPECT_EQ(ledger.Snapshot().size(), 4u);
}

TEST(HoldingsTest, ReallocMovesAndRemovesCountDown) {
  Holdings ledger;
  Allocated(ledger, 7, 4096);
  v1::SessionRequest realloc;
  realloc.mutable_realloc()->set_handle(7);
  ledger.Apply(realloc, BufferAnswer(7, 65536));
  EXPECT_FALSE(ledger.AtOffset(4096).has_value()) << "the old address is no longer the buffer";
  ASSERT_TRUE(ledger.AtOffset(65536).has_value());
  EXPECT_EQ(ledger.AtOffset(65536)->references, 1u);
  EXPECT_TRUE(ledger.Remove(7));
  EXPECT_FALSE(ledger.Remove(7)) << "not held any more";
  EXPECT_TRUE(ledger.empty());
}

TEST(HoldingsTest, OnlyAMovingSendGivesReferencesUp) {
  Holdings ledger;
  Allocated(ledger, 7, 4096);
  v1::SessionRequest share;
  share.mutable_send()->add_handles(7);
  share.mutable_send()->set_share(true);
  ledger.Apply(share, v1::SessionResponse());
  EXPECT_TRUE(ledger.Holds(7)) << "a sharing send keeps this session's reference";
  v1::SessionRequest move;
  move.mutable_send()->add_handles(7);
  ledger.Apply(move, v1::SessionResponse());
  EXPECT_FALSE(ledger.Holds(7)) << "the channel holds it now";
}

TEST(HoldingsTest, AReconnectKeepsWhatWasGrantedAndStillHeld) {
  Holdings ledger;
  v1::SessionRequest retain;
  retain.mutable_retain()->set_handle(7);
  for (int i = 0; i < 3; ++i) ledger.Apply(retain, BufferAnswer(7, 4096));
  Allocated(ledger, 8, 8192);
  // The new session got 4 references to 7 (one more than held: a release
  // made while the daemon was away) and none to 8 (lost).
  std::vector<uint64_t> excess = ledger.KeepGranted({{7, 4}});
  EXPECT_EQ(excess, std::vector<uint64_t>{7});
  ASSERT_TRUE(ledger.AtOffset(4096).has_value());
  EXPECT_EQ(ledger.AtOffset(4096)->references, 3u);
  EXPECT_FALSE(ledger.Holds(8));
  EXPECT_FALSE(ledger.AtOffset(8192).has_value());
  ledger.Clear();
  EXPECT_TRUE(ledger.empty());
}

// An arena chunk at 4096 (1 MiB) with a range registered at `offset`.
uint64_t ChunkWithRange(Holdings& holdings, uint64_t range_handle, uint64_t offset) {
  v1::SessionRequest allocate;
  allocate.mutable_allocate()->set_size_bytes(1 << 20);
  v1::SessionResponse chunk;
  *chunk.mutable_buffer() = Info(7, 4096);
  chunk.mutable_buffer()->set_capacity_bytes(1 << 20);
  holdings.Apply(allocate, chunk);
  holdings.MarkChunk(7);
  v1::SessionRequest reg;
  reg.mutable_arena_register()->set_chunk(7);
  v1::SessionResponse registered;
  *registered.mutable_arena_registered()->mutable_range() = Info(range_handle, offset);
  holdings.Apply(reg, registered);
  return 7;
}

TEST(HoldingsTest, AMovingSendOfARangeParksItsSlotAndTellsTheArena) {
  Holdings holdings;
  ChunkWithRange(holdings, 30, 8192);
  ASSERT_TRUE(holdings.RangeAt(8192));
  EXPECT_EQ(holdings.RangeAt(8192)->state, Holdings::RangeState::kLive);
  EXPECT_FALSE(holdings.AnyParked());
  v1::SessionRequest move;
  move.mutable_send()->add_handles(30);
  holdings.Apply(move, v1::SessionResponse());
  EXPECT_FALSE(holdings.Holds(30));
  EXPECT_EQ(holdings.RangeAt(8192)->state, Holdings::RangeState::kParked);
  EXPECT_TRUE(holdings.AnyParked());
  std::vector<Holdings::SentAway> sent = holdings.TakeSentAway();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].offset_bytes, 8192u);
  EXPECT_EQ(sent[0].handle, 30u);
  EXPECT_FALSE(sent[0].registered);
  EXPECT_TRUE(holdings.TakeSentAway().empty()) << "each event is taken once";
  // A range the send registered itself was never this session's.
  v1::SessionRequest register_and_move;
  register_and_move.mutable_send()->add_handles(0);
  v1::SessionResponse answer;
  *answer.mutable_sent()->add_registered() = Info(31, 12288);
  holdings.Apply(register_and_move, answer);
  EXPECT_FALSE(holdings.Holds(31));
  sent = holdings.TakeSentAway();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].registered);
  EXPECT_EQ(holdings.Parked(10).size(), 2u);
}

TEST(HoldingsTest, AChunkARestartDidNotGiveBackTakesItsRangesWithIt) {
  Holdings holdings;
  ChunkWithRange(holdings, 30, 8192);
  holdings.SetRange(16384, 40, Holdings::RangeState::kParked);
  Allocated(holdings, 50, 2 << 20);  // a buffer outside the chunk, granted back
  holdings.KeepGranted({{50, 1}});
  EXPECT_EQ(holdings.TakeLostChunks(), std::vector<uint64_t>{7});
  EXPECT_FALSE(holdings.RangeAt(8192)) << "the chunk's slots went with it";
  EXPECT_FALSE(holdings.RangeAt(16384));
  EXPECT_FALSE(holdings.AnyParked());
  EXPECT_TRUE(holdings.LostAtReconnect(30));
  EXPECT_TRUE(holdings.Holds(50));
  EXPECT_TRUE(holdings.TakeLostChunks().empty());
}

}  // namespace
}  // namespace memd
