// Pool access decisions: may this peer use this pool? The rule is the
// kernel's own for opening the pool's shared-memory object read-write, applied
// to the peer's SO_PEERCRED / SO_PEERGROUPS credentials and the object's
// current owner, group and mode. So a process that could not map the pool
// cannot attach to it either, and changing the object (chmod, chgrp) changes
// both at once. Stateless; thread-safe.
#ifndef MEMD_SERVER_ACCESS_POOL_ACCESS_H_
#define MEMD_SERVER_ACCESS_POOL_ACCESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "listen/peer_table.h"
#include "pool/pool.h"

namespace memd {

// What `peer` may do with an object of `access`, by the kernel's rule below:
// nothing, read it (a reader session: a read-only descriptor), or read and
// write it.
enum class PoolRight { kNone, kRead, kReadWrite };
PoolRight RightOf(const PeerCredentials& peer, const PoolAccess& access);

// True when `peer` may open an object of `access` for reading and writing:
// uid 0 always (CAP_DAC_OVERRIDE); else the owner bits for the owner, the
// group bits for a member of the group (primary or supplementary), the
// other bits for everyone else.
bool MayReadWrite(const PeerCredentials& peer, const PoolAccess& access);

// The owner, group and mode of the shared-memory object `shm_name`
// ("/memd.x.y") as they are now, from `shm_dir`.
absl::StatusOr<PoolAccess> ObjectAccess(const std::string& shm_name,
                                        const std::string& shm_dir = "/dev/shm");

}  // namespace memd

#endif  // MEMD_SERVER_ACCESS_POOL_ACCESS_H_
