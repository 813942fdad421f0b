// DaemonEnv: starts a real `memd` process on a temporary Unix socket with a
// unique instance name, waits until it serves, and stops it (SIGTERM) on
// destruction, so every integration test is a few lines (after iceoryx's
// RouDiEnv). Thread-compatible: one test thread uses it.
#ifndef MEMD_TESTS_SUPPORT_DAEMON_ENV_H_
#define MEMD_TESTS_SUPPORT_DAEMON_ENV_H_

#include <csignal>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "memd/v1/admin.grpc.pb.h"
#include "subprocess.h"

namespace memd::testing {

// Paths of the built binaries (set by CMake).
std::string MemdBinary();
std::string MemctlBinary();
std::string TestClientBinary();

// A fresh "memd-test-<pid>-<n>" name: unique per process and call.
std::string UniqueInstanceName();

// The private state directory of `instance` (memd's default when run as
// root, as the tests are) and a pool's state table in it.
std::string StateDirectoryOf(const std::string& instance);
std::string StateFilePath(const std::string& instance, const std::string& pool);

struct DaemonOptions {
  std::vector<std::string> pools = {"default=64MiB"};
  std::vector<std::string> extra_args;
  std::string instance;  // empty: UniqueInstanceName()
  // Put the socket in a directory the daemon must create (<dir>/run/).
  bool socket_in_new_dir = false;
};

class DaemonEnv {
 public:
  explicit DaemonEnv(DaemonOptions options = {});
  ~DaemonEnv();

  // Whether the daemon came up and serves (check with ASSERT_TRUE).
  bool ok() const { return ok_; }
  const std::string& address() const { return address_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& instance() const { return instance_; }
  pid_t pid() const { return process_->pid(); }

  // Env for a client process: MEMD_ADDRESS pointing here, MEMD_POOL = pool.
  std::map<std::string, std::string> ClientEnv(const std::string& pool = "default") const;

  v1::GetStatsResponse Stats() const;
  // The live sessions (memctl clients).
  v1::ListSessionsResponse Sessions() const;
  v1::PoolStats PoolStats(const std::string& pool = "default") const;
  // One channel's stats in `pool`; empty (all zero) when it does not exist.
  v1::ChannelStats ChannelStats(const std::string& channel,
                                const std::string& pool = "default") const;
  // Empty string when every pool's invariant checker passes.
  std::string CheckPools() const;
  // `memctl channel drain POOL/CHANNEL` through the Admin RPC, for a test that
  // drains many times: what it released in `drained`, or the RPC's error.
  grpc::Status DrainChannel(const std::string& channel, v1::DrainChannelResponse* drained,
                            const std::string& pool = "default") const;

  // Sends `signal` and waits for exit; returns the raw wait status.
  std::optional<int> Stop(int signal = SIGTERM);
  // Stops it like Stop and returns everything it printed; `exit_code` gets
  // ExitCode of its wait status.
  std::string StopAndReadOutput(int signal, int* exit_code);
  // Starts the daemon again with the same options (after Stop).
  bool Restart();

 private:
  bool Start();
  // Writes why the daemon just started is not serving to stderr.
  void ReportStartFailure(const std::string& what);

  DaemonOptions options_;
  std::string dir_, socket_path_, address_, instance_;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  bool ok_ = false;
};

// Runs the real memctl against `daemon` (as `uid` when given: AsUid): its
// exit code and its stdout and stderr together.
std::pair<int, std::string> RunMemctl(const DaemonEnv& daemon, std::vector<std::string> args,
                                      std::optional<int> uid = std::nullopt);

// Reads the "handle <n>" lines memd_test_client prints until "ready"; empty
// (with a test failure recorded) when the client ends or prints anything else.
std::vector<uint64_t> ReadHandles(Subprocess& client);

// True when something accepts connections on the Unix socket at `path`.
bool SocketAccepts(const std::string& path);

// Polls `condition` every 5 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_DAEMON_ENV_H_
