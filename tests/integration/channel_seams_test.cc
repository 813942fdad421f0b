// Where channel features meet (issue 24, "every promise holds under attack"):
// an operator's drain or delete against a daemon killed with SIGKILL, against
// receivers waiting on an empty channel or taking from a full one, and
// against waiting clients. What must hold: no message is delivered twice,
// none goes uncounted (received + drained == sent), and the pool is back to
// what its clients hold, its invariant checker passing. Real daemon, real
// clients in threads of their own, the real memctl.
#include <signal.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

// Sends `count` new buffers of `size_bytes` to `channel`, moved, with their
// index ("0", "1", ...) from `first` as metadata; waits up to 30 s for room.
void SendNumbered(Client& sender, const std::string& channel, int first, int count,
                  uint32_t capacity, size_t size_bytes = 4096) {
  for (int i = first; i < first + count; ++i) {
    absl::StatusOr<BufferRef> buffer = sender.AllocateRef(size_bytes, false);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    absl::Status sent = sender.Send(channel, {buffer->handle}, std::to_string(i),
                                    /*timeout_ms=*/30000, capacity, SendMode::kMove);
    ASSERT_TRUE(sent.ok()) << "message " << i << ": " << sent;
  }
}

// What a receiving thread took: each message's metadata, its buffers
// released at once.
struct Taken {
  std::vector<std::string> metadata;
  std::string error;  // the first receive that failed otherwise than by its timeout
};

// Receives from `channel` with `timeout_ms` until a receive finds nothing
// after `stop` was set (with timeout 0: until the first that finds nothing).
void ReceiveUntilEmpty(Client& receiver, const std::string& channel, int64_t timeout_ms,
                       uint32_t capacity, const std::atomic<bool>* stop, Taken* taken) {
  for (;;) {
    absl::StatusOr<ChannelMessage> message = receiver.Receive(channel, timeout_ms, capacity);
    if (absl::IsDeadlineExceeded(message.status())) {
      if (stop == nullptr || stop->load()) return;
      continue;
    }
    if (!message.ok()) {
      taken->error = message.status().ToString();
      return;
    }
    taken->metadata.push_back(message->metadata);
    for (const BufferRef& buffer : message->buffers) {
      absl::StatusOr<bool> released = receiver.ReleaseRef(buffer.handle);
      if (!released.ok()) taken->error = released.status().ToString();
    }
  }
}

// Every buffer is freed (a release may still be on its way) and every pool's
// invariant checker passes.
void ExpectPoolEmptyAndSound(const DaemonEnv& daemon) {
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; }))
      << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Counts `metadata` values seen more than once.
size_t Repeats(const std::vector<std::string>& metadata) {
  return metadata.size() - std::set<std::string>(metadata.begin(), metadata.end()).size();
}

// Channels are not persisted (docs/reliability.md, "The restart matrix";
// channel_registry.h): after a kill -9 the queued messages are not in any
// channel of the successor, so there is nothing to drain (E88); their
// references are re-adopted unclaimed and released when the reclaim grace
// ends, while the sender reclaims its own. The pool ends holding exactly what
// the sender still holds.
TEST(ChannelSeamsTest, AKilledDaemonsQueuedMessagesAreNotDrainableAndGoAtTheGraceEnd) {
  DaemonEnv daemon({.pools = {"default=8MiB"}, .extra_args = {"--reclaim-grace", "10s"}});
  ASSERT_TRUE(daemon.ok());
  auto sender = Client::Connect({.address = daemon.address(), .outage_wait_ms = 30000});
  ASSERT_TRUE(sender.ok()) << sender.status();
  std::vector<Buffer> kept;  // shared into the channel: the sender keeps its references
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Buffer> buffer = (*sender)->Allocate(16 << 10);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    std::memset(buffer->data(), 0x40 + i, buffer->size());
    absl::Status sent = (*sender)->Send("backlog", {buffer->handle()}, "kept", 0, 16,
                                        SendMode::kShare);
    ASSERT_TRUE(sent.ok()) << sent;
    kept.push_back(std::move(*buffer));
  }
  const uint64_t kept_bytes = daemon.PoolStats().used_bytes();
  SendNumbered(**sender, "backlog", 0, 4, 16, 16 << 10);  // moved: only the channel holds them
  ASSERT_EQ(daemon.ChannelStats("backlog").depth(), 8u);
  ASSERT_EQ(daemon.PoolStats().live_buffers(), 8u);

  ASSERT_TRUE(daemon.Stop(SIGKILL).has_value());
  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(daemon.ChannelStats("backlog").name(), "") << "channels are not persisted";
  auto [code, out] = RunMemctl(daemon, {"channel", "drain", "default/backlog"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "pool 'default' has no channel 'backlog'")) << out;
  // The sender reclaims its 4; the 8 messages' references wait for the grace.
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::PoolStats now = daemon.PoolStats();
        return now.sessions() == 1 && now.unclaimed_references() == 8;
      },
      std::chrono::seconds(8)))
      << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 8u);

  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == kept_bytes; },
                      std::chrono::seconds(30)))
      << "the messages' references go at the grace end: " << daemon.PoolStats().DebugString();
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.live_buffers(), 4u) << "what the sender holds";
  EXPECT_EQ(after.unclaimed_references(), 0u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(kept[i].data()[kept[i].size() - 1], 0x40 + i);
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  absl::StatusOr<ChannelMessage> nothing = (*receiver)->Receive("backlog", 0);
  EXPECT_TRUE(absl::IsDeadlineExceeded(nothing.status())) << "nothing from before the kill";
  EXPECT_EQ(daemon.CheckPools(), "");
  kept.clear();
  ExpectPoolEmptyAndSound(daemon);
}

// The daemon killed (SIGKILL) while `memctl channel drain` releases a
// backlog of 400 messages, at a different moment each round, and started
// again on the same state: it starts, its pools pass the invariant checker,
// the live sender holds each of its buffers once (it reclaimed them, nothing
// twice), a drain that was answered stays done (none of its references come
// back unclaimed), and once the reclaim grace ends the pool holds exactly
// what the sender holds.
TEST(ChannelSeamsTest, ADaemonKilledDuringADrainRestartsHoldingOnlyWhatLiveSessionsHold) {
  DaemonEnv daemon({.pools = {"default=32MiB"}, .extra_args = {"--reclaim-grace", "4s"}});
  ASSERT_TRUE(daemon.ok());
  constexpr int kBacklog = 400;
  constexpr uint32_t kCapacity = kBacklog + 8;
  auto sender = Client::Connect({.address = daemon.address(), .outage_wait_ms = 30000});
  ASSERT_TRUE(sender.ok()) << sender.status();
  std::vector<Buffer> kept;  // shared into each round's backlog: the sender keeps them
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Buffer> buffer = (*sender)->Allocate(16 << 10);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    std::memset(buffer->data(), 0x40 + i, buffer->size());
    kept.push_back(std::move(*buffer));
  }
  std::vector<uint64_t> kept_handles;
  for (const Buffer& b : kept) kept_handles.push_back(b.handle());
  const uint64_t kept_bytes = daemon.PoolStats().used_bytes();
  // Each kept buffer held once by the sender and `others` times besides.
  auto expect_held_once = [&](uint32_t most_others) {
    absl::StatusOr<std::vector<RefCount>> refs = (*sender)->QueryRefs(kept_handles);
    ASSERT_TRUE(refs.ok()) << refs.status();
    for (const RefCount& r : *refs) {
      EXPECT_EQ(r.held, 1u) << "handle " << r.handle;
      EXPECT_GE(r.references, 1u) << "handle " << r.handle;
      EXPECT_LE(r.references, 1u + most_others) << "handle " << r.handle;
    }
  };

  int answered = 0;
  constexpr int kAfterTheAnswer = -1;  // the last round kills once memctl has its answer
  for (int delay_ms : {0, 2, 5, 10, kAfterTheAnswer}) {
    SCOPED_TRACE(::testing::Message() << "kill " << delay_ms << " ms after the drain started");
    for (const Buffer& b : kept) {
      ASSERT_TRUE((*sender)->Send("backlog", {b.handle()}, "kept", 0, kCapacity,
                                  SendMode::kShare).ok());
    }
    SendNumbered(**sender, "backlog", 0, kBacklog, kCapacity);
    ASSERT_EQ(daemon.ChannelStats("backlog").depth(), kBacklog + kept.size());

    Subprocess drain({MemctlBinary(), "--address", daemon.address(), "channel", "drain",
                      "default/backlog"});
    std::string said;
    if (delay_ms == kAfterTheAnswer) {
      said = drain.ReadAll(std::chrono::seconds(30));
      ASSERT_TRUE(Has(said, "drained: 404 messages")) << said;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));  // where the kill lands
    }
    ASSERT_TRUE(daemon.Stop(SIGKILL).has_value());
    if (delay_ms != kAfterTheAnswer) said = drain.ReadAll(std::chrono::seconds(30));
    const bool drained = Has(said, "drained: 404 messages");
    answered += drained;
    ASSERT_TRUE(daemon.Restart()) << "the daemon must start after a kill during a drain";
    EXPECT_EQ(daemon.CheckPools(), "");

    // The sender reclaims what it holds; what the messages held is either
    // released (by the drain, persisted before its answer) or unclaimed.
    ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().sessions() == 1; },
                        std::chrono::seconds(3)))
        << daemon.PoolStats().DebugString();
    expect_held_once(/*most_others=*/drained ? 0 : 1);
    v1::PoolStats restarted = daemon.PoolStats();
    EXPECT_LE(restarted.unclaimed_references(), kBacklog + kept.size());
    if (drained) {
      EXPECT_EQ(restarted.unclaimed_references(), 0u) << "an answered drain is durable";
      EXPECT_EQ(restarted.live_buffers(), kept.size());
    }
    EXPECT_EQ(daemon.CheckPools(), "");

    EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == kept_bytes; },
                        std::chrono::seconds(30)))
        << "the grace end releases the rest: " << daemon.PoolStats().DebugString();
    v1::PoolStats after = daemon.PoolStats();
    EXPECT_EQ(after.live_buffers(), kept.size()) << "what the sender holds, and nothing else";
    EXPECT_EQ(after.unclaimed_references(), 0u);
    expect_held_once(/*most_others=*/0);
    EXPECT_EQ(daemon.CheckPools(), "");
  }
  std::cout << answered << " of 5 drains were answered before the kill\n";
  for (int i = 0; i < 4; ++i) EXPECT_EQ(kept[i].data()[kept[i].size() - 1], 0x40 + i);
  kept.clear();
  ExpectPoolEmptyAndSound(daemon);
}

// A receiver parked on an empty channel is not disturbed by a drain (it
// still gets the next message), and drains racing a receiver that keeps
// waiting while a sender fills the channel neither deliver a message twice
// nor lose one uncounted.
TEST(ChannelSeamsTest, DrainsRacingAWaitingReceiverDeliverNothingTwiceAndLoseNothing) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  constexpr uint32_t kCapacity = 4;
  constexpr int kMessages = 400;
  auto sender = Client::Connect({.address = daemon.address()});
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(sender.ok() && receiver.ok());

  absl::StatusOr<ChannelMessage> first;
  std::jthread parked([&] { first = (*receiver)->Receive("race", 20000, kCapacity); });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("race").waiting_receivers() == 1; }));
  v1::DrainChannelResponse drained;
  grpc::Status status = daemon.DrainChannel("race", &drained);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(drained.messages(), 0u);
  EXPECT_EQ(daemon.ChannelStats("race").waiting_receivers(), 1u) << "the drain left it waiting";
  SendNumbered(**sender, "race", 0, 1, kCapacity);
  parked.join();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->metadata, "0") << "the parked receive got the message sent after the drain";
  ASSERT_EQ(first->buffers.size(), 1u);
  ASSERT_TRUE((*receiver)->ReleaseRef(first->buffers[0].handle).ok());

  std::atomic<bool> sending_done{false}, stop{false};
  Taken taken;
  std::jthread receiving(
      [&] { ReceiveUntilEmpty(**receiver, "race", 100, kCapacity, &stop, &taken); });
  absl::Cleanup stop_receiving = [&] { stop = true; };  // also when an assertion returns early
  std::jthread sending([&] {
    SendNumbered(**sender, "race", 1, kMessages, kCapacity);
    sending_done = true;
  });
  uint64_t drained_messages = 0, drains = 0;
  while (!sending_done) {
    status = daemon.DrainChannel("race", &drained);
    if (!status.ok()) {
      ADD_FAILURE() << status.error_message();
      break;
    }
    drained_messages += drained.messages();
    ++drains;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pacing, not a bound
  }
  sending.join();
  status = daemon.DrainChannel("race", &drained);
  ASSERT_TRUE(status.ok()) << status.error_message();
  drained_messages += drained.messages();
  stop = true;
  receiving.join();
  ASSERT_EQ(taken.error, "");

  const uint64_t sent = kMessages + 1, received = taken.metadata.size() + 1;
  std::cout << "drains " << drains << ": " << drained_messages << " messages drained, "
            << received << " received of " << sent << "\n";
  EXPECT_EQ(received + drained_messages, sent);
  EXPECT_EQ(Repeats(taken.metadata), 0u) << "a message delivered twice";
  v1::ChannelStats race = daemon.ChannelStats("race");
  EXPECT_EQ(race.sent(), sent);
  EXPECT_EQ(race.received(), received);
  EXPECT_EQ(race.drained(), drained_messages);
  EXPECT_EQ(race.depth(), 0u);
  EXPECT_EQ(race.waiting_receivers() + race.waiting_senders(), 0u);
  ExpectPoolEmptyAndSound(daemon);
}

// A drain and a receiver taking from a full channel at once, round after
// round: each message goes one way, once.
TEST(ChannelSeamsTest, ADrainRacingAReceiveOnAFullChannelCountsEveryMessageOnce) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  constexpr uint32_t kCapacity = 8;
  constexpr int kRounds = 40;
  auto sender = Client::Connect({.address = daemon.address()});
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(sender.ok() && receiver.ok());
  uint64_t received = 0, drained_messages = 0;
  std::vector<std::string> all_received;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    SendNumbered(**sender, "full", round * kCapacity, kCapacity, kCapacity);
    ASSERT_EQ(daemon.ChannelStats("full").depth(), kCapacity);
    Taken taken;
    std::atomic<bool> go{false};
    std::jthread receiving([&] {
      while (!go) std::this_thread::yield();
      ReceiveUntilEmpty(**receiver, "full", 0, kCapacity, nullptr, &taken);
    });
    go = true;
    v1::DrainChannelResponse drained;
    grpc::Status status = daemon.DrainChannel("full", &drained);
    receiving.join();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(taken.error, "");
    EXPECT_EQ(taken.metadata.size() + drained.messages(), kCapacity)
        << taken.metadata.size() << " received, " << drained.messages() << " drained";
    EXPECT_EQ(drained.references(), drained.messages()) << "one buffer a message";
    received += taken.metadata.size();
    drained_messages += drained.messages();
    all_received.insert(all_received.end(), taken.metadata.begin(), taken.metadata.end());
  }
  std::cout << received << " received, " << drained_messages << " drained\n";
  EXPECT_EQ(received + drained_messages, uint64_t{kRounds} * kCapacity);
  EXPECT_EQ(Repeats(all_received), 0u) << "a message delivered twice";
  EXPECT_EQ(daemon.ChannelStats("full").depth(), 0u);
  ExpectPoolEmptyAndSound(daemon);
}

// A drain that lets a waiting send in is ChannelAdminTest's; here: delete
// refuses a channel a receiver waits on, or a sender waits to send to, names
// what it still has (E87), and disturbs neither waiting client.
TEST(ChannelSeamsTest, DeleteIsRefusedWhileClientsWaitAndNamesWhatTheChannelHas) {
  DaemonEnv daemon({.pools = {"default=8MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto sender = Client::Connect({.address = daemon.address()});
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(sender.ok() && receiver.ok());

  absl::StatusOr<ChannelMessage> got;
  std::jthread waiting_receive([&] { got = (*receiver)->Receive("wait", 20000, 2); });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("wait").waiting_receivers() == 1; }));
  auto [code, out] = RunMemctl(daemon, {"channel", "delete", "default/wait"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "channel 'wait' of pool 'default' is not idle: 0 messages queued, 0 "
                       "sends and 1 receives waiting")) << out;
  std::tie(code, out) = RunMemctl(daemon, {"channel", "drain", "default/wait"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "channel default/wait drained: 0 messages (0 references")) << out;
  EXPECT_EQ(daemon.ChannelStats("wait").waiting_receivers(), 1u) << "still waiting";
  SendNumbered(**sender, "wait", 0, 1, 2);
  waiting_receive.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->metadata, "0");
  ASSERT_EQ(got->buffers.size(), 1u);
  ASSERT_TRUE((*receiver)->ReleaseRef(got->buffers[0].handle).ok());

  SendNumbered(**sender, "wait", 1, 2, 2);  // full
  std::jthread waiting_send([&] { SendNumbered(**sender, "wait", 3, 1, 2); });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("wait").waiting_senders() == 1; }));
  std::tie(code, out) = RunMemctl(daemon, {"channel", "delete", "default/wait"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "is not idle: 2 messages queued, 1 sends and 0 receives waiting")) << out;
  EXPECT_EQ(daemon.ChannelStats("wait").depth(), 2u) << "a refusal changes nothing";
  EXPECT_EQ(daemon.ChannelStats("wait").waiting_senders(), 1u);

  std::vector<std::string> taken;  // the two queued, then the one that waited, in order
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ChannelMessage> message = (*receiver)->Receive("wait", 20000, 2);
    ASSERT_TRUE(message.ok()) << message.status();
    taken.push_back(message->metadata);
    for (const BufferRef& b : message->buffers) EXPECT_TRUE((*receiver)->ReleaseRef(b.handle).ok());
  }
  waiting_send.join();
  EXPECT_EQ(taken, (std::vector<std::string>{"1", "2", "3"}));
  std::tie(code, out) = RunMemctl(daemon, {"channel", "delete", "default/wait"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(daemon.ChannelStats("wait").name(), "") << "deleted";
  ExpectPoolEmptyAndSound(daemon);
}

}  // namespace
}  // namespace memd::testing
