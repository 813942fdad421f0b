#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(MemctlTest, StatsJsonHasEveryDocumentedKeyAndLiveValues) {
  DaemonEnv daemon({.pools = {"default=8MiB", "video=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .pool = "video"});
  ASSERT_TRUE(client.ok());
  auto buffer = (*client)->Allocate(1000);
  ASSERT_TRUE(buffer.ok());

  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "--json"});
  ASSERT_EQ(code, 0) << out;
  nlohmann::json doc = nlohmann::json::parse(out);
  ASSERT_EQ(doc["pools"].size(), 2u);
  const auto& video = doc["pools"][1];
  EXPECT_EQ(video["name"], "video");
  for (const char* key : {"name", "size_bytes", "used_bytes", "free_bytes", "largest_free_bytes",
                          "live_buffers", "sessions", "alignment", "max_alloc_bytes", "allocs",
                          "frees", "failed_allocs", "peak_used_bytes"}) {
    EXPECT_TRUE(video.contains(key)) << key;
  }
  EXPECT_EQ(video["size_bytes"], 16u << 20);
  EXPECT_EQ(video["used_bytes"], 1024u);
  EXPECT_EQ(video["free_bytes"], (16u << 20) - 1024u);
  EXPECT_EQ(video["live_buffers"], 1u);
  EXPECT_EQ(video["sessions"], 1u);
  EXPECT_EQ(video["alignment"], 64u);
  EXPECT_EQ(video["allocs"], 1u);
  EXPECT_EQ(video["max_alloc_bytes"], 2147483647u);
  EXPECT_EQ(doc["pools"][0]["live_buffers"], 0u);
}

TEST(MemctlTest, StatsTableShowsHumanSizes) {
  DaemonEnv daemon({.pools = {"video=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "stats"}, daemon.ClientEnv());
  ASSERT_EQ(code, 0);
  EXPECT_NE(out.find("video"), std::string::npos);
  EXPECT_NE(out.find("16.0 MiB"), std::string::npos);
}

TEST(MemctlTest, HealthAndExitCodes) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", daemon.address(), "health"}).first, 0);
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", "unix:///nonexistent.sock", "health"}).first, 3);
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", "garbage", "health"}).first, 2);
  EXPECT_EQ(RunCommand({MemctlBinary(), "frobnicate"}).first, 2);
}

}  // namespace
}  // namespace memd::testing
