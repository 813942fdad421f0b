#include "bridge/ucx/ucx_pending.h"

#include <sys/random.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_server.h"
#include "bridge/ucx/ucx_wire.h"

namespace memd::bridge::ucx {

bool PendingPull::WaitDone(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu);
  auto done = [&] { return state == State::kDone; };
  if (deadline == absl::InfiniteFuture()) {
    cv.wait(lock, done);
    return true;
  }
  return cv.wait_until(lock, absl::ToChronoTime(deadline), done);
}

absl::Status PendingPulls::Start() {
  ucp_am_handler_param_t param{};
  param.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                     UCP_AM_HANDLER_PARAM_FIELD_ARG;
  param.id = kAmPullReply;
  param.cb = &PendingPulls::OnReply;
  param.arg = this;
  if (ucs_status_t s = ucp_worker_set_am_recv_handler(worker_->worker(), &param); s != UCS_OK) {
    return UcxError(absl::StrCat("ucx transport '", worker_->name(), "': pull reply handler"), s);
  }
  return absl::OkStatus();
}

uint64_t PendingPulls::Add(std::shared_ptr<PendingPull> pull) {
  // Request ids are random, not a counter: a reply is accepted by its id
  // alone (UCX does not say which endpoint sent it), so another peer, which
  // sees the ids of the requests sent to it, must not be able to guess the
  // ids of pulls in flight elsewhere and answer them with its own bytes.
  MutexLock lock(&mu_);
  uint64_t id = 0;
  while (id == 0 || pulls_.contains(id)) {
    if (getrandom(&id, sizeof(id), 0) != sizeof(id)) id = ++fallback_id_;
  }
  pulls_.emplace(id, std::move(pull));
  return id;
}

void PendingPulls::Remove(uint64_t id) {
  MutexLock lock(&mu_);
  pulls_.erase(id);
}

void PendingPulls::FailAll(const void* owner, const absl::Status& status) {
  MutexLock lock(&mu_);
  for (auto& [id, pull] : pulls_) {
    if (pull->owner != owner) continue;
    std::lock_guard<std::mutex> pull_lock(pull->mu);
    if (pull->state == PendingPull::State::kWaiting) pull->Finish(status);
  }
}

ucs_status_t PendingPulls::OnReply(void* arg, const void* header, size_t header_length,
                                   void* data, size_t length, const ucp_am_recv_param_t* param) {
  auto* self = static_cast<PendingPulls*>(arg);
  absl::StatusOr<PullReply> reply =
      ParsePullReply(std::string_view(static_cast<const char*>(header), header_length));
  if (!reply.ok()) return UCS_OK;  // not ours to answer: dropped (a rendezvous too)
  std::shared_ptr<PendingPull> pull;
  {
    MutexLock lock(&self->mu_);
    auto it = self->pulls_.find(reply->request_id);
    if (it == self->pulls_.end()) return UCS_OK;  // abandoned at its deadline: dropped
    pull = it->second;
  }
  const bool rendezvous = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
  {
    std::lock_guard<std::mutex> lock(pull->mu);
    if (pull->state != PendingPull::State::kWaiting) return UCS_OK;
    pull->seal = std::move(reply->seal);  // the waiter opens sealed bytes (UcxConnection::Pull)
    if (reply->code != 0) {
      pull->Finish(absl::Status(static_cast<absl::StatusCode>(reply->code),
                                absl::StrCat("the peer refused: ", reply->message)));
      return UCS_OK;
    }
    if (length != pull->length) {
      pull->Finish(absl::UnavailableError(absl::StrCat(
          "the peer answered a pull of ", pull->length, " bytes with ", length, " bytes")));
      return UCS_OK;
    }
    if (!rendezvous) {
      std::memcpy(pull->dst, data, length);
      pull->Finish(absl::OkStatus());
      return UCS_OK;
    }
    pull->state = PendingPull::State::kReceiving;
  }
  ucp_request_param_t recv{};
  recv.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  recv.cb.recv_am = &PendingPulls::OnReceived;
  auto* holder = new std::shared_ptr<PendingPull>(pull);
  recv.user_data = holder;
  ucs_status_ptr_t request =
      ucp_am_recv_data_nbx(self->worker_->worker(), data, pull->dst, length, &recv);
  if (!UCS_PTR_IS_PTR(request)) {
    delete holder;  // done at once, or failed: no callback comes
    std::lock_guard<std::mutex> lock(pull->mu);
    pull->Finish(UCS_PTR_STATUS(request) == UCS_OK
                     ? absl::OkStatus()
                     : UcxError("receiving the pulled bytes", UCS_PTR_STATUS(request)));
  }
  return UCS_OK;
}

void PendingPulls::OnReceived(void* request, ucs_status_t status, size_t, void* user_data) {
  auto* holder = static_cast<std::shared_ptr<PendingPull>*>(user_data);
  {
    std::lock_guard<std::mutex> lock((*holder)->mu);
    (*holder)->Finish(status == UCS_OK ? absl::OkStatus()
                                       : UcxError("receiving the pulled bytes", status));
  }
  delete holder;
  ucp_request_free(request);
}

}  // namespace memd::bridge::ucx
