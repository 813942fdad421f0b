// Soak: 64 client processes doing mixed work for MEMD_SOAK_SECONDS (default
// 30 s, the CI version; run longer with the `soak` label). No client may see a
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
  const int seconds = env != nullptr ? std::atoi(env) : 30;
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
  // Warm-up: connections, gRPC buffers and threads, block records, and the
  // tables reaching their peak size. RSS moves by tens of KiB as the heap
  // breathes, so each side is many samples (every 250 ms): the warm-up value
  // is the highest from 20% to 50% of the run, the late one the lowest from
  // 75% to 95%, while every client still works. A leak grows steadily and
  // still shows; a passing spike does not.
  auto at = [&](double fraction) {
    return std::chrono::milliseconds(static_cast<long>(seconds * 1000 * fraction));
  };
  auto start = std::chrono::steady_clock::now();
  auto sample = [&](double from, double to, auto pick, long initial) {
    long value = initial;
    for (auto t = start + at(from); t <= start + at(to); t += std::chrono::milliseconds(250)) {
      std::this_thread::sleep_until(t);
      value = pick(value, RssAnonKib(daemon.pid()));
    }
    return value;
  };
  long rss_after_warmup = sample(0.20, 0.50, [](long a, long b) { return std::max(a, b); }, 0);
  long rss_late = sample(0.75, 0.95, [](long a, long b) { return std::min(a, b); }, LONG_MAX);

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
