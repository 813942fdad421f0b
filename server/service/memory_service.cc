#include "service/memory_service.h"

#include "absl/strings/str_format.h"
#include "service/session_reactor.h"

namespace memd {

grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>* MemoryService::Session(
    grpc::CallbackServerContext* context) {
  std::optional<PeerCredentials> peer = peers_.Lookup(context->peer());
  std::string description =
      peer ? absl::StrFormat("pid %d uid %u", peer->pid, peer->uid) : context->peer();
  return new SessionReactor(context, pools_, sessions_, next_session_id_.fetch_add(1), peer,
                            std::move(description), metrics_, channels_, lanes_);
}

}  // namespace memd
