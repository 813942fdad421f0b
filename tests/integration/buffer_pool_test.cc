// memd::BufferPool: buffers recycle inside the process, a lent buffer is not
// reused while another process holds it, and nothing stays held after Trim.
#include <cstring>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/buffer_pool.h"
#include "memd/client.h"

namespace memd::testing {
namespace {

TEST(BufferPoolTest, BuffersRecycleLocallyAndTrimGivesThemBack) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto pool = BufferPool::Create(**client, 65536, /*batch=*/4);
  ASSERT_TRUE(pool.ok()) << pool.status();
  uint64_t first = 0;
  {
    auto buffer = (*pool)->Get();
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    EXPECT_EQ(buffer->size(), 65536u);
    std::memset(buffer->data(), 0x33, buffer->size());
    first = buffer->handle();
  }
  uint64_t allocs = daemon.PoolStats().allocs();
  EXPECT_EQ(allocs, 4u) << "one batch";
  for (int i = 0; i < 1000; ++i) {
    auto buffer = (*pool)->Get();
    ASSERT_TRUE(buffer.ok());
    EXPECT_EQ(buffer->handle(), first) << "the idle buffer comes back";
  }
  EXPECT_EQ(daemon.PoolStats().allocs(), allocs) << "no daemon call for recycled buffers";
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 4u) << "held by the session, attributed to it";
  EXPECT_EQ((*pool)->stats().idle, 4u);
  ASSERT_TRUE((*pool)->Trim().ok());
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u);
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(BufferPoolTest, LentBuffersWaitForTheOtherHoldersBeforeReuse) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  auto other = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok() && other.ok());
  auto pool = BufferPool::Create(**client, 4096, /*batch=*/1);
  ASSERT_TRUE(pool.ok());
  uint64_t lent = 0;
  {
    auto buffer = (*pool)->Get();
    ASSERT_TRUE(buffer.ok());
    lent = buffer->Lend();
  }
  auto retained = (*other)->RetainRef(lent);  // the other process holds it
  ASSERT_TRUE(retained.ok()) << retained.status();
  std::vector<PooledBuffer> taken;
  for (int i = 0; i < 40; ++i) {
    auto buffer = (*pool)->Get();
    ASSERT_TRUE(buffer.ok());
    EXPECT_NE(buffer->handle(), lent) << "get " << i;
    taken.push_back(std::move(*buffer));
  }
  taken.clear();
  EXPECT_EQ((*pool)->stats().lent, 1u);
  ASSERT_TRUE((*other)->ReleaseRef(lent).ok());
  bool reused = false;
  // The 40 idle buffers go first; before growing, the pool asks about the lent one.
  for (int i = 0; i < 41 && !reused; ++i) {
    auto buffer = (*pool)->Get();
    ASSERT_TRUE(buffer.ok());
    reused = buffer->handle() == lent;
    taken.push_back(std::move(*buffer));
  }
  EXPECT_TRUE(reused) << "back in circulation once nobody else holds it";
  EXPECT_GE((*pool)->stats().queries, 1u);
}

TEST(BufferPoolTest, BadSizesAndAFullPoolAreRefusedAndChangeNothing) {
  DaemonEnv daemon({.pools = {"default=1MiB"}});
  ASSERT_TRUE(daemon.ok());
  auto client = Client::Connect({.address = daemon.address()});
  ASSERT_TRUE(client.ok());
  auto zero = BufferPool::Create(**client, 0);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(zero.status().message().find("0-byte buffers: the size must be from 1 to max_alloc"),
            std::string::npos)
      << zero.status();
  auto batch = BufferPool::Create(**client, 64, 2000);
  EXPECT_NE(batch.status().message().find("batch of 2000 buffers: from 1 to 1024"), std::string::npos)
      << batch.status();
  auto big = BufferPool::Create(**client, 300 * 1024, 4);  // 4 x 300 KiB > 1 MiB
  ASSERT_TRUE(big.ok());
  auto full = (*big)->Get();
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 0u) << "all or nothing";
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
