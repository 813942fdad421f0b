// Channels: buffer references handed from process to process through the
// daemon, with backpressure, and nothing lost or leaked when either side dies.
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace memd::testing {
namespace {

TEST(ChannelTest, ReferencesMoveFromSenderToReceiverWithTheMetadata) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto sender = Client::Connect({.address = daemon.address()});
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(sender.ok() && receiver.ok());
  auto a = (*sender)->AllocateRef(4096, false);
  auto b = (*sender)->AllocateRef(100, false);
  ASSERT_TRUE(a.ok() && b.ok());
  std::memset((*sender)->Pointer(a->offset_bytes), 0x42, 4096);
  ASSERT_TRUE((*sender)->Send("frames", {a->handle, b->handle}, "w=64,h=64,pts=7").ok());
  EXPECT_EQ(daemon.ChannelStats("frames").depth(), 1u);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u) << "in flight, held by the channel";
  auto [code, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats"});
  EXPECT_NE(table.find("frames"), std::string::npos) << table;
  EXPECT_NE(table.find("1/16"), std::string::npos) << "depth/capacity: " << table;
  auto [jcode, json] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "--json"});
  EXPECT_NE(json.find("\"depth\": 1"), std::string::npos) << json;
  EXPECT_FALSE((*sender)->ReleaseRef(a->handle).ok()) << "the sender's reference moved";

  auto message = (*receiver)->Receive("frames");
  ASSERT_TRUE(message.ok()) << message.status();
  ASSERT_EQ(message->buffers.size(), 2u);
  EXPECT_EQ(message->metadata, "w=64,h=64,pts=7");
  EXPECT_EQ(message->buffers[0].handle, a->handle);
  EXPECT_EQ(message->buffers[0].offset_bytes, a->offset_bytes);
  EXPECT_EQ((*receiver)->Pointer(message->buffers[0].offset_bytes)[4095], 0x42) << "no copy";
  v1::ChannelStats stats = daemon.ChannelStats("frames");
  EXPECT_EQ(stats.depth(), 0u);
  EXPECT_EQ(stats.sent(), 1u);
  EXPECT_EQ(stats.received(), 1u);
  for (const BufferRef& r : message->buffers) ASSERT_TRUE((*receiver)->ReleaseRef(r.handle).ok());
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
}

TEST(ChannelTest, FullChannelsMakeSendersWaitEmptyOnesMakeReceiversWait) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  auto consumer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto refs = (*producer)->AllocateRefs(64, 3);
  ASSERT_TRUE(refs.ok());
  ASSERT_TRUE((*producer)->Send("q", {(*refs)[0].handle}, "", 0, /*capacity=*/1).ok());
  absl::Status full = (*producer)->Send("q", {(*refs)[1].handle});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(full.message().find("is full (1 messages)"), std::string::npos) << full;
  auto waiting = std::async(std::launch::async, [&] {
    return (*producer)->Send("q", {(*refs)[1].handle}, "second", 5000);
  });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 1; }));
  EXPECT_EQ(daemon.ChannelStats("q").send_waits(), 1u);
  auto first = (*consumer)->Receive("q");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(waiting.get().ok()) << "room came, the parked send went in";
  auto second = (*consumer)->Receive("q");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->metadata, "second");

  auto empty = (*consumer)->Receive("q", 100);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kDeadlineExceeded) << empty.status();
  auto parked = std::async(std::launch::async, [&] { return (*consumer)->Receive("q", 5000); });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_receivers() == 1; }));
  ASSERT_TRUE((*producer)->Send("q", {(*refs)[2].handle}, "third").ok());
  auto third = parked.get();
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->metadata, "third");
  auto timed_out = (*producer)->AllocateRef(64, false);
  ASSERT_TRUE(timed_out.ok());
  ASSERT_TRUE((*producer)->Send("q", {timed_out->handle}).ok());
  EXPECT_EQ((*producer)->Send("q", {timed_out->handle}, "", 100).code(),
            absl::StatusCode::kFailedPrecondition)
      << "the reference already moved";
}

TEST(ChannelTest, NothingIsLostOrLeakedWhenEitherSideDies) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess sender({TestClientBinary(), "send", "pipe", "3", "8192", "77"}, daemon.ClientEnv());
  ASSERT_EQ(sender.ReadLine(), "sent");
  sender.Kill(SIGKILL);
  sender.Wait();
  EXPECT_EQ(daemon.ChannelStats("pipe").depth(), 3u) << "a dead sender's messages stay deliverable";
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 3u);

  Subprocess receiver({TestClientBinary(), "receive", "pipe", "2"}, daemon.ClientEnv());
  ASSERT_EQ(receiver.ReadLine(), "received");
  receiver.Kill(SIGKILL);
  receiver.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 1u; }))
      << "what a dead receiver took is released; " << daemon.PoolStats().DebugString();
  auto survivor = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(survivor.ok());
  auto last = (*survivor)->Receive("pipe");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->metadata, "m2");
  EXPECT_EQ((*survivor)->Pointer(last->buffers[0].offset_bytes)[8191], 77);
  ASSERT_TRUE((*survivor)->ReleaseRef(last->buffers[0].handle).ok());
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);

  // A receiver that dies while waiting leaves nothing behind either.
  Subprocess waiter({TestClientBinary(), "receive", "idle", "1"}, daemon.ClientEnv());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("idle").waiting_receivers() == 1; }));
  waiter.Kill(SIGKILL);
  waiter.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.ChannelStats("idle").waiting_receivers() == 0; }));
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ChannelTest, SharedSendKeepsTheSendersReferenceAndQueryCountsHolders) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto sender = Client::Connect({.address = daemon.address()});
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(sender.ok() && receiver.ok());
  auto frame = (*sender)->AllocateRef(8192, false);
  ASSERT_TRUE(frame.ok());
  std::memset((*sender)->Pointer(frame->offset_bytes), 0x17, 8192);
  auto counts = (*sender)->QueryRefs({frame->handle});
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ((*counts)[0].references, 1u);
  EXPECT_EQ((*counts)[0].held, 1u);

  ASSERT_TRUE((*sender)->Send("lent", {frame->handle}, "pts=1", 0, 0, SendMode::kShare).ok());
  counts = (*sender)->QueryRefs({frame->handle});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].references, 2u) << "the sender's and the channel's";
  EXPECT_EQ((*counts)[0].held, 1u) << "the sender kept its reference";

  auto message = (*receiver)->Receive("lent");
  ASSERT_TRUE(message.ok()) << message.status();
  ASSERT_EQ(message->buffers.size(), 1u);
  EXPECT_EQ((*receiver)->Pointer(message->buffers[0].offset_bytes)[8191], 0x17);
  counts = (*receiver)->QueryRefs({frame->handle});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].references, 2u);
  EXPECT_EQ((*counts)[0].held, 1u);

  ASSERT_TRUE((*receiver)->ReleaseRef(frame->handle).ok());
  counts = (*sender)->QueryRefs({frame->handle, 12345});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].references, 1u) << "only the sender holds it again: reusable";
  EXPECT_EQ((*counts)[1].references, 0u) << "a handle that was never issued";
  ASSERT_TRUE((*sender)->ReleaseRef(frame->handle).ok());
  counts = (*sender)->QueryRefs({frame->handle});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].references, 0u) << "freed";
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);

  auto empty = (*sender)->QueryRefs({});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("query of 0 handles; from 1 to 1024"), std::string::npos)
      << empty.status();
  auto many = (*sender)->QueryRefs(std::vector<uint64_t>(1025, 1));
  EXPECT_EQ(many.status().code(), absl::StatusCode::kInvalidArgument) << many.status();
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ChannelTest, AParkedSendHoldsItsReferencesUntilItGoesInOrTimesOut) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  auto consumer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto refs = (*producer)->AllocateRefs(4096, 4);
  ASSERT_TRUE(refs.ok());
  for (int i = 0; i < 4; ++i) std::memset((*producer)->Pointer((*refs)[i].offset_bytes), 0x30 + i, 4096);
  uint64_t first = (*refs)[0].handle, shared = (*refs)[1].handle;
  ASSERT_TRUE((*producer)->Send("q", {first}, "first", 0, /*capacity=*/1).ok());

  // A sharing send parks; the sender then drops its own reference.
  auto parked = std::async(std::launch::async, [&] {
    return (*producer)->Send("q", {shared}, "shared", 5000, 0, SendMode::kShare);
  });
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 1; }));
  auto counts = (*consumer)->QueryRefs({shared});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].references, 2u) << "the sender's and the parked send's own";
  ASSERT_TRUE((*producer)->ReleaseRef(shared).ok());
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 4u) << "the parked send still holds it";
  auto got = (*consumer)->Receive("q");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->metadata, "first");
  ASSERT_TRUE(parked.get().ok()) << "room came: the parked send went in";
  got = (*consumer)->Receive("q");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->metadata, "shared");
  EXPECT_EQ((*consumer)->Pointer(got->buffers[0].offset_bytes)[4095], 0x31) << "bytes intact";
  ASSERT_TRUE((*consumer)->ReleaseRef(shared).ok());
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 3u) << "freed with its last reference";

  // Timeouts undo what parking took.
  uint64_t moved = (*refs)[2].handle, lent = (*refs)[3].handle;
  ASSERT_TRUE((*producer)->Send("q", {}, "fill").ok());
  absl::Status timed_out = (*producer)->Send("q", {moved}, "", 100);
  EXPECT_EQ(timed_out.code(), absl::StatusCode::kResourceExhausted) << timed_out;
  EXPECT_NE(timed_out.message().find("stayed full (1 messages) until the send's timeout"),
            std::string::npos)
      << timed_out;
  timed_out = (*producer)->Send("q", {lent}, "", 100, 0, SendMode::kShare);
  EXPECT_EQ(timed_out.code(), absl::StatusCode::kResourceExhausted) << timed_out;
  counts = (*producer)->QueryRefs({moved, lent});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[0].held, 1u) << "a moved send's reference came back to the sender";
  EXPECT_EQ((*counts)[0].references, 1u);
  EXPECT_EQ((*counts)[1].references, 1u) << "a sharing send dropped its own";
  EXPECT_EQ(daemon.ChannelStats("q").waiting_senders(), 0u);
  ASSERT_TRUE((*producer)->ReleaseRef(moved).ok());
  ASSERT_TRUE((*producer)->ReleaseRef(lent).ok());

  // A sender that dies while its send is parked leaves nothing behind.
  Subprocess stuck({TestClientBinary(), "post", "q", "1", "8192", "9"}, daemon.ClientEnv());
  ASSERT_EQ(stuck.ReadLine(), "posted");
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 1; }));
  stuck.Kill(SIGKILL);
  stuck.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 1u; }))
      << "only the consumer's first buffer is left; " << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.ChannelStats("q").waiting_senders(), 0u);
  EXPECT_EQ(daemon.ChannelStats("q").depth(), 1u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Posted sends, on a lane and on the stream alone.
class PostTest : public ::testing::TestWithParam<bool> {};

TEST_P(PostTest, PostedSendsAreAnsweredLaterAndTheirFailuresShowAtTheNextSend) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address(), .lane = GetParam()});
  auto consumer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto refs = (*producer)->AllocateRefs(4096, 3);
  ASSERT_TRUE(refs.ok());
  std::memset((*producer)->Pointer((*refs)[0].offset_bytes), 0x5a, 4096);

  // In order with the sends around it; a moved reference is gone once collected.
  ASSERT_TRUE((*producer)->Post("p", {(*refs)[0].handle}, "one", 0, /*capacity=*/2).ok());
  ASSERT_TRUE((*producer)->Send("p", {}, "two").ok()) << "collects the post first";
  EXPECT_FALSE((*producer)->ReleaseRef((*refs)[0].handle).ok()) << "the reference moved";
  auto one = (*consumer)->Receive("p");
  auto two = (*consumer)->Receive("p");
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->metadata, "one");
  EXPECT_EQ((*consumer)->Pointer(one->buffers[0].offset_bytes)[4095], 0x5a);
  EXPECT_EQ(two->metadata, "two");
  ASSERT_TRUE((*consumer)->ReleaseRef(one->buffers[0].handle).ok());
  EXPECT_TRUE((*producer)->CollectPosted().ok()) << "nothing outstanding";

  // A bad posted send fails at the next Post, naming the channel and the
  // handle; the next send is not posted.
  ASSERT_TRUE((*producer)->Post("p", {12345}, "bad").ok());
  absl::Status next = (*producer)->Post("p", {}, "not posted");
  EXPECT_EQ(next.code(), absl::StatusCode::kNotFound) << next;
  EXPECT_NE(next.message().find("posted send to channel 'p' failed"), std::string::npos) << next;
  EXPECT_NE(next.message().find("never issued"), std::string::npos) << next;
  EXPECT_TRUE((*producer)->CollectPosted().ok()) << "the failure was reported once";
  EXPECT_EQ(daemon.ChannelStats("p").depth(), 0u);

  // One that times out on a full channel reports it at CollectPosted, and its
  // reference is the sender's again.
  ASSERT_TRUE((*producer)->Send("p", {}, "fill").ok());
  ASSERT_TRUE((*producer)->Send("p", {}, "fill").ok());
  ASSERT_TRUE((*producer)->Post("p", {(*refs)[1].handle}, "late", 100).ok());
  absl::Status late = (*producer)->CollectPosted();
  EXPECT_EQ(late.code(), absl::StatusCode::kResourceExhausted) << late;
  EXPECT_NE(late.message().find("stayed full"), std::string::npos) << late;
  EXPECT_TRUE((*producer)->ReleaseRef((*refs)[1].handle).ok()) << "still the sender's";

  // Collecting waits while the posted send is parked; room wakes it.
  ASSERT_TRUE((*producer)->Post("p", {(*refs)[2].handle}, "waited", 10000).ok());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("p").waiting_senders() == 1; }));
  Subprocess drain({TestClientBinary(), "receive", "p", "1"}, daemon.ClientEnv());
  ASSERT_EQ(drain.ReadLine(), "received");
  EXPECT_TRUE((*producer)->CollectPosted().ok());
  EXPECT_EQ(daemon.ChannelStats("p").depth(), 2u) << "one fill and the waited message";
  EXPECT_EQ(daemon.CheckPools(), "");
}

INSTANTIATE_TEST_SUITE_P(Transports, PostTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Lane") : std::string("StreamOnly");
                         });

TEST(ChannelTest, DeferredReleasesRideOnTheNextRequestOrGoWithinATick) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto a = (*client)->AllocateRef(4096, false);
  auto b = (*client)->AllocateRef(4096, false);
  ASSERT_TRUE(a.ok() && b.ok());
  (*client)->ReleaseRefsLater({a->handle, 12345});  // a handle not held is ignored
  auto c = (*client)->AllocateRef(64, false);  // carries a's release
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u) << "b and c";
  EXPECT_FALSE((*client)->ReleaseRef(a->handle).ok()) << "already released";
  (*client)->ReleaseRefsLater({b->handle, c->handle});
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }, std::chrono::seconds(2)))
      << "an idle client's deferred releases go by themselves";
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ChannelTest, MetadataOnlyMessagesCarryNoBuffers) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send("eos", {}, "end of stream").ok());
  auto message = (*client)->Receive("eos");
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_TRUE(message->buffers.empty());
  EXPECT_EQ(message->metadata, "end of stream");
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
}

// Issue 24, defect 9: metadata past a session message (64 KiB) went to the
// daemon, which ended the stream: UNAVAILABLE "session stream closed", a
// reconnect, and concurrent calls failing meanwhile. libmemd now refuses it
// before sending, with the daemon's own message, and the session goes on.
TEST(ChannelTest, OversizedMetadataIsRefusedBeforeSendingAndTheSessionGoesOn) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  for (bool lane : {true, false}) {
    auto client = Client::Connect({.address = daemon.address(), .lane = lane});
    ASSERT_TRUE(client.ok()) << client.status();
    const uint64_t session = (*client)->session_id();
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0};
    std::thread bystander([&] {  // concurrent calls on the same session
      while (!stop) {
        auto ref = (*client)->AllocateRef(64, false);
        if (!ref.ok() || !(*client)->ReleaseRef(ref->handle).ok()) ++failed;
      }
    });
    for (size_t bytes : {size_t{70'000}, size_t{1} << 20, size_t{5} << 20}) {
      std::string metadata(bytes, 'm');
      absl::Status sent = (*client)->Send("big", {}, metadata);
      EXPECT_EQ(sent.code(), absl::StatusCode::kInvalidArgument) << sent;
      EXPECT_NE(sent.message().find(std::to_string(bytes) + " bytes of metadata; the limit is 4096"),
                std::string::npos) << sent;
      absl::Status posted = (*client)->Post("big", {}, metadata);
      EXPECT_EQ(posted.code(), absl::StatusCode::kInvalidArgument) << posted;
      EXPECT_TRUE((*client)->CollectPosted().ok()) << "nothing was posted";
    }
    stop = true;
    bystander.join();
    EXPECT_EQ(failed, 0) << "lane " << lane;
    EXPECT_EQ((*client)->reconnects(), 0u) << "lane " << lane;
    EXPECT_EQ((*client)->session_id(), session);
    EXPECT_TRUE((*client)->Send("big", {}, std::string(4096, 'm')).ok()) << "the limit itself fits";
    EXPECT_EQ(daemon.ChannelStats("big").depth(), 1u);
    EXPECT_TRUE((*client)->Receive("big").ok());
  }
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ChannelTest, BadInputIsRefusedAndChangesNothing) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  auto other = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok() && other.ok());
  auto mine = (*client)->AllocateRef(64, false);
  auto theirs = (*other)->AllocateRef(64, false);
  ASSERT_TRUE(mine.ok() && theirs.ok());
  struct Case {
    absl::Status status;
    absl::StatusCode code;
    std::string text;
  };
  std::vector<Case> cases = {
      {(*client)->Send("bad name!", {mine->handle}), absl::StatusCode::kInvalidArgument, "contains ' '"},
      {(*client)->Send("c", {theirs->handle}), absl::StatusCode::kFailedPrecondition,
       "holds no reference"},
      {(*client)->Send("c", {mine->handle, 12345}), absl::StatusCode::kNotFound, "never issued"},
      {(*client)->Send("c", {mine->handle}, std::string(4097, 'x')),
       absl::StatusCode::kInvalidArgument, "4097 bytes of metadata; the limit is 4096"},
      {(*client)->Send("c", std::vector<uint64_t>(65, mine->handle)),
       absl::StatusCode::kInvalidArgument, "65 handles; the limit is 64"},
      {(*client)->Send("c", {mine->handle, mine->handle}, "", 0, 0, SendMode::kShare),
       absl::StatusCode::kFailedPrecondition, "moves 2 references to handle"},
      {(*client)->Send("c", {mine->handle}, "", 0, 5000), absl::StatusCode::kInvalidArgument,
       "capacity 5000 is above the limit 4096"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.status;
    EXPECT_NE(c.status.message().find(c.text), std::string::npos) << c.status;
  }
  EXPECT_EQ(daemon.ChannelStats("c").depth(), 0u) << "nothing was sent";
  EXPECT_TRUE((*client)->ReleaseRef(mine->handle).ok()) << "still held";
  EXPECT_TRUE((*other)->ReleaseRef(theirs->handle).ok());
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing

namespace memd::testing {
namespace {

TEST(ChannelCApiTest, SendAndReceiveThroughTheCApi) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ASSERT_EQ(memd_init(daemon.address().c_str(), "default"), 0) << memd_last_error();
  auto* a = static_cast<char*>(memd_malloc(1000));
  char* b = memd_strdup("second plane");
  ASSERT_TRUE(a != nullptr && b != nullptr);
  std::memset(a, 'x', 1000);
  void* planes[2] = {a, b};
  ASSERT_EQ(memd_channel_send("c", planes, 2, "meta", 4, 0), 0) << memd_last_error();
  EXPECT_EQ(memd_handle(a), 0u) << "the reference moved: no longer this process's";
  EXPECT_EQ(memd_channel_send("c", planes, 1, nullptr, 0, 0), -EINVAL) << "a moved pointer";

  void* got[1] = {nullptr};
  size_t sizes[1] = {0}, count = 0, meta_size = 0;
  char meta[16] = {};
  EXPECT_EQ(memd_channel_receive("c", got, sizes, 1, &count, meta, sizeof(meta), &meta_size, 0),
            -ENOSPC)
      << "two buffers do not fit in one slot";
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(sizes[0], 1000u);
  EXPECT_EQ(static_cast<char*>(got[0])[999], 'x');
  EXPECT_EQ(std::string(meta, meta_size), "meta");
  memd_free(got[0]);
  EXPECT_EQ(memd_channel_receive("c", got, sizes, 1, &count, nullptr, 0, nullptr, 50), -ETIMEDOUT);
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; }))
      << daemon.PoolStats().DebugString();
  memd_uninit();
}

TEST(ChannelCApiTest, PostAndCollectThroughTheCApi) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ASSERT_EQ(memd_init(daemon.address().c_str(), "default"), 0) << memd_last_error();
  auto* a = static_cast<char*>(memd_malloc(512));
  auto* b = static_cast<char*>(memd_malloc(512));
  ASSERT_TRUE(a != nullptr && b != nullptr);
  std::memset(a, 'p', 512);
  void* first[1] = {a};
  ASSERT_EQ(memd_channel_post("cp", first, 1, "m1", 2, 0), 0) << memd_last_error();
  EXPECT_EQ(memd_channel_collect(), 0) << memd_last_error();
  EXPECT_EQ(memd_handle(a), 0u) << "collected and sent: no longer this process's";
  void* bogus[1] = {a + 1};
  EXPECT_EQ(memd_channel_post("cp", bogus, 1, nullptr, 0, 0), -EINVAL) << "not a memd pointer";
  EXPECT_NE(std::string(memd_last_error()).find("memd_channel_post"), std::string::npos);

  // Capacity 16 by default: fill it, then a post that times out.
  for (int i = 0; i < 15; ++i) ASSERT_EQ(memd_channel_send("cp", nullptr, 0, "f", 1, 0), 0);
  void* second[1] = {b};
  ASSERT_EQ(memd_channel_post("cp", second, 1, nullptr, 0, 50), 0) << memd_last_error();
  EXPECT_EQ(memd_channel_collect(), -EAGAIN);
  EXPECT_NE(std::string(memd_last_error()).find("posted send to channel 'cp' failed"),
            std::string::npos)
      << memd_last_error();
  EXPECT_NE(memd_handle(b), 0u) << "a failed send leaves the pointer this process's";
  memd_free(b);

  void* got[1] = {nullptr};
  size_t count = 0;
  ASSERT_EQ(memd_channel_receive("cp", got, nullptr, 1, &count, nullptr, 0, nullptr, 0), 0);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(static_cast<char*>(got[0])[511], 'p');
  memd_free(got[0]);
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
  memd_uninit();
}

}  // namespace
}  // namespace memd::testing
