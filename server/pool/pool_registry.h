// PoolRegistry: the daemon's pools by name and index. Filled once at start-up
// and immutable afterwards, so lookups need no lock. Owned by the Daemon.
#ifndef MEMD_SERVER_POOL_POOL_REGISTRY_H_
#define MEMD_SERVER_POOL_POOL_REGISTRY_H_

#include <memory>
#include <string_view>
#include <vector>

#include "pool/pool.h"

namespace memd {

class PoolRegistry {
 public:
  // REQUIRES: called before serving starts; pool->index() == size().
  void Add(std::unique_ptr<Pool> pool) { pools_.push_back(std::move(pool)); }

  Pool* Find(std::string_view name) const {
    for (const auto& pool : pools_) {
      if (pool->name() == name) return pool.get();
    }
    return nullptr;
  }

  const std::vector<std::unique_ptr<Pool>>& pools() const { return pools_; }
  size_t size() const { return pools_.size(); }

 private:
  std::vector<std::unique_ptr<Pool>> pools_;
};

}  // namespace memd

#endif  // MEMD_SERVER_POOL_POOL_REGISTRY_H_
