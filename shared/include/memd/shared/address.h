// Daemon addresses: "unix:///run/memd/memd.sock", "unix:/path", "host:port".
#ifndef MEMD_SHARED_ADDRESS_H_
#define MEMD_SHARED_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace memd {

inline constexpr std::string_view kDefaultAddress = "unix:///run/memd/memd.sock";

struct Address {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string unix_path;    // kUnix: absolute or relative filesystem path
  std::string host_port;    // kTcp: "host:port"
  std::string grpc_target;  // what grpc::CreateChannel accepts
};

// Parses an address. Unix paths are limited to 107 bytes (sun_path).
absl::StatusOr<Address> ParseAddress(std::string_view text);

// The address clients use when none is given: $MEMD_ADDRESS, else
// kDefaultAddress (read by ReadClientEnvironment, client_env.h).
std::string ClientDefaultAddress();

}  // namespace memd

#endif  // MEMD_SHARED_ADDRESS_H_
