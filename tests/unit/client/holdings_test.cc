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

}  // namespace
}  // namespace memd
