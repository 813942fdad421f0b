// The arena suites' shared pieces: this process's C API session with arenas
// on (the harness turns them off for other suites, DaemonEnv), a plain
// C++ session whose Allocate never uses an arena, and a client process
// (memd_arena_client, arena_client.cc) with arenas on.
#ifndef MEMD_TESTS_INTEGRATION_ARENA_SESSION_H_
#define MEMD_TESTS_INTEGRATION_ARENA_SESSION_H_

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "memd/memd.h"
#include "subprocess.h"

namespace memd::testing {

// The default threshold (Arena::kDefaultThresholdBytes), as the environment says it.
inline constexpr char kArenaOn[] = "65536";

// The C API session of this process, attached to `daemon` with arenas on,
// for one test.
class ArenaCSession {
 public:
  explicit ArenaCSession(const DaemonEnv& daemon) {
    ::setenv("MEMD_ARENA_THRESHOLD", kArenaOn, 1);
    ok_ = memd_init(daemon.address().c_str(), "default") == 0;
    EXPECT_TRUE(ok_) << memd_last_error();
  }
  ~ArenaCSession() {
    memd_uninit();
    ::unsetenv("MEMD_ARENA_THRESHOLD");
  }
  ArenaCSession(const ArenaCSession&) = delete;
  ArenaCSession& operator=(const ArenaCSession&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
};

inline std::unique_ptr<Client> ConnectPlain(const DaemonEnv& daemon) {
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect({.address = daemon.address(), .pool = "default", .lane = true});
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

// memd_arena_client `args` attached to `daemon`'s default pool, arenas on.
inline Subprocess ArenaClient(const DaemonEnv& daemon, std::vector<std::string> args) {
  args.insert(args.begin(), MEMD_ARENA_CLIENT_BINARY);
  std::map<std::string, std::string> env = daemon.ClientEnv();
  env["MEMD_ARENA_THRESHOLD"] = kArenaOn;
  return Subprocess(args, env);
}

// The stale-handle promise for arena blocks of `size` bytes: `rounds` times a
// block is allocated, registered (memd_handle), seen by `other` through its
// fresh handle, and freed; each handle is NOT_FOUND at once and stays so,
// while the memory is reused. REQUIRES: an ArenaCSession.
inline void ExpectFreedBlocksHandlesAreNotFound(Client& other, size_t size, int rounds) {
  std::set<uintptr_t> addresses;
  std::set<uint64_t> handles;
  for (int i = 0; i < rounds; ++i) {
    auto* p = static_cast<uint8_t*>(memd_malloc(size));
    ASSERT_NE(p, nullptr) << memd_last_error();
    addresses.insert(reinterpret_cast<uintptr_t>(p));
    std::memset(p, i & 0xff, size);
    uint64_t handle = memd_handle(p);
    ASSERT_NE(handle, 0u) << memd_last_error();
    EXPECT_TRUE(handles.insert(handle).second) << "handle issued twice: " << handle;
    {
      // The fresh handle works: another process sees the same bytes.
      absl::StatusOr<Buffer> seen = other.Retain(handle);
      ASSERT_TRUE(seen.ok()) << seen.status();
      EXPECT_EQ(seen->size(), size);
      EXPECT_EQ(seen->data()[size - 1], i & 0xff);
    }
    memd_free(p);
    ASSERT_EQ(other.RetainRef(handle).status().code(), absl::StatusCode::kNotFound) << "round " << i;
  }
  // The memory was reused (the arena recycles slots once nobody holds
  // their handle), and every old handle is still refused.
  EXPECT_LT(addresses.size(), static_cast<size_t>(rounds)) << "the memory was not reused";
  for (uint64_t handle : handles) {
    EXPECT_EQ(other.RetainRef(handle).status().code(), absl::StatusCode::kNotFound);
  }
}

}  // namespace memd::testing

#endif  // MEMD_TESTS_INTEGRATION_ARENA_SESSION_H_
