#include "startup/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "startup/state_directory.h"

namespace memd {

absl::StatusOr<std::unique_ptr<InstanceLock>> InstanceLock::Acquire(const std::string& instance,
                                                                   const std::string& state_dir) {
  std::string name = LockFilePath(state_dir);
  int fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot open the instance lock '%s': %s", name, std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "another memd serves instance '%s' (it holds %s); stop it or choose another "
          "--instance", instance, name));
    }
    return absl::InternalError(
        absl::StrFormat("cannot lock '%s': %s", name, std::strerror(err)));
  }
  return std::unique_ptr<InstanceLock>(new InstanceLock(fd, name));
}

InstanceLock::~InstanceLock() { ::close(fd_); }

absl::Status InstanceLock::Chown(uid_t uid, gid_t gid) {
  if (::fchown(fd_, uid, gid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot give '%s' to uid %u gid %u: %s", object_name_, uid, gid, std::strerror(errno)));
  }
  return absl::OkStatus();
}

void InstanceLock::Remove() { ::unlink(object_name_.c_str()); }

}  // namespace memd
