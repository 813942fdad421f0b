// OpenPools: brings up every configured pool at daemon start, re-adopting
// what a killed predecessor of the same instance left behind.
//
// For each pool: when its state table and segment exist and describe the same
// configuration (size, alignment, index), the pool is re-adopted with every
// live buffer (see Pool::Adopt); when they describe another configuration the
// start is refused, naming what differs, unless `fresh` discards them; leftovers
// that hold nothing (incomplete state, missing segment) are replaced. Objects
// of pools no longer configured are removed when empty and refuse the start
// when they still hold buffers (again unless `fresh`).
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
  bool reserve = true;  // posix_fallocate new segments
  bool fresh = false;   // discard a predecessor's pools instead of adopting them
  std::string shm_dir = "/dev/shm";
  // A reload adds pools after the existing ones: their indexes start here,
  // and the objects of other unconfigured pools are left alone.
  uint32_t first_index = 0;
  bool sweep_unconfigured = true;
};

// One pool ready to serve. The segment must outlive the pool.
struct OpenedPool {
  std::unique_ptr<Segment> segment;
  std::unique_ptr<Pool> pool;
  bool adopted = false;
};

// Index i of the result is configs[i], with pool index first_index + i. On error nothing
// this call created is left behind and adoptable objects are untouched.
absl::StatusOr<std::vector<OpenedPool>> OpenPools(const std::vector<PoolConfig>& configs,
                                                  const PoolStartupOptions& options);

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_POOL_STARTUP_H_
