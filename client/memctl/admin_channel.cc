#include "memctl/admin_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "memd/shared/address.h"

namespace memd {

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenAdminChannel(const std::string& address,
                                                                const AdminTls& tls) {
  absl::StatusOr<Address> parsed = ParseAddress(address);
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (parsed->kind != Address::Kind::kUnix) {
    // TCP listeners of memd always use TLS.
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = tls.ca_pem;
    ssl.pem_cert_chain = tls.cert_pem;
    ssl.pem_private_key = tls.key_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  return grpc::CreateChannel(parsed->grpc_target, credentials);
}

}  // namespace memd
