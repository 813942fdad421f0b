// Session arenas (docs/architecture.md, "Arenas") on real daemons and real
// client processes: handles on demand are fresh every time, a registered
// block outlives its crashed owner while another process holds it, pool
// pressure takes idle chunks back, a daemon kill -9 keeps arena blocks, and
// libavutil's semantics hold at the threshold boundary.
#include <signal.h>

#include <climits>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

extern "C" {
#include <libavutil/mem.h>
}
#include "arena_session.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"
#include "subprocess.h"

namespace memd::testing {
namespace {

constexpr size_t kThreshold = 64 * 1024;  // the default (Arena::kDefaultThresholdBytes)

TEST(ArenaTest, HandleOfABlockFreedAndReusedIsNotFoundEveryTime) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  ExpectFreedBlocksHandlesAreNotFound(*other, 64, 1000);
  EXPECT_EQ(daemon.CheckPools(), "");
  // memctl clients (and the pool's stats) show what the arena reported at its tick.
  EXPECT_TRUE(WaitFor([&] {
    v1::ListSessionsResponse sessions = daemon.Sessions();
    for (const v1::SessionInfo& s : sessions.sessions()) {
      if (s.arena_local_allocs() >= 1000 && s.arena_reserved_bytes() >= (1u << 20)) return true;
    }
    return false;
  }));
  EXPECT_GE(daemon.PoolStats().arena_local_allocs(), 1000u);
}

TEST(ArenaTest, RegisteredBlockOutlivesItsCrashedOwnerUntilReleased) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  v1::PoolStats baseline = daemon.PoolStats();
  std::unique_ptr<Client> reader = ConnectPlain(daemon);
  ASSERT_NE(reader, nullptr);
  Subprocess owner = ArenaClient(daemon, {"hold", "1", "4096", "90"});
  std::vector<uint64_t> handles = ReadHandles(owner);
  ASSERT_EQ(handles.size(), 1u);
  absl::StatusOr<Buffer> kept = reader->Retain(handles[0]);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 4096u);
  owner.Kill(SIGKILL);
  owner.Wait();
  ASSERT_TRUE(WaitFor([&] { return daemon.Sessions().sessions_size() == 1; }));
  // The owner's chunk went with its session, except the range we hold.
  for (size_t i = 0; i < kept->size(); ++i) ASSERT_EQ(kept->data()[i], 90) << i;
  v1::PoolStats held = daemon.PoolStats();
  EXPECT_EQ(held.live_buffers(), baseline.live_buffers() + 1);
  EXPECT_GT(held.used_bytes(), baseline.used_bytes());
  EXPECT_EQ(daemon.CheckPools(), "");
  // Another allocation cannot land on the kept bytes.
  absl::StatusOr<Buffer> fresh = reader->Allocate(1 << 20);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  std::memset(fresh->data(), 0, fresh->size());
  for (size_t i = 0; i < kept->size(); ++i) ASSERT_EQ(kept->data()[i], 90) << i;
  ASSERT_TRUE(fresh->Release().ok());
  // Released: the whole chunk returns to the pool.
  ASSERT_TRUE(kept->Release().ok());
  v1::PoolStats after = daemon.PoolStats();
  EXPECT_EQ(after.live_buffers(), baseline.live_buffers());
  EXPECT_EQ(after.used_bytes(), baseline.used_bytes());
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaTest, PoolPressureTakesIdleChunksBack) {
  DaemonEnv daemon({.pools = {"default=8MiB"}});
  ASSERT_TRUE(daemon.ok());
  std::unique_ptr<Client> big = ConnectPlain(daemon);
  ASSERT_NE(big, nullptr);
  // 96 blocks of 64 KiB: the arena holds chunks of 1, 2 and 4 MiB (7 of 8 MiB).
  Subprocess holder = ArenaClient(daemon, {"idle", "96", "65536"});
  ASSERT_EQ(holder.ReadLine(), "allocated");
  absl::StatusOr<Buffer> refused = big->Allocate(5 << 20);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  // Freed: its chunks are empty but still the session's (idle).
  holder.CloseStdin();
  ASSERT_EQ(holder.ReadLine(), "freed");
  EXPECT_GE(daemon.PoolStats().used_bytes(), 6u << 20);
  absl::StatusOr<Buffer> served = big->Allocate(5 << 20);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_GE(daemon.PoolStats().arena_chunks_taken(), 2u);
  EXPECT_EQ(daemon.CheckPools(), "");
  holder.Kill(SIGKILL);
  holder.Wait();
}

TEST(ArenaTest, DaemonKillAndRestartKeepsArenaBlocks) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ::setenv("MEMD_OUTAGE_WAIT_MS", "20000", 1);
  ArenaCSession session(daemon);
  ::unsetenv("MEMD_OUTAGE_WAIT_MS");
  ASSERT_TRUE(session.ok());
  auto* plain = static_cast<uint8_t*>(memd_malloc(1000));      // no handle yet
  auto* shared = static_cast<uint8_t*>(memd_malloc(3000));     // registered
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(shared, nullptr);
  std::memset(plain, 0x11, 1000);
  std::memset(shared, 0x22, 3000);
  uint64_t shared_handle = memd_handle(shared);
  ASSERT_NE(shared_handle, 0u) << memd_last_error();

  ASSERT_TRUE(daemon.Stop(SIGKILL).has_value());
  ASSERT_TRUE(daemon.Restart());
  // A daemon round trip waits for the reconnection (and its reclaim).
  void* large = memd_malloc(1 << 20);
  ASSERT_NE(large, nullptr) << memd_last_error();
  memd_free(large);

  for (int i = 0; i < 1000; ++i) ASSERT_EQ(plain[i], 0x11) << i;
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(shared[i], 0x22) << i;
  EXPECT_EQ(memd_handle(shared), shared_handle);
  std::unique_ptr<Client> other = ConnectPlain(daemon);
  ASSERT_NE(other, nullptr);
  {
    absl::StatusOr<Buffer> seen = other->Retain(shared_handle);
    ASSERT_TRUE(seen.ok()) << seen.status();
    EXPECT_EQ(seen->data()[2999], 0x22);
  }
  uint64_t plain_handle = memd_handle(plain);  // registered after the restart
  ASSERT_NE(plain_handle, 0u) << memd_last_error();
  {
    absl::StatusOr<Buffer> seen = other->Retain(plain_handle);
    ASSERT_TRUE(seen.ok()) << seen.status();
    EXPECT_EQ(seen->data()[999], 0x11);
  }
  void* more = memd_malloc(500);  // the arena goes on serving
  ASSERT_NE(more, nullptr) << memd_last_error();
  memd_free(more);
  memd_free(plain);
  memd_free(shared);
  EXPECT_EQ(other->RetainRef(shared_handle).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(daemon.CheckPools(), "");
}

// The av_* differential of c_api_test.cc, at the arena threshold's edges.
TEST(ArenaTest, AvSemanticsHoldAtTheThreshold) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  ArenaCSession session(daemon);
  ASSERT_TRUE(session.ok());
  av_max_alloc(INT_MAX);
  memd_max_alloc(INT_MAX);
  const size_t sizes[] = {0, 1, kThreshold - 64, kThreshold - 1, kThreshold, kThreshold + 1,
                          2 * kThreshold};
  for (size_t size : sizes) {
    void* ours = memd_mallocz(size);
    void* theirs = av_mallocz(size);
    ASSERT_EQ(ours != nullptr, theirs != nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ours) % 64, 0u) << size;
    EXPECT_EQ(std::memcmp(ours, theirs, size), 0) << size;
    // Grow and shrink across the threshold: content preserved as libavutil.
    std::memset(ours, 0x5c, size);
    std::memset(theirs, 0x5c, size);
    for (size_t to : sizes) {
      ours = memd_realloc(ours, to);
      theirs = av_realloc(theirs, to);
      ASSERT_EQ(ours != nullptr, theirs != nullptr) << size << " -> " << to;
      size_t kept = std::min(size, to);
      EXPECT_EQ(std::memcmp(ours, theirs, kept), 0) << size << " -> " << to;
      std::memset(ours, 0x5c, to);
      std::memset(theirs, 0x5c, to);
      size = to;
    }
    memd_free(ours);
    av_free(theirs);
  }
  // fast_realloc growth crosses the threshold with the same *size values.
  unsigned int our_size = 0, their_size = 0;
  void* ours = nullptr;
  void* theirs = nullptr;
  for (size_t min_size : {kThreshold / 2, kThreshold - 40, kThreshold, kThreshold + 8}) {
    ours = memd_fast_realloc(ours, &our_size, min_size);
    theirs = av_fast_realloc(theirs, &their_size, min_size);
    ASSERT_EQ(ours != nullptr, theirs != nullptr);
    EXPECT_EQ(our_size, their_size) << min_size;
  }
  memd_free(ours);
  av_free(theirs);
  // memdup and max_alloc at the edge: the same refusal as the daemon path.
  std::string text(kThreshold, 'q');
  void* dup = memd_memdup(text.data(), text.size());
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(std::memcmp(dup, text.data(), text.size()), 0);
  memd_freep(&dup);
  EXPECT_EQ(dup, nullptr);
  memd_max_alloc(100);
  EXPECT_EQ(memd_malloc(101), nullptr);
  EXPECT_NE(std::string(memd_last_error()).find("exceeds max_alloc 100 bytes"), std::string::npos)
      << memd_last_error();
  void* at_limit = memd_malloc(100);
  EXPECT_NE(at_limit, nullptr);
  memd_free(at_limit);
  memd_max_alloc(INT_MAX);
  // Interior pointers and double frees of arena blocks are refused.
  auto* p = static_cast<uint8_t*>(memd_malloc(200));
  memd_free(p + 64);
  EXPECT_NE(std::string(memd_last_error()).find("not a pointer memd returned"), std::string::npos);
  memd_free(p);
  memd_free(p);
  EXPECT_NE(std::string(memd_last_error()).find("not a pointer memd returned"), std::string::npos);
  EXPECT_EQ(daemon.CheckPools(), "");
}

TEST(ArenaTest, ThresholdAboveTheLimitIsRefusedNamingIt) {
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(
      {.address = daemon.address(), .pool = "default", .arena_threshold_bytes = 1 << 20});
  ASSERT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("1048576 exceeds the limit of 262144"),
            std::string::npos)
      << client.status();
}

}  // namespace
}  // namespace memd::testing
