// PoolRegistry: the daemon's pools by name and index. Filled at start-up; a
// configuration reload (SIGHUP) may add pools while serving, so every method
// locks. Pools are never removed before the registry dies, so the Pool*
// handed out stay valid. Owned by the Daemon; thread-safe.
#ifndef MEMD_SERVER_POOL_POOL_REGISTRY_H_
#define MEMD_SERVER_POOL_POOL_REGISTRY_H_

#include <memory>
#include <string_view>
#include <vector>

#include "memd/shared/handle.h"
#include "memd/shared/mutex.h"
#include "pool/pool.h"

namespace memd {

class PoolRegistry {
 public:
  // REQUIRES: pool->index() == size() < kMaxPools.
  void Add(std::unique_ptr<Pool> pool) {
    MutexLock lock(&mu_);
    pools_.push_back(std::move(pool));
  }

  Pool* Find(std::string_view name) const {
    MutexLock lock(&mu_);
    for (const auto& pool : pools_) {
      if (pool->name() == name) return pool.get();
    }
    return nullptr;
  }

  // The pools in index order, as of now.
  std::vector<Pool*> pools() const {
    MutexLock lock(&mu_);
    std::vector<Pool*> out;
    out.reserve(pools_.size());
    for (const auto& pool : pools_) out.push_back(pool.get());
    return out;
  }

  size_t size() const {
    MutexLock lock(&mu_);
    return pools_.size();
  }

 private:
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Pool>> pools_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_SERVER_POOL_POOL_REGISTRY_H_
