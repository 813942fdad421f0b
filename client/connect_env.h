// What a Client and the C API take from the environment when the caller
// names nothing: written once, so memd_init(NULL, NULL) and
// Client::Connect({}) attach to the same pool. Private to libmemd; the
// variables themselves are read by ReadClientEnvironment
// (memd/shared/client_env.h) only.
#ifndef MEMD_CLIENT_CONNECT_ENV_H_
#define MEMD_CLIENT_CONNECT_ENV_H_

#include <string>
#include <string_view>

namespace memd {

// `pool` when not empty, else $MEMD_POOL when set and not empty, else
// "default" (kDefaultPool).
std::string PoolOrDefault(std::string_view pool);

}  // namespace memd

#endif  // MEMD_CLIENT_CONNECT_ENV_H_
