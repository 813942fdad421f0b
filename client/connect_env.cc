#include "connect_env.h"

#include "memd/shared/client_env.h"

namespace memd {

std::string PoolOrDefault(std::string_view pool) {
  if (!pool.empty()) return std::string(pool);
  return ReadClientEnvironment().pool;
}

}  // namespace memd
