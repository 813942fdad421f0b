#include "shm/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace memd {

absl::StatusOr<UniqueFd> CreatePrivateFile(const std::string& path, const char* what) {
  // O_EXCL | O_NOFOLLOW: never an object someone else put there.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return absl::InternalError(absl::StrFormat("cannot create %s '%s': %s", what, path,
                                               std::strerror(errno)));
  }
  ::fchmod(fd.get(), 0600);  // daemon-private whatever the umask
  return fd;
}

absl::StatusOr<UniqueFd> OpenPrivateFile(const std::string& path, const char* what,
                                         uint64_t* size_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrFormat("no %s '%s'", what, path));
    return absl::InternalError(absl::StrFormat("cannot open %s '%s': %s", what, path,
                                               std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s '%s' is not a regular file of the daemon's uid %u; refusing it", what, path,
        ::geteuid()));
  }
  *size_bytes = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace memd
