// The environment variables memd's clients read (libmemd, the C API, the
// Python package through libmemd, memctl's $MEMD_ADDRESS), read here and
// nowhere else: each name and its default is written once. Values are read
// at each call (a process may change its environment between two clients);
// parsing and its errors stay with the option each one fills (client.cc).
// Thread-safe as getenv is: only while no thread calls setenv.
#ifndef MEMD_SHARED_CLIENT_ENV_H_
#define MEMD_SHARED_CLIENT_ENV_H_

#include <optional>
#include <string>

namespace memd {

struct ClientEnvironment {
  std::string address;  // $MEMD_ADDRESS, else kDefaultAddress (address.h)
  std::string pool;     // $MEMD_POOL, else kDefaultPool (names.h)
  // Set and not empty, as written (units as the docs say: docs/api.md).
  std::optional<std::string> outage_wait_ms;   // $MEMD_OUTAGE_WAIT_MS, milliseconds
  std::optional<std::string> connect_timeout;  // $MEMD_CONNECT_TIMEOUT, a duration
  std::optional<std::string> lane_spin;        // $MEMD_LANE_SPIN, a duration
  std::optional<std::string> arena_threshold;  // $MEMD_ARENA_THRESHOLD, a size
  bool lane = true;       // false when $MEMD_LANE is "0"
  bool populate = false;  // true when $MEMD_POPULATE is "1"
  bool read_only = false; // true when $MEMD_READ_ONLY is "1" (attach as a reader)
};

ClientEnvironment ReadClientEnvironment();

}  // namespace memd

#endif  // MEMD_SHARED_CLIENT_ENV_H_
