// E63 (docs/errors.md): `memctl check` on a pool whose invariant checker
// fails. No client input can break a pool (that is what the checker guards),
// so the test breaks one as a bug or a stray write in the daemon would: gdb
// attaches to the live memd and adds one to the pool allocator's count of used
// blocks. memctl then reports the pool BROKEN naming the counter's value and
// what the block chain holds, exits 1, and the check changes nothing (the
// same answer twice, the same stats); put back, the pool checks ok again.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "daemon_env.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

// Adds `delta` to pool 0's allocator used-block count in the live `pid`
// (memd's main() holds the Daemon as `daemon`); returns gdb's output, its
// errors included (gdb writes them to stderr, and the caller reads them to
// tell a build without variable debug information from a real failure).
std::pair<int, std::string> ShiftUsedBlocks(pid_t pid, int delta) {
  const std::string counter = "daemon.pools_.pools_[0]->allocator_.used_blocks_";
  return RunCommand({"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", "/usr/bin/gdb", "-p",
                     std::to_string(pid), "-batch", "-nx", "-ex", "thread 1",
                     "-ex", "frame function main", "-ex",
                     "set var " + counter + " = " + counter + " + (" + std::to_string(delta) + ")",
                     "-ex", "p " + counter});
}

TEST(CheckBrokenTest, MemctlCheckNamesTheBrokenInvariantExitsOneAndChangesNothing) {
  if (RunCommand({"/bin/sh", "-c", "command -v gdb"}).first != 0) {
    GTEST_SKIP() << "gdb is not installed (scripts/setup-deps.sh installs it)";
  }
  DaemonEnv daemon({.pools = {"default=8MiB"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "2", "65536", "7"}, daemon.ClientEnv());
  ASSERT_EQ(ReadHandles(holder).size(), 2u);
  auto memctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {MemctlBinary(), "--address", daemon.address()});
    return RunCommand(args);
  };
  ASSERT_EQ(memctl({"check"}).first, 0);

  auto [gdb, gdb_out] = ShiftUsedBlocks(daemon.pid(), +1);
  if (!Has(gdb_out, "$1 = ") && (Has(gdb_out, "No symbol") || Has(gdb_out, "not a structure"))) {
    // The sanitizer builds keep line tables only (-g1): no variable to set.
    GTEST_SKIP() << "memd was built without variable debug information: " << gdb_out;
  }
  ASSERT_EQ(gdb, 0) << gdb_out;
  std::smatch printed;
  ASSERT_TRUE(std::regex_search(gdb_out, printed, std::regex("\\$1 = (\\d+)"))) << gdb_out;
  const std::string counted = printed[1], real = std::to_string(std::stoi(counted) - 1);
  v1::PoolStats before = daemon.PoolStats();

  auto [code, table] = memctl({"check"});
  EXPECT_EQ(code, 1) << table;
  EXPECT_TRUE(Has(table, "BROKEN")) << table;
  // The value (the counter) and what it must equal (the chain's count).
  EXPECT_TRUE(std::regex_search(table, std::regex("counters say (\\d+) bytes in " + counted +
                                                  " blocks, chain has \\1 in " + real + "\n")))
      << table;
  auto [jcode, json_text] = memctl({"-o", "json", "check"});
  EXPECT_EQ(jcode, 1) << json_text;
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
  EXPECT_EQ(doc["ok"], false) << json_text;
  EXPECT_EQ(doc["pools"][0]["ok"], false) << json_text;
  EXPECT_TRUE(Has(doc["pools"][0]["error"].get<std::string>(), "in " + counted + " blocks"))
      << json_text;
  // The check is a diagnosis: it repairs nothing and moves nothing.
  EXPECT_EQ(memctl({"check"}), std::make_pair(code, table));
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.used_bytes(), before.used_bytes());
  EXPECT_EQ(after.live_buffers(), before.live_buffers());
  EXPECT_EQ(after.allocs(), before.allocs());

  auto [undo, undo_out] = ShiftUsedBlocks(daemon.pid(), -1);
  ASSERT_EQ(undo, 0) << undo_out;
  EXPECT_EQ(memctl({"check"}).first, 0) << "put back, the pool checks ok";
  holder.CloseStdin();
  EXPECT_EQ(ExitCode(holder.Wait()), 0);
}

}  // namespace
}  // namespace memd::testing
