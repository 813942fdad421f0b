// Channel drops: a frame that never goes into a full channel and that its
// sender cannot send again (refused at once, or its sender killed while it
// waited) is counted per channel, in GetStats, `memctl stats` and
// memd_channel_dropped_total; a send refused for another reason is not, and
// neither is a wait that ended at its timeout (issue 27: memdsink's 100 ms
// waits, sent again until they went in, were counted as drops and fired
// MemdChannelDropping): those count as send_timeouts.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "daemon_env.h"
#include "memd/client.h"
#include "net.h"

namespace memd::testing {
namespace {

TEST(ChannelDropsTest, FramesAFullChannelRefusesAreDroppedAndTimedOutWaitsAreNot) {
  int port = FreePort();
  DaemonEnv daemon({.pools = {"default=8MiB"},
                    .extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(daemon.ok());
  auto producer = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(producer.ok());
  auto refs = (*producer)->AllocateRefs(64, 3);
  ASSERT_TRUE(refs.ok());
  ASSERT_TRUE((*producer)->Send("q", {(*refs)[0].handle}, "", 0, /*capacity=*/1).ok());

  // A leaky sender: no timeout, the channel is full.
  absl::Status full = (*producer)->Send("q", {(*refs)[1].handle});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(daemon.ChannelStats("q").dropped(), 1u);
  // A bad send to the full channel is refused as bad, not dropped.
  absl::Status bad = (*producer)->Send("q", {(*refs)[0].handle});
  EXPECT_NE(bad.code(), absl::StatusCode::kResourceExhausted) << bad;
  EXPECT_EQ(daemon.ChannelStats("q").dropped(), 1u);
  // A sender that waited for room until its timeout, twice (as memdsink does
  // in slices): waits that timed out, not drops.
  for (int i = 0; i < 2; ++i) {
    absl::Status late = (*producer)->Send("q", {(*refs)[1].handle}, "", 50);
    EXPECT_EQ(late.code(), absl::StatusCode::kResourceExhausted) << late;
  }
  EXPECT_EQ(daemon.ChannelStats("q").dropped(), 1u);
  EXPECT_EQ(daemon.ChannelStats("q").send_timeouts(), 2u);
  EXPECT_EQ(daemon.ChannelStats("q").send_waits(), 2u);
  // A sender killed while it waited: its session ends, its send is dropped.
  Subprocess waiting({TestClientBinary(), "send", "q", "1", "100", "7"}, daemon.ClientEnv());
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 1; }));
  waiting.Kill(SIGKILL);
  waiting.Wait();
  ASSERT_TRUE(WaitFor([&] { return daemon.ChannelStats("q").waiting_senders() == 0; }));
  v1::ChannelStats stats = daemon.ChannelStats("q");
  EXPECT_EQ(stats.dropped(), 2u);
  EXPECT_EQ(stats.send_timeouts(), 2u);
  EXPECT_EQ(stats.sent(), 1u) << "nothing dropped went in";
  EXPECT_EQ(stats.depth(), 1u);
  EXPECT_EQ(daemon.CheckPools(), "");

  auto [code, out] =
      RunCommand({MemctlBinary(), "--address", daemon.address(), "-o", "json", "stats"});
  ASSERT_EQ(code, 0) << out;
  nlohmann::json doc = nlohmann::json::parse(out);
  EXPECT_EQ(doc["pools"][0]["channels"][0]["dropped"], 2) << out;
  EXPECT_EQ(doc["pools"][0]["channels"][0]["send_timeouts"], 2) << out;
  auto [tcode, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats"});
  EXPECT_NE(table.find("SENDS THAT WAITED"), std::string::npos) << table;
  EXPECT_NE(table.find("SENDS DROPPED"), std::string::npos) << table;
  std::optional<std::string> body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body);
  EXPECT_NE(body->find("\nmemd_channel_dropped_total{pool=\"default\",channel=\"q\"} 2\n"),
            std::string::npos)
      << *body;
  EXPECT_NE(
      body->find("\nmemd_channel_send_timeouts_total{pool=\"default\",channel=\"q\"} 2\n"),
      std::string::npos)
      << *body;
}

}  // namespace
}  // namespace memd::testing
