#include "access/pool_access.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace memd {

PoolRight RightOf(const PeerCredentials& peer, const PoolAccess& access) {
  if (peer.uid == 0) return PoolRight::kReadWrite;
  mode_t read, write;
  if (peer.uid == access.owner_uid) {
    read = S_IRUSR, write = S_IWUSR;
  } else if (peer.InGroup(access.group_gid)) {
    read = S_IRGRP, write = S_IWGRP;
  } else {
    read = S_IROTH, write = S_IWOTH;
  }
  if ((access.mode & read) == 0) return PoolRight::kNone;
  return (access.mode & write) != 0 ? PoolRight::kReadWrite : PoolRight::kRead;
}

bool MayReadWrite(const PeerCredentials& peer, const PoolAccess& access) {
  return RightOf(peer, access) == PoolRight::kReadWrite;
}

absl::StatusOr<PoolAccess> ObjectAccess(const std::string& shm_name, const std::string& shm_dir) {
  std::string path = shm_dir + shm_name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InternalError(
        absl::StrFormat("cannot stat '%s': %s", path, std::strerror(errno)));
  }
  return PoolAccess{st.st_uid, st.st_gid, static_cast<mode_t>(st.st_mode & 07777)};
}

}  // namespace memd
