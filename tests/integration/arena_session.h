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

}  // namespace memd::testing

#endif  // MEMD_TESTS_INTEGRATION_ARENA_SESSION_H_
