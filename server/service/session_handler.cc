// SessionHandler: a session's life (attach, reclaim, close). Its requests
// are dispatched in session_dispatch.cc, one function per operation.
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
#include "memd/shared/limits.h"
#include "memd/shared/text.h"
#include "service/status_convert.h"

namespace memd {
namespace {

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
  if (attach.client_name().size() > limits::kMaxClientNameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "client_name is %u bytes; the limit is %u", attach.client_name().size(), limits::kMaxClientNameBytes));
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
  const PoolRight right = RightOf(*peer_, access);
  if (right == PoolRight::kNone) {
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
  read_only_ = attach.read_only() || right == PoolRight::kRead;
  holder_ = pool_->OpenSession(session_id_, peer_->uid, ticket);
  ticket_ = ticket;
  pidfd_ = OpenPidfd(peer_->pid);
  absl::Status added = sessions_.Add(SessionRegistry::Record{
      .session_id = session_id_,
      .peer = peer_,
      .process_name = peer_ ? ProcessName(peer_->pid) : "",
      .client_name = attach.client_name(),
      .pool = pool_,
      .refs = &holder_,
      .connected_unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())),
      .read_only = read_only_,
      .ticket = ticket,
      .end = end_,
  });
  if (!added.ok()) {
    // Over the sessions a uid may have: the session stays unattached.
    if (uint64_t dropped = 0; ClientWarnings().Allow("sessions-per-uid", &dropped)) {
      spdlog::warn("refused attach of {} to pool '{}': {}{}", description_, pool_->name(),
                   std::string(added.message()), SuppressedNote(dropped));
    }
    pool_->CloseHolder(holder_);
    pool_ = nullptr;
    holder_ = HolderId::kNone;
    ticket_.clear();
    pidfd_ = UniqueFd();
    return added;
  }
  out->set_session_id(session_id_);
  out->set_ticket(ticket);
  out->set_read_only(read_only_);
  v1::PoolInfo* info = out->mutable_pool();
  info->set_name(pool->name());
  info->set_shm_name(pool->shm_name());
  info->set_size_bytes(pool->size_bytes());
  info->set_alignment_bytes(pool->alignment_bytes());
  info->set_max_alloc_bytes(pool->max_alloc_bytes());
  info->set_index(pool->index());
  info->set_segment_id(pool->segment_id());
  info->set_prefaulted(pool->prefaulted());
  spdlog::debug("session {} ({}, name '{}') attached to pool '{}' as a {}", session_id_,
                description_, attach.client_name(), pool->name(),
                read_only_ ? "reader" : "writer");
  return absl::OkStatus();
}

absl::Status SessionHandler::Reclaim(const v1::ReclaimRequest& reclaim, v1::ReclaimResponse* out) {
  if (static_cast<uint32_t>(reclaim.held_size()) > limits::kMaxReclaimEntries) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "reclaim of %d handles in one request; the limit is %u (send several requests)",
        reclaim.held_size(), limits::kMaxReclaimEntries));
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

}  // namespace memd
