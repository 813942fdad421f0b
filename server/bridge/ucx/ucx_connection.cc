#include "bridge/ucx/ucx_connection.h"

#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_seal.h"
#include "bridge/ucx/ucx_server.h"
#include "bridge/ucx/ucx_wire.h"
#include "memd/shared/size.h"
#include "spdlog/spdlog.h"

namespace memd::bridge::ucx {
namespace {

// How long a pull whose endpoint we force-closed waits for UCX to hand its
// receive back (the purge runs on the next progress, microseconds later).
constexpr absl::Duration kPurgeWait = absl::Seconds(10);

// A request in flight owns its header until UCX is done with it.
void OnRequestSent(void* request, ucs_status_t, void* user_data) {
  delete static_cast<std::string*>(user_data);
  ucp_request_free(request);
}

}  // namespace

absl::StatusOr<std::unique_ptr<UcxConnection>> UcxConnection::Open(UcxWorker* worker,
                                                                    PendingPulls* pending,
                                                                    std::string peer_name,
                                                                    std::string_view ucx_address) {
  std::unique_ptr<UcxConnection> connection(
      new UcxConnection(worker, pending, std::move(peer_name)));
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(ucx_address.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxConnection::OnPeerError;
  params.err_handler.arg = connection.get();
  MutexLock lock(&connection->mu_);
  ucs_status_t s = ucp_ep_create(worker->worker(), &params, &connection->ep_);
  if (s != UCS_OK) {
    connection->ep_ = nullptr;
    connection->closed_ = true;
    return UcxError(absl::StrCat("ucx transport '", worker->name(), "': connecting to peer '",
                                 connection->peer_name_, "'"),
                    s);
  }
  worker->Wake();
  return connection;
}

UcxConnection::UcxConnection(UcxWorker* worker, PendingPulls* pending, std::string peer_name)
    : worker_(worker), pending_(pending), peer_name_(std::move(peer_name)) {}

UcxConnection::~UcxConnection() {
  MutexLock lock(&mu_);
  if (!closed_) {
    closed_reason_ = "the connection is being destroyed";
    ForceClose();
  }
  pending_->FailAll(this, absl::UnavailableError(absl::StrCat(
                              "link to peer '", peer_name_, "' is closed: ", closed_reason_)));
  while (in_flight_ > 0) pulls_done_.Wait(&mu_);
  if (close_request_ != nullptr) {
    if (worker_->WaitRequest(close_request_, absl::Now() + kPurgeWait) == UCS_INPROGRESS) {
      spdlog::warn("ucx transport '{}': closing the endpoint to peer '{}' did not finish in {}",
                   worker_->name(), peer_name_, absl::FormatDuration(kPurgeWait));
    }
    ucp_request_free(close_request_);
  }
}

void UcxConnection::OnPeerError(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* self = static_cast<UcxConnection*>(arg);
  ucs_status_t expected = UCS_OK;
  self->peer_failure_.compare_exchange_strong(expected, status);
  self->pending_->FailAll(self, absl::UnavailableError(absl::StrCat(
                                    "link to peer '", self->peer_name_, "' failed: ",
                                    ucs_status_string(status), " (connect again)")));
}

void UcxConnection::ForceClose() {
  closed_ = true;
  if (ep_ == nullptr) return;
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t request = ucp_ep_close_nbx(ep_, &param);
  ep_ = nullptr;
  if (UCS_PTR_IS_PTR(request)) close_request_ = request;
  worker_->Wake();
}

absl::Status UcxConnection::CheckOpen() const {
  if (ucs_status_t failure = peer_failure_.load(); failure != UCS_OK) {
    return absl::UnavailableError(absl::StrCat("link to peer '", peer_name_,
                                               "' failed: ", ucs_status_string(failure),
                                               " (connect again)"));
  }
  if (closed_) {
    return absl::UnavailableError(
        absl::StrCat("link to peer '", peer_name_, "' is closed: ", closed_reason_));
  }
  return absl::OkStatus();
}

absl::Status UcxConnection::OpenSealed(const Region& region, std::string_view seal,
                                       uint64_t request_id, uint64_t offset, void* dst,
                                       size_t length) {
  absl::Status status;
  if (region.seal_key.empty() != seal.empty()) {
    status = absl::DataLossError(absl::StrCat(
        "the answer came ", seal.empty() ? "in clear" : "sealed", " on a link whose grant is ",
        region.seal_key.empty() ? "clear" : "sealed", ": refused"));
  } else if (!seal.empty()) {
    status = Unseal(region.seal_key, seal, request_id, static_cast<char*>(dst), length);
  }
  if (status.ok()) return status;
  // B41: the bridge's Inbound counts it (LinkStats::TagFailed) and ends the stream.
  return absl::DataLossError(absl::StrCat("pull of ", length, " bytes at offset ", offset,
                                          " from pool '", region.pool, "' of peer '", peer_name_,
                                          "': ", status.message()));
}

absl::Status UcxConnection::Pull(std::string_view descriptor, uint64_t offset, void* dst,
                                 size_t length, absl::Time deadline) {
  absl::StatusOr<Region> region = ParseRegion(descriptor);
  if (!region.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer '", peer_name_, "': ", region.status().message()));
  }
  // Checked here to name the range without a round trip; the peer checks again.
  if (offset > region->size_bytes || length > region->size_bytes - offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "pull of ", length, " bytes at offset ", offset, " from pool '", region->pool,
        "' of peer '", peer_name_, "' ends past the region's ", region->size_bytes, " bytes (",
        FormatSize(region->size_bytes), ")"));
  }
  if (length == 0) return absl::OkStatus();
  const std::string what =
      absl::StrCat("pull of ", length, " bytes from pool '", region->pool, "' of peer '",
                   peer_name_, "'");

  auto pull = std::make_shared<PendingPull>(this, dst, length);
  uint64_t id = 0;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    id = pending_->Add(pull);
    auto* header = new std::string(
        EncodePullRequest(PullRequest{id, offset, length, region->pool, region->key}));
    ucp_request_param_t param{};
    param.op_attr_mask =
        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    param.cb.send = &OnRequestSent;
    param.user_data = header;
    param.flags = UCP_AM_SEND_FLAG_REPLY;
    ucs_status_ptr_t request =
        ucp_am_send_nbx(ep_, kAmPullRequest, header->data(), header->size(), nullptr, 0, &param);
    if (!UCS_PTR_IS_PTR(request)) {
      delete header;  // sent at once, or failed: no callback comes
      if (UCS_PTR_IS_ERR(request)) {
        pending_->Remove(id);
        return UcxError(what, UCS_PTR_STATUS(request));
      }
    }
    ++in_flight_;
  }
  worker_->Wake();

  bool done = pull->WaitDone(deadline);
  bool closed_by_deadline = false;
  if (!done) {
    bool receiving = false;
    {
      std::lock_guard<std::mutex> lock(pull->mu);
      if (pull->state == PendingPull::State::kWaiting) {
        // Nobody writes dst yet: forget the pull; a late answer is dropped.
        pull->Finish(absl::DeadlineExceededError(absl::StrCat(
            what, " was not answered by its deadline (the link stays up)")));
      } else {
        receiving = pull->state == PendingPull::State::kReceiving;
      }
    }
    if (receiving) {
      {
        MutexLock lock(&mu_);
        if (!closed_) {
          closed_reason_ = absl::StrCat("a ", what, " missed its deadline while receiving");
          ForceClose();
        }
      }
      closed_by_deadline = true;
      if (!pull->WaitDone(absl::Now() + kPurgeWait)) {
        spdlog::error("ucx transport '{}': a receive from peer '{}' survived closing its endpoint",
                      worker_->name(), peer_name_);
      }
    }
  }
  pending_->Remove(id);
  absl::Status status;
  std::string seal;
  {
    std::lock_guard<std::mutex> lock(pull->mu);
    status = pull->status;
    seal = pull->seal;
    if (pull->state != PendingPull::State::kDone) status = absl::InternalError("lost pull");
  }
  if (status.ok()) status = OpenSealed(*region, seal, id, offset, dst, length);
  MutexLock lock(&mu_);
  --in_flight_;
  pulls_done_.SignalAll();
  if (closed_by_deadline && !status.ok()) {
    return absl::DeadlineExceededError(absl::StrCat(
        what, " did not complete by its deadline; the link is closed (UCX cannot cancel a "
              "receive: connect again)"));
  }
  if (absl::IsDataLoss(status)) return status;  // named by OpenSealed
  if (!status.ok() && status.code() != absl::StatusCode::kDeadlineExceeded) {
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    if (status.code() == absl::StatusCode::kUnavailable) return status;
    return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  }
  return status;
}

}  // namespace memd::bridge::ucx
