#include "connect_env.h"

#include <cstdlib>

#include "memd/shared/names.h"

namespace memd {

std::string PoolOrDefault(std::string_view pool) {
  if (!pool.empty()) return std::string(pool);
  const char* env = std::getenv("MEMD_POOL");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultPool);
}

}  // namespace memd
