#include <chrono>

#include <grpcpp/client_context.h>

#include "memctl/admin_channel.h"
#include "memctl/format.h"
#include "memd/admin.h"
#include "memd/v1/admin.grpc.pb.h"

namespace memd {

absl::StatusOr<std::string> StatsJson(const std::string& address, int64_t timeout_ms) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenAdminChannel(address);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::GetStatsResponse response;
  grpc::Status status = stub->GetStats(&context, v1::GetStatsRequest(), &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        "stats from memd at " + address + ": " + status.error_message());
  }
  return StatsDocument(response).dump();
}

}  // namespace memd
