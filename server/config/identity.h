// Users and groups named on the command line: a name from the system's
// databases (getpwnam/getgrnam) or a number.
#ifndef MEMD_SERVER_CONFIG_IDENTITY_H_
#define MEMD_SERVER_CONFIG_IDENTITY_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace memd {

struct UserIdentity {
  uid_t uid = 0;
  gid_t gid = 0;  // the user's primary group (for a number: gid = uid unless named)
};

// INVALID_ARGUMENT naming `flag` and the value when it is neither.
absl::StatusOr<UserIdentity> ResolveUser(const std::string& flag, const std::string& text);
absl::StatusOr<gid_t> ResolveGroup(const std::string& flag, const std::string& text);

}  // namespace memd

#endif  // MEMD_SERVER_CONFIG_IDENTITY_H_
