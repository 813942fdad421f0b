// Soak: 64 client processes doing mixed work for MEMD_SOAK_SECONDS (default
// 10 s, the CI version; run longer with the `soak` label). No client may see a
// fault, the pool must be empty at the end, and the daemon's heap (RssAnon)
// must not grow after warm-up by 1% or more.
#include <sys/wait.h>

#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>

#include "daemon_env.h"

namespace memd::testing {
namespace {

// Anonymous resident memory of a process in KiB (heap, stacks; not the pool
// mapping, whose pages become resident as they are zeroed and are not a leak).
long RssAnonKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = -1;
  while (status >> key) {
    if (key == "RssAnon:") {
      status >> value;
      return value;
    }
    std::getline(status, key);
  }
  return value;
}

TEST(SoakTest, SixtyFourClientsMixedWorkload) {
  const char* env = std::getenv("MEMD_SOAK_SECONDS");
  const int seconds = env != nullptr ? std::atoi(env) : 20;
  constexpr int kClients = 64;
  DaemonEnv daemon({.pools = {"default=1GiB"}});
  ASSERT_TRUE(daemon.ok());
  Subprocess holder({TestClientBinary(), "hold", "4", "65536", "7"}, daemon.ClientEnv());
  std::vector<std::string> shared;
  for (uint64_t h : ReadHandles(holder)) shared.push_back(std::to_string(h));
  ASSERT_EQ(shared.size(), 4u);

  std::mt19937 rng(std::random_device{}());
  std::vector<std::unique_ptr<Subprocess>> clients;
  for (int i = 0; i < kClients; ++i) {
    std::vector<std::string> argv = {TestClientBinary(), "soak", std::to_string(seconds), std::to_string(rng())};
    argv.insert(argv.end(), shared.begin(), shared.end());
    clients.push_back(std::make_unique<Subprocess>(argv, daemon.ClientEnv()));
  }
  // Warm-up: the first half (connections, gRPC buffers, block records, the
  // tables at their peak size). RSS moves by tens of KiB as the allocator's
  // arenas breathe, so each point is three samples: the warm-up value is the
  // highest at 40-50%, the late one the lowest at 80-90%, while every client
  // still works. A leak grows steadily and still shows; a passing spike does not.
  auto at = [&](double fraction) {
    return std::chrono::milliseconds(static_cast<long>(seconds * 1000 * fraction));
  };
  auto start = std::chrono::steady_clock::now();
  long rss_after_warmup = 0, rss_late = LONG_MAX;
  for (double f : {0.40, 0.45, 0.50}) {
    std::this_thread::sleep_until(start + at(f));
    rss_after_warmup = std::max(rss_after_warmup, RssAnonKib(daemon.pid()));
  }
  for (double f : {0.80, 0.85, 0.90}) {
    std::this_thread::sleep_until(start + at(f));
    rss_late = std::min(rss_late, RssAnonKib(daemon.pid()));
  }

  long total_ops = 0;
  for (auto& c : clients) {
    std::optional<std::string> line = c->ReadLine(std::chrono::seconds(seconds + 60));
    ASSERT_TRUE(line.has_value()) << "a soak client printed nothing";
    ASSERT_EQ(line->rfind("ok ", 0), 0u) << *line;
    total_ops += std::stol(line->substr(3));
    ASSERT_EQ(ExitCode(c->Wait(std::chrono::seconds(30))), 0);
  }
  holder.CloseStdin();
  holder.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; })) << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
  ASSERT_GT(rss_after_warmup, 0);
  double growth = static_cast<double>(rss_late - rss_after_warmup) / static_cast<double>(rss_after_warmup);
  std::printf("soak: %d clients, %d s, %ld operations, daemon RssAnon %ld KiB after warm-up, %ld KiB late (%+.2f%%)\n",
              kClients, seconds, total_ops, rss_after_warmup, rss_late, growth * 100);
  EXPECT_LT(growth, 0.01) << "daemon heap grew after warm-up";
}

}  // namespace
}  // namespace memd::testing
