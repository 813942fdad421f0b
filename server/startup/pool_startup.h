// OpenPools: brings up every configured pool at daemon start, re-adopting
// what a killed predecessor of the same instance left behind.
//
// For each pool: when its state table (in the instance's private state
// directory) describes the same configuration (size, alignment, index) and
// holds live buffers, the pool is re-adopted with every one of them (see
// Pool::Adopt) and comes back *pending*: its memory is with the clients that
// map it, and the first of them to hand it back completes the adoption
// (startup/pool_memory.h). Another configuration refuses the start, naming
// what differs, unless `fresh` discards them; state that holds nothing
// (incomplete, or no live buffer) is replaced. State of pools no longer
// configured is removed when empty and refuses the start when it still holds
// buffers (again unless `fresh`).
//
// REQUIRES: the caller holds the instance's InstanceLock. Main thread only.
#ifndef MEMD_SERVER_STARTUP_POOL_STARTUP_H_
#define MEMD_SERVER_STARTUP_POOL_STARTUP_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/pool.h"
#include "shm/segment.h"

namespace memd {

struct PoolStartupOptions {
  std::string instance;
  std::string state_dir;  // the instance's private directory (PrepareStateDirectory)
  bool reserve = true;    // allocate new segments' pages at creation
  bool fresh = false;   // discard a predecessor's pools instead of adopting them
  // A reload adds pools after the existing ones: their indexes start here,
  // and the objects of other unconfigured pools are left alone.
  uint32_t first_index = 0;
  bool sweep_unconfigured = true;
};

// One pool ready to serve. The segment must outlive the pool.
struct OpenedPool {
  std::unique_ptr<Segment> segment;  // null: pending (memory with the clients)
  std::unique_ptr<Pool> pool;
  bool adopted = false;
};

// Index i of the result is configs[i], with pool index first_index + i. On error nothing
// this call created is left behind and adoptable objects are untouched.
absl::StatusOr<std::vector<OpenedPool>> OpenPools(const std::vector<PoolConfig>& configs,
                                                  const PoolStartupOptions& options);

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_POOL_STARTUP_H_
