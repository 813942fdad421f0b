#include "access/pool_access.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace memd {

bool MayReadWrite(const PeerCredentials& peer, const PoolAccess& access) {
  if (peer.uid == 0) return true;
  mode_t need;
  if (peer.uid == access.owner_uid) {
    need = S_IRUSR | S_IWUSR;
  } else if (peer.InGroup(access.group_gid)) {
    need = S_IRGRP | S_IWGRP;
  } else {
    need = S_IROTH | S_IWOTH;
  }
  return (access.mode & need) == need;
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
