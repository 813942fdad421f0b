#include "session.h"

#include <unistd.h>

#include <chrono>

#include "errors.h"
#include "memd/admin.h"

namespace memd::python {

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
  }
}

bool Session::InCreator() const { return getpid() == creator_pid_; }

void Session::CheckFork() const {
  if (InCreator()) return;
  ThrowForkError(creator_pid_, /*connecting=*/false);
}

absl::StatusOr<std::string> Session::StatsJson() {
  // An admin answer takes milliseconds; 5 s means the daemon is stuck.
  return memd::StatsJson(client_->address(), /*timeout_ms=*/5000);
}

}  // namespace memd::python
