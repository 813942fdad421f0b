// Every function of memd/memd.h against the same function of Debian's
// libavutil 5.1, on a real daemon: same NULL results, same *size values, same
// contents; plus memd's own refusals (foreign pointers, shared realloc).
#include <cerrno>
#include <climits>
#include <cstring>

#include <gtest/gtest.h>

extern "C" {
#include <libavutil/mem.h>
}
#include "daemon_env.h"
#include "memd/memd.h"

namespace memd::testing {
namespace {

constexpr uint64_t kAlignment = 64;

// Each test runs twice: with session arenas off, where every allocation is
// a daemon buffer, and on (the default for users), where blocks up to 64 KiB
// come from the session's chunks and larger ones from chunks of their own.
class CApiTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new DaemonEnv({.pools = {"default=64MiB", "small=1MiB"}});
    ASSERT_TRUE(daemon_->ok());
  }
  static void TearDownTestSuite() {
    memd_uninit();
    session_arenas_ = -1;
    ::setenv("MEMD_ARENA_THRESHOLD", "0", 1);  // as DaemonEnv leaves it for other suites
    delete daemon_;
  }
  void SetUp() override {
    if (session_arenas_ != static_cast<int>(GetParam())) {  // a session of the param's kind
      memd_uninit();
      ::setenv("MEMD_ARENA_THRESHOLD", GetParam() ? "65536" : "0", 1);
      ASSERT_EQ(memd_init(daemon_->address().c_str(), "default"), 0) << memd_last_error();
      session_arenas_ = GetParam();
    }
    memd_max_alloc(INT_MAX);
    av_max_alloc(INT_MAX);
    baseline_ = daemon_->PoolStats();
  }
  void TearDown() override {
    memd_max_alloc(INT_MAX);
    av_max_alloc(INT_MAX);
    // Every test frees what it allocated: nothing leaks, allocator intact.
    if (GetParam()) {
      // The arena keeps its chunks (they go back after 5 s idle): what is
      // freed is what its client reports in use (at its next tick), and the
      // pool holds nothing but chunks.
      v1::PoolStats now;
      EXPECT_TRUE(WaitFor([&] {
        now = daemon_->PoolStats();
        return now.arena_in_use_bytes() == 0 && now.used_bytes() == now.arena_reserved_bytes();
      })) << now.DebugString();
    } else {
      v1::PoolStats now = daemon_->PoolStats();
      EXPECT_EQ(now.live_buffers(), baseline_.live_buffers());
      EXPECT_EQ(now.used_bytes(), baseline_.used_bytes());
    }
    EXPECT_EQ(daemon_->CheckPools(), "");
  }
  static bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

  static DaemonEnv* daemon_;
  static int session_arenas_;  // -1: no session yet
  v1::PoolStats baseline_;
};
DaemonEnv* CApiTest::daemon_ = nullptr;
int CApiTest::session_arenas_ = -1;

TEST_P(CApiTest, MallocAndMalloczGiveAlignedWritableMemory) {
  for (size_t size : {0, 1, 63, 64, 65, 4096, 1000000}) {
    void* ours = memd_malloc(size);
    void* theirs = av_malloc(size);
    ASSERT_EQ(ours != nullptr, theirs != nullptr) << size;
    EXPECT_TRUE(Aligned(ours));
    std::memset(ours, 0x11, size);
    void* zeroed = memd_mallocz(size);
    ASSERT_NE(zeroed, nullptr);
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(static_cast<uint8_t*>(zeroed)[i], 0);
    memd_free(ours);
    memd_free(zeroed);
    av_free(theirs);
  }
}

TEST_P(CApiTest, MalloczIsZeroWhenTheBlockIsReused) {
  auto* dirty = static_cast<uint8_t*>(memd_malloc(8192));
  std::memset(dirty, 0xff, 8192);
  memd_free(dirty);
  auto* clean = static_cast<uint8_t*>(memd_mallocz(8192));
  ASSERT_EQ(clean, dirty) << "expected the freed block to be reused";
  for (int i = 0; i < 8192; ++i) ASSERT_EQ(clean[i], 0) << i;
  memd_free(clean);
}

TEST_P(CApiTest, MaxAllocLimitsLikeAvMaxAlloc) {
  EXPECT_EQ(memd_malloc(size_t{INT_MAX} + 1), nullptr);
  EXPECT_EQ(av_malloc(size_t{INT_MAX} + 1), nullptr);
  EXPECT_NE(std::string(memd_last_error()).find("max_alloc"), std::string::npos);
  memd_max_alloc(1000);
  av_max_alloc(1000);
  EXPECT_EQ(memd_malloc(1001) == nullptr, av_malloc(1001) == nullptr);
  void* ours = memd_malloc(1000);
  void* theirs = av_malloc(1000);
  EXPECT_NE(ours, nullptr);
  EXPECT_NE(theirs, nullptr);
  EXPECT_EQ(memd_realloc(ours, 1001), nullptr);
  EXPECT_EQ(av_realloc(theirs, 1001), nullptr);
  memd_free(ours);
  av_free(theirs);
}

TEST_P(CApiTest, ArrayFunctionsRejectOverflowLikeLibavutil) {
  const size_t big = SIZE_MAX / 2 + 1;
  EXPECT_EQ(memd_malloc_array(big, 2), nullptr);
  EXPECT_EQ(av_malloc_array(big, 2), nullptr);
  EXPECT_EQ(memd_mallocz_array(big, 4), nullptr);
  EXPECT_EQ(memd_calloc(big, 8), nullptr);
  EXPECT_EQ(av_calloc(big, 8), nullptr);
  EXPECT_NE(std::string(memd_last_error()).find("overflows"), std::string::npos);
  auto* a = static_cast<uint32_t*>(memd_malloc_array(100, 4));
  auto* z = static_cast<uint32_t*>(memd_mallocz_array(100, 4));
  auto* c = static_cast<uint32_t*>(memd_calloc(100, 4));
  ASSERT_TRUE(a && z && c);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(z[i] | c[i], 0u);
  a[99] = 7;
  void* r = memd_realloc_array(a, 200, 4);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(static_cast<uint32_t*>(r)[99], 7u);
  EXPECT_EQ(memd_realloc_array(r, big, 2), nullptr);
  EXPECT_EQ(static_cast<uint32_t*>(r)[99], 7u) << "failed realloc must keep the old buffer";
  memd_free(r);
  memd_free(z);
  memd_free(c);
}

TEST_P(CApiTest, SizeMultMatchesLibavutil) {
  const size_t cases[][2] = {{0, 0}, {1, SIZE_MAX}, {2, SIZE_MAX / 2}, {2, SIZE_MAX / 2 + 1},
                             {SIZE_MAX, SIZE_MAX}, {65536, 65536}, {1ull << 32, 1ull << 32}};
  for (const auto& c : cases) {
    size_t ours = 12345, theirs = 12345;
    EXPECT_EQ(memd_size_mult(c[0], c[1], &ours), av_size_mult(c[0], c[1], &theirs));
    EXPECT_EQ(ours, theirs);
  }
}

TEST_P(CApiTest, ReallocPreservesContentAndHandlesNullAndZero) {
  char* p = static_cast<char*>(memd_realloc(nullptr, 10));  // acts as malloc
  ASSERT_NE(p, nullptr);
  std::strcpy(p, "abcdefghi");
  void* blocker = memd_malloc(64);  // force the next grow to move
  p = static_cast<char*>(memd_realloc(p, 100000));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Aligned(p));
  EXPECT_STREQ(p, "abcdefghi");
  p = static_cast<char*>(memd_realloc(p, 0));  // libavutil: realloc(ptr, 1), not a free
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 'a');
  void* av = av_realloc(nullptr, 0);
  EXPECT_NE(av, nullptr);
  av_free(av);
  memd_free(p);
  memd_free(blocker);
}

TEST_P(CApiTest, FastReallocFollowsTheGrowthRule) {
  void* ours = nullptr;
  void* theirs = nullptr;
  unsigned int our_size = 0, their_size = 0;
  for (size_t min_size : {0, 1, 100, 50, 1000, 1001, 5000, 5000, 70000, 10}) {
    ours = memd_fast_realloc(ours, &our_size, min_size);
    theirs = av_fast_realloc(theirs, &their_size, min_size);
    ASSERT_EQ(our_size, their_size) << min_size;
    ASSERT_EQ(ours == nullptr, theirs == nullptr) << min_size;
    if (ours != nullptr && min_size > 0) {
      static_cast<uint8_t*>(ours)[min_size - 1] = 0x42;
      static_cast<uint8_t*>(ours)[0] = 0x43;
    }
  }
  EXPECT_EQ(static_cast<uint8_t*>(ours)[0], 0x43) << "content kept across growth";
  // Beyond max_alloc: NULL and *size = 0, as libavutil.
  memd_max_alloc(100000);
  av_max_alloc(100000);
  void* fail_ours = memd_fast_realloc(ours, &our_size, 200000);
  void* fail_theirs = av_fast_realloc(theirs, &their_size, 200000);
  EXPECT_EQ(fail_ours, nullptr);
  EXPECT_EQ(fail_theirs, nullptr);
  EXPECT_EQ(our_size, their_size);
  EXPECT_EQ(our_size, 0u);
  // The growth cap: min(max_alloc, min_size + min_size/16 + 32).
  unsigned int capped_ours = 0, capped_theirs = 0;
  void* c1 = memd_fast_realloc(nullptr, &capped_ours, 99990);
  void* c2 = av_fast_realloc(nullptr, &capped_theirs, 99990);
  EXPECT_EQ(capped_ours, capped_theirs);
  EXPECT_EQ(capped_ours, 100000u);
  memd_free(c1);
  av_free(c2);
  memd_free(ours);
  av_free(theirs);
}

TEST_P(CApiTest, FastMallocAndFastMalloczMatchLibavutil) {
  uint8_t* ours = nullptr;
  uint8_t* theirs = nullptr;
  unsigned int our_size = 0, their_size = 0;
  for (size_t min_size : {16, 8, 300, 3000, 2000, 40000}) {
    memd_fast_malloc(&ours, &our_size, min_size);
    av_fast_malloc(&theirs, &their_size, min_size);
    ASSERT_EQ(our_size, their_size);
    ASSERT_NE(ours, nullptr);
    std::memset(ours, 0x77, our_size);
  }
  uint8_t* z = nullptr;
  unsigned int z_size = 0, z_their_size = 0;
  uint8_t* zt = nullptr;
  for (size_t min_size : {100, 50, 5000}) {
    unsigned int before = z_size;
    memd_fast_mallocz(&z, &z_size, min_size);
    av_fast_mallocz(&zt, &z_their_size, min_size);
    ASSERT_EQ(z_size, z_their_size);
    if (z_size != before) {  // grew: freshly zeroed (libavutil keeps content otherwise)
      for (unsigned int i = 0; i < z_size; ++i) ASSERT_EQ(z[i], 0) << i;
    } else {
      EXPECT_EQ(z[0], 0x55) << "no growth: the buffer is kept as it was";
    }
    std::memset(z, 0x55, z_size);  // dirty it; the next growth must zero again
  }
  memd_max_alloc(1000);
  av_max_alloc(1000);
  memd_fast_malloc(&ours, &our_size, 100000);  // too big: frees and zeroes
  av_fast_malloc(&theirs, &their_size, 100000);
  EXPECT_EQ(ours, nullptr);
  EXPECT_EQ(theirs, nullptr);
  EXPECT_EQ(our_size, their_size);
  memd_freep(&z);
  av_freep(&zt);
  EXPECT_EQ(z, nullptr);
}

TEST_P(CApiTest, StrdupStrndupMemdupMatchLibavutil) {
  EXPECT_EQ(memd_strdup(nullptr), nullptr);
  EXPECT_EQ(memd_strndup(nullptr, 5), nullptr);
  EXPECT_EQ(memd_memdup(nullptr, 5), nullptr);
  const char* text = "hello, shared world";
  for (const char* s : {"", "x", text}) {
    char* ours = memd_strdup(s);
    char* theirs = av_strdup(s);
    ASSERT_NE(ours, nullptr);
    EXPECT_STREQ(ours, theirs);
    EXPECT_TRUE(Aligned(ours));
    memd_free(ours);
    av_free(theirs);
  }
  for (size_t len : {0, 1, 5, 19, 20, 1000}) {
    char* ours = memd_strndup(text, len);
    char* theirs = av_strndup(text, len);
    ASSERT_NE(ours, nullptr);
    EXPECT_STREQ(ours, theirs) << len;
    memd_free(ours);
    av_free(theirs);
  }
  const char unterminated[4] = {'a', 'b', 'c', 'd'};
  char* u = memd_strndup(unterminated, 4);
  EXPECT_STREQ(u, "abcd");
  memd_free(u);
  uint8_t bytes[300];
  for (int i = 0; i < 300; ++i) bytes[i] = static_cast<uint8_t>(i);
  for (size_t size : {0, 1, 300}) {
    void* ours = memd_memdup(bytes, size);
    void* theirs = av_memdup(bytes, size);
    ASSERT_EQ(ours != nullptr, theirs != nullptr);
    EXPECT_EQ(std::memcmp(ours, theirs, size), 0);
    memd_free(ours);
    av_free(theirs);
  }
}

TEST_P(CApiTest, FreeAndFreepIgnoreNullAndRefuseForeignPointers) {
  memd_free(nullptr);
  void* null_ptr = nullptr;
  memd_freep(&null_ptr);
  memd_freep(nullptr);
  int on_stack = 0;
  std::string heap(100, 'x');
  uint8_t* ours = static_cast<uint8_t*>(memd_malloc(1000));
  v1::PoolStats before = daemon_->PoolStats();
  memd_free(&on_stack);
  EXPECT_NE(std::string(memd_last_error()).find("not a pointer memd returned"), std::string::npos);
  memd_free(heap.data());
  memd_free(ours + 1);  // interior pointer
  EXPECT_EQ(memd_realloc(ours + 64, 10), nullptr);
  EXPECT_EQ(memd_handle(ours + 1), 0u);
  EXPECT_EQ(memd_handle(&on_stack), 0u);
  EXPECT_EQ(memd_handle(nullptr), 0u);
  v1::PoolStats after = daemon_->PoolStats();
  EXPECT_EQ(after.live_buffers(), before.live_buffers());
  EXPECT_EQ(after.frees(), before.frees());
  memd_freep(&ours);
  EXPECT_EQ(ours, nullptr);
}

TEST_P(CApiTest, HandleAndRetainCountReferences) {
  auto* p = static_cast<uint8_t*>(memd_malloc(5000));
  uint64_t handle = memd_handle(p);
  ASSERT_NE(handle, 0u);
  size_t size = 0;
  auto* again = static_cast<uint8_t*>(memd_retain(handle, &size));
  EXPECT_EQ(again, p);
  EXPECT_EQ(size, 5000u);
  EXPECT_EQ(memd_realloc(p, 10000), nullptr) << "two references: realloc must refuse";
  EXPECT_NE(std::string(memd_last_error()).find("references"), std::string::npos);
  memd_free(p);
  EXPECT_EQ(memd_handle(p), handle) << "one reference left";
  memd_free(p);
  EXPECT_EQ(memd_handle(p), 0u);
  EXPECT_EQ(memd_retain(handle, &size), nullptr) << "freed handle";
  EXPECT_NE(std::string(memd_last_error()).find("freed"), std::string::npos);
  EXPECT_EQ(memd_retain(0, nullptr), nullptr);
  EXPECT_EQ(memd_retain(0x00ffffff00001234ull, nullptr), nullptr);
}

TEST_P(CApiTest, PoolExhaustionIsANullWithAReason) {
  void* huge = memd_malloc(100ull << 20);  // pool is 64 MiB
  EXPECT_EQ(huge, nullptr);
  EXPECT_NE(std::string(memd_last_error()).find("exceeds the size"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Arenas, CApiTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ArenasOn" : "ArenasOff";
                         });

TEST(CApiInitTest, InitErrorsAreNegativeErrnos) {
  // Runs in its own process state only before CApiTest initializes: use
  // addresses that cannot match the suite's daemon.
  DaemonEnv daemon;
  ASSERT_TRUE(daemon.ok());
  memd_uninit();
  EXPECT_EQ(memd_init("not an address", "default"), -EINVAL);
  EXPECT_EQ(memd_init(daemon.address().c_str(), "bad.name"), -EINVAL);
  EXPECT_EQ(memd_init(daemon.address().c_str(), "nosuchpool"), -ENOENT);
  EXPECT_NE(std::string(memd_last_error()).find("nosuchpool"), std::string::npos);
  setenv("MEMD_CONNECT_TIMEOUT", "0", 1);  // one try (ConnectTest covers the wait)
  EXPECT_EQ(memd_init("unix:///nonexistent/memd.sock", "default"), -ECONNREFUSED);
  EXPECT_NE(std::string(memd_last_error()).find("/nonexistent/memd.sock"), std::string::npos);
  unsetenv("MEMD_CONNECT_TIMEOUT");
  ASSERT_EQ(memd_init(daemon.address().c_str(), "default"), 0);
  EXPECT_EQ(memd_init(daemon.address().c_str(), "default"), 0) << "same target: no-op";
  EXPECT_EQ(memd_init("unix:///other.sock", "default"), -EBUSY);
  void* p = memd_malloc(100);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 1u);
  memd_uninit();  // session ends: the daemon releases p
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().live_buffers() == 0; }));
}

TEST(CApiInitTest, FirstCallInitializesFromEnvironment) {
  DaemonEnv daemon({.pools = {"envpool=1MiB"}});
  ASSERT_TRUE(daemon.ok());
  memd_uninit();
  setenv("MEMD_ADDRESS", daemon.address().c_str(), 1);
  setenv("MEMD_POOL", "envpool", 1);
  void* p = memd_malloc(10);
  EXPECT_NE(p, nullptr) << memd_last_error();
  EXPECT_EQ(daemon.PoolStats("envpool").live_buffers(), 1u);
  memd_free(p);
  memd_uninit();
  unsetenv("MEMD_ADDRESS");
  unsetenv("MEMD_POOL");
}

}  // namespace
}  // namespace memd::testing
