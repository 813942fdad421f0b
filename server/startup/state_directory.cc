#include "startup/state_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

absl::Status Refuse(const std::string& path, const std::string& why) {
  return absl::PermissionDeniedError(absl::StrFormat(
      "state directory '%s' %s; memd keeps its private state only where no other user can "
      "write. Remove it, or choose another --state-dir", path, why));
}

// Creates `path` 0700 for `owner` when missing, then checks what is there.
absl::Status EnsurePrivate(const std::string& path, uid_t owner, gid_t owner_gid,
                           bool shared_parent_ok) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);  // e.g. /run/memd: 0755, root's
  }
  if (::mkdir(path.c_str(), 0700) == 0) {
    if (owner != ::geteuid() && ::chown(path.c_str(), owner, owner_gid) != 0) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "cannot give state directory '%s' to uid %u: %s (start memd as root to use --user)",
          path, owner, std::strerror(errno)));
    }
  } else if (errno != EEXIST) {
    return absl::PermissionDeniedError(absl::StrFormat("cannot create state directory '%s': %s",
                                                       path, std::strerror(errno)));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return Refuse(path, absl::StrFormat("cannot be examined (%s)", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) return Refuse(path, "is not a directory (a link or a file)");
  if (st.st_uid != owner && st.st_uid != ::geteuid()) {
    return Refuse(path, absl::StrFormat("belongs to uid %u, not to memd's uid %u", st.st_uid,
                                        owner));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Refuse(path, absl::StrFormat("has mode %04o: others may write in it",
                                        st.st_mode & 07777));
  }
  if (!parent.empty()) {
    struct stat up {};
    if (::stat(parent.c_str(), &up) == 0 && (up.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
        (up.st_mode & S_ISVTX) == 0 && !shared_parent_ok) {
      return Refuse(path, absl::StrFormat("lies in '%s' (mode %04o), where others could replace "
                                          "it", parent.string(), up.st_mode & 07777));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultStateRoot() {
  if (const char* runtime = std::getenv("RUNTIME_DIRECTORY"); runtime != nullptr && *runtime) {
    std::string first(runtime);
    return first.substr(0, first.find(':'));  // systemd joins several with ':'
  }
  if (::geteuid() == 0) return "/run/memd/state";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg) {
    return std::string(xdg) + "/memd";
  }
  return absl::StrFormat("/tmp/memd-state-%u", ::geteuid());
}

absl::StatusOr<std::string> PrepareStateDirectory(const std::string& root,
                                                  const std::string& instance, uid_t owner,
                                                  gid_t owner_gid) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrFormat("--state-dir '%s' must be an absolute path", root));
  }
  if (absl::Status s = EnsurePrivate(root, owner, owner_gid, false); !s.ok()) return s;
  std::string dir = root + "/" + instance;  // ValidateName keeps '/' and '.' out of instance
  if (absl::Status s = EnsurePrivate(dir, owner, owner_gid, false); !s.ok()) return s;
  return dir;
}

std::string StateFilePath(const std::string& dir, const std::string& pool) {
  return dir + "/" + pool + ".state";
}

std::string LockFilePath(const std::string& dir) { return dir + "/daemon.lock"; }

}  // namespace memd
