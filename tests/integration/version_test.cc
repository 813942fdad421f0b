// One version, from CMake's project(VERSION), everywhere: memd --version,
// memctl --version (both sides), GetStats, the memd_build_info metric and the
// C API (memd_version(), MEMD_VERSION_*).
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "daemon_env.h"
#include "memd/memd.h"
#include "net.h"

namespace memd::testing {
namespace {

const std::string kVersion = absl::StrCat(MEMD_VERSION_MAJOR, ".", MEMD_VERSION_MINOR, ".",
                                          MEMD_VERSION_PATCH);

TEST(VersionTest, TheCApiMacrosAndLibraryAgree) {
  EXPECT_EQ(kVersion, MEMD_VERSION_STRING);
  EXPECT_EQ(std::string(memd_version()), kVersion) << "the library is the headers' version";
}

TEST(VersionTest, MemdPrintsItsVersionAndExits) {
  auto [code, out] = RunCommand({MemdBinary(), "--version"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "memd " + kVersion + "\n");
  auto [help_code, help] = RunCommand({MemdBinary(), "--help"});
  EXPECT_NE(help.find("--version"), std::string::npos) << help;
}

TEST(VersionTest, GetStatsMemctlAndTheBuildInfoMetricCarryTheDaemonsVersion) {
  int port = FreePort();
  DaemonEnv daemon({.extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(daemon.ok());
  EXPECT_EQ(daemon.Stats().version(), kVersion);

  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "--version"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "memctl " + kVersion + "\nmemd " + kVersion + " (instance " + daemon.instance() +
                     " at " + daemon.address() + ")\n");

  std::optional<std::string> body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body.has_value());
  EXPECT_NE(body->find("memd_build_info{version=\"" + kVersion + "\"} 1"), std::string::npos)
      << *body;
}

// Issue 27: `memctl --version` exited 3 without a daemon. A version question
// is answered whatever the daemon does: memctl's own, exit 0, and why the
// daemon's is missing on stderr.
TEST(VersionTest, MemctlVersionWithoutADaemonPrintsItsOwnAndExitsZero) {
  for (const char* form : {"--version", "version"}) {
    auto [code, out] =
        RunCommand({MemctlBinary(), "--address", "unix:///nonexistent/memd.sock", form});
    EXPECT_EQ(code, 0) << form << ": " << out;
    EXPECT_EQ(out, "memctl " + kVersion + "\n") << form;
    auto [both, err] = RunCommand({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", MemctlBinary(),
                                   "--address", "unix:///nonexistent/memd.sock", form});
    EXPECT_NE(err.find("memd: no answer from unix:///nonexistent/memd.sock"), std::string::npos)
        << err;
  }
}

TEST(VersionTest, MemctlVersionCommandPrintsBothLikeTheFlag) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto [code, out] = RunCommand({MemctlBinary(), "version", "--address", daemon.address()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "memctl " + kVersion + "\nmemd " + kVersion + " (instance " + daemon.instance() +
                     " at " + daemon.address() + ")\n");
}

}  // namespace
}  // namespace memd::testing
