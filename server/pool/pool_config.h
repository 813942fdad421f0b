// A pool's configuration: its name, size, alignment, who may use it and its
// quotas. Plain values, copied into the Pool at construction; the
// configuration parser (config/) fills them and ValidatePoolConfig checks them.
#ifndef MEMD_SERVER_POOL_POOL_CONFIG_H_
#define MEMD_SERVER_POOL_POOL_CONFIG_H_

#include <sys/types.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace memd {

// Who may use a pool: its segment's owner, group and mode. The kernel
// enforces them on the shared-memory object; the daemon applies the same rule
// to every attach, so a peer that could not map the pool cannot use it.
struct PoolAccess {
  uid_t owner_uid = 0;
  gid_t group_gid = 0;
  mode_t mode = 0600;
};

// Per-pool quotas; 0 means no limit. Bytes are block capacities; a buffer
// counts once per holder that references it. The session quotas count what
// the session itself holds: a buffer it sent into a channel leaves its count
// (a sharing send keeps its own reference, so the buffer stays counted). The
// uid quotas count everything a uid causes the pool to hold: its sessions'
// references and those of the channel messages its sessions sent, until a
// receiver takes them (then they count for the receiver's uid).
struct PoolQuotas {
  uint64_t session_bytes = 0;    // held by one session
  uint64_t session_buffers = 0;  // distinct buffers one session references
  uint64_t uid_bytes = 0;        // held by all holders of one uid together
  uint64_t uid_buffers = 0;      // referenced by all holders of one uid together
};

// The handle bounds a configured pool has unless its configuration sets
// session-buffers or uid-buffers (0 there turns one off). Issue 24: without
// them one client registered 50,000 handles over one 64-byte buffer, and the
// state files they need (80 bytes of state table and 80 of holdings file per
// handle, up to twice that while a file doubles) filled the state
// filesystem for everyone. 65,536 handles is far above what a pipeline
// holds (a few hundred frames; small allocations live in arenas without a
// handle of their own); a uid gets two sessions' worth. With them, one uid's
// handles need at most 131,072 * 320 bytes = 40 MiB of state space per pool.
// Applied by the configuration parser (config/options.cc); a Pool built
// without it (tests, benchmarks) has no bound.
inline constexpr uint64_t kDefaultSessionBuffers = 65536;
inline constexpr uint64_t kDefaultUidBuffers = 131072;

// The most alignment units (granules) a pool may span: the allocator keeps
// block offsets and sizes as uint32 counts of granules (TlsfAllocator, row H
// of docs/PERFORMANCE.md). A pool of alignment A holds at most
// kMaxPoolGranules * A bytes: 32 GiB at 8, 256 GiB at the default 64.
inline constexpr uint64_t kMaxPoolGranules = UINT32_MAX;

struct PoolConfig {
  std::string name;
  uint64_t size_bytes = 0;
  uint64_t alignment_bytes = 64;             // power of two, 8..1 MiB
  uint64_t max_alloc_bytes = INT_MAX;        // libavutil's default max_alloc_size
  PoolAccess access;
  PoolQuotas quotas;
  std::optional<bool> prefault;  // reserve pages at start; unset: the daemon's --no-reserve
  // Marked for bridging (issue 19): its memory may be read by peers this
  // daemon bridges channels of this pool to (docs/security.md).
  bool bridge = false;
};

// Checks a pool configuration: name, alignment (power of two in 8..1 MiB),
// size (at least one alignment unit, at most kMaxPoolGranules of them),
// max_alloc (at least 1).
absl::Status ValidatePoolConfig(const PoolConfig& config);

// "3.0 GiB (3221225472 bytes)": people read the first, scripts the second.
// The form every pool message gives a byte count in.
std::string BytesText(uint64_t bytes);

}  // namespace memd

#endif  // MEMD_SERVER_POOL_POOL_CONFIG_H_
