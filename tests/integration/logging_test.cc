// Daemon logs: JSON lines with --log-format json, and client-triggered
// warnings rate-limited so a client cannot flood the log.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(LoggingTest, JsonLinesAndRateLimitedClientWarnings) {
  auto daemon = std::make_unique<DaemonEnv>(DaemonOptions{
      .extra_args = {"--log-format", "json", "--socket-mode", "0666"}});
  ASSERT_TRUE(daemon->ok());
  // 40 refused admin calls at once (all within the limiter's 10 s window,
  // however slow the machine): only 10 are logged.
  auto [code, out] = RunCommand(AsUid(
      65534, {"/bin/sh", "-c",
              "for i in $(seq 40); do \"$0\" --address \"$1\" set-max-alloc default 1MiB "
              ">/dev/null 2>&1 & done; wait",
              MemctlBinary(), daemon->address()}));
  ASSERT_EQ(code, 0) << out;
  int exit_code = -1;
  std::string log = daemon->StopAndReadOutput(SIGTERM, &exit_code);
  EXPECT_EQ(exit_code, 0);
  std::istringstream lines(log);
  int parsed = 0, refused = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    nlohmann::json entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(entry.is_discarded()) << "not a JSON line: " << line;
    ASSERT_TRUE(entry.contains("time") && entry.contains("level") && entry.contains("msg")) << line;
    ++parsed;
    std::string msg = entry["msg"];
    if (msg.find("refused set-max-alloc") != std::string::npos) ++refused;
  }
  EXPECT_GE(parsed, 10) << log;
  EXPECT_EQ(refused, 10) << "10 per 10 s, the rest suppressed:\n" << log;
}

TEST(LoggingTest, UnknownLogFormatIsAUsageError) {
  auto [code, out] = RunCommand({MemdBinary(), "--log-format", "xml"});
  EXPECT_EQ(code, 2);
}

}  // namespace
}  // namespace memd::testing
