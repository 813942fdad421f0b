#include "service/session_handler.h"

#include <sys/random.h>

#include <spdlog/spdlog.h>

#include <fstream>

#include "absl/time/clock.h"

#include "absl/strings/str_format.h"
#include "memd/shared/fd_handoff.h"
#include "absl/strings/str_join.h"
#include "access/pool_access.h"
#include "logging/logging.h"
#include "memd/shared/text.h"
#include "service/status_convert.h"

namespace memd {
namespace {

void FillBuffer(const BufferInfo& info, v1::BufferInfo* out) {
  out->set_handle(info.handle);
  out->set_offset_bytes(info.offset_bytes);
  out->set_size_bytes(info.size_bytes);
  out->set_capacity_bytes(info.capacity_bytes);
}

constexpr size_t kMaxClientNameBytes = 64;
constexpr int kMaxReclaimEntries = 1024;
constexpr uint32_t kMaxBatch = 1024;

// /proc/<pid>/comm without the newline, fit to show (SystemName: the kernel
// cuts it at 15 bytes, inside a character too); "" when it cannot be read.
std::string ProcessName(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return SystemName(name);
}

}  // namespace

SessionHandler::SessionHandler(const PoolRegistry& pools, SessionRegistry& sessions,
                               uint64_t session_id, std::optional<PeerCredentials> peer,
                               std::string description, std::function<void()> end,
                               Metrics* metrics, ChannelRegistry* channels)
    : pools_(pools),
      sessions_(sessions),
      session_id_(session_id),
      peer_(peer),
      description_(std::move(description)),
      end_(std::move(end)),
      metrics_(metrics),
      channels_(channels) {}

SessionHandler::~SessionHandler() { Close(); }

void SessionHandler::Close() {
  if (closed_) return;
  closed_ = true;
  if (pool_ == nullptr) return;
  sessions_.Remove(session_id_);  // before the references go (see SessionRegistry)
  if (channels_ != nullptr) channels_->CancelSession(session_id_);  // no callback after this
  if (sessions_.stopping()) {
    // The daemon stops: the references stay recorded in the pool's state
    // table, and the process that holds them reclaims them from the next
    // daemon (docs/reliability.md, the restart matrix).
    return;
  }
  if (!closed_by_client_ && pidfd_.valid() && !ProcessExited(pidfd_.get())) {
    // The stream ended under a live process: it may still write through
    // pointers into these buffers, so they stay its own until it reclaims
    // them with this session's ticket or exits (OrphanRegistry).
    spdlog::info("session {} ({}) ended while its process lives: its references in pool '{}' "
                 "are kept until it reclaims them or exits", session_id_, description_,
                 pool_->name());
    sessions_.orphans().Add(pool_, holder_, ticket_, peer_->uid, std::move(pidfd_));
    return;
  }
  uint64_t released = pool_->CloseHolder(holder_);
  spdlog::debug("session {} ({}) closed; released {} references in pool '{}'", session_id_,
                description_, released, pool_->name());
}

absl::Status SessionHandler::Attach(const v1::AttachRequest& attach, v1::AttachResponse* out) {
  if (pool_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "session %u is already attached to pool '%s'", session_id_, pool_->name()));
  }
  if (attach.client_name().size() > kMaxClientNameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "client_name is %u bytes; the limit is %u", attach.client_name().size(), kMaxClientNameBytes));
  }
  if (absl::Status s = ValidateText("client_name", attach.client_name()); !s.ok()) return s;
  Pool* pool = pools_.Find(attach.pool());
  if (pool == nullptr) {
    std::vector<std::string> names;
    for (const auto& p : pools_.pools()) names.push_back(p->name());
    return absl::NotFoundError(absl::StrFormat("no pool named '%s' (this daemon has: %s)",
                                               Escaped(attach.pool()), absl::StrJoin(names, ", ")));
  }
  if (!peer_) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "pool '%s': memory operations need the local Unix socket (%s is a network peer; TCP "
        "serves the admin and stats service only)", pool->name(), description_));
  }
  const PoolAccess& access = pool->access();
  if (!MayReadWrite(*peer_, access)) {
    if (uint64_t dropped = 0; ClientWarnings().Allow("attach-denied", &dropped)) {
      spdlog::warn("refused attach of {} to pool '{}': uid {} gid {} may not use it (owner {}, "
                   "group {}, mode {:04o}){}", description_, pool->name(), peer_->uid, peer_->gid,
                   access.owner_uid, access.group_gid, access.mode, SuppressedNote(dropped));
    }
    return absl::PermissionDeniedError(absl::StrFormat(
        "pool '%s' is not open to uid %u (gid %u): its memory has owner %u, group %u, mode %04o",
        pool->name(), peer_->uid, peer_->gid, access.owner_uid, access.group_gid, access.mode));
  }
  if (!pool->memory_ready()) {
    return absl::UnavailableError(absl::StrFormat(
        "pool '%s' is waiting for a client of the previous daemon to hand its memory back (a "
        "restart); try again shortly", pool->name()));
  }
  if (attach.expected_segment_id() != 0 && attach.expected_segment_id() != pool->segment_id()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' is segment 0x%016x now, not 0x%016x which this client mapped: the daemon "
        "restarted without adopting its predecessor's pool, so the client's buffers are gone",
        pool->name(), pool->segment_id(), attach.expected_segment_id()));
  }
  std::string ticket(fd_handoff::kTicketBytes, '\0');
  if (::getrandom(ticket.data(), ticket.size(), 0) != static_cast<ssize_t>(ticket.size())) {
    return absl::InternalError("cannot draw a session ticket from getrandom");
  }
  pool_ = pool;
  holder_ = pool_->OpenSession(session_id_, peer_->uid, ticket);
  ticket_ = ticket;
  pidfd_ = OpenPidfd(peer_->pid);
  sessions_.Add(SessionRegistry::Record{
      .session_id = session_id_,
      .peer = peer_,
      .process_name = peer_ ? ProcessName(peer_->pid) : "",
      .client_name = attach.client_name(),
      .pool = pool_,
      .refs = &holder_,
      .connected_unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())),
      .ticket = ticket,
      .end = end_,
  });
  out->set_session_id(session_id_);
  out->set_ticket(ticket);
  v1::PoolInfo* info = out->mutable_pool();
  info->set_name(pool->name());
  info->set_shm_name(pool->shm_name());
  info->set_size_bytes(pool->size_bytes());
  info->set_alignment_bytes(pool->alignment_bytes());
  info->set_max_alloc_bytes(pool->max_alloc_bytes());
  info->set_index(pool->index());
  info->set_segment_id(pool->segment_id());
  info->set_prefaulted(pool->prefaulted());
  spdlog::debug("session {} ({}, name '{}') attached to pool '{}'", session_id_, description_,
                attach.client_name(), pool->name());
  return absl::OkStatus();
}

absl::Status SessionHandler::Reclaim(const v1::ReclaimRequest& reclaim, v1::ReclaimResponse* out) {
  if (reclaim.held_size() > kMaxReclaimEntries) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "reclaim of %d handles in one request; the limit is %d (send several requests)",
        reclaim.held_size(), kMaxReclaimEntries));
  }
  // References a session of this process left when its stream broke: only
  // against that session's ticket (and uid).
  HolderId left = sessions_.orphans().Find(pool_, reclaim.ticket(), peer_->uid);
  for (const v1::HeldReference& held : reclaim.held()) {
    absl::StatusOr<Reclaimed> got =
        pool_->Reclaim(holder_, held.handle(), held.references(), left, reclaim.ticket());
    if (!got.ok()) {
      if (uint64_t dropped = 0; ClientWarnings().Allow("reclaim-refused", &dropped)) {
        spdlog::info("session {} ({}): {}{}", session_id_, description_,
                     std::string(got.status().message()), SuppressedNote(dropped));
      }
      continue;
    }
    v1::ReclaimedReference* r = out->add_reclaimed();
    FillBuffer(got->info, r->mutable_buffer());
    r->set_references(got->references);
  }
  if (left != HolderId::kNone) {
    if (reclaim.last_batch()) {
      sessions_.orphans().Finish(pool_, reclaim.ticket(), peer_->uid);
    } else {
      sessions_.orphans().Wake();
    }
  }
  spdlog::info("session {} ({}) reclaimed {} of {} handles in pool '{}'", session_id_,
               description_, out->reclaimed_size(), reclaim.held_size(), pool_->name());
  return absl::OkStatus();
}

namespace {

Rpc RpcOf(const v1::SessionRequest& request) {
  switch (request.op_case()) {
    case v1::SessionRequest::kAllocate: return Rpc::kAllocate;
    case v1::SessionRequest::kRealloc: return Rpc::kRealloc;
    case v1::SessionRequest::kRetain: return Rpc::kRetain;
    case v1::SessionRequest::kRelease: return Rpc::kRelease;
    case v1::SessionRequest::kReclaim: return Rpc::kReclaim;
    case v1::SessionRequest::kAllocateBatch: return Rpc::kAllocateBatch;
    case v1::SessionRequest::kReleaseBatch: return Rpc::kReleaseBatch;
    case v1::SessionRequest::kSend: return Rpc::kSend;
    case v1::SessionRequest::kReceive: return Rpc::kReceive;
    case v1::SessionRequest::kQuery: return Rpc::kQuery;
    case v1::SessionRequest::kClose: return Rpc::kRelease;
    default: return Rpc::kAttach;  // attach, and requests without an operation
  }
}

}  // namespace

bool SessionHandler::Handle(const v1::SessionRequest& request, v1::SessionResponse* response,
                            const std::function<void(v1::SessionResponse)>& later) {
  RpcTimer timer(metrics_, RpcOf(request));
  response->set_request_id(request.request_id());
  if (!closed_ && pool_ != nullptr && request.release_first_size() > 0) {
    if (absl::Status s = ReleaseFirst(request); !s.ok()) {
      timer.set_code(s.code());
      SetResponseStatus(s, response);
      return true;
    }
  }
  if (!closed_ && pool_ != nullptr && channels_ != nullptr &&
      (request.has_send() || request.has_receive())) {
    return HandleChannel(request, response, later, timer);
  }
  absl::Status status;
  if (closed_) {
    status = absl::FailedPreconditionError("session is closed");
  } else if (request.has_attach()) {
    status = Attach(request.attach(), response->mutable_attach());
  } else if (pool_ == nullptr) {
    status = absl::FailedPreconditionError(
        "the first request of a session must be attach (name the pool to use)");
  } else {
    // Allocate, realloc and retain all answer with the buffer they hold.
    auto reply_buffer = [&](const absl::StatusOr<BufferInfo>& info) {
      status = info.status();
      if (info.ok()) FillBuffer(*info, response->mutable_buffer());
    };
    switch (request.op_case()) {
      case v1::SessionRequest::kAllocate:
        reply_buffer(pool_->Allocate(holder_, request.allocate().size_bytes(), request.allocate().zero()));
        break;
      case v1::SessionRequest::kRealloc:
        reply_buffer(pool_->Realloc(holder_, request.realloc().handle(), request.realloc().size_bytes()));
        break;
      case v1::SessionRequest::kRetain:
        reply_buffer(pool_->Retain(holder_, request.retain().handle()));
        break;
      case v1::SessionRequest::kReclaim:
        status = Reclaim(request.reclaim(), response->mutable_reclaim());
        break;
      case v1::SessionRequest::kAllocateBatch: {
        const v1::AllocateBatchRequest& batch = request.allocate_batch();
        if (batch.count() == 0 || batch.count() > kMaxBatch) {
          status = absl::InvalidArgumentError(absl::StrFormat(
              "allocate_batch count %u must be from 1 to %u", batch.count(), kMaxBatch));
          break;
        }
        auto infos = pool_->AllocateMany(holder_, batch.size_bytes(), batch.count(), batch.zero());
        status = infos.status();
        if (infos.ok()) {
          for (const BufferInfo& info : *infos) FillBuffer(info, response->mutable_buffers()->add_buffers());
        }
        break;
      }
      case v1::SessionRequest::kReleaseBatch: {
        const auto& handles = request.release_batch().handles();
        if (handles.empty() || static_cast<uint32_t>(handles.size()) > kMaxBatch) {
          status = absl::InvalidArgumentError(absl::StrFormat(
              "release_batch of %d handles; from 1 to %u are allowed", handles.size(), kMaxBatch));
          break;
        }
        auto freed = pool_->ReleaseMany(holder_, std::vector<uint64_t>(handles.begin(), handles.end()));
        status = freed.status();
        if (freed.ok()) response->mutable_release_batch()->set_freed(*freed);
        break;
      }
      case v1::SessionRequest::kQuery: {
        const auto& handles = request.query().handles();
        if (handles.empty() || static_cast<uint32_t>(handles.size()) > kMaxBatch) {
          status = absl::InvalidArgumentError(absl::StrFormat(
              "query of %d handles; from 1 to %u are allowed", handles.size(), kMaxBatch));
          break;
        }
        std::vector<uint64_t> wanted(handles.begin(), handles.end());
        std::vector<Pool::References> counts = pool_->Query(holder_, wanted);
        for (size_t i = 0; i < wanted.size(); ++i) {
          v1::HandleReferences* r = response->mutable_references()->add_handles();
          r->set_handle(wanted[i]);
          r->set_references(counts[i].total);
          r->set_held(counts[i].held);
        }
        break;
      }
      case v1::SessionRequest::kRelease: {
        auto freed = pool_->Release(holder_, request.release().handle());
        status = freed.status();
        if (freed.ok()) response->mutable_release()->set_freed(*freed);
        break;
      }
      case v1::SessionRequest::kClose:
        // The client ends the session on purpose: nothing of it is kept.
        closed_by_client_ = true;
        response->mutable_closed()->set_released(pool_->ReleaseAll(holder_));
        break;
      default:
        status = absl::InvalidArgumentError(absl::StrFormat(
            "request %u carries no operation (op field %d unknown to this daemon)",
            request.request_id(), static_cast<int>(request.op_case())));
    }
  }
  if (!status.ok()) {
    spdlog::debug("session {}: request {} failed: {}", session_id_, request.request_id(),
                  status.ToString());
  }
  timer.set_code(status.code());
  SetResponseStatus(status, response);
  return true;
}

absl::Status SessionHandler::ReleaseFirst(const v1::SessionRequest& request) {
  const auto& handles = request.release_first();
  if (static_cast<uint32_t>(handles.size()) > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "release_first of %d handles; at most %u are allowed", handles.size(), kMaxBatch));
  }
  absl::StatusOr<uint32_t> freed =
      pool_->ReleaseMany(holder_, std::vector<uint64_t>(handles.begin(), handles.end()));
  return freed.status();
}

bool SessionHandler::HandleChannel(const v1::SessionRequest& request,
                                   v1::SessionResponse* response,
                                   const std::function<void(v1::SessionResponse)>& later,
                                   RpcTimer& timer) {
  uint64_t id = request.request_id();
  if (request.has_send()) {
    const v1::ChannelSendRequest& send = request.send();
    auto done = [later, id](absl::Status status) {
      v1::SessionResponse r;
      r.set_request_id(id);
      if (status.ok()) r.mutable_sent();
      SetResponseStatus(status, &r);
      if (later) later(std::move(r));
    };
    std::optional<absl::Status> now = channels_->Send(
        *pool_, holder_, session_id_, send.channel(),
        std::vector<uint64_t>(send.handles().begin(), send.handles().end()), send.metadata(),
        send.capacity(), later ? absl::Milliseconds(send.timeout_ms()) : absl::ZeroDuration(),
        send.share() ? Pool::TransferMode::kShare : Pool::TransferMode::kMove, done);
    if (!now) return false;
    timer.set_code(now->code());
    if (now->ok()) response->mutable_sent();
    SetResponseStatus(*now, response);
    return true;
  }
  const v1::ChannelReceiveRequest& receive = request.receive();
  auto fill = [](const absl::StatusOr<ReceivedMessage>& got, v1::SessionResponse* r) {
    if (got.ok()) {
      for (const BufferInfo& info : got->buffers) FillBuffer(info, r->mutable_message()->add_buffers());
      r->mutable_message()->set_metadata(got->metadata);
    }
    SetResponseStatus(got.status(), r);
  };
  auto done = [later, id, fill](absl::StatusOr<ReceivedMessage> got) {
    v1::SessionResponse r;
    r.set_request_id(id);
    fill(got, &r);
    if (later) later(std::move(r));
  };
  std::optional<absl::StatusOr<ReceivedMessage>> now = channels_->Receive(
      *pool_, holder_, session_id_, receive.channel(), receive.capacity(),
      later ? absl::Milliseconds(receive.timeout_ms()) : absl::ZeroDuration(), done);
  if (!now) return false;
  timer.set_code(now->status().code());
  fill(*now, response);
  return true;
}

}  // namespace memd
