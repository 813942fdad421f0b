#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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
  // The daemon's own CPU time (getrusage): it has done some work by now.
  ASSERT_TRUE(doc.contains("cpu_user_us") && doc.contains("cpu_system_us"));
  EXPECT_GT(doc["cpu_user_us"].get<uint64_t>() + doc["cpu_system_us"].get<uint64_t>(), 0u);
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

TEST(MemctlTest, WatchRedrawsTheStatsInPlace) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "watch",
                                 "--interval", "0.1", "--count", "3"});
  EXPECT_EQ(code, 0) << out;
  size_t redraws = 0;
  for (size_t at = out.find("\x1b[H\x1b[2J"); at != std::string::npos;
       at = out.find("\x1b[H\x1b[2J", at + 1)) {
    ++redraws;
  }
  EXPECT_EQ(redraws, 3u) << out;
  EXPECT_NE(out.find("default"), std::string::npos) << out;
  daemon.Stop(SIGTERM);
  auto [gone, why] = RunCommand({MemctlBinary(), "--address", daemon.address(), "watch"});
  EXPECT_EQ(gone, 3) << "daemon unreachable";
}

}  // namespace
}  // namespace memd::testing

namespace memd::testing {
namespace {

TEST(MemctlTest, ClientsAndBuffersShowWhoHoldsWhat) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "2", "5000", "1"}, daemon.ClientEnv());
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 2u);
  Subprocess reader({TestClientBinary(), "retain-hold", std::to_string(handles[0])}, daemon.ClientEnv());
  ASSERT_EQ(reader.ReadLine(), "ready");

  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients", "--json"});
  ASSERT_EQ(code, 0) << out;
  nlohmann::json clients = nlohmann::json::parse(out)["clients"];
  ASSERT_EQ(clients.size(), 2u);
  const auto& h = clients[0]["pid"] == holder.pid() ? clients[0] : clients[1];
  EXPECT_EQ(h["pid"], holder.pid());
  EXPECT_EQ(h["uid"], getuid());
  EXPECT_EQ(h["process_name"], "memd_test_clien");  // /proc/PID/comm keeps 15 characters
  EXPECT_EQ(h["pool"], "default");
  EXPECT_EQ(h["held_buffers"], 2u);
  EXPECT_EQ(h["held_bytes"], 2u * 5056u);  // two 5000-byte buffers, 64-byte blocks
  EXPECT_EQ(h["lane"], true) << "clients ask for a lane by default";
  uint64_t holder_session = h["session_id"];

  auto [bcode, bout] = RunCommand({MemctlBinary(), "--address", daemon.address(), "buffers", "--json"});
  ASSERT_EQ(bcode, 0);
  nlohmann::json buffers = nlohmann::json::parse(bout);
  ASSERT_EQ(buffers["buffers"].size(), 2u);
  EXPECT_EQ(buffers["buffers"][0]["handle"], handles[0]);
  EXPECT_EQ(buffers["buffers"][0]["references"], 2u);
  EXPECT_EQ(buffers["buffers"][0]["holders"].size(), 2u);
  EXPECT_EQ(buffers["buffers"][1]["holders"], nlohmann::json::array({holder_session}));
  EXPECT_EQ(buffers["truncated"], false);

  auto [lcode, lout] = RunCommand({MemctlBinary(), "--address", daemon.address(), "buffers", "--json",
                                   "--limit", "1"});
  EXPECT_EQ(nlohmann::json::parse(lout)["truncated"], true);
  uint64_t reader_session = holder_session == clients[0]["session_id"] ? clients[1]["session_id"]
                                                                        : clients[0]["session_id"];
  auto [scode, sout] = RunCommand({MemctlBinary(), "--address", daemon.address(), "buffers", "--json",
                                   "--session", std::to_string(reader_session)});
  nlohmann::json only_reader = nlohmann::json::parse(sout)["buffers"];
  ASSERT_EQ(only_reader.size(), 1u);
  EXPECT_EQ(only_reader[0]["handle"], handles[0]);

  auto [tcode, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "clients"});
  EXPECT_NE(table.find("memd_test_clien"), std::string::npos);
  EXPECT_NE(table.find("9.9 KiB"), std::string::npos);
  EXPECT_NE(table.find(" lane "), std::string::npos) << table;
}

TEST(MemctlTest, SetMaxAllocChangesThePoolAndIsAdminOnly) {
  DaemonEnv daemon({.extra_args = {"--socket-mode", "0666"}});
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "set-max-alloc", "default", "1MiB"});
  ASSERT_EQ(code, 0) << out;
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto too_big = (*client)->Allocate((1 << 20) + 1);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*client)->Allocate(1 << 20).ok());
  EXPECT_EQ(daemon.PoolStats().max_alloc_bytes(), 1u << 20);

  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", daemon.address(), "set-max-alloc", "nope", "1MiB"}).first, 1);
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", daemon.address(), "set-max-alloc", "default", "lots"}).first, 2);

  // Another uid may read stats but not change the daemon.
  chmod(std::filesystem::path(daemon.socket_path()).parent_path().c_str(), 0755);
  auto [ncode, nout] = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   MemctlBinary(), "--address", daemon.address(), "set-max-alloc", "default",
                                   "2MiB"});
  EXPECT_EQ(ncode, 1) << "PERMISSION_DENIED is a failure reported by the daemon";
  EXPECT_EQ(daemon.PoolStats().max_alloc_bytes(), 1u << 20) << "nothing changed";
  auto [rcode, rout] = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   MemctlBinary(), "--address", daemon.address(), "stats"});
  EXPECT_EQ(rcode, 0) << "read-only stats are open to anyone who may connect";
}

}  // namespace
}  // namespace memd::testing
