#include "bridge/ucx/ucx_connection.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "memd/shared/size.h"
#include "spdlog/spdlog.h"

namespace memd::bridge::ucx {
namespace {

// How long a pull whose endpoint we force-closed waits for UCX to hand its
// request back (the purge runs on the next progress, microseconds later).
constexpr absl::Duration kPurgeWait = absl::Seconds(10);

// One pull's completion, shared by Pull and UCX's callback: the callback
// owns one reference (a heap shared_ptr passed as user_data), so a pull that
// gives up waiting never leaves the callback a dangling pointer.
struct PullWait {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  ucs_status_t status = UCS_INPROGRESS;
};

void OnPullDone(void* request, ucs_status_t status, void* user_data) {
  auto* holder = static_cast<std::shared_ptr<PullWait>*>(user_data);
  {
    std::lock_guard<std::mutex> lock((*holder)->mu);
    (*holder)->done = true;
    (*holder)->status = status;
  }
  (*holder)->cv.notify_all();
  delete holder;
}

// Waits for `wait` until `deadline`; true when the pull completed.
bool WaitUntil(PullWait& wait, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(wait.mu);
  if (deadline == absl::InfiniteFuture()) {
    wait.cv.wait(lock, [&] { return wait.done; });
    return true;
  }
  return wait.cv.wait_until(lock, absl::ToChronoTime(deadline), [&] { return wait.done; });
}

}  // namespace

absl::StatusOr<std::unique_ptr<UcxConnection>> UcxConnection::Open(UcxWorker* worker,
                                                                    std::string peer_name,
                                                                    std::string_view ucx_address) {
  std::unique_ptr<UcxConnection> connection(new UcxConnection(worker, std::move(peer_name)));
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

UcxConnection::UcxConnection(UcxWorker* worker, std::string peer_name)
    : worker_(worker), peer_name_(std::move(peer_name)) {}

UcxConnection::~UcxConnection() {
  MutexLock lock(&mu_);
  if (!closed_) {
    closed_reason_ = "the connection is being destroyed";
    ForceClose();
  }
  while (in_flight_ > 0) pulls_done_.Wait(&mu_);
  if (close_request_ != nullptr) {
    if (worker_->WaitRequest(close_request_, absl::Now() + kPurgeWait) == UCS_INPROGRESS) {
      spdlog::warn("ucx transport '{}': closing the endpoint to peer '{}' did not finish in {}",
                   worker_->name(), peer_name_, absl::FormatDuration(kPurgeWait));
    }
    ucp_request_free(close_request_);
  }
  for (auto& [descriptor, remote] : remotes_) ucp_rkey_destroy(remote.rkey);
}

void UcxConnection::OnPeerError(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* self = static_cast<UcxConnection*>(arg);
  ucs_status_t expected = UCS_OK;
  self->peer_failure_.compare_exchange_strong(expected, status);
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

absl::StatusOr<const UcxConnection::Remote*> UcxConnection::FindOrUnpack(
    std::string_view descriptor) {
  if (auto it = remotes_.find(absl::string_view(descriptor.data(), descriptor.size()));
      it != remotes_.end()) {
    return &it->second;
  }
  absl::StatusOr<Region> region = ParseRegion(descriptor);
  if (!region.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer '", peer_name_, "': ", region.status().message()));
  }
  if (remotes_.size() >= kMaxRegionsPerConnection) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "peer '", peer_name_, "' has ", remotes_.size(), " regions in use; the limit is ",
        kMaxRegionsPerConnection, " per connection (pool '", region->pool, "' refused)"));
  }
  Remote remote{std::move(*region), nullptr};
  if (ucs_status_t s = ucp_ep_rkey_unpack(ep_, remote.region.rkey.data(), &remote.rkey);
      s != UCS_OK) {
    return absl::InvalidArgumentError(absl::StrCat("peer '", peer_name_,
                                                   "': the remote key of pool '",
                                                   remote.region.pool,
                                                   "' does not unpack: ", ucs_status_string(s)));
  }
  auto [it, inserted] = remotes_.emplace(std::string(descriptor), std::move(remote));
  return &it->second;
}

absl::Status UcxConnection::Pull(std::string_view region, uint64_t offset, void* dst,
                                 size_t length, absl::Time deadline) {
  auto wait = std::make_shared<PullWait>();
  ucs_status_ptr_t request = nullptr;
  std::string pool;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    absl::StatusOr<const Remote*> remote = FindOrUnpack(region);
    if (!remote.ok()) return remote.status();
    const Region& r = (*remote)->region;
    if (offset > r.size_bytes || length > r.size_bytes - offset) {
      return absl::OutOfRangeError(absl::StrCat(
          "pull of ", length, " bytes at offset ", offset, " from pool '", r.pool, "' of peer '",
          peer_name_, "' ends past the region's ", r.size_bytes, " bytes (",
          FormatSize(r.size_bytes), ")"));
    }
    if (length == 0) return absl::OkStatus();
    pool = r.pool;
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    param.cb.send = &OnPullDone;
    auto* holder = new std::shared_ptr<PullWait>(wait);
    param.user_data = holder;
    request = ucp_get_nbx(ep_, dst, length, r.base + offset, (*remote)->rkey, &param);
    if (!UCS_PTR_IS_PTR(request)) {
      delete holder;  // completed at once (or failed): no callback comes
      if (UCS_PTR_STATUS(request) == UCS_OK) return absl::OkStatus();
      return UcxError(absl::StrCat("pull of ", length, " bytes from pool '", pool, "' of peer '",
                                   peer_name_, "'"),
                      UCS_PTR_STATUS(request));
    }
    ++in_flight_;
  }
  worker_->Wake();

  bool completed = WaitUntil(*wait, deadline);
  if (!completed) {
    {
      MutexLock lock(&mu_);
      if (!closed_) {
        closed_reason_ = absl::StrCat("a pull of ", length, " bytes from pool '", pool,
                                      "' missed its deadline");
        ForceClose();
      }
    }
    if (!WaitUntil(*wait, absl::Now() + kPurgeWait)) {
      // UCX still owns the request and may yet write into dst; the callback
      // keeps `wait` alive. Should not happen: a forced close purges at once.
      spdlog::error("ucx transport '{}': a pull from peer '{}' survived closing its endpoint",
                    worker_->name(), peer_name_);
    } else if (wait->status == UCS_OK) {
      completed = true;  // the bytes arrived just before the close: they are in dst
    }
  }
  ucp_request_free(request);
  MutexLock lock(&mu_);
  --in_flight_;
  pulls_done_.SignalAll();
  if (!completed) {
    return absl::DeadlineExceededError(absl::StrCat(
        "pull of ", length, " bytes from pool '", pool, "' of peer '", peer_name_,
        "' did not complete by its deadline; the link is closed (UCX cannot cancel a get: "
        "connect again)"));
  }
  if (wait->status != UCS_OK) {
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    return UcxError(absl::StrCat("pull of ", length, " bytes from pool '", pool, "' of peer '",
                                 peer_name_, "'"),
                    wait->status);
  }
  return absl::OkStatus();
}

}  // namespace memd::bridge::ucx
