#include "memd/shared/client_env.h"

#include <cstdlib>

#include "memd/shared/address.h"
#include "memd/shared/names.h"

namespace memd {
namespace {

std::optional<std::string> Get(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

}  // namespace

ClientEnvironment ReadClientEnvironment() {
  ClientEnvironment env;
  env.address = Get("MEMD_ADDRESS").value_or(std::string(kDefaultAddress));
  env.pool = Get("MEMD_POOL").value_or(std::string(kDefaultPool));
  env.outage_wait_ms = Get("MEMD_OUTAGE_WAIT_MS");
  env.connect_timeout = Get("MEMD_CONNECT_TIMEOUT");
  env.lane_spin = Get("MEMD_LANE_SPIN");
  env.arena_threshold = Get("MEMD_ARENA_THRESHOLD");
  env.lane = Get("MEMD_LANE").value_or("1") != "0";
  env.populate = Get("MEMD_POPULATE").value_or("0") == "1";
  env.read_only = Get("MEMD_READ_ONLY").value_or("0") == "1";
  return env;
}

}  // namespace memd
