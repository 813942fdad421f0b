#include "session.h"

#include <unistd.h>

#include <chrono>

#include <grpcpp/grpcpp.h>

#include "errors.h"
#include "memctl/memctl.h"
#include "memd/shared/address.h"
#include "memd/v1/admin.grpc.pb.h"

namespace memd::python {

// The Admin service stub for stats(): the same insecure local channel
// libmemd's own session uses (client/session_link.cc).
struct Session::Admin {
  std::unique_ptr<v1::Admin::Stub> stub;
};

namespace {
// The process in which this module first connected (gRPC runs there from
// then on); 0 before. Written under the GIL.
pid_t g_connected_pid = 0;
}  // namespace

void Session::CheckCanConnect() {
  if (g_connected_pid != 0 && g_connected_pid != getpid()) {
    ThrowForkError(g_connected_pid, /*connecting=*/true);
  }
  g_connected_pid = getpid();
}

absl::StatusOr<std::shared_ptr<Session>> Session::Connect(ConnectOptions options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(std::move(options));
  if (!client.ok()) return client.status();
  return std::shared_ptr<Session>(new Session(std::move(*client)));
}

Session::Session(std::unique_ptr<Client> client)
    : client_(std::move(client)), creator_pid_(getpid()) {}

Session::~Session() {
  if (!InCreator()) {
    // A fork child: the Client's stream, threads and lane belong to the
    // parent. Destroying it here would end or corrupt the parent's session,
    // so the child leaves it (and the Admin stub) as they are.
    (void)client_.release();
    (void)admin_.release();
  }
}

bool Session::InCreator() const { return getpid() == creator_pid_; }

void Session::CheckFork() const {
  if (InCreator()) return;
  ThrowForkError(creator_pid_, /*connecting=*/false);
}

absl::StatusOr<std::string> Session::StatsJson() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (admin_ == nullptr) {
    absl::StatusOr<Address> address = ParseAddress(client_->address());
    if (!address.ok()) return address.status();
    admin_ = std::make_unique<Admin>();
    admin_->stub = v1::Admin::NewStub(
        grpc::CreateChannel(address->grpc_target, grpc::InsecureChannelCredentials()));
  }
  grpc::ClientContext context;
  // An admin answer takes milliseconds; 5 s means the daemon is stuck.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetStatsResponse response;
  grpc::Status status = admin_->stub->GetStats(&context, v1::GetStatsRequest(), &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        "stats from memd at " + client_->address() + ": " + status.error_message());
  }
  return StatsDocument(response).dump();
}

}  // namespace memd::python
