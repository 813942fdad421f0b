#include "service/admin_service.h"

#include "logging/logging.h"

#include <sys/resource.h>
#include <unistd.h>

#include <climits>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "memd/shared/text.h"
#include "service/admin_answer.h"
#include "service/status_convert.h"

namespace memd {

namespace {

// Every Admin call ends here: `answer` (null for calls that fail before
// filling one) passes the UTF-8 guard before it goes out.
grpc::ServerUnaryReactor* Done(RpcTimer& timer, grpc::CallbackServerContext* context,
                               const absl::Status& status,
                               google::protobuf::Message* answer = nullptr) {
  if (answer != nullptr && status.ok()) MakeStringsValid(answer);
  timer.set_code(status.code());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

constexpr uint32_t kDefaultBufferLimit = 1000;

absl::Status NoPoolNamed(std::string_view name) {
  return absl::NotFoundError(absl::StrFormat("no pool named '%s'", Escaped(name)));
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::GetStats(grpc::CallbackServerContext* context,
                                                 const v1::GetStatsRequest* request,
                                                 v1::GetStatsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kGetStats);
  if (rusage usage{}; ::getrusage(RUSAGE_SELF, &usage) == 0) {
    auto us = [](const timeval& t) {
      return static_cast<uint64_t>(t.tv_sec) * 1000000 + static_cast<uint64_t>(t.tv_usec);
    };
    response->set_cpu_user_us(us(usage.ru_utime));
    response->set_cpu_system_us(us(usage.ru_stime));
  }
  for (const auto& pool : pools_.pools()) {
    PoolStats s = pool->Stats();
    v1::PoolStats* out = response->add_pools();
    out->set_name(pool->name());
    out->set_shm_name(pool->shm_name());
    out->set_size_bytes(s.size_bytes);
    out->set_used_bytes(s.used_bytes);
    out->set_free_bytes(s.free_bytes);
    out->set_largest_free_bytes(s.largest_free_bytes);
    out->set_live_buffers(s.live_buffers);
    out->set_sessions(s.sessions);
    out->set_alignment_bytes(s.alignment_bytes);
    out->set_max_alloc_bytes(s.max_alloc_bytes);
    out->set_allocs(s.allocs);
    out->set_frees(s.frees);
    out->set_failed_allocs(s.failed_allocs);
    out->set_peak_used_bytes(s.peak_used_bytes);
    out->set_unclaimed_references(s.unclaimed_references);
    if (channels_ != nullptr) {
      for (const ChannelStats& c : channels_->Stats(*pool)) {
        v1::ChannelStats* ch = out->add_channels();
        ch->set_name(c.name);
        ch->set_depth(c.depth);
        ch->set_capacity(c.capacity);
        ch->set_sent(c.sent);
        ch->set_received(c.received);
        ch->set_waiting_senders(c.waiting_senders);
        ch->set_waiting_receivers(c.waiting_receivers);
        ch->set_send_waits(c.send_waits);
      }
    }
  }
  response->set_instance(instance_);
  response->set_uptime_seconds(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                         std::chrono::steady_clock::now() - started_)
                                                         .count()));
  return Done(timer, context, absl::OkStatus(), response);
}

grpc::ServerUnaryReactor* AdminService::CheckPools(grpc::CallbackServerContext* context,
                                                   const v1::CheckPoolsRequest* request,
                                                   v1::CheckPoolsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kCheckPools);
  for (const auto& pool : pools_.pools()) {
    absl::Status status = pool->CheckInvariants();
    v1::PoolCheck* out = response->add_pools();
    out->set_name(pool->name());
    out->set_ok(status.ok());
    if (!status.ok()) out->set_error(std::string(status.message()));
  }
  return Done(timer, context, absl::OkStatus(), response);
}

absl::Status AdminService::AuthorizeAdmin(grpc::CallbackServerContext* context,
                                          const char* what) const {
  std::optional<PeerCredentials> peer = peers_.Lookup(context->peer());
  uid_t daemon_uid = ::geteuid();
  if (peer && (peer->uid == 0 || peer->uid == daemon_uid)) return absl::OkStatus();
  if (peer && admin_gid_ && peer->InGroup(*admin_gid_)) return absl::OkStatus();
  std::string who = peer ? absl::StrFormat("uid %u (pid %d)", peer->uid, peer->pid) : context->peer();
  std::string allowed =
      admin_gid_ ? absl::StrFormat("the daemon's uid %u, root or members of group %u", daemon_uid,
                                   *admin_gid_)
                 : absl::StrFormat("the daemon's uid %u or root", daemon_uid);
  if (uint64_t dropped = 0; ClientWarnings().Allow("admin-denied", &dropped)) {
    spdlog::warn("refused {} from {}: not {}{}", what, who, allowed, SuppressedNote(dropped));
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "%s is allowed only to %s over a Unix socket; caller is %s", what, allowed, who));
}

grpc::ServerUnaryReactor* AdminService::ListSessions(grpc::CallbackServerContext* context,
                                                     const v1::ListSessionsRequest* request,
                                                     v1::ListSessionsResponse* response) {
  RpcTimer timer(metrics_, Rpc::kListSessions);
  sessions_.ForEach([&](const SessionRegistry::Record& r) {
    SessionUsage usage = r.pool->Usage(*r.refs);
    v1::SessionInfo* out = response->add_sessions();
    out->set_session_id(r.session_id);
    out->set_pid(r.peer ? r.peer->pid : 0);
    out->set_uid(r.peer ? r.peer->uid : UINT32_MAX);
    out->set_gid(r.peer ? r.peer->gid : UINT32_MAX);
    out->set_process_name(r.process_name);
    out->set_client_name(r.client_name);
    out->set_lane(r.lane);
    out->set_pool(r.pool->name());
    out->set_held_bytes(usage.held_bytes);
    const PoolQuotas q = r.pool->quotas();
    out->set_session_quota_bytes(q.session_bytes);
    out->set_session_quota_buffers(q.session_buffers);
    out->set_uid_quota_bytes(q.uid_bytes);
    out->set_uid_quota_buffers(q.uid_buffers);
    if (r.peer) {
      SessionUsage uid = r.pool->UidUsage(r.peer->uid);
      out->set_uid_held_bytes(uid.held_bytes);
      out->set_uid_held_buffers(uid.held_buffers);
    }
    out->set_held_buffers(usage.held_buffers);
    out->set_connected_unix_ms(r.connected_unix_ms);
  });
  return Done(timer, context, absl::OkStatus(), response);
}

grpc::ServerUnaryReactor* AdminService::ListBuffers(grpc::CallbackServerContext* context,
                                                    const v1::ListBuffersRequest* request,
                                                    v1::ListBuffersResponse* response) {
  RpcTimer timer(metrics_, Rpc::kListBuffers);
  if (!request->pool().empty() && pools_.Find(request->pool()) == nullptr) {
    return Done(timer, context, NoPoolNamed(request->pool()));
  }
  const size_t limit = request->limit() == 0 ? kDefaultBufferLimit : request->limit();
  bool truncated = false;
  sessions_.WithRecords([&](const std::map<uint64_t, SessionRegistry::Record>& records) {
    for (const auto& pool : pools_.pools()) {
      if (!request->pool().empty() && pool->name() != request->pool()) continue;
      std::vector<std::pair<uint64_t, const SessionRefs*>> holders;
      for (const auto& [id, record] : records) {
        if (record.pool == pool) holders.emplace_back(id, record.refs);
      }
      size_t left = limit - static_cast<size_t>(response->buffers_size());
      for (const BufferListing& l : pool->ListBuffers(holders, request->session_id(), left, &truncated)) {
        v1::BufferEntry* out = response->add_buffers();
        out->set_handle(l.info.handle);
        out->set_pool(pool->name());
        out->set_offset_bytes(l.info.offset_bytes);
        out->set_size_bytes(l.info.size_bytes);
        out->set_capacity_bytes(l.info.capacity_bytes);
        out->set_references(l.references);
        for (uint64_t id : l.holder_session_ids) out->add_holder_session_ids(id);
      }
    }
  });
  response->set_truncated(truncated);
  return Done(timer, context, absl::OkStatus(), response);
}

grpc::ServerUnaryReactor* AdminService::SetMaxAlloc(grpc::CallbackServerContext* context,
                                                    const v1::SetMaxAllocRequest* request,
                                                    v1::SetMaxAllocResponse* response) {
  RpcTimer timer(metrics_, Rpc::kSetMaxAlloc);
  if (absl::Status s = AuthorizeAdmin(context, "set-max-alloc"); !s.ok()) return Done(timer, context, s);
  Pool* pool = pools_.Find(request->pool());
  if (pool == nullptr) {
    return Done(timer, context, NoPoolNamed(request->pool()));
  }
  if (request->max_alloc_bytes() == 0) {
    return Done(timer, context, absl::InvalidArgumentError("max_alloc must be at least 1 byte"));
  }
  uint64_t previous = pool->SetMaxAlloc(request->max_alloc_bytes());
  response->set_previous_max_alloc_bytes(previous);
  spdlog::info("max_alloc of pool '{}' changed from {} to {} bytes", pool->name(), previous,
               request->max_alloc_bytes());
  return Done(timer, context, absl::OkStatus(), response);
}

}  // namespace memd

namespace memd {

grpc::ServerUnaryReactor* AdminService::EndSession(grpc::CallbackServerContext* context,
                                                   const v1::EndSessionRequest* request,
                                                   v1::EndSessionResponse* response) {
  RpcTimer timer(metrics_, Rpc::kEndSession);
  if (absl::Status s = AuthorizeAdmin(context, "end-session"); !s.ok()) return Done(timer, context, s);
  if (!sessions_.End(request->session_id())) {
    return Done(timer, context, absl::NotFoundError(absl::StrFormat(
                             "no session %u (memctl clients lists them)", request->session_id())));
  }
  spdlog::warn("session {} ended by an operator ({})", request->session_id(), context->peer());
  return Done(timer, context, absl::OkStatus());
}

}  // namespace memd
