// Large arena blocks (client/arena_large.cc): above the threshold and up to
// Arena::kMaxLargeBytes a block has a chunk of its own that the next
// allocation it fits reuses without a daemon round trip. The promises stay:
// a handle of a freed large block is NOT_FOUND however often the memory is
// reused, a registered one is not reused while another process holds it, the
// cache goes back to the pool within its ticks, and a full pool takes the
// cache back before it refuses.
#include <cstring>

#include <gtest/gtest.h>

#include "arena_session.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace memd::testing {
namespace {

constexpr size_t kLarge = 1 << 20;  // above the default threshold (64 KiB)

TEST(ArenaLargeTest, ALoopOfLargeBlocksReusesOneChunkAndKeepsItsBytes) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  const uint64_t allocs_before = daemon.PoolStats().allocs();
  std::vector<uint8_t> source(kLarge);
  for (int i = 0; i < 100; ++i) {
    std::memset(source.data(), i, source.size());
    auto* p = static_cast<uint8_t*>(memd_memdup(source.data(), source.size()));
    ASSERT_NE(p, nullptr) << memd_last_error();
    ASSERT_EQ(std::memcmp(p, source.data(), source.size()), 0) << i;
    auto* z = static_cast<uint8_t*>(memd_mallocz(kLarge - 100));  // a second, zeroed
    ASSERT_NE(z, nullptr) << memd_last_error();
    for (size_t j = 0; j < kLarge - 100; j += 4093) ASSERT_EQ(z[j], 0) << i << " " << j;
    std::memset(z, 0xee, kLarge - 100);
    memd_free(z);
    memd_free(p);
  }
  // Two blocks live at a time: two chunks, granted once each, not 200 times.
  EXPECT_LE(daemon.PoolStats().allocs() - allocs_before, 4u);
  EXPECT_EQ(daemon.CheckPools(), "");
  // Unused, the cache goes back to the pool within its ticks (200 ms).
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() <= 1; }))
      << daemon.PoolStats().DebugString();
}

TEST(ArenaLargeTest, AHandleOfAFreedLargeBlockIsNotFoundHoweverOftenItIsReused) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  ExpectFreedBlocksHandlesAreNotFound(*other, kLarge, 100);
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaLargeTest, ARegisteredLargeBlockHeldElsewhereIsNotReused) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  auto* p = static_cast<uint8_t*>(memd_malloc(kLarge));
  ASSERT_NE(p, nullptr) << memd_last_error();
  std::memset(p, 0x5a, kLarge);
  uint64_t handle = memd_handle(p);
  ASSERT_NE(handle, 0u) << memd_last_error();
  absl::StatusOr<Buffer> kept = other->Retain(handle);
  ASSERT_TRUE(kept.ok()) << kept.status();
  memd_free(p);  // our reference goes; the other process's stays
  for (int i = 0; i < 20; ++i) {
    auto* q = static_cast<uint8_t*>(memd_malloc(kLarge));
    ASSERT_NE(q, nullptr) << memd_last_error();
    EXPECT_NE(q, p) << "a block another process holds was handed out again";
    std::memset(q, 0xa5, kLarge);
    memd_free(q);
  }
  for (size_t i = 0; i < kLarge; i += 997) ASSERT_EQ(kept->data()[i], 0x5a) << i;
  ASSERT_TRUE(kept->Release().ok());
  EXPECT_EQ(daemon.CheckPools(), "");
}

// The frame handoff: each frame registered, retained and released by another
// process, then freed. Parked until the other side let go, its chunk serves
// the next frame; a pool of five frames never runs out.
TEST(ArenaLargeTest, FramesHandedToAnotherProcessAreReusedOnceReleased) {
  DaemonEnv daemon({.pools = {"default=64MiB"}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  constexpr size_t kFrame = 12441600;  // 4K NV12
  for (int i = 0; i < 50; ++i) {
    auto* frame = static_cast<uint8_t*>(memd_malloc(kFrame));
    ASSERT_NE(frame, nullptr) << "frame " << i << ": " << memd_last_error();
    frame[0] = static_cast<uint8_t>(i);
    uint64_t handle = memd_handle(frame);
    ASSERT_NE(handle, 0u) << memd_last_error();
    {
      absl::StatusOr<Buffer> seen = other->Retain(handle);
      ASSERT_TRUE(seen.ok()) << seen.status();
      EXPECT_EQ(seen->data()[0], i);
    }
    memd_free(frame);
  }
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaLargeTest, AFullPoolTakesTheCacheBackBeforeRefusing) {
  DaemonEnv daemon({.pools = {"default=16MiB"}});
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  // Four 3 MiB blocks freed: their chunks (12 MiB) wait in the cache.
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) {
    blocks.push_back(memd_malloc(3 << 20));
    ASSERT_NE(blocks.back(), nullptr) << memd_last_error();
  }
  for (void* b : blocks) memd_free(b);
  // 8 MiB fits in none of them (more than twice the size is not reused, less
  // does not fit) and not beside them: the cache goes back and it is served.
  void* big = memd_malloc(8 << 20);
  ASSERT_NE(big, nullptr) << memd_last_error();
  std::memset(big, 1, 8 << 20);
  memd_free(big);
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
