// Prometheus metrics: served on --metrics-listen, counting what happened,
// and valid for `promtool check metrics`.
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "net.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

// One 8 MiB pool, metrics on `port` of the loopback address.
DaemonOptions WithMetrics(int port) {
  return {.pools = {"default=8MiB"},
          .extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}};
}

TEST(MetricsTest, PoolsRpcsAndFailuresAreScrapedAndPassPromtool) {
  int port = FreePort();
  DaemonEnv daemon(WithMetrics(port));
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto a = (*client)->Allocate(1000);
  auto b = (*client)->Allocate(1000);
  auto c = (*client)->Allocate(1000);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_FALSE((*client)->Allocate(64 << 20).ok());  // larger than the pool
  EXPECT_FALSE((*client)->Retain(12345).ok());       // never issued
  daemon.Stats();                                    // one admin call

  std::optional<std::string> body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body) << "nothing served on 127.0.0.1:" << port;
  EXPECT_TRUE(Has(*body, "memd_pool_live_buffers{pool=\"default\"} 3")) << *body;
  EXPECT_TRUE(Has(*body, "memd_pool_size_bytes{pool=\"default\"} 8388608")) << *body;
  EXPECT_TRUE(Has(*body, "memd_pool_sessions{pool=\"default\"} 1")) << *body;
  EXPECT_TRUE(Has(*body, "memd_pool_allocs_total{pool=\"default\"} 3")) << *body;
  EXPECT_TRUE(Has(*body, "memd_pool_failed_allocs_total{pool=\"default\",reason=\"pool_size\"} 1"))
      << *body;
  EXPECT_TRUE(Has(*body, "memd_pool_failed_allocs_total{pool=\"default\",reason=\"no_space\"} 0"))
      << *body;
  EXPECT_TRUE(Has(*body, "memd_rpc_duration_seconds_count{method=\"allocate\"} 4")) << *body;
  EXPECT_GE(MetricValue(*body, "memd_rpc_duration_seconds_count{method=\"get_stats\"}"), 1) << *body;
  EXPECT_TRUE(Has(*body, "memd_rpc_errors_total{code=\"NOT_FOUND\",method=\"retain\"} 1")) << *body;
  EXPECT_TRUE(Has(*body, "memd_uptime_seconds ")) << *body;

  std::string file = "/tmp/memd-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(file) << *body;
  auto [code, out] = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + file + " 2>&1"});
  EXPECT_EQ(code, 0) << out;
  std::remove(file.c_str());
}

// process_* as Prometheus clients export them, the channels' depth and
// counters, lanes; method labels in one style (snake_case).
TEST(MetricsTest, ProcessChannelAndLaneMetricsAreScraped) {
  int port = FreePort();
  DaemonEnv daemon(WithMetrics(port));
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto a = (*client)->Allocate(1000);
  auto b = (*client)->Allocate(1000);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*client)->Send("raw", {a->Detach()}, "", 0, 4).ok());
  ASSERT_TRUE((*client)->Send("raw", {b->Detach()}, "", 0, 4).ok());
  ASSERT_TRUE((*client)->Receive("raw").ok());
  daemon.CheckPools();

  std::optional<std::string> body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body);
  EXPECT_EQ(MetricValue(*body, "memd_channel_depth{pool=\"default\",channel=\"raw\"}"), 1) << *body;
  EXPECT_EQ(MetricValue(*body, "memd_channel_capacity{pool=\"default\",channel=\"raw\"}"), 4) << *body;
  EXPECT_EQ(MetricValue(*body, "memd_channel_sent_total{pool=\"default\",channel=\"raw\"}"), 2) << *body;
  EXPECT_EQ(MetricValue(*body, "memd_channel_received_total{pool=\"default\",channel=\"raw\"}"), 1)
      << *body;
  EXPECT_EQ(MetricValue(*body, "memd_channels{pool=\"default\"}"), 1) << *body;
  EXPECT_EQ(MetricValue(*body, "memd_lanes"), 1) << "the client asked for a lane: " << *body;
  EXPECT_GT(MetricValue(*body, "memd_channel_queued_message_bytes"), 0) << *body;
  EXPECT_GE(MetricValue(*body, "memd_rpc_duration_seconds_count{method=\"check_pools\"}"), 1) << *body;
  EXPECT_GT(MetricValue(*body, "process_resident_memory_bytes"), 1 << 20) << *body;
  EXPECT_GT(MetricValue(*body, "process_open_fds"), 3) << *body;
  EXPECT_GT(MetricValue(*body, "process_max_fds"), MetricValue(*body, "process_open_fds")) << *body;
  EXPECT_GT(MetricValue(*body, "process_threads"), 1) << *body;
  EXPECT_GE(MetricValue(*body, "process_cpu_seconds_total"), 0) << *body;
  // Started within the last hour, by the wall clock.
  double start = MetricValue(*body, "process_start_time_seconds");
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(start, now - 3600) << *body;
  EXPECT_LE(start, now + 1) << *body;
  // One label style: no method label with a capital letter.
  EXPECT_FALSE(std::regex_search(*body, std::regex("method=\"[^\"]*[A-Z]"))) << *body;
}

// Every metric deploy/monitoring's dashboard and alert rules use is one memd
// serves (a renamed metric would leave a blank panel and a silent alert).
TEST(MetricsTest, TheDashboardAndAlertsUseOnlyMetricsMemdServes) {
  int port = FreePort();
  DaemonEnv daemon(WithMetrics(port));
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto a = (*client)->Allocate(1000);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*client)->Send("raw", {a->Detach()}).ok());
  EXPECT_FALSE((*client)->Allocate(64 << 20).ok());
  std::optional<std::string> body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body);
  std::set<std::string> served;
  const std::regex type_line("# TYPE ([a-z_]+) ");
  for (std::sregex_iterator it(body->begin(), body->end(), type_line), end; it != end; ++it) {
    served.insert((*it)[1]);
  }
  ASSERT_GT(served.size(), 20u) << *body;
  for (const char* file : {"deploy/monitoring/memd-dashboard.json",
                           "deploy/monitoring/memd-alerts.yaml"}) {
    std::ifstream in(std::string(MEMD_SOURCE_DIR) + "/" + file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(text.empty()) << file;
    const std::regex used("\\b((?:memd|process)_[a-z_]+)");
    size_t count = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), used), end; it != end; ++it, ++count) {
      std::string name = (*it)[1];
      std::string family = std::regex_replace(name, std::regex("_(bucket|sum|count)$"), "");
      EXPECT_TRUE(served.count(name) || served.count(family))
          << file << " uses " << name << ", which memd does not serve";
    }
    EXPECT_GT(count, 5u) << file;
  }
}

TEST(MetricsTest, AnUnusableMetricsAddressRefusesTheStart) {
  int port = FreePort();
  DaemonEnv holder({.extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(holder.ok());
  auto [code, out] = RunCommand({"/bin/sh", "-c",
                                 "exec \"$0\" \"$@\" 2>&1", MemdBinary(), "--listen",
                                 "unix:///tmp/memd-metrics-" + std::to_string(getpid()) + ".sock",
                                 "--instance", UniqueInstanceName(), "--pool", "p=1MiB",
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(Has(out, "cannot serve metrics on 127.0.0.1:" + std::to_string(port))) << out;
}

}  // namespace
}  // namespace memd::testing
