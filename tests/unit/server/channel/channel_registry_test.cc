// ChannelRegistry without gRPC: a Pool over a heap buffer, sessions as
// holders of its ledger, and the registry's bounds (issue 13, cases 7, 8, 9
// and 14).
#include "channel/channel_registry.h"
#include "memd/shared/limits.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "status_text.h"

namespace memd {
namespace {

using ::memd::testing_support::MessageHas;

constexpr uint64_t kRegistryPoolBytes = 4 << 20;


class ChannelRegistryTest : public testing::Test {
 protected:
  ChannelRegistryTest()
      : memory_(kRegistryPoolBytes),
        pool_(PoolConfig{.name = "c", .size_bytes = kRegistryPoolBytes, .alignment_bytes = 64,
                         .max_alloc_bytes = kRegistryPoolBytes,
                         .quotas = {.session_bytes = 1 << 20, .uid_bytes = 2 << 20}},
              0, memory_.data(), "/c") {}
  void TearDown() override { ASSERT_TRUE(pool_.CheckInvariants().ok()) << pool_.CheckInvariants(); }

  std::optional<absl::Status> Send(ChannelRegistry& channels, HolderId session, uint64_t id,
                                   const std::string& name, std::vector<uint64_t> handles,
                                   std::string metadata = "", absl::Duration timeout = {}) {
    return channels.Send(pool_, session, id, name, std::move(handles), std::move(metadata), 4096,
                         timeout, Pool::TransferMode::kMove, [](absl::Status) {});
  }
  std::optional<absl::StatusOr<ReceivedMessage>> Receive(ChannelRegistry& channels,
                                                         HolderId session, uint64_t id,
                                                         const std::string& name,
                                                         absl::Duration timeout = {}) {
    return channels.Receive(pool_, session, id, name, 0, timeout,
                            [](absl::StatusOr<ReceivedMessage>) {});
  }

  std::vector<uint8_t> memory_;
  Pool pool_;
};

TEST_F(ChannelRegistryTest, FailedOperationsCreateNothingAndIdleChannelsGo) {
  ChannelRegistry channels(absl::ZeroDuration());
  HolderId s = pool_.OpenSession(1, 100);
  auto empty = Receive(channels, s, 1, "nothing");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(absl::IsDeadlineExceeded(empty->status())) << empty->status();
  auto bad = Send(channels, s, 1, "bad", {12345});
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(absl::IsNotFound(*bad)) << *bad;
  EXPECT_TRUE(channels.Stats(pool_).empty()) << "a failed operation creates no channel";

  ASSERT_TRUE(Send(channels, s, 1, "used", {}, "eos")->ok());
  ASSERT_EQ(channels.Stats(pool_).size(), 1u);
  auto got = Receive(channels, s, 1, "used");
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ((*got)->metadata, "eos");
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {  // the timer thread looks at least once a second
    gone = channels.Stats(pool_).empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "an idle channel goes";
  EXPECT_EQ(pool_.SessionTotal(1).channels, 0u);
  pool_.CloseHolder(s);
}

TEST_F(ChannelRegistryTest, ChannelsPerSessionAreBoundedAndIdleOnesMakeRoom) {
  ChannelRegistry channels;
  HolderId s = pool_.OpenSession(1, 100);
  const uint64_t limit = LedgerLimits{}.session_channels;
  for (uint64_t i = 0; i < limit; ++i) {
    ASSERT_TRUE(Send(channels, s, 1, "c" + std::to_string(i), {})->ok()) << i;
  }
  absl::Status over = *Send(channels, s, 1, "one-more", {});
  EXPECT_TRUE(absl::IsResourceExhausted(over)) << over;
  EXPECT_TRUE(MessageHas(over, "creating channel 'one-more' in pool 'c' would exceed the limit of 256 "
                        "channels per session: session 1 created 256"))
      << over;
  EXPECT_EQ(channels.Stats(pool_).size(), limit);
  ASSERT_TRUE(Receive(channels, s, 1, "c0")->ok());  // c0 is idle now
  EXPECT_TRUE(Send(channels, s, 1, "one-more", {})->ok()) << "the idle channel made room";
  EXPECT_EQ(channels.Stats(pool_).size(), limit);
  channels.CancelSession(1);
  pool_.CloseHolder(s);
}

TEST_F(ChannelRegistryTest, ParkedRequestsPerSessionAreBounded) {
  ChannelRegistry channels;
  HolderId s = pool_.OpenSession(1, 100);
  const uint64_t limit = LedgerLimits{}.session_parked;
  for (uint64_t i = 0; i < limit; ++i) {
    ASSERT_FALSE(Receive(channels, s, 1, "q", absl::Hours(1)).has_value()) << "parked " << i;
  }
  auto over = Receive(channels, s, 1, "q", absl::Hours(1));
  ASSERT_TRUE(over.has_value());
  EXPECT_TRUE(MessageHas(over->status(), "waiting on channel 'q' in pool 'c' would exceed the limit of "
                                  "1024 parked sends and receives per session: session 1 has "
                                  "1024 parked"))
      << over->status();
  EXPECT_EQ(channels.Stats(pool_)[0].waiting_receivers, limit);
  // Another session still parks; the first one's end drops all of its own.
  HolderId other = pool_.OpenSession(2, 100);
  EXPECT_FALSE(Receive(channels, other, 2, "q", absl::Hours(1)).has_value());
  channels.CancelSession(1);
  EXPECT_EQ(channels.Stats(pool_)[0].waiting_receivers, 1u);
  EXPECT_EQ(pool_.SessionTotal(1).parked, 0u);
  channels.CancelSession(2);
  pool_.CloseHolder(s);
  pool_.CloseHolder(other);
}

TEST_F(ChannelRegistryTest, SentBuffersStayChargedToTheSendersUidUntilReceived) {
  ChannelRegistry channels;
  HolderId s = pool_.OpenSession(1, 100);
  absl::Status refused;
  int sent = 0;
  for (int i = 0; i < 40 && refused.ok(); ++i) {
    auto buffer = pool_.Allocate(s, 1 << 20, false);
    if (!buffer.ok()) {
      refused = buffer.status();
      break;
    }
    ASSERT_TRUE(Send(channels, s, 1, "fresh" + std::to_string(i), {buffer->handle})->ok());
    ++sent;
  }
  EXPECT_EQ(sent, 2) << "uid-bytes is 2 MiB";
  EXPECT_TRUE(MessageHas(refused, "per-uid quota of 2.0 MiB (2097152 bytes) for uid 100")) << refused;
  pool_.CloseHolder(s);  // the sender leaves; its messages stay charged to its uid
  EXPECT_EQ(pool_.UidUsage(100).held_bytes, 2u << 20);
  EXPECT_EQ(pool_.Stats().used_bytes, 2u << 20);

  HolderId r = pool_.OpenSession(2, 200);
  auto got = Receive(channels, r, 2, "fresh0");
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ(pool_.UidUsage(100).held_bytes, 1u << 20) << "received: the receiver's now";
  EXPECT_EQ(pool_.UidUsage(200).held_bytes, 1u << 20);
  // The receiver's session quota (1 MiB) refuses the next; it stays queued.
  auto over = Receive(channels, r, 2, "fresh1");
  ASSERT_TRUE(over.has_value());
  EXPECT_TRUE(MessageHas(over->status(), "per-session quota of 1.0 MiB")) << over->status();
  EXPECT_EQ(channels.Stats(pool_).size(), 2u);
  pool_.ReleaseAll(r);
  ASSERT_TRUE(Receive(channels, r, 2, "fresh1")->ok());
  pool_.CloseHolder(r);
  EXPECT_EQ(pool_.Stats().used_bytes, 0u);
}

TEST_F(ChannelRegistryTest, QueuedMessagesAreBoundedPerUidAndForTheDaemon) {
  ChannelRegistry channels;
  const std::string metadata(limits::kMaxChannelMetadataBytes, 'm');
  const uint64_t charge = metadata.size() + ChannelRegistry::kMessageOverheadBytes;
  std::vector<HolderId> sessions;
  absl::Status per_uid, daemon;
  for (uint32_t uid = 1; uid <= 10 && daemon.ok(); ++uid) {
    HolderId s = pool_.OpenSession(uid, uid);
    sessions.push_back(s);
    for (int i = 0;; ++i) {
      absl::Status sent = *Send(channels, s, uid, "u" + std::to_string(uid), {}, metadata);
      if (sent.ok()) continue;
      EXPECT_TRUE(absl::IsResourceExhausted(sent)) << sent;
      (MessageHas(sent, "daemon's limit") ? daemon : per_uid) = sent;
      if (uid == 1) {
        EXPECT_EQ(i, static_cast<int>(LedgerLimits{}.uid_message_bytes / charge));
      }
      break;
    }
  }
  EXPECT_TRUE(MessageHas(per_uid, "would exceed the limit of 4.0 MiB (4194304 bytes) of queued channel "
                           "messages per uid"))
      << per_uid;
  EXPECT_TRUE(MessageHas(daemon, "would exceed the daemon's limit of 32.0 MiB (33554432 bytes) of "
                          "queued channel messages"))
      << daemon;
  EXPECT_LE(channels.queued_message_bytes(), ChannelRegistry::kMaxQueuedMessageBytes);
  EXPECT_GT(channels.queued_message_bytes() + charge, ChannelRegistry::kMaxQueuedMessageBytes);
  for (uint64_t id = 1; id <= sessions.size(); ++id) {
    channels.CancelSession(id);
    pool_.CloseHolder(sessions[id - 1]);
  }
}

}  // namespace
}  // namespace memd

namespace memd {
namespace {

// A relay channel (a bridged one): a send completes only into a waiting
// receiver; tagged messages report their receipt to the delivery hook.
TEST_F(ChannelRegistryTest, RelaySendsWaitForAReceiverAndTagsReachTheHook) {
  ChannelRegistry channels;
  std::vector<uint64_t> tags;
  channels.SetDeliveryHook([&](const Pool&, const std::string& name, uint64_t tag) {
    EXPECT_EQ(name, "relay");
    tags.push_back(tag);
  });
  channels.SetRelay(pool_, "relay");
  HolderId producer = pool_.OpenSession(1, 100);
  HolderId bridge = pool_.OpenSession(2, 100);
  auto a = pool_.Allocate(producer, 64, false);
  ASSERT_TRUE(a.ok());
  auto full = Send(channels, producer, 1, "relay", {a->handle});
  ASSERT_TRUE(full.has_value());
  EXPECT_TRUE(absl::IsResourceExhausted(*full)) << "no receiver waits: " << *full;
  bool sent = false;
  auto parked = channels.Send(pool_, producer, 1, "relay", {a->handle}, "m", 0,
                              absl::Seconds(30), Pool::TransferMode::kMove,
                              [&](absl::Status s) { sent = s.ok(); }, /*tag=*/77);
  EXPECT_FALSE(parked.has_value()) << "a relay send waits for a receiver";
  std::optional<ReceivedMessage> got;
  auto r = channels.Receive(pool_, bridge, 2, "relay", 0, absl::Seconds(30),
                            [&](absl::StatusOr<ReceivedMessage> m) { got = *m; });
  EXPECT_FALSE(r.has_value());
  ASSERT_TRUE(got.has_value()) << "the waiting receiver took the parked send at once";
  EXPECT_TRUE(sent);
  EXPECT_EQ(got->metadata, "m");
  EXPECT_EQ(tags, std::vector<uint64_t>{77});
  EXPECT_EQ(pool_.ReleaseMany(bridge, {a->handle}).status(), absl::OkStatus());
  channels.CancelSession(1);
  channels.CancelSession(2);
}

// Issue 24 defect 5: a relay answered a parked send (OK) one pass before it
// handed the message to the bridge, so a kill between the two lost a frame
// the producer had been told was sent. The receiver (the bridge, which
// journals it) must take the message before the sender hears OK, whether
// the send waited or found the receiver waiting.
TEST_F(ChannelRegistryTest, RelayAnswersTheSenderOnlyAfterTheReceiverTookTheMessage) {
  ChannelRegistry channels;
  channels.SetRelay(pool_, "relay");
  HolderId producer = pool_.OpenSession(1, 100);
  HolderId bridge = pool_.OpenSession(2, 100);
  std::vector<std::string> events;
  auto receive = [&] {
    return channels.Receive(pool_, bridge, 2, "relay", 0, absl::Seconds(30),
                            [&](absl::StatusOr<ReceivedMessage> m) {
                              events.push_back(m.ok() ? "taken " + m->metadata : "error");
                            });
  };
  for (const std::string name : {"parked", "immediate"}) {
    auto a = pool_.Allocate(producer, 64, false);
    ASSERT_TRUE(a.ok());
    events.clear();
    if (name == "immediate") {
      EXPECT_FALSE(receive().has_value());
    }
    auto sent = channels.Send(pool_, producer, 1, "relay", {a->handle}, name, 0,
                              absl::Seconds(30), Pool::TransferMode::kMove,
                              [&](absl::Status s) { events.push_back("answered " + s.ToString()); });
    if (name == "parked") {
      EXPECT_FALSE(sent.has_value());
      EXPECT_FALSE(receive().has_value());
    } else {
      ASSERT_TRUE(sent.has_value());
      events.push_back("answered " + sent->ToString());
    }
    EXPECT_EQ(events, (std::vector<std::string>{"taken " + name, "answered OK"})) << name;
    EXPECT_EQ(pool_.ReleaseMany(bridge, {a->handle}).status(), absl::OkStatus());
  }
  channels.CancelSession(1);
  channels.CancelSession(2);
}

}  // namespace
}  // namespace memd
