// The configuration file: the installed example validates, --check-config
// prints what a start would use, flags override keys, errors name the key,
// and SIGHUP applies what can change while serving.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

std::pair<int, std::string> Memd(std::vector<std::string> args) {
  args.insert(args.begin(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", MemdBinary()});
  return RunCommand(args);
}

std::string TempFile(const std::string& name, const std::string& text) {
  std::string path = "/tmp/memd-config-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, ExampleFileValidatesAndCheckConfigRoundTrips) {
  auto [code, out] = Memd({"--config", std::string(MEMD_SOURCE_DIR) + "/deploy/memd.toml",
                           "--check-config"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "name = \"default\"")) << out;
  EXPECT_TRUE(Has(out, "size = 268435456  # 256.0 MiB")) << out;
  std::string effective = TempFile("effective.toml", out);
  auto [code2, out2] = Memd({"--config", effective, "--check-config"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_EQ(out2, out) << "the printed configuration is itself a valid file that means the same";
}

TEST(ConfigTest, FlagsOverrideTheFileKeyByKey) {
  std::string file = TempFile("override.toml",
                              "log_level = \"warn\"\nsocket_mode = 0o640\n"
                              "[[pool]]\nname = \"video\"\nsize = \"16MiB\"\nsession_buffers = 8\n");
  auto [code, out] = Memd({"--config", file, "--log-level", "debug", "--check-config"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "log_level = \"debug\"")) << "the flag wins: " << out;
  EXPECT_TRUE(Has(out, "socket_mode = \"0640\"")) << "octal integers are modes: " << out;
  EXPECT_TRUE(Has(out, "session_buffers = 8")) << out;
  auto [code2, out2] = Memd({"--config", file, "--pool", "audio=1MiB", "--check-config"});
  EXPECT_TRUE(Has(out2, "name = \"audio\"") && !Has(out2, "name = \"video\""))
      << "--pool replaces the file's pools: " << out2;
}

// The allocator counts a pool's alignment units in 32 bits (row H of
// docs/PERFORMANCE.md): a larger pool is refused before anything is created,
// naming its size, the limit at its alignment and the way out.
TEST(ConfigTest, APoolAboveTheAllocatorsLimitIsRefusedNamingSizeAndLimit) {
  auto [code, out] = Memd({"--pool", "huge=64TiB", "--check-config"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "pool 'huge' size 64.0 TiB (70368744177664 bytes) exceeds the largest "
                       "pool of 256.0 GiB (274877906880 bytes) at alignment 64"))
      << out;
  EXPECT_TRUE(Has(out, "raise the alignment")) << out;
  auto [code2, out2] = Memd({"--pool", "huge=64TiB,alignment=1MiB", "--check-config"});
  EXPECT_EQ(code2, 0) << "at 1 MiB alignment the same size is within the limit: " << out2;
}

TEST(ConfigTest, ErrorsNameTheKeyTheValueAndWhatIsAllowed) {
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"colour = \"red\"\n", "unknown key 'colour' (known: "},
      {"listen = \"unix:///x.sock\"\n", "key 'listen' must be an array of addresses"},
      {"log_level = true\n", "key 'log_level' is a boolean"},
      {"socket_mode = \"999\"\n", "'999' must be an octal mode from 0 to 0777"},
      {"[[pool]]\nname = \"v\"\nsize = \"lots\"\n", "'lots'"},
      {"[[pool]]\nname = \"v\"\nsize = \"1MiB\"\nquota = 3\n", "pool 1: unknown key 'quota'"},
      {"[[pool]]\nsize = \"1MiB\"\n", "pool 1: needs name"},
      {"instance = \"a\" b\n", "line 1"},
  };
  for (const Case& c : cases) {
    std::string file = TempFile("bad.toml", c.text);
    auto [code, out] = Memd({"--config", file, "--check-config"});
    EXPECT_EQ(code, 2) << c.text;
    EXPECT_TRUE(Has(out, c.expected)) << c.text << " -> " << out;
  }
  auto [code, out] = Memd({"--config", "/nonexistent/memd.toml", "--check-config"});
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(Has(out, "/nonexistent/memd.toml")) << out;
}

TEST(ConfigTest, SighupAppliesMaxAllocQuotasAndNewPoolsAndNamesTheRest) {
  std::string file = TempFile("reload.toml",
                              "[[pool]]\nname = \"a\"\nsize = \"8MiB\"\nmax_alloc = \"1MiB\"\n");
  DaemonEnv daemon({.pools = {}, .extra_args = {"--config", file}});
  ASSERT_TRUE(daemon.ok());
  ASSERT_EQ(daemon.PoolStats("a").max_alloc_bytes(), 1u << 20);
  std::ofstream(file) << "[[pool]]\nname = \"a\"\nsize = \"16MiB\"\nmax_alloc = \"2MiB\"\n"
                         "session_buffers = 1\n"
                         "[[pool]]\nname = \"b\"\nsize = \"4MiB\"\n";
  ASSERT_EQ(kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return daemon.Stats().pools_size() == 2; }))
      << daemon.Stats().DebugString();
  EXPECT_EQ(daemon.PoolStats("a").max_alloc_bytes(), 2u << 20);
  EXPECT_EQ(daemon.PoolStats("a").size_bytes(), 8u << 20) << "a size change needs a restart";
  EXPECT_EQ(daemon.PoolStats("b").size_bytes(), 4u << 20);
  auto client = Client::Connect({.address = daemon.address(), .pool = "a"});
  ASSERT_TRUE(client.ok());
  auto first = (*client)->Allocate(100);
  ASSERT_TRUE(first.ok());
  auto second = (*client)->Allocate(100);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << "new quota applies";
  EXPECT_TRUE(first->Release().ok());
  auto in_b = Client::Connect({.address = daemon.address(), .pool = "b"});
  ASSERT_TRUE(in_b.ok()) << in_b.status();
  EXPECT_TRUE((*in_b)->Allocate(1000).ok());

  // A broken file changes nothing.
  std::ofstream(file) << "colour = 1\n";
  ASSERT_EQ(kill(daemon.pid(), SIGHUP), 0);
  int exit_code = -1;
  std::string log = daemon.StopAndReadOutput(SIGTERM, &exit_code);
  EXPECT_EQ(exit_code, 0) << log;
  EXPECT_TRUE(Has(log, "needs a restart, not applied: pool 'a' size or alignment")) << log;
  EXPECT_TRUE(Has(log, "configuration not reloaded, nothing changed: config file")) << log;
}

TEST(ConfigTest, RejectsALaneLimitOutsideItsRangeNamingIt) {
  for (const char* bad : {"-1", "4097", "many"}) {
    auto [code, out] = Memd({"--max-lanes", bad, "--check-config"});
    EXPECT_NE(code, 0) << bad;
    EXPECT_TRUE(Has(out, std::string("--max-lanes '") + bad + "'")) << out;
    EXPECT_TRUE(Has(out, "0 to 4096")) << out;
  }
  auto [code, out] = Memd({"--max-lanes", "0", "--check-config"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "max_lanes = 0")) << out;
}

TEST(ConfigTest, RejectsALaneSpinOutsideItsRangeNamingIt) {
  for (const char* bad : {"-1us", "2ms", "soon"}) {
    auto [code, out] = Memd({"--lane-spin", bad, "--check-config"});
    EXPECT_NE(code, 0) << bad;
    EXPECT_TRUE(Has(out, std::string("--lane-spin '") + bad + "'")) << out;
    EXPECT_TRUE(Has(out, "from 0s to 1ms")) << out;
  }
  auto [code, out] = Memd({"--lane-spin", "0", "--check-config"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "lane_spin = \"0\"")) << out;
  auto [dcode, dout] = Memd({"--check-config"});
  EXPECT_EQ(dcode, 0) << dout;
  EXPECT_TRUE(Has(dout, "lane_spin = \"50us\"")) << dout;
}

}  // namespace
}  // namespace memd::testing
