// The daemon's private files in its state directory (state tables, holdings
// files): created only new (O_EXCL, mode 0600 whatever the umask) and opened
// only when they are regular files of the daemon's own uid, never through a
// symbolic link. The directory itself is checked by startup/state_directory.h.
// Free functions; thread-safe.
#ifndef MEMD_SERVER_SHM_PRIVATE_FILE_H_
#define MEMD_SERVER_SHM_PRIVATE_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "memd/shared/unique_fd.h"

namespace memd {

// `what` names the file in messages ("state file").
absl::StatusOr<UniqueFd> CreatePrivateFile(const std::string& path, const char* what);

// NOT_FOUND when there is none; PERMISSION_DENIED when it is not a regular
// file of the daemon's uid. Sets `*size_bytes` to its size.
absl::StatusOr<UniqueFd> OpenPrivateFile(const std::string& path, const char* what,
                                         uint64_t* size_bytes);

}  // namespace memd

#endif  // MEMD_SERVER_SHM_PRIVATE_FILE_H_
