// One Client used from many threads at once: requests are pipelined on one
// session stream (leader/follower reads) and every thread gets its own answers.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(ThreadsTest, ManyThreadsShareOneClient) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  constexpr int kThreads = 8;
  constexpr int kIterations = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        size_t size = 1000 + static_cast<size_t>(t * 100 + i);
        auto buffer = (*client)->Allocate(size);
        if (!buffer.ok() || buffer->size() != size) {
          ++failures;
          continue;
        }
        std::memset(buffer->data(), t, size);  // overlapping answers would corrupt this
        auto again = (*client)->Retain(buffer->handle());
        if (!again.ok() || again->data() != buffer->data() || again->data()[size - 1] != t) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  EXPECT_EQ(daemon.PoolStats().allocs(), static_cast<uint64_t>(kThreads * kIterations));
}

}  // namespace
}  // namespace memd::testing
