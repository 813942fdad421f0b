// The channel to a daemon's Admin service (memd.v1.Admin), as memctl and the
// Python module's stats() open it: a Unix socket without TLS (the daemon
// checks the peer's kernel credentials), a TCP address always with TLS.
#ifndef MEMD_CLIENT_MEMCTL_ADMIN_CHANNEL_H_
#define MEMD_CLIENT_MEMCTL_ADMIN_CHANNEL_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"

namespace memd {

// PEM text (not paths) for a TCP address; empty fields use the defaults
// (the system's roots, no client certificate).
struct AdminTls {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// INVALID_ARGUMENT for an address memd/shared/address.h does not accept.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenAdminChannel(const std::string& address,
                                                                const AdminTls& tls = {});

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_ADMIN_CHANNEL_H_
