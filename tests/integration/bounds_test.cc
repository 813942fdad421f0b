// Everything a client can make the daemon hold is bounded and counted against
// the client's quotas (issue 13, cases 7, 8, 9 and 14): each test is the
// attack at a scale that shows it, the bound that stops it, and the daemon's
// holdings coming back once the attacker is gone.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <tuple>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "raw_session.h"
#include "subprocess.h"
#include "memd/v1/admin.grpc.pb.h"
#include "memd/v1/memory.grpc.pb.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

std::pair<int, std::string> Flood(const DaemonEnv& daemon, const std::string& prefix, int count,
                                  int size, int metadata, int per_channel) {
  return RunCommand({TestClientBinary(), "flood", prefix, std::to_string(count),
                     std::to_string(size), std::to_string(metadata), std::to_string(per_channel)},
                    daemon.ClientEnv());
}

uint64_t ChannelCount(const DaemonEnv& daemon) { return daemon.PoolStats().channels_total(); }

uint64_t QueuedMessages(const DaemonEnv& daemon) {
  uint64_t depth = 0;
  v1::PoolStats stats = daemon.PoolStats();
  for (const v1::ChannelStats& c : stats.channels()) depth += c.depth();
  return depth;
}

// Sanitizers keep freed memory in quarantine, so RSS shows little there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssShowsLeaks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kRssShowsLeaks = false;
#else
constexpr bool kRssShowsLeaks = true;
#endif
#else
constexpr bool kRssShowsLeaks = true;
#endif

// The daemon's resident memory (VmRSS, KiB).
uint64_t RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// Case 7: 1 MiB buffers sent into fresh channels 40 times used to leave 40 MiB
// held past session-bytes=1MiB,uid-bytes=2MiB once the client left.
TEST(BoundsTest, BuffersInChannelsCountAgainstTheSendersUidQuota) {
  DaemonEnv daemon({.pools = {"default=64MiB,session-bytes=1MiB,uid-bytes=2MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = Flood(daemon, "fresh", 40, 1 << 20, 0, 1);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "refused 2 RESOURCE_EXHAUSTED")) << out;
  EXPECT_TRUE(Has(out, "would exceed the per-uid quota of 2.0 MiB (2097152 bytes) for uid "))
      << out;
  EXPECT_TRUE(Has(out, "its sessions and channel messages hold 2.0 MiB")) << out;
  ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().sessions() == 0; }));
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 2u << 20) << "the uid's quota, not 40 MiB";
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u);

  // What the attacker left is deliverable, and then it is the receiver's.
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(receiver.ok());
  for (const char* name : {"fresh0", "fresh1"}) {
    auto message = (*receiver)->Receive(name);
    ASSERT_TRUE(message.ok()) << message.status();
    ASSERT_TRUE((*receiver)->ReleaseRef(message->buffers[0].handle).ok());
  }
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Case 8: 60,000 receives without waiting on distinct names used to leave
// 60,000 channels (+143 MiB); channels were never removed.
TEST(BoundsTest, FailedReceivesCreateNothingChannelsAreBoundedAndIdleOnesGo) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  uint64_t rss_before = RssKib(daemon.pid());
  auto [code, out] = RunCommand({TestClientBinary(), "receive-none", "r", "60000"},
                                daemon.ClientEnv());
  EXPECT_EQ(out, "empty 60000\n");
  EXPECT_EQ(ChannelCount(daemon), 0u) << "a failed receive creates no channel";
  if (kRssShowsLeaks) {
    EXPECT_LT(RssKib(daemon.pid()), rss_before + 64 * 1024) << "KiB (it grew 80 MiB before)";
  }

  // Per session: the 257th channel is refused, and creates nothing.
  std::tie(code, out) = Flood(daemon, "a", 300, 0, 1, 1);
  EXPECT_TRUE(Has(out, "refused 256 RESOURCE_EXHAUSTED creating channel 'a256' in pool "
                       "'default' would exceed the limit of 256 channels per session"))
      << out;
  // Per uid: three more sessions of the uid make 1,024; a fifth gets none.
  for (const char* prefix : {"b", "c", "d"}) {
    std::tie(code, out) = Flood(daemon, prefix, 256, 0, 1, 1);
    EXPECT_EQ(out, "sent 256\n");
  }
  std::tie(code, out) = Flood(daemon, "e", 1, 0, 1, 1);
  EXPECT_TRUE(Has(out, "refused 0 RESOURCE_EXHAUSTED creating channel 'e0' in pool 'default' "
                       "would exceed the limit of 1024 channels per uid"))
      << out;
  EXPECT_EQ(ChannelCount(daemon), 1024u);

  // Drained, the channels are idle, and idle channels go.
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(receiver.ok());
  for (const char* prefix : {"a", "b", "c", "d"}) {
    for (int i = 0; i < 256; ++i) {
      ASSERT_TRUE((*receiver)->Receive(prefix + std::to_string(i)).ok()) << prefix << i;
    }
  }
  EXPECT_TRUE(WaitFor([&] { return ChannelCount(daemon) == 0; }, std::chrono::seconds(30)))
      << ChannelCount(daemon) << " channels left";
  EXPECT_EQ(daemon.CheckPools(), "");
}

// Case 9: 32,768 metadata-only messages of 4 KiB used to stay queued after
// their sender left (+131 MiB).
TEST(BoundsTest, QueuedMetadataIsBoundedPerUid) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = Flood(daemon, "m", 32768, 0, 4096, 4096);
  // 963 messages of 4096 + 256 bytes fit in 4 MiB.
  EXPECT_TRUE(Has(out, "refused 963 RESOURCE_EXHAUSTED send to channel 'm0' of 4.2 KiB (4352 "
                       "bytes) in pool 'default' would exceed the limit of 4.0 MiB (4194304 "
                       "bytes) of queued channel messages per uid"))
      << out;
  EXPECT_EQ(QueuedMessages(daemon), 963u) << "after the sender left";
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(receiver.ok());
  for (int i = 0; i < 963; ++i) ASSERT_TRUE((*receiver)->Receive("m0").ok()) << i;
  std::tie(code, out) = Flood(daemon, "m", 10, 0, 4096, 4096);
  EXPECT_EQ(out, "sent 10\n") << "received messages no longer count";
}

TEST(BoundsTest, QueuedMetadataIsBoundedForTheDaemon) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids";
  DaemonEnv daemon({.pools = {"default=64MiB,mode=0666"}, .extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  std::string refusals;
  for (int uid = 53001; uid <= 53010; ++uid) {
    std::string prefix = "u" + std::to_string(uid) + "-";
    auto [code, out] = RunCommand(
        AsUid(uid, {TestClientBinary(), "flood", prefix, "2000", "0", "4096", "4096"}),
        daemon.ClientEnv());
    refusals += out;
  }
  EXPECT_TRUE(Has(refusals, "would exceed the daemon's limit of 32.0 MiB (33554432 bytes) of "
                            "queued channel messages"))
      << refusals;
  uint64_t queued = QueuedMessages(daemon);
  EXPECT_LE(queued, (32u << 20) / 4352) << "messages of 4096 + 256 bytes in 32 MiB";
  EXPECT_GE(queued, 8u * 963) << "eight uids filled their own 4 MiB first";
  // A receiver drains them; the channels go.
  auto receiver = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(receiver.ok());
  v1::PoolStats left = daemon.PoolStats();
  for (const v1::ChannelStats& c : left.channels()) {
    for (uint64_t i = 0; i < c.depth(); ++i) ASSERT_TRUE((*receiver)->Receive(c.name()).ok());
  }
  EXPECT_TRUE(WaitFor([&] { return ChannelCount(daemon) == 0; }, std::chrono::seconds(30)));
}

// Case 14: one session used to park 100,000 receives.
TEST(BoundsTest, ParkedRequestsPerSessionAreBounded) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto channel = grpc::CreateChannel("unix:" + daemon.socket_path(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Memory::NewStub(channel);
  grpc::ClientContext context;
  // Without the bound nothing is ever answered: fail after a minute, not hang.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
  auto stream = stub->Session(&context);
  v1::SessionRequest attach;
  attach.set_request_id(1);
  attach.mutable_attach()->set_pool("default");
  v1::SessionResponse response;
  ASSERT_TRUE(stream->Write(attach) && stream->Read(&response));
  ASSERT_EQ(response.status_code(), 0) << response.status_message();
  constexpr int kParked = 1024;  // LedgerLimits::session_parked
  for (int i = 0; i <= kParked; ++i) {
    v1::SessionRequest receive;
    receive.set_request_id(2 + i);
    receive.mutable_receive()->set_channel("parked");
    receive.mutable_receive()->set_timeout_ms(600000);
    ASSERT_TRUE(stream->Write(receive));
  }
  ASSERT_TRUE(stream->Read(&response)) << "the one over the limit is answered at once";
  EXPECT_EQ(response.request_id(), 2u + kParked);
  EXPECT_EQ(response.status_code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_TRUE(Has(response.status_message(),
                  "waiting on channel 'parked' in pool 'default' would exceed the limit of 1024 "
                  "parked sends and receives per session: session "))
      << response.status_message();
  EXPECT_EQ(daemon.ChannelStats("parked").waiting_receivers(), static_cast<uint64_t>(kParked));

  context.TryCancel();  // the client goes: its parked receives go with it
  EXPECT_TRUE(WaitFor([&] { return daemon.ChannelStats("parked").waiting_receivers() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return ChannelCount(daemon) == 0; }, std::chrono::seconds(30)))
      << "the idle channel goes";
}

// Allocates `count` 64-byte buffers on `raw` in batches; the status of the
// first batch refused (0: all granted) and its message.
std::pair<int, std::string> AllocateMany(RawSession& raw, uint64_t count) {
  while (count > 0) {
    v1::SessionRequest r;
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, 1024));
    r.mutable_allocate_batch()->set_size_bytes(64);
    r.mutable_allocate_batch()->set_count(n);
    v1::SessionResponse answer = raw.Call(r);
    if (answer.status_code() != 0) return {answer.status_code(), answer.status_message()};
    count -= n;
  }
  return {0, ""};
}

// Issue 24, defect 2: without a quota in the configuration, one client made
// 50,000 handles (10.5 MB of state files, +9 MB of daemon). Handles are
// bounded by default: 65,536 per session, 131,072 per uid (pool_config.h).
TEST(BoundsTest, HandlesPerSessionAndPerUidAreBoundedByDefault) {
  DaemonEnv daemon({.pools = {"default=32MiB"}});  // no quota configured
  ASSERT_TRUE(daemon.ok());
  RawSession first(daemon.address()), second(daemon.address()), third(daemon.address());
  for (RawSession* raw : {&first, &second, &third}) {
    ASSERT_EQ(raw->Attach("default").status_code(), 0);
  }
  ASSERT_EQ(AllocateMany(first, 65536).first, 0);
  auto [code, message] = AllocateMany(first, 1);
  EXPECT_EQ(code, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) << message;
  EXPECT_TRUE(Has(message, "would exceed the per-session quota of 65536 buffers")) << message;
  ASSERT_EQ(AllocateMany(second, 65536).first, 0) << "another session of the uid";
  std::tie(code, message) = AllocateMany(third, 1);
  EXPECT_EQ(code, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) << message;
  EXPECT_TRUE(Has(message, "would exceed the per-uid quota of 131072 buffers for uid")) << message;
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 131072u) << "the refusals changed nothing";
  first.Finish();
  EXPECT_EQ(AllocateMany(third, 1).first, 0) << "room again once a session went";
}

// Issue 24, defect 3: one uid attached 2,028 sessions over one connection
// (daemon 22 -> 61 MB) with no error naming a limit. Sessions per uid are
// bounded (--max-sessions-per-uid, default 1024); the one over the limit
// stays unattached, can try again, and nothing else changes.
TEST(BoundsTest, AttachedSessionsPerUidAreBounded) {
  DaemonEnv daemon({.extra_args = {"--max-sessions-per-uid", "4"}});
  ASSERT_TRUE(daemon.ok());
  std::vector<std::unique_ptr<RawSession>> sessions;
  for (int i = 0; i < 4; ++i) {
    sessions.push_back(std::make_unique<RawSession>(daemon.address()));
    ASSERT_EQ(sessions.back()->Attach("default").status_code(), 0) << i;
  }
  RawSession over(daemon.address());
  v1::SessionResponse refused = over.Attach("default");
  EXPECT_EQ(refused.status_code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(refused.status_message(),
            absl::StrFormat("uid %u has 4 attached sessions; the limit is 4 per uid "
                            "(--max-sessions-per-uid): end one, or share one session among the "
                            "threads of a process", ::getuid()));
  EXPECT_EQ(daemon.PoolStats().sessions(), 4u);
  EXPECT_NE(over.Allocate(64).status_code(), 0) << "an unattached session allocates nothing";
  sessions.pop_back();  // one ends
  ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().sessions() == 3; }));
  v1::SessionResponse again = over.Attach("default");
  EXPECT_EQ(again.status_code(), 0) << again.status_message();
  EXPECT_EQ(over.Allocate(64).status_code(), 0);
  EXPECT_EQ(daemon.CheckPools(), "");

  // The default bounds them too.
  auto [code, out] = RunCommand({MemdBinary(), "--check-config"}, {});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "max_sessions_per_uid = 1024")) << out;
}

}  // namespace
}  // namespace memd::testing
