// The bridges added at run time (`memctl bridge add`), kept across restarts
// (issue 19): "<state dir>/bridges.added", one line "POOL CHANNEL PEER" per
// bridge, in the order they were added. The Engine restores them at start,
// after the configured ones (docs/multi-node.md says which wins on a clash).
//
// The whole list is written to "bridges.added.new" (a private file,
// shm/private_file.h), synced and renamed over the old one, so a kill -9 at
// any instruction leaves the previous list or the new one, never a mix.
//
// Free functions, stateless; the Engine serializes Save calls (under its
// mutex).
#ifndef MEMD_SERVER_BRIDGE_ADDED_BRIDGES_H_
#define MEMD_SERVER_BRIDGE_ADDED_BRIDGES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/bridge_config.h"

namespace memd::bridge {

std::string AddedBridgesPath(const std::string& state_dir);

// The list; empty when there is no file. A line that does not parse or
// names a value against the name rules: INVALID_ARGUMENT naming the file and
// the line (B18).
absl::StatusOr<std::vector<BridgeSpec>> LoadAddedBridges(const std::string& state_dir);

// Replaces the list. Errors name the file and the call that failed; the
// previous list then stays.
absl::Status SaveAddedBridges(const std::string& state_dir,
                              const std::vector<BridgeSpec>& bridges);

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_ADDED_BRIDGES_H_
