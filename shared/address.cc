#include "memd/shared/address.h"

#include <sys/un.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "memd/shared/client_env.h"

namespace memd {

absl::StatusOr<Address> ParseAddress(std::string_view text) {
  Address address;
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.starts_with("//")) path.remove_prefix(2);  // unix:///abs -> /abs
    constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("address '%s' has no socket path", text));
    }
    if (path.size() > kMaxPath) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "socket path in '%s' is %u bytes; the limit is %u", text, path.size(), kMaxPath));
    }
    address.kind = Address::Kind::kUnix;
    address.unix_path = std::string(path);
    address.grpc_target = "unix:" + std::string(path);
    return address;
  }
  size_t colon = text.rfind(':');
  uint32_t port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(text.substr(colon + 1).data(), text.size() - colon - 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "address '%s' is neither unix:///path nor host:port with a port in 1..65535", text));
  }
  address.kind = Address::Kind::kTcp;
  address.host_port = std::string(text);
  address.grpc_target = std::string(text);
  return address;
}

std::string ClientDefaultAddress() { return ReadClientEnvironment().address; }

}  // namespace memd
