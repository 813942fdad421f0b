// AdminHandler: the Admin service's logic (admin_handler.h), free of gRPC.
#include "service/admin_handler.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "logging/logging.h"
#include "memd/shared/handle.h"
#include "memd/shared/text.h"
#include "memd/version.h"
#include "service/admin_answer.h"

namespace memd {
namespace {

absl::Status NoPoolNamed(std::string_view name) {
  return absl::NotFoundError(absl::StrFormat("no pool named '%s'", Escaped(name)));
}

void FillChannel(const ChannelStats& c, v1::ChannelStats* ch) {
  ch->set_name(c.name);
  ch->set_depth(c.depth);
  ch->set_capacity(c.capacity);
  ch->set_sent(c.sent);
  ch->set_received(c.received);
  ch->set_waiting_senders(c.waiting_senders);
  ch->set_waiting_receivers(c.waiting_receivers);
  ch->set_send_waits(c.send_waits);
  ch->set_dropped(c.dropped);
  ch->set_send_timeouts(c.send_timeouts);
  ch->set_drained(c.drained);
}

// A ListBuffers page token: where the page starts, as (pool index, slot) + 1,
// so that 0 is the first page.
uint64_t BufferToken(uint32_t pool_index, uint32_t slot) {
  return ((static_cast<uint64_t>(pool_index) << 32) | slot) + 1;
}

// The listings of `pool` from `first_slot` on, at most `want` of them.
// Pool::ListBuffers lists from the pool's first slot, so a page that starts
// further in asks for more and drops the head: O(position) per page until the
// pool can start at a slot (issue 14's holder ledger is the place for that).
std::vector<BufferListing> ListFrom(const Pool& pool,
                                    const std::vector<std::pair<uint64_t, const SessionRefs*>>& holders,
                                    uint64_t only_session, uint32_t first_slot, size_t want) {
  for (size_t ask = want;;) {
    bool truncated = false;
    std::vector<BufferListing> all = pool.ListBuffers(holders, only_session, ask, &truncated);
    auto first = std::find_if(all.begin(), all.end(), [&](const BufferListing& l) {
      return DecodeHandle(l.info.handle).slot >= first_slot;
    });
    const size_t skipped = static_cast<size_t>(first - all.begin());
    if (!truncated || all.size() - skipped >= want) {
      std::vector<BufferListing> out(std::make_move_iterator(first), std::make_move_iterator(all.end()));
      if (out.size() > want) out.resize(want);
      return out;
    }
    ask = std::max(ask * 2, skipped + want);
  }
}

// One session's listing entry, filled from its record (takes its pool's
// mutex). Returns *out.
const v1::SessionInfo& FillSession(const SessionRegistry::Record& r, v1::SessionInfo* out) {
  SessionUsage usage = r.pool->Usage(*r.refs);
  out->set_session_id(r.session_id);
  out->set_pid(r.peer ? r.peer->pid : 0);
  out->set_uid(r.peer ? r.peer->uid : UINT32_MAX);
  out->set_gid(r.peer ? r.peer->gid : UINT32_MAX);
  out->set_process_name(r.process_name);
  out->set_client_name(r.client_name);
  out->set_lane(r.lane);
  out->set_read_only(r.read_only);
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
  ArenaUsage arena = r.pool->ArenaUsageOf(*r.refs);
  out->set_arena_reserved_bytes(arena.reserved_bytes);
  out->set_arena_in_use_bytes(arena.in_use_bytes);
  out->set_arena_local_allocs(arena.local_allocs);
  return *out;
}

}  // namespace

absl::Status AdminHandler::GetStats(const v1::GetStatsRequest& request,
                                    v1::GetStatsResponse* response) {
  if (rusage usage{}; ::getrusage(RUSAGE_SELF, &usage) == 0) {
    auto us = [](const timeval& t) {
      return static_cast<uint64_t>(t.tv_sec) * 1000000 + static_cast<uint64_t>(t.tv_usec);
    };
    response->set_cpu_user_us(us(usage.ru_utime));
    response->set_cpu_system_us(us(usage.ru_stime));
  }
  AnswerBudget budget;
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
    out->set_arena_chunks_taken(s.arena_chunks_taken);
    out->set_quarantined_slots(s.quarantined_slots);
    out->set_arena_reserved_bytes(s.arena_reserved_bytes);
    out->set_arena_in_use_bytes(s.arena_in_use_bytes);
    out->set_arena_local_allocs(s.arena_local_allocs);
    budget.Take(*out);  // at most 256 pools of ~200 bytes: always fits
    if (channels_ == nullptr) continue;
    std::vector<ChannelStats> channels = channels_->Stats(*pool);
    out->set_channels_total(channels.size());
    size_t omitted = channels.size();
    if (!request.without_channels()) {
      omitted = KeepBusiest(&channels);
      for (const ChannelStats& c : channels) {
        v1::ChannelStats entry;
        FillChannel(c, &entry);
        if (budget.Take(entry)) {
          *out->add_channels() = std::move(entry);
        } else {
          ++omitted;
        }
      }
    }
    out->set_channels_omitted(omitted);
  }
  response->set_instance(instance_);
  response->set_version(MEMD_VERSION_STRING);
  response->set_uptime_seconds(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                         std::chrono::steady_clock::now() - started_)
                                                         .count()));
  return absl::OkStatus();
}

absl::Status AdminHandler::CheckPools(const v1::CheckPoolsRequest& request,
                                      v1::CheckPoolsResponse* response) {
  for (const auto& pool : pools_.pools()) {
    absl::Status status = pool->CheckInvariants();
    v1::PoolCheck* out = response->add_pools();
    out->set_name(pool->name());
    out->set_ok(status.ok());
    if (!status.ok()) out->set_error(std::string(status.message()));
  }
  return absl::OkStatus();
}

absl::Status AdminHandler::AuthorizeAdmin(const AdminCaller& caller, const char* what) const {
  const std::optional<PeerCredentials>& peer = caller.peer;
  uid_t daemon_uid = ::geteuid();
  if (peer && (peer->uid == 0 || peer->uid == daemon_uid)) return absl::OkStatus();
  if (peer && admin_gid_ && peer->InGroup(*admin_gid_)) return absl::OkStatus();
  std::string who = peer ? absl::StrFormat("uid %u (pid %d)", peer->uid, peer->pid) : caller.description;
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

absl::Status AdminHandler::ListSessions(const v1::ListSessionsRequest& request,
                                        v1::ListSessionsResponse* response) {
  const uint32_t limit = PageLimit(request.limit());
  AnswerBudget budget;
  uint64_t total = 0;
  sessions_.ForEach([&](const SessionRegistry::Record& r) {
    ++total;
    if (r.session_id < request.page_token() || response->next_page_token() != 0) return;
    v1::SessionInfo entry;
    if (static_cast<uint32_t>(response->sessions_size()) == limit || !budget.Take(FillSession(r, &entry))) {
      response->set_next_page_token(r.session_id);
      return;
    }
    *response->add_sessions() = std::move(entry);
  });
  response->set_total_sessions(total);
  return absl::OkStatus();
}

absl::Status AdminHandler::ListBuffers(const v1::ListBuffersRequest& request,
                                       v1::ListBuffersResponse* response) {
  if (!request.pool().empty() && pools_.Find(request.pool()) == nullptr) {
    return NoPoolNamed(request.pool());
  }
  const uint32_t limit = PageLimit(request.limit());
  const uint64_t start = request.page_token() == 0 ? 0 : request.page_token() - 1;
  AnswerBudget budget;
  sessions_.WithRecords([&](const std::map<uint64_t, SessionRegistry::Record>& records) {
    for (Pool* pool : pools_.pools()) {
      if (!request.pool().empty() && pool->name() != request.pool()) continue;
      if (pool->index() < start >> 32) continue;
      const uint32_t first_slot = pool->index() == start >> 32 ? static_cast<uint32_t>(start) : 0;
      std::vector<std::pair<uint64_t, const SessionRefs*>> holders;
      for (const auto& [id, record] : records) {
        if (record.pool == pool) holders.emplace_back(id, record.refs);
      }
      // One more than the page takes: it says where the next page starts.
      const size_t want = limit - static_cast<size_t>(response->buffers_size()) + 1;
      for (const BufferListing& l : ListFrom(*pool, holders, request.session_id(), first_slot, want)) {
        v1::BufferEntry entry;
        entry.set_handle(l.info.handle);
        entry.set_pool(pool->name());
        entry.set_offset_bytes(l.info.offset_bytes);
        entry.set_size_bytes(l.info.size_bytes);
        entry.set_capacity_bytes(l.info.capacity_bytes);
        entry.set_references(l.references);
        entry.set_holder_sessions(static_cast<uint32_t>(l.holder_session_ids.size()));
        for (size_t i = 0; i < l.holder_session_ids.size() && i < kMaxHoldersListed; ++i) {
          entry.add_holder_session_ids(l.holder_session_ids[i]);
        }
        if (static_cast<uint32_t>(response->buffers_size()) == limit || !budget.Take(entry)) {
          response->set_next_page_token(BufferToken(pool->index(), DecodeHandle(l.info.handle).slot));
          return;
        }
        *response->add_buffers() = std::move(entry);
      }
    }
  });
  response->set_truncated(response->next_page_token() != 0);
  return absl::OkStatus();
}

absl::Status AdminHandler::SetMaxAlloc(const AdminCaller& caller,
                                       const v1::SetMaxAllocRequest& request,
                                       v1::SetMaxAllocResponse* response) {
  if (absl::Status s = AuthorizeAdmin(caller, "set-max-alloc"); !s.ok()) return s;
  Pool* pool = pools_.Find(request.pool());
  if (pool == nullptr) return NoPoolNamed(request.pool());
  if (request.max_alloc_bytes() == 0) {
    return absl::InvalidArgumentError("max_alloc must be at least 1 byte");
  }
  uint64_t previous = pool->SetMaxAlloc(request.max_alloc_bytes());
  response->set_previous_max_alloc_bytes(previous);
  spdlog::info("max_alloc of pool '{}' changed from {} to {} bytes", pool->name(), previous,
               request.max_alloc_bytes());
  return absl::OkStatus();
}

absl::Status AdminHandler::EndSession(const AdminCaller& caller,
                                      const v1::EndSessionRequest& request,
                                      v1::EndSessionResponse* response) {
  if (absl::Status s = AuthorizeAdmin(caller, "end-session"); !s.ok()) return s;
  if (!sessions_.End(request.session_id())) {
    return absl::NotFoundError(absl::StrFormat("no session %u (memctl clients lists them)",
                                               request.session_id()));
  }
  spdlog::warn("session {} ended by an operator ({})", request.session_id(), caller.description);
  return absl::OkStatus();
}

absl::StatusOr<Pool*> AdminHandler::ChannelAdminPool(const AdminCaller& caller, const char* what,
                                                     std::string_view pool) const {
  if (absl::Status s = AuthorizeAdmin(caller, what); !s.ok()) return s;
  if (channels_ == nullptr) return absl::FailedPreconditionError("this daemon has no channels");
  Pool* found = pools_.Find(pool);
  if (found == nullptr) return NoPoolNamed(pool);
  return found;
}

absl::Status AdminHandler::DrainChannel(const AdminCaller& caller,
                                        const v1::DrainChannelRequest& request,
                                        v1::DrainChannelResponse* response) {
  absl::StatusOr<Pool*> pool = ChannelAdminPool(caller, "channel drain", request.pool());
  if (!pool.ok()) return pool.status();
  absl::StatusOr<DrainedChannel> drained = channels_->Drain(**pool, request.channel());
  if (!drained.ok()) return drained.status();
  response->set_messages(drained->messages);
  response->set_references(drained->references);
  response->set_bytes(drained->bytes);
  spdlog::warn("channel '{}' of pool '{}' drained by an operator ({}): {} messages, {} "
               "references, {} bytes released", request.channel(), (*pool)->name(),
               caller.description, drained->messages, drained->references, drained->bytes);
  return absl::OkStatus();
}

absl::Status AdminHandler::DeleteChannel(const AdminCaller& caller,
                                         const v1::DeleteChannelRequest& request,
                                         v1::DeleteChannelResponse* response) {
  absl::StatusOr<Pool*> pool = ChannelAdminPool(caller, "channel delete", request.pool());
  if (!pool.ok()) return pool.status();
  if (absl::Status s = channels_->Delete(**pool, request.channel()); !s.ok()) return s;
  spdlog::warn("channel '{}' of pool '{}' deleted by an operator ({})", request.channel(),
               (*pool)->name(), caller.description);
  return absl::OkStatus();
}

absl::Status AdminHandler::Shutdown(const AdminCaller& caller, const v1::ShutdownRequest& request,
                                    v1::ShutdownResponse* response) {
  const char* what = request.discard() ? "shutdown --discard" : "shutdown";
  if (absl::Status s = AuthorizeAdmin(caller, what); !s.ok()) return s;
  if (!stop_) return absl::FailedPreconditionError("this daemon cannot be stopped over its API");
  uint64_t live = 0;
  for (const auto& pool : pools_.pools()) live += pool->Stats().live_buffers;
  uint64_t sessions = 0;
  sessions_.ForEach([&](const SessionRegistry::Record&) { ++sessions; });
  response->set_live_buffers(live);
  response->set_sessions(sessions);
  spdlog::warn("{} requested by {}: {} live buffers in {} pools, {} sessions{}", what,
               caller.description, live, pools_.pools().size(), sessions,
               request.discard() ? "; every buffer will be discarded" : "");
  stop_(request.discard());
  return absl::OkStatus();
}

}  // namespace memd
