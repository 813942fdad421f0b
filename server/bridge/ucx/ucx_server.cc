#include "bridge/ucx/ucx_server.h"

#include <sys/random.h>

#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_wire.h"
#include "memd/shared/size.h"

namespace memd::bridge::ucx {
namespace {

// Keys compare in constant time: a peer learns nothing from how long a wrong
// key takes to refuse.
bool SameKey(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// A reply in flight owns its header until UCX is done with it.
struct ReplyInFlight {
  std::atomic<int>* counter;  // RegionServer::replies_in_flight_, or null for a refusal
  std::string header;
};

}  // namespace

absl::Status RegionServer::Start() {
  ucp_am_handler_param_t param{};
  param.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                     UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  param.id = kAmPullRequest;
  param.flags = UCP_AM_FLAG_WHOLE_MSG;
  param.cb = &RegionServer::OnRequest;
  param.arg = this;
  if (ucs_status_t s = ucp_worker_set_am_recv_handler(worker_->worker(), &param); s != UCS_OK) {
    return UcxError(absl::StrCat("ucx transport '", worker_->name(), "': pull request handler"),
                    s);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegionServer::Add(const std::string& pool, const void* base,
                                              size_t size) {
  std::string key(kRegionKeyBytes, '\0');
  if (getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size())) {
    return absl::InternalError(absl::StrCat("cannot draw a random key for pool '", pool, "'"));
  }
  MutexLock lock(&mu_);
  if (exposed_.contains(pool)) {
    return absl::AlreadyExistsError(absl::StrCat("pool '", pool,
                                                 "' is already exposed by ucx transport '",
                                                 worker_->name(), "'"));
  }
  exposed_.emplace(pool, Exposed{static_cast<const char*>(base), size, key});
  return EncodeRegion(Region{pool, size, key});
}

absl::StatusOr<const char*> RegionServer::Check(std::string_view header, uint64_t* request_id,
                                                uint64_t* length) {
  absl::StatusOr<PullRequest> request = ParsePullRequest(header);
  if (!request.ok()) return request.status();
  *request_id = request->request_id;
  *length = request->length;
  MutexLock lock(&mu_);
  auto it = exposed_.find(request->pool);
  // One answer for an unknown pool and a wrong key: a peer cannot probe
  // which pools exist without their descriptors.
  if (it == exposed_.end() || !SameKey(it->second.key, request->key)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "pull from pool '", request->pool,
        "' refused: this daemon exposes no such pool to a peer with that key"));
  }
  const Exposed& exposed = it->second;
  if (request->offset > exposed.size_bytes ||
      request->length > exposed.size_bytes - request->offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "pull of ", request->length, " bytes at offset ", request->offset, " from pool '",
        request->pool, "' ends past the region's ", exposed.size_bytes, " bytes (",
        FormatSize(exposed.size_bytes), ")"));
  }
  return exposed.base + request->offset;
}

void RegionServer::OnReplySent(void* request, ucs_status_t, void* user_data) {
  auto* reply = static_cast<ReplyInFlight*>(user_data);
  if (reply->counter != nullptr) reply->counter->fetch_sub(1);
  delete reply;
  ucp_request_free(request);
}

ucs_status_t RegionServer::OnRequest(void* arg, const void* header, size_t header_length,
                                     void* data, size_t length,
                                     const ucp_am_recv_param_t* param) {
  auto* self = static_cast<RegionServer*>(arg);
  if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) return UCS_OK;  // cannot answer
  uint64_t request_id = 0, wanted = 0;
  absl::StatusOr<const char*> bytes = self->Check(
      std::string_view(static_cast<const char*>(header), header_length), &request_id, &wanted);
  if (bytes.ok() && self->replies_in_flight_.load() >= kMaxRepliesInFlight) {
    bytes = absl::ResourceExhaustedError(absl::StrCat(
        self->replies_in_flight_.load(), " answers are in flight from ucx transport '",
        self->worker_->name(), "'; the limit is ", kMaxRepliesInFlight, " (ask again later)"));
  }
  self->Reply(param->reply_ep, request_id, bytes.status(), bytes.ok() ? *bytes : nullptr,
              bytes.ok() ? wanted : 0);
  return UCS_OK;
}

void RegionServer::Reply(ucp_ep_h reply_ep, uint64_t request_id, const absl::Status& status,
                         const char* bytes, uint64_t length) {
  auto* reply = new ReplyInFlight{
      length > 0 ? &replies_in_flight_ : nullptr,
      EncodePullReply(PullReply{request_id, static_cast<uint32_t>(status.code()),
                                std::string(status.message())})};
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = &RegionServer::OnReplySent;
  param.user_data = reply;
  if (reply->counter != nullptr) reply->counter->fetch_add(1);
  ucs_status_ptr_t request = ucp_am_send_nbx(reply_ep, kAmPullReply, reply->header.data(),
                                             reply->header.size(), bytes, length, &param);
  if (!UCS_PTR_IS_PTR(request)) {  // done (or failed: the peer sees its link fail)
    if (reply->counter != nullptr) reply->counter->fetch_sub(1);
    delete reply;
  }
}

}  // namespace memd::bridge::ucx
