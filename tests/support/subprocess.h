// Subprocess: fork/exec a real program with piped stdin/stdout, for
// integration tests. Killed with SIGKILL on destruction if still running.
#ifndef MEMD_TESTS_SUPPORT_SUBPROCESS_H_
#define MEMD_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace memd::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the current environment plus `env`.
  // stderr is inherited so failures show up in the test log.
  Subprocess(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Next line of stdout without the newline; nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Everything left on stdout until EOF (or timeout).
  std::string ReadAll(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void CloseStdin();
  void Kill(int signal);
  // Waits for exit; returns the raw wait status (again, once reaped), or
  // nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Writes every thread's stack of the running process to stderr (gdb), for
  // a test whose process stopped answering: where it waits, in the log.
  void PrintStacks() const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int status_ = 0;  // the wait status, once reaped_
};

// The exit code in a wait status from Subprocess::Wait: the code, 128 + the
// signal for a killed process, -1 for a timeout (nullopt).
int ExitCode(std::optional<int> status);

// `argv` run as `uid` (its own gid, no supplementary groups) with setpriv:
// how tests play another local user. REQUIRES root.
std::vector<std::string> AsUid(int uid, std::vector<std::string> argv);

// The pid of `pid`'s first child (what `unshare --fork` forked: PID 1 of the
// new namespace, seen from here); 0 when it has none.
pid_t ChildOf(pid_t pid);

// Runs a command to completion; returns {exit code or 128+signal, stdout}.
std::pair<int, std::string> RunCommand(std::vector<std::string> argv,
                                       std::map<std::string, std::string> env = {});

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_SUBPROCESS_H_
