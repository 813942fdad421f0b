#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

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

TEST(MemctlTest, WatchRedrawsInPlaceOnATerminalAndPrintsPlainTablesOtherwise) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "watch",
                                 "--interval", "0.1", "--count", "3"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no escape codes into a pipe: " << out;
  size_t headers = 0;
  for (size_t at = out.find("memd " + daemon.instance()); at != std::string::npos;
       at = out.find("memd " + daemon.instance(), at + 1)) {
    ++headers;
  }
  EXPECT_EQ(headers, 3u) << out;
  EXPECT_NE(out.find("default"), std::string::npos) << out;

  // On a terminal (script gives it one): home the cursor, clear, redraw.
  std::string command = MemctlBinary() + " --address " + daemon.address() +
                        " watch --interval 0.1 --count 3";
  auto [tcode, tout] = RunCommand({"/usr/bin/script", "-qec", command, "/dev/null"});
  EXPECT_EQ(tcode, 0) << tout;
  size_t redraws = 0;
  for (size_t at = tout.find("\x1b[H\x1b[2J"); at != std::string::npos;
       at = tout.find("\x1b[H\x1b[2J", at + 1)) {
    ++redraws;
  }
  EXPECT_EQ(redraws, 3u) << tout;
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
  EXPECT_EQ(buffers["buffers"][0]["handle"], std::to_string(handles[0])) << "a string: exact in jq";
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
  EXPECT_EQ(only_reader[0]["handle"], std::to_string(handles[0]));

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

// memctl shutdown stops the daemon as SIGTERM does: the next start re-adopts
// every buffer. With --discard the pools go with it, explicitly: the next
// start creates them empty (issue 13: "Discarding is explicit").
TEST(MemctlTest, ShutdownKeepsEveryBufferAndShutdownDiscardDiscardsThem) {
  std::string instance = UniqueInstanceName();
  DaemonEnv daemon({.pools = {"default=8MiB"},
                    .extra_args = {"--socket-mode", "0666"},
                    .instance = instance});
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .outage_wait_ms = 10000});
  ASSERT_TRUE(client.ok()) << client.status();
  auto buffer = (*client)->Allocate(4096);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  std::memset(buffer->data(), 0x5a, buffer->size());

  // Another uid may not stop the daemon.
  chmod(std::filesystem::path(daemon.socket_path()).parent_path().c_str(), 0755);
  auto [ncode, nout] = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                   "--clear-groups", MemctlBinary(), "--address",
                                   daemon.address(), "shutdown", "--discard"});
  EXPECT_EQ(ncode, 1) << nout;
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u) << "still serving, nothing discarded";

  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "shutdown"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 live buffers kept for the next start"), std::string::npos) << out;
  std::optional<int> status = daemon.Stop(0);  // no signal: waits for the exit it asked for
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(ExitCode(*status), 0);
  EXPECT_TRUE(std::filesystem::exists(StateFilePath(instance, "default")));
  ASSERT_TRUE(daemon.Restart());
  ASSERT_TRUE(WaitFor([&] { return (*client)->connected(); }, std::chrono::seconds(10)));
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u) << "re-adopted";
  EXPECT_EQ(buffer->data()[4095], 0x5a);

  auto [dcode, dout] =
      RunCommand({MemctlBinary(), "--address", daemon.address(), "shutdown", "--discard"});
  EXPECT_EQ(dcode, 0) << dout;
  EXPECT_NE(dout.find("1 live buffers discarded"), std::string::npos) << dout;
  status = daemon.Stop(0);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(ExitCode(*status), 0);
  EXPECT_FALSE(std::filesystem::exists(StateFilePath(instance, "default")));
  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u) << "the next start creates the pool empty";
  auto after = (*client)->Allocate(100);
  EXPECT_TRUE(absl::IsFailedPrecondition(after.status())) << after.status();
  EXPECT_NE(after.status().message().find("is gone"), std::string::npos) << after.status();
  buffer->Detach();
}

// The operator conventions: -o before or after the command, YAML that says
// what the JSON says, wide tables with more columns, --timeout.
TEST(MemctlTest, OutputFormatsGoBeforeOrAfterTheCommandAndYamlIsTheJson) {
  DaemonEnv daemon({.pools = {"video=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto [jcode, json] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "-o",
                                   "json"});
  ASSERT_EQ(jcode, 0) << json;
  EXPECT_EQ(nlohmann::json::parse(json)["pools"][0]["name"], "video");
  auto [ycode, yaml] = RunCommand({MemctlBinary(), "-o", "yaml", "--address", daemon.address(),
                                   "pools"});
  ASSERT_EQ(ycode, 0) << yaml;
  auto [pcode, pools_json] = RunCommand({MemctlBinary(), "--address", daemon.address(), "pools",
                                         "--output=json"});
  ASSERT_EQ(pcode, 0);
  std::string file = "/tmp/memctl-yaml-" + std::to_string(getpid());
  std::ofstream(file + ".yaml") << yaml;
  std::ofstream(file + ".json") << pools_json;
  auto [same, why] = RunCommand(
      {"/usr/bin/python3", "-c",
       "import json, sys, yaml; a = yaml.safe_load(open(sys.argv[1])); "
       "b = json.load(open(sys.argv[2])); print(a == b); sys.exit(0 if a == b else 1)",
       file + ".yaml", file + ".json"});
  EXPECT_EQ(same, 0) << why << yaml << pools_json;
  std::remove((file + ".yaml").c_str());
  std::remove((file + ".json").c_str());

  auto [tcode, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats"});
  auto [wcode, wide] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "-o",
                                   "wide"});
  EXPECT_EQ(table.find("MAX ALLOC"), std::string::npos) << table;
  EXPECT_NE(wide.find("MAX ALLOC"), std::string::npos) << wide;
  EXPECT_NE(wide.find("memd." + daemon.instance() + ".video"), std::string::npos) << wide;
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "-o", "xml"}).first,
            2);
}

TEST(MemctlTest, TimeoutBoundsEachRequestAndNamesItself) {
  // A socket that accepts connections into its backlog and never answers.
  std::string path = "/tmp/memctl-silent-" + std::to_string(getpid()) + ".sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  auto [code, out] = RunCommand({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", MemctlBinary(),
                                 "--address", "unix://" + path, "stats", "--timeout", "300ms"});
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(out.find("--timeout 300ms"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", "unix://" + path, "--timeout", "soon",
                        "stats"}).first, 2);
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(MemctlTest, CheckRunsThePoolsInvariantCheckers) {
  DaemonEnv daemon({.pools = {"a=8MiB", "b=8MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address(), .pool = "b"});
  ASSERT_TRUE(client.ok());
  auto buffer = (*client)->Allocate(1000);
  ASSERT_TRUE(buffer.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "check", "-o",
                                 "json"});
  ASSERT_EQ(code, 0) << out;
  nlohmann::json doc = nlohmann::json::parse(out);
  EXPECT_EQ(doc["ok"], true);
  ASSERT_EQ(doc["pools"].size(), 2u);
  EXPECT_EQ(doc["pools"][1]["name"], "b");
  EXPECT_EQ(doc["pools"][1]["ok"], true);
  auto [tcode, table] = RunCommand({MemctlBinary(), "--address", daemon.address(), "check"});
  EXPECT_EQ(tcode, 0);
  EXPECT_TRUE(std::regex_search(table, std::regex("\nb +ok *\n"))) << table;
}

TEST(MemctlTest, ReloadMakesTheDaemonReadItsConfigurationAgain) {
  std::string file = "/tmp/memctl-reload-" + std::to_string(getpid()) + ".toml";
  std::ofstream(file) << "[[pool]]\nname = \"a\"\nsize = \"8MiB\"\nmax_alloc = \"1MiB\"\n";
  DaemonEnv daemon({.pools = {}, .extra_args = {"--config", file}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_EQ(daemon.PoolStats("a").max_alloc_bytes(), 1u << 20);
  std::ofstream(file) << "[[pool]]\nname = \"a\"\nsize = \"8MiB\"\nmax_alloc = \"2MiB\"\n";
  auto [code, out] = RunCommand({MemctlBinary(), "reload", "--address", daemon.address()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("pid " + std::to_string(daemon.pid())), std::string::npos) << out;
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats("a").max_alloc_bytes() == 2u << 20; }));
  EXPECT_EQ(RunCommand({MemctlBinary(), "--address", "localhost:1", "reload"}).first, 2)
      << "reload needs the local Unix socket";
  std::remove(file.c_str());
}

}  // namespace
}  // namespace memd::testing
