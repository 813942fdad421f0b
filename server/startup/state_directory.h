// StateDirectory: the daemon-private directory of one instance,
// "<root>/<instance>/", holding the instance lock and each pool's state
// table. Nothing of memd's lives where another uid can write: the directory
// is created 0700 by the daemon, and one that exists must belong to the
// daemon's user (or the --user it drops to), be a real directory (not a
// link) and be writable by no one else, in a parent no one else can swap it
// in; otherwise the start is refused naming the path and the fix. So no
// other user can plant a state table to be adopted or squat the lock.
//
// Main thread only (start-up and reload).
#ifndef MEMD_SERVER_STARTUP_STATE_DIRECTORY_H_
#define MEMD_SERVER_STARTUP_STATE_DIRECTORY_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace memd {

// $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), else /run/memd/state for
// root, else $XDG_RUNTIME_DIR/memd, else /tmp/memd-state-<uid>.
std::string DefaultStateRoot();

// Creates or checks "<root>/<instance>" (and root itself) and returns its
// path. `owner`: who must own them (the daemon's euid, or the --user).
absl::StatusOr<std::string> PrepareStateDirectory(const std::string& root,
                                                  const std::string& instance, uid_t owner,
                                                  gid_t owner_gid);

// "<dir>/<pool>.state" and "<dir>/daemon.lock".
std::string StateFilePath(const std::string& dir, const std::string& pool);
std::string LockFilePath(const std::string& dir);

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_STATE_DIRECTORY_H_
