// HolderLedger: who holds what, per holder, session and uid, and the quotas
// and bounds it checks; and the Pool operations built on it for channels.
#include "pool/holder_ledger.h"

#include <vector>

#include <gtest/gtest.h>

#include "status_text.h"

#include "pool/pool.h"

namespace memd {
namespace {

using ::memd::testing_support::MessageHas;

using Change = HolderLedger::Change;


TEST(HolderLedgerTest, CountsDistinctBuffersPerHolderAndTotalsPerSessionAndUid) {
  HolderLedger ledger("p", PoolQuotas{});
  HolderId a = ledger.Open(HolderKind::kSession, Causer{1, 100});
  HolderId b = ledger.Open(HolderKind::kSession, Causer{2, 100});
  HolderId m = ledger.Open(HolderKind::kMessage, Causer{1, 100});
  ledger.Apply(std::vector<Change>{{a, 7, 1024, 2}, {b, 7, 1024, 1}, {m, 8, 64, 1}});
  EXPECT_EQ(ledger.Held(a, 7), 2u);
  EXPECT_EQ(ledger.Usage(a).held_bytes, 1024u) << "a buffer counts once per holder";
  EXPECT_EQ(ledger.Usage(a).held_buffers, 1u);
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 1024u + 1024u + 64u);
  EXPECT_EQ(ledger.SessionTotal(1).held_bytes, 1024u + 64u) << "its own and its message's";
  EXPECT_EQ(ledger.sessions(), 2u);
  EXPECT_EQ(ledger.ReferencesByHandle().at(7), 3u);

  auto taken = ledger.TakeAll(a);
  EXPECT_EQ(taken.at(7), 2u);
  EXPECT_EQ(ledger.Usage(a).held_bytes, 0u);
  ledger.Close(a);
  EXPECT_EQ(ledger.sessions(), 1u);
  ledger.Apply(std::vector<Change>{{b, 7, 1024, -1}, {m, 8, 64, -1}});
  ledger.Close(m);
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 0u);
  EXPECT_EQ(ledger.SessionTotal(1).held_bytes, 0u);
}

TEST(HolderLedgerTest, QuotasRefuseGrowthNamingTheQuotaAndNeverAMoveWithinAUid) {
  HolderLedger ledger("p", PoolQuotas{.session_bytes = 2048, .uid_bytes = 3072});
  HolderId a = ledger.Open(HolderKind::kSession, Causer{1, 100});
  HolderId m = ledger.Open(HolderKind::kMessage, Causer{1, 100});
  ledger.Apply(std::vector<Change>{{a, 1, 1024, 1}, {a, 2, 1024, 1}});
  absl::Status session = ledger.CheckGrowth(a, 1024, 1, "allocation");
  EXPECT_TRUE(absl::IsResourceExhausted(session)) << session;
  EXPECT_TRUE(MessageHas(session, "per-session quota of 2.0 KiB (2048 bytes)")) << session;
  // Moving a buffer into the session's own message keeps the uid's usage.
  std::vector<Change> move = {{a, 1, 1024, -1}, {m, 1, 1024, 1}};
  EXPECT_TRUE(ledger.Check(move, "channel send").ok());
  ledger.Apply(move);
  EXPECT_EQ(ledger.Usage(a).held_bytes, 1024u) << "a sent buffer leaves the session's count";
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 2048u) << "and stays the uid's";
  ASSERT_TRUE(ledger.CheckGrowth(a, 1024, 1, "allocation").ok());
  ledger.Apply(std::vector<Change>{{a, 3, 1024, 1}});
  // A sharing send gives the message a reference of its own: the uid grows.
  absl::Status uid = ledger.Check(std::vector<Change>{{m, 2, 1024, 1}}, "channel send");
  EXPECT_TRUE(absl::IsResourceExhausted(uid)) << uid;
  EXPECT_TRUE(MessageHas(uid, "per-uid quota of 3.0 KiB (3072 bytes) for uid 100")) << uid;
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 3072u) << "a refused check changes nothing";
  // Another uid taking the message's buffer: the sender's uid is relieved.
  HolderId r = ledger.Open(HolderKind::kSession, Causer{2, 200});
  ledger.Apply(std::vector<Change>{{m, 1, 1024, -1}, {r, 1, 1024, 1}});
  EXPECT_EQ(ledger.UidUsage(100).held_bytes, 2048u);
  EXPECT_EQ(ledger.UidUsage(200).held_bytes, 1024u);
}

TEST(HolderLedgerTest, ChannelsParkedRequestsAndMessageBytesAreBounded) {
  LedgerLimits limits{.session_channels = 2, .uid_channels = 3, .session_parked = 1,
                      .uid_message_bytes = 1000};
  HolderLedger ledger("p", PoolQuotas{}, limits);
  HolderId s1 = ledger.Open(HolderKind::kSession, Causer{1, 100});
  HolderId s2 = ledger.Open(HolderKind::kSession, Causer{2, 100});
  auto channel_of = [&](HolderId session) {
    HolderId c = ledger.Open(HolderKind::kChannel, ledger.causer(session));
    absl::Status s = ledger.Charge(c, SessionUsage{.channels = 1}, "creating channel 'x'");
    if (!s.ok()) ledger.Close(c);
    return s;
  };
  ASSERT_TRUE(channel_of(s1).ok());
  ASSERT_TRUE(channel_of(s1).ok());
  absl::Status per_session = channel_of(s1);
  EXPECT_TRUE(MessageHas(per_session, "limit of 2 channels per session: session 1 created 2"))
      << per_session;
  ASSERT_TRUE(channel_of(s2).ok());
  absl::Status per_uid = channel_of(s2);
  EXPECT_TRUE(MessageHas(per_uid, "limit of 3 channels per uid: uid 100 created 3")) << per_uid;
  EXPECT_EQ(ledger.UidUsage(100).channels, 3u);

  ASSERT_TRUE(ledger.Charge(s1, SessionUsage{.parked = 1}, "waiting on channel 'x'").ok());
  absl::Status parked = ledger.Charge(s1, SessionUsage{.parked = 1}, "waiting on channel 'x'");
  EXPECT_TRUE(MessageHas(parked, "limit of 1 parked sends and receives per session: session 1 has 1"))
      << parked;
  ledger.Uncharge(s1, SessionUsage{.parked = 1});
  EXPECT_TRUE(ledger.Charge(s1, SessionUsage{.parked = 1}, "waiting on channel 'x'").ok());

  HolderId m = ledger.Open(HolderKind::kMessage, ledger.causer(s2));
  ASSERT_TRUE(ledger.Charge(m, SessionUsage{.message_bytes = 900}, "send").ok());
  HolderId m2 = ledger.Open(HolderKind::kMessage, ledger.causer(s1));
  absl::Status bytes = ledger.Charge(m2, SessionUsage{.message_bytes = 200}, "send");
  EXPECT_TRUE(MessageHas(bytes, "of queued channel messages per uid: uid 100 has 900 B")) << bytes;
  ledger.Close(m);  // received: its charge goes
  EXPECT_TRUE(ledger.Charge(m2, SessionUsage{.message_bytes = 200}, "send").ok());
  EXPECT_EQ(ledger.UidUsage(100).message_bytes, 200u);
}

// The Pool operations channels use, over a heap buffer.
class PoolMessageTest : public testing::Test {
 protected:
  static constexpr uint64_t kSize = 1 << 20;
  PoolMessageTest()
      : memory_(kSize),
        pool_(PoolConfig{.name = "m", .size_bytes = kSize, .alignment_bytes = 64,
                         .max_alloc_bytes = kSize, .quotas = {.uid_bytes = 8192}},
              0, memory_.data(), "/m") {}
  void TearDown() override { ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants(); }

  std::vector<uint8_t> memory_;
  Pool pool_;
  HolderId sender_ = pool_.OpenSession(1, 100);
  HolderId receiver_ = pool_.OpenSession(2, 200);
};

TEST_F(PoolMessageTest, AMessageHoldsItsReferencesChargedToTheSenderUntilDelivered) {
  auto a = pool_.Allocate(sender_, 4096, false);
  auto b = pool_.Allocate(sender_, 4096, false);
  ASSERT_TRUE(a.ok() && b.ok());
  auto message = pool_.OpenMessage(sender_, {a->handle}, Pool::TransferMode::kMove, 300, "send");
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(pool_.Usage(sender_).held_bytes, 4096u);
  EXPECT_EQ(pool_.UidUsage(100).held_bytes, 8192u) << "the message's buffer is the sender's uid's";
  EXPECT_EQ(pool_.UidUsage(100).message_bytes, 300u);
  // A sharing send of b would put the uid at 12 KiB: refused, nothing changes.
  auto shared = pool_.OpenMessage(sender_, {b->handle}, Pool::TransferMode::kShare, 300, "send");
  EXPECT_TRUE(absl::IsResourceExhausted(shared.status())) << shared.status();
  EXPECT_EQ(pool_.Query(sender_, {b->handle})[0].total, 1u);
  EXPECT_EQ(pool_.UidUsage(100).message_bytes, 300u);
  // A send of what the sender does not hold is refused as such.
  auto foreign = pool_.OpenMessage(sender_, {a->handle}, Pool::TransferMode::kMove, 0, "send");
  EXPECT_TRUE(absl::IsFailedPrecondition(foreign.status())) << foreign.status();

  auto got = pool_.Deliver(*message, receiver_, {a->handle}, "receive");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0].handle, a->handle);
  EXPECT_EQ(pool_.UidUsage(100).held_bytes, 4096u);
  EXPECT_EQ(pool_.UidUsage(100).message_bytes, 0u) << "the message is gone";
  EXPECT_EQ(pool_.UidUsage(200).held_bytes, 4096u);
  EXPECT_EQ(pool_.CloseHolder(receiver_), 1u);
  EXPECT_EQ(pool_.CloseHolder(sender_), 1u);
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
  EXPECT_EQ(pool_.Stats().sessions, 0u);
}

TEST_F(PoolMessageTest, DeliveryBeyondTheReceiversQuotaLeavesTheMessageAndGiveBackIsNeverRefused) {
  HolderId small = pool_.OpenSession(3, 200);
  auto hog = pool_.Allocate(receiver_, 8192, false);
  auto a = pool_.Allocate(sender_, 4096, false);
  ASSERT_TRUE(hog.ok() && a.ok());
  auto message = pool_.OpenMessage(sender_, {a->handle}, Pool::TransferMode::kMove, 0, "send");
  ASSERT_TRUE(message.ok());
  auto refused = pool_.Deliver(*message, small, {a->handle}, "receive");
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("for uid 200"), std::string::npos);
  EXPECT_EQ(pool_.Holdings(*message).at(a->handle), 1u) << "still the message's";
  // A parked send timing out: its references go back, whatever the quotas.
  ASSERT_TRUE(pool_.Deliver(*message, sender_, {a->handle}, "timeout", /*give_back=*/true).ok());
  EXPECT_EQ(pool_.Query(sender_, {a->handle})[0].held, 1u);
  pool_.CloseHolder(small);
  pool_.ReleaseAll(receiver_);
  pool_.ReleaseAll(sender_);
}

}  // namespace
}  // namespace memd
