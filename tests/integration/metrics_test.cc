// Prometheus metrics: served on --metrics-listen, counting what happened,
// and valid for `promtool check metrics`.
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "net.h"

namespace memd::testing {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The value of one series ("name{labels}") in an exposition; -1 when absent.
double Value(const std::string& body, const std::string& series) {
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

TEST(MetricsTest, PoolsRpcsAndFailuresAreScrapedAndPassPromtool) {
  int port = FreePort();
  DaemonEnv daemon({.pools = {"default=8MiB"},
                    .extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
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
  EXPECT_GE(Value(*body, "memd_rpc_duration_seconds_count{method=\"GetStats\"}"), 1) << *body;
  EXPECT_TRUE(Has(*body, "memd_rpc_errors_total{code=\"NOT_FOUND\",method=\"retain\"} 1")) << *body;
  EXPECT_TRUE(Has(*body, "memd_uptime_seconds ")) << *body;

  std::string file = "/tmp/memd-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(file) << *body;
  auto [code, out] = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + file + " 2>&1"});
  EXPECT_EQ(code, 0) << out;
  std::remove(file.c_str());
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
