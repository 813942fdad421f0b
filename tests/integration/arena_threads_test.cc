// Session arenas under threads (docs/architecture.md, "Arenas"): the
// per-thread caches serve and take back blocks without a lock, so this is
// where ThreadSanitizer (scripts/test.sh runs the `arena` label under it)
// looks for races. Several threads of one process allocate, write, realloc,
// register and free blocks, freeing many of them on another thread than the
// one that allocated them; every block keeps its own bytes, no two live
// blocks overlap, and the pool is whole afterwards.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace memd::testing {
namespace {

struct Live {
  uint8_t* data;
  size_t size;
  uint8_t fill;
};

// Blocks handed from one thread to another, to be checked and freed there.
class Mailbox {
 public:
  void Put(Live block) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.push_back(block);
  }
  bool Take(Live* block) {
    std::lock_guard<std::mutex> lock(mu_);
    if (blocks_.empty()) return false;
    *block = blocks_.back();
    blocks_.pop_back();
    return true;
  }

 private:
  std::mutex mu_;
  std::vector<Live> blocks_;
};

// A block whose bytes are not all `fill` has been written by someone else.
bool Intact(const Live& block) {
  return std::all_of(block.data, block.data + block.size,
                     [&](uint8_t b) { return b == block.fill; });
}

TEST(ArenaThreadsTest, ThreadsAllocateRegisterAndFreeAcrossThreadsWithoutMixingBytes) {
  DaemonEnv daemon({.pools = {"default=128MiB"}});
  ASSERT_TRUE(daemon.ok());
  ::setenv("MEMD_ARENA_THRESHOLD", "65536", 1);
  ASSERT_EQ(memd_init(daemon.address().c_str(), "default"), 0) << memd_last_error();
  std::unique_ptr<Client> other;
  {
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect({.address = daemon.address()});
    ASSERT_TRUE(c.ok()) << c.status();
    other = std::move(*c);
  }

  constexpr int kThreads = 4;
  constexpr int kSteps = 3000;
  std::vector<Mailbox> mailboxes(kThreads);
  std::atomic<int> damaged{0}, failed{0}, registered{0}, seen_by_other{0};
  std::mutex why_mu;
  std::string why;  // the last failure
  auto work = [&](int me) {
    std::mt19937 rng(1234 + me);
    std::vector<Live> mine;
    for (int step = 0; step < kSteps; ++step) {
      Live from_peer;
      if (mailboxes[me].Take(&from_peer)) {  // allocated on another thread
        if (!Intact(from_peer)) ++damaged;
        memd_free(from_peer.data);
      }
      int op = static_cast<int>(rng() % 10);
      if (op < 5 || mine.empty()) {
        size_t size = 16 + rng() % 65521;  // 16 B .. 64 KiB: the arena's range
        auto* p = static_cast<uint8_t*>(memd_malloc(size));
        if (p == nullptr) {
          ++failed;
          std::lock_guard<std::mutex> lock(why_mu);
          why = memd_last_error();
          continue;
        }
        uint8_t fill = static_cast<uint8_t>(rng());
        std::memset(p, fill, size);
        mine.push_back({p, size, fill});
      } else if (op < 7) {  // hand one to the next thread
        mailboxes[(me + 1) % kThreads].Put(mine.back());
        mine.pop_back();
      } else if (op < 8) {  // grow or shrink in place or by moving
        Live& b = mine[rng() % mine.size()];
        if (!Intact(b)) ++damaged;
        size_t size = 16 + rng() % 65521;
        auto* p = static_cast<uint8_t*>(memd_realloc(b.data, size));
        if (p == nullptr) {
          ++failed;
          std::lock_guard<std::mutex> lock(why_mu);
          why = memd_last_error();
          continue;
        }
        if (size > b.size) std::memset(p + b.size, b.fill, size - b.size);
        b = {p, size, b.fill};
      } else if (op < 9) {  // a handle on demand, seen by another process's session
        Live& b = mine[rng() % mine.size()];
        uint64_t handle = memd_handle(b.data);
        if (handle == 0) {
          ++failed;
          std::lock_guard<std::mutex> lock(why_mu);
          why = memd_last_error();
          continue;
        }
        ++registered;
        absl::StatusOr<Buffer> seen = other->Retain(handle);
        if (!seen.ok() || seen->size() < b.size) {
          ++failed;
          std::lock_guard<std::mutex> lock(why_mu);
          why = seen.ok() ? absl::StrFormat("handle %#x: %u bytes for a block of %u", handle,
                                            seen->size(), b.size)
                          : std::string(seen.status().message());
          continue;
        }
        if (seen->data()[0] == b.fill && seen->data()[b.size - 1] == b.fill) ++seen_by_other;
      } else {
        Live b = mine.back();
        mine.pop_back();
        if (!Intact(b)) ++damaged;
        memd_free(b.data);
      }
    }
    for (const Live& b : mine) {
      if (!Intact(b)) ++damaged;
      memd_free(b.data);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(work, i);
  for (std::thread& t : threads) t.join();
  for (Mailbox& box : mailboxes) {  // what the last steps handed over
    Live b;
    while (box.Take(&b)) {
      if (!Intact(b)) ++damaged;
      memd_free(b.data);
    }
  }

  EXPECT_EQ(damaged.load(), 0) << "a live block's bytes changed under its owner";
  EXPECT_EQ(failed.load(), 0) << why;
  EXPECT_GT(registered.load(), 0);
  EXPECT_EQ(seen_by_other.load(), registered.load());
  other.reset();
  memd_uninit();
  ::unsetenv("MEMD_ARENA_THRESHOLD");
  // Every block and chunk went back: the session ended with nothing held.
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }))
      << daemon.PoolStats().DebugString();
  EXPECT_EQ(daemon.CheckPools(), "");
}

}  // namespace
}  // namespace memd::testing
