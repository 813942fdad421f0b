// InstanceLock: proof that this process is the one daemon serving an
// instance. An flock on "daemon.lock" in the instance's private state
// directory (startup/state_directory.h: no other uid can create or hold it
// there), taken before any state table is touched, so a second daemon of the same instance
// never removes or adopts the objects of a live one. The kernel drops the
// lock when the holder dies, so a kill -9 never leaves it stuck.
//
// Ownership: owned by the Daemon for its whole run. Not thread-safe (main thread).
#ifndef MEMD_SERVER_STARTUP_INSTANCE_LOCK_H_
#define MEMD_SERVER_STARTUP_INSTANCE_LOCK_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace memd {

class InstanceLock {
 public:
  // FAILED_PRECONDITION naming the instance when another daemon holds it.
  // `state_dir`: the instance's checked private directory.
  static absl::StatusOr<std::unique_ptr<InstanceLock>> Acquire(const std::string& instance,
                                                               const std::string& state_dir);

  ~InstanceLock();  // releases; the object stays unless Remove() was called
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Unlinks the lock object (clean shutdown), still holding the lock.
  void Remove();

  // Gives the lock object to the user the daemon drops to (--user), so that
  // user can remove it at shutdown.
  absl::Status Chown(uid_t uid, gid_t gid);

 private:
  InstanceLock(int fd, std::string object_name) : fd_(fd), object_name_(std::move(object_name)) {}

  int fd_;
  std::string object_name_;
};

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_INSTANCE_LOCK_H_
