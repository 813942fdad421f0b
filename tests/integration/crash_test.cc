// Clients killed with SIGKILL at random points never leak memory or disturb
// the survivors.
#include <signal.h>
#include <sys/wait.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_env.h"

namespace memd::testing {
namespace {

TEST(CrashTest, TwoHundredRandomKillsLeaveExactlyWhatSurvivorsHold) {
  DaemonEnv daemon({.pools = {"default=256MiB"}});
  ASSERT_TRUE(daemon.ok());
  constexpr int kSurvivorBuffers = 8;
  constexpr int kBufferBytes = 65536;
  Subprocess survivor({TestClientBinary(), "survivor", std::to_string(kSurvivorBuffers),
                       std::to_string(kBufferBytes)},
                      daemon.ClientEnv());
  std::vector<std::string> handles;
  for (uint64_t h : ReadHandles(survivor)) handles.push_back(std::to_string(h));
  ASSERT_EQ(handles.size(), static_cast<size_t>(kSurvivorBuffers));
  // The survivor's buffers are whole multiples of the 64-byte alignment; it
  // also allocates and frees a temporary buffer in a loop, so poll for a
  // moment between those.
  constexpr uint64_t kSurvivorBytes = uint64_t{kSurvivorBuffers} * kBufferBytes;

  uint32_t seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  constexpr int kKills = 200;
  constexpr int kConcurrent = 4;
  int killed = 0;
  while (killed < kKills) {
    std::vector<std::unique_ptr<Subprocess>> victims;
    for (int i = 0; i < kConcurrent && killed + i < kKills; ++i) {
      std::vector<std::string> argv = {TestClientBinary(), "churn", std::to_string(rng())};
      argv.insert(argv.end(), handles.begin(), handles.end());
      victims.push_back(std::make_unique<Subprocess>(argv, daemon.ClientEnv()));
    }
    for (auto& v : victims) ASSERT_EQ(v->ReadLine(), "started");
    // Kill each at a random point of its work: 0 to 30 ms after it started.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    for (auto& v : victims) {
      v->Kill(SIGKILL);
      std::optional<int> status = v->Wait();
      ASSERT_TRUE(status);
      ASSERT_TRUE(WIFSIGNALED(*status)) << "a victim exited by itself: it found a fault";
      ++killed;
    }
  }
  // Every victim's references are gone; the survivor's buffers remain.
  EXPECT_TRUE(WaitFor([&] {
    v1::PoolStats s = daemon.PoolStats();
    return s.live_buffers() == kSurvivorBuffers && s.used_bytes() == kSurvivorBytes && s.sessions() == 1;
  })) << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.CheckPools(), "");

  survivor.CloseStdin();
  std::optional<std::string> result = survivor.ReadLine();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->rfind("ok ", 0), 0u) << *result;  // served and intact throughout
  survivor.Wait();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; }));
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
