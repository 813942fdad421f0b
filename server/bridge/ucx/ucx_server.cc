#include "bridge/ucx/ucx_server.h"

#include <sys/random.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_seal.h"
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

// A reply in flight owns its header, and a sealed answer's ciphertext, until
// UCX is done with them.
struct ReplyInFlight {
  RegionServer* server;       // takes the ciphertext buffer back (OnReplySent is static)
  std::atomic<int>* counter;  // RegionServer::replies_in_flight_, or null for a refusal
  std::atomic<uint64_t>* sealed_counter;  // RegionServer::sealed_bytes_in_flight_, or null
  uint64_t sealed_bytes;
  std::string header;
  SealBuffer ciphertext;  // given back to the server when sent
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

absl::Status RegionServer::Add(const std::string& pool, const void* base, size_t size) {
  MutexLock lock(&mu_);
  if (exposed_.contains(pool)) {
    return absl::AlreadyExistsError(absl::StrCat("pool '", pool,
                                                 "' is already exposed by ucx transport '",
                                                 worker_->name(), "'"));
  }
  exposed_.emplace(pool, Exposed{static_cast<const char*>(base), size});
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegionServer::Grant(const std::string& pool, const std::string& peer,
                                                bool seal) {
  Granted grant{pool, peer, std::string(kRegionKeyBytes, '\0'), {}, 0};
  if (getrandom(grant.key.data(), grant.key.size(), 0) != static_cast<ssize_t>(grant.key.size())) {
    return absl::InternalError(absl::StrCat("cannot draw a random key for pool '", pool, "'"));
  }
  if (seal) {
    if (absl::Status s = NewSealKey(&grant.seal_key); !s.ok()) return s;
  }
  MutexLock lock(&mu_);
  auto it = exposed_.find(pool);
  if (it == exposed_.end()) {
    return absl::NotFoundError(absl::StrCat("cannot grant pool '", pool, "' to peer '", peer,
                                            "': ucx transport '", worker_->name(),
                                            "' has not exposed it"));
  }
  std::string region =
      EncodeRegion(Region{pool, it->second.size_bytes, grant.key, grant.seal_key});
  grants_.push_back(std::move(grant));
  return region;
}

void RegionServer::Revoke(std::string_view descriptor) {
  absl::StatusOr<Region> region = ParseRegion(descriptor);
  if (!region.ok()) return;
  MutexLock lock(&mu_);
  grants_.erase(std::remove_if(grants_.begin(), grants_.end(),
                               [&](const Granted& g) { return SameKey(g.key, region->key); }),
                grants_.end());
}

absl::StatusOr<RegionServer::Serve> RegionServer::Check(std::string_view header,
                                                        uint64_t* request_id, uint64_t* offset,
                                                        uint64_t* length) {
  absl::StatusOr<PullRequest> request = ParsePullRequest(header);
  if (!request.ok()) return request.status();
  *request_id = request->request_id;
  *offset = request->offset;
  *length = request->length;
  MutexLock lock(&mu_);
  // Every grant is compared, in constant time each: how long a refusal
  // takes says nothing about which keys exist.
  Granted* grant = nullptr;
  for (Granted& g : grants_) {
    if (SameKey(g.key, request->key) & (g.pool == request->pool)) grant = &g;
  }
  auto it = exposed_.find(request->pool);
  // One answer for an unknown pool and a wrong or revoked key: a peer cannot
  // probe which pools exist without their descriptors.
  if (it == exposed_.end() || grant == nullptr) {
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
  return Serve{exposed.base + request->offset, grant->pool, grant->peer, grant->seal_key,
               grant->seal_key.empty() ? 0 : grant->answers++};
}

SealBuffer RegionServer::TakeSealBuffer(size_t length) {
  {
    MutexLock lock(&spare_mu_);
    for (auto it = spare_.begin(); it != spare_.end(); ++it) {
      if (it->capacity_bytes >= length) {
        SealBuffer buffer = std::move(*it);
        spare_.erase(it);
        return buffer;
      }
    }
  }
  return SealBuffer{std::unique_ptr<char[]>(new char[length]), length};
}

void RegionServer::GiveSealBuffer(SealBuffer buffer) {
  if (buffer.bytes == nullptr) return;
  MutexLock lock(&spare_mu_);
  spare_.push_back(std::move(buffer));
  std::sort(spare_.begin(), spare_.end(), [](const SealBuffer& a, const SealBuffer& b) {
    return a.capacity_bytes > b.capacity_bytes;
  });
  if (spare_.size() > kSpareSealBuffers) spare_.resize(kSpareSealBuffers);
}

void RegionServer::OnReplySent(void* request, ucs_status_t, void* user_data) {
  auto* reply = static_cast<ReplyInFlight*>(user_data);
  if (reply->counter != nullptr) reply->counter->fetch_sub(1);
  if (reply->sealed_counter != nullptr) reply->sealed_counter->fetch_sub(reply->sealed_bytes);
  reply->server->GiveSealBuffer(std::move(reply->ciphertext));
  delete reply;
  ucp_request_free(request);
}

ucs_status_t RegionServer::OnRequest(void* arg, const void* header, size_t header_length,
                                     void* data, size_t length,
                                     const ucp_am_recv_param_t* param) {
  auto* self = static_cast<RegionServer*>(arg);
  if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) return UCS_OK;  // cannot answer
  uint64_t request_id = 0, offset = 0, wanted = 0;
  absl::StatusOr<Serve> serve =
      self->Check(std::string_view(static_cast<const char*>(header), header_length), &request_id,
                  &offset, &wanted);
  if (serve.ok()) {  // B40: only a range in flight to the grant's peer
    if (absl::Status allowed = self->may_read_(serve->peer, serve->pool, offset, wanted);
        !allowed.ok()) {
      serve = allowed;
    }
  }
  if (serve.ok() && self->replies_in_flight_.load() >= kMaxRepliesInFlight) {
    serve = absl::ResourceExhaustedError(absl::StrCat(
        self->replies_in_flight_.load(), " answers are in flight from ucx transport '",
        self->worker_->name(), "'; the limit is ", kMaxRepliesInFlight, " (ask again later)"));
  }
  if (serve.ok() && !serve->seal_key.empty() &&
      self->sealed_bytes_in_flight_.load() + wanted > kMaxSealedBytesInFlight) {
    serve = absl::ResourceExhaustedError(absl::StrCat(
        "sealed answers of ", FormatSize(self->sealed_bytes_in_flight_.load()),
        " are in flight from ucx transport '", self->worker_->name(), "'; with ",
        FormatSize(wanted), " more the limit of ", FormatSize(kMaxSealedBytesInFlight),
        " would be passed (ask again later)"));
  }
  self->Reply(param->reply_ep, request_id, serve.status(), serve.ok() ? &*serve : nullptr,
              serve.ok() ? wanted : 0);
  return UCS_OK;
}

void RegionServer::Reply(ucp_ep_h reply_ep, uint64_t request_id, const absl::Status& status,
                         const Serve* serve, uint64_t length) {
  PullReply header{request_id, static_cast<uint32_t>(status.code()),
                   std::string(status.message()), {}};
  const char* bytes = serve != nullptr ? serve->bytes : nullptr;
  auto* reply =
      new ReplyInFlight{this, length > 0 ? &replies_in_flight_ : nullptr, nullptr, 0, {}, {}};
  if (length > 0 && !serve->seal_key.empty()) {
    // Sealed on this (the progress) thread, 2.3 GB/s with AES-NI on this
    // loaded machine (docs/ucx-transport.md, "Encryption").
    reply->ciphertext = TakeSealBuffer(length);
    if (absl::Status s = Seal(serve->seal_key, serve->counter, request_id, bytes,
                              reply->ciphertext.bytes.get(), length, &header.seal);
        !s.ok()) {
      header = PullReply{request_id, static_cast<uint32_t>(s.code()), std::string(s.message()), {}};
      GiveSealBuffer(std::move(reply->ciphertext));
      reply->counter = nullptr;
      length = 0;
    } else {
      bytes = reply->ciphertext.bytes.get();
      reply->sealed_counter = &sealed_bytes_in_flight_;
      reply->sealed_bytes = length;
      sealed_bytes_in_flight_.fetch_add(length);
    }
  }
  reply->header = EncodePullReply(header);
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = &RegionServer::OnReplySent;
  param.user_data = reply;
  if (reply->counter != nullptr) reply->counter->fetch_add(1);
  ucs_status_ptr_t request = ucp_am_send_nbx(reply_ep, kAmPullReply, reply->header.data(),
                                             reply->header.size(), bytes, length, &param);
  if (!UCS_PTR_IS_PTR(request)) {  // done (or failed: the peer sees its link fail)
    if (reply->counter != nullptr) reply->counter->fetch_sub(1);
    if (reply->sealed_counter != nullptr) reply->sealed_counter->fetch_sub(reply->sealed_bytes);
    GiveSealBuffer(std::move(reply->ciphertext));
    delete reply;
  }
}

}  // namespace memd::bridge::ucx
