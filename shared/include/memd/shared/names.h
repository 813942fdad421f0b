// Names of instances and pools, and the shared-memory objects derived from them.
#ifndef MEMD_SHARED_NAMES_H_
#define MEMD_SHARED_NAMES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace memd {

inline constexpr size_t kMaxNameBytes = 64;
inline constexpr std::string_view kDefaultInstance = "memd";
inline constexpr std::string_view kDefaultPool = "default";

// Accepts 1..64 characters from [A-Za-z0-9_-]. The dot is excluded so that
// "<instance>.<pool>" object names can never collide across instances.
// `what` names the kind in the error ("pool name", "instance name").
absl::Status ValidateName(std::string_view what, std::string_view name);

// "/memd.<instance>.<pool>": the POSIX shared-memory object of a pool.
std::string PoolObjectName(std::string_view instance, std::string_view pool);

// "/memd.<instance>.<pool>.state": the daemon-private (0600) allocation table
// of a pool, which outlives a crashed daemon so its successor can re-adopt the
// pool. Pool names contain no dot, so it never collides with a pool object.
std::string PoolStateObjectName(std::string_view instance, std::string_view pool);

// "/memd.<instance>.daemon.lock": held (flock) by the one daemon serving an
// instance; the kernel drops it when that daemon dies.
std::string InstanceLockObjectName(std::string_view instance);

// "memd.<instance>.": every object of one instance starts with this (no slash).
std::string InstanceObjectPrefix(std::string_view instance);

}  // namespace memd

#endif  // MEMD_SHARED_NAMES_H_
