// memd::python::Session: what one Python `memd.Client` shares with every
// Buffer it made: the C++ memd::Client (one daemon session, one mapping of
// the pool) and the pid of the process that connected.
//
// Ownership: held by shared_ptr from the Python Client and from each Buffer,
// so the mapping outlives every Buffer (and so every numpy array over one).
// The last holder destroys the memd::Client, which ends the session; in a
// fork child the memd::Client is left alone (its stream and threads are the
// parent's), so nothing a child does can touch the parent's session.
//
// Threads: memd::Client is thread-safe; Session adds only immutable fields.
#ifndef MEMD_PYTHON_SESSION_H_
#define MEMD_PYTHON_SESSION_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "memd/client.h"

namespace memd::python {

class Session {
 public:
  // Throws memd.ForkError in a fork child of a process where this module
  // connected (gRPC cannot start again there); otherwise notes this process.
  // Call before Connect. REQUIRES: the GIL.
  static void CheckCanConnect();
  // Connects (blocking; call without the GIL). Errors as memd::Client::Connect.
  static absl::StatusOr<std::shared_ptr<Session>> Connect(ConnectOptions options);
  ~Session();

  // The client, after CheckFork() passed.
  Client& client() const { return *client_; }
  pid_t creator_pid() const { return creator_pid_; }
  // True in the process that connected; false in a fork child.
  bool InCreator() const;
  // Throws memd.ForkError (see errors.h) in a fork child. REQUIRES: the GIL.
  void CheckFork() const;

  // The daemon's stats as `memctl stats --json` prints them (libmemd_admin,
  // memd/admin.h: memctl's own formatter). Blocking: call without the GIL.
  absl::StatusOr<std::string> StatsJson();

 private:
  explicit Session(std::unique_ptr<Client> client);

  std::unique_ptr<Client> client_;
  const pid_t creator_pid_;
};

}  // namespace memd::python

#endif  // MEMD_PYTHON_SESSION_H_
