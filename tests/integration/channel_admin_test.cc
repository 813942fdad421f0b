// Operators clear channels (issue 24): `memctl channel drain POOL/CHANNEL`
// releases the backlog a killed consumer left (saying how many messages and
// bytes), `memctl channel delete` removes an idle channel now. Both are admin
// only, refuse what they cannot do naming why, and are logged. Real daemon,
// real writer processes killed, the real memctl.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/shared/size.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

constexpr int kNotAnAdmin = 52001;  // a local user who is not an admin

bool Listed(const DaemonEnv& daemon, const std::string& channel) {
  const v1::PoolStats stats = daemon.PoolStats();  // the loop reads it: not a temporary
  for (const v1::ChannelStats& c : stats.channels()) {
    if (c.name() == channel) return true;
  }
  return false;
}

TEST(ChannelAdminTest, AKilledConsumersBacklogIsDrainedAndTheChannelDeleted) {
  DaemonEnv daemon({.pools = {"default=64MiB"}, .extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  // The writer queues 16 frames of 1 MiB for a consumer that never comes,
  // and is killed: its frames stay deliverable, and stay.
  {
    Subprocess writer({TestClientBinary(), "send", "frames", "16", std::to_string(1 << 20), "7"},
                      daemon.ClientEnv());
    ASSERT_EQ(writer.ReadLine(), "sent");
    writer.Kill(SIGKILL);
    writer.Wait();
  }
  ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().sessions() == 0; }));
  EXPECT_EQ(daemon.ChannelStats("frames").depth(), 16u);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 16u);

  if (::geteuid() == 0) {
    auto [code, out] = RunMemctl(daemon, {"channel", "drain", "default/frames"}, kNotAnAdmin);
    EXPECT_EQ(code, 1) << out;
    EXPECT_TRUE(Has(out, "channel drain is allowed only to")) << out;
    std::tie(code, out) = RunMemctl(daemon, {"channel", "delete", "default/frames"}, kNotAnAdmin);
    EXPECT_EQ(code, 1) << out;
    EXPECT_TRUE(Has(out, "channel delete is allowed only to")) << out;
    EXPECT_EQ(daemon.ChannelStats("frames").depth(), 16u) << "a refusal changes nothing";
  }
  auto [code, out] = RunMemctl(daemon, {"channel", "delete", "default/frames"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "channel 'frames' of pool 'default' is not idle: 16 messages queued"))
      << out;
  EXPECT_EQ(daemon.ChannelStats("frames").depth(), 16u);

  std::tie(code, out) = RunMemctl(daemon, {"channel", "drain", "default/frames"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, absl::StrFormat("channel default/frames drained: 16 messages (16 "
                                       "references, %s) released", FormatSize(16 << 20))))
      << out;
  v1::ChannelStats drained = daemon.ChannelStats("frames");
  EXPECT_EQ(drained.depth(), 0u);
  EXPECT_EQ(drained.drained(), 16u);
  EXPECT_EQ(drained.received(), 0u) << "nobody received them";
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u) << "nobody else held them: freed";
  EXPECT_EQ(daemon.PoolStats().used_bytes(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");

  std::tie(code, out) = RunMemctl(daemon, {"channel", "delete", "default/frames"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "channel default/frames deleted")) << out;
  EXPECT_FALSE(Listed(daemon, "frames"));
  std::tie(code, out) = RunMemctl(daemon, {"channel", "drain", "default/frames"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "pool 'default' has no channel 'frames'")) << out;

  // Bad names: the daemon's refusal, or memctl's own.
  std::tie(code, out) = RunMemctl(daemon, {"channel", "drain", "nopool/frames"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "no pool named 'nopool'")) << out;
  std::tie(code, out) = RunMemctl(daemon, {"channel", "delete", "default/bad name"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "bad name")) << out;
  std::tie(code, out) = RunMemctl(daemon, {"channel", "drain", "frames"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "'frames' is not POOL/CHANNEL")) << out;

  int exit_code = 0;
  std::string log = daemon.StopAndReadOutput(SIGTERM, &exit_code);
  EXPECT_TRUE(Has(log, "channel 'frames' of pool 'default' drained by an operator")) << log;
  EXPECT_TRUE(Has(log, "16 messages, 16 references, 16777216 bytes released")) << log;
  EXPECT_TRUE(Has(log, "channel 'frames' of pool 'default' deleted by an operator")) << log;
}

// A drain makes room: a send that waited for it goes in; a buffer a message
// shares with its sender stays (the sender still holds it).
TEST(ChannelAdminTest, ADrainLetsAWaitingSendInAndKeepsBuffersOthersHold) {
  DaemonEnv daemon({.pools = {"default=8MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok()) << producer.status();
  absl::StatusOr<Buffer> kept = (*producer)->Allocate(4096);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(
      (*producer)->Send("q", {kept->handle()}, "", 0, /*capacity=*/1, SendMode::kShare).ok());
  Subprocess waiting({TestClientBinary(), "send", "q", "1", "100", "7"}, daemon.ClientEnv());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 1; }));

  auto [code, out] = RunMemctl(daemon, {"channel", "drain", "default/q"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, absl::StrFormat("1 messages (1 references, %s)", FormatSize(4096))))
      << out;
  EXPECT_EQ(waiting.ReadLine(), "sent") << "the waiting send went into the room";
  v1::ChannelStats q = daemon.ChannelStats("q");
  EXPECT_EQ(q.depth(), 1u);
  EXPECT_EQ(q.waiting_senders(), 0u);
  EXPECT_EQ(q.drained(), 1u);
  // The producer's own reference stands: its buffer is still live.
  absl::StatusOr<Buffer> again = (*producer)->Retain(kept->handle());
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(daemon.CheckPools(), "");
  waiting.CloseStdin();
  waiting.Wait();
}

}  // namespace
}  // namespace memd::testing
