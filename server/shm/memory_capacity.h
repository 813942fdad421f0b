// CheckMemoryCapacity: whether the machine (and the daemon's memory cgroup)
// can give the pools their pages, checked before any page is reserved, so a
// pool too large fails at start with both sizes named, never by the OOM killer.
// Thread-safe (reads /proc and /sys).
#ifndef MEMD_SERVER_SHM_MEMORY_CAPACITY_H_
#define MEMD_SERVER_SHM_MEMORY_CAPACITY_H_

#include <cstdint>

#include "absl/status/status.h"

namespace memd {

// RESOURCE_EXHAUSTED naming `needed_bytes`, what is available and the fix
// when the machine's available memory or the cgroup's room is smaller.
absl::Status CheckMemoryCapacity(uint64_t needed_bytes);

}  // namespace memd

#endif  // MEMD_SERVER_SHM_MEMORY_CAPACITY_H_
