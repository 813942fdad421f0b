// Pool: holders and the references between them (sessions, channel messages,
// channels, the unclaimed references of a restart). The ledger records who
// holds what and checks quotas; the handle table keeps each buffer's total.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "pool/pool.h"

namespace memd {

HolderId Pool::OpenSession(uint64_t session_id, std::optional<uid_t> uid, std::string ticket) {
  MutexLock lock(&mu_);
  return ledger_.Open(HolderKind::kSession, Causer{session_id, uid}, std::move(ticket));
}

uint64_t Pool::CloseHolder(HolderId holder) {
  MutexLock lock(&mu_);
  if (!ledger_.Contains(holder)) return 0;
  uint64_t released = DropAll(holder);
  ledger_.Close(holder);
  absl::erase_if(idle_chunks_, [holder](const auto& idle) { return idle.second == holder; });
  arena_usage_.erase(holder);
  return released;
}

Causer Pool::causer(HolderId holder) const {
  MutexLock lock(&mu_);
  return ledger_.causer(holder);
}

absl::Status Pool::CheckHeld(HolderId holder, const std::vector<uint64_t>& handles,
                             const char* op) {
  MutexLock lock(&mu_);
  return CheckHeldLocked(holder, handles, op);
}

absl::Status Pool::CheckHeldLocked(HolderId holder, const std::vector<uint64_t>& handles,
                                   const char* op, bool drops) {
  absl::flat_hash_map<uint64_t, uint32_t> wanted;
  for (uint64_t handle : handles) ++wanted[handle];
  for (const auto& [handle, count] : wanted) {
    absl::StatusOr<HandleTable::Entry*> found = FindHeld(holder, handle, op);
    if (!found.ok()) return found.status();
    if (uint32_t held = ledger_.Held(holder, handle); held < count) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s in pool '%s' %s %u references to handle 0x%016x; this session holds %u (nothing "
          "was %s)", op, config_.name, drops ? "drops" : "moves", count, handle, held,
          drops ? "released" : "moved"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BufferInfo>> Pool::TransferLocked(HolderId from, HolderId to,
                                                             const std::vector<uint64_t>& handles,
                                                             const char* op, TransferMode mode,
                                                             bool check_quotas) {
  if (absl::Status s = CheckHeldLocked(from, handles, op); !s.ok()) return s;
  if (mode == TransferMode::kShare) {
    absl::flat_hash_map<uint64_t, uint32_t> added;
    for (uint64_t handle : handles) ++added[handle];
    for (const auto& [handle, count] : added) {
      if (uint32_t refs = handles_.Find(handle)->refs; refs > UINT32_MAX - count) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "%s of handle 0x%016x: it has %u references, %u more exceed the maximum %u", op,
            handle, refs, count, UINT32_MAX));
      }
    }
  }
  std::vector<HolderLedger::Change> changes;
  changes.reserve(handles.size() * 2);
  for (uint64_t handle : handles) {
    uint64_t capacity = Capacity(*handles_.Find(handle));
    if (mode == TransferMode::kMove) changes.push_back({from, handle, capacity, -1});
    changes.push_back({to, handle, capacity, 1});
  }
  if (check_quotas) {
    if (absl::Status s = ledger_.Check(changes, op); !s.ok()) return s;
  }
  ledger_.Apply(changes);
  std::vector<BufferInfo> moved;
  moved.reserve(handles.size());
  for (uint64_t handle : handles) {
    HandleTable::Entry& entry = *handles_.Find(handle);
    if (mode == TransferMode::kShare) {
      ++entry.refs;
      Persist(handle);
    }
    moved.push_back(Describe(handle, entry));
  }
  return moved;
}

absl::StatusOr<std::vector<BufferInfo>> Pool::Transfer(HolderId from, HolderId to,
                                                       const std::vector<uint64_t>& handles,
                                                       const char* op, TransferMode mode) {
  MutexLock lock(&mu_);
  return TransferLocked(from, to, handles, op, mode, /*check_quotas=*/true);
}

std::vector<Pool::References> Pool::Query(HolderId holder,
                                          const std::vector<uint64_t>& handles) const {
  MutexLock lock(&mu_);
  std::vector<References> out;
  out.reserve(handles.size());
  for (uint64_t handle : handles) {
    References r;
    if (const HandleTable::Entry* entry = handles_.Find(handle); entry != nullptr) {
      r.total = entry->refs;
      r.held = ledger_.Held(holder, handle);
      r.size_bytes = SizeOf(*entry);
    }
    out.push_back(r);
  }
  return out;
}

absl::StatusOr<Reclaimed> Pool::Reclaim(HolderId holder, uint64_t handle, uint32_t count,
                                        HolderId from, const std::string& ticket) {
  MutexLock lock(&mu_);
  // From the references a session of this process left when its stream
  // broke, if named and still there; otherwise from those a restart
  // re-adopted for the ticket the process proves.
  HolderId source = HolderId::kNone;
  if (from != HolderId::kNone && ledger_.Contains(from)) {
    source = from;
  } else if (auto it = unclaimed_by_ticket_.find(ticket); !ticket.empty() &&
                                                          it != unclaimed_by_ticket_.end()) {
    source = it->second;
  } else if (reclaim_unproven_) {
    source = unclaimed_;
  }
  HandleTable::Entry* entry = handles_.Find(handle);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrFormat("reclaim in pool '%s': %s", config_.name,
                                               handles_.DescribeMissing(handle)));
  }
  uint32_t unclaimed = source == HolderId::kNone ? 0 : ledger_.Held(source, handle);
  if (count == 0 || unclaimed == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "reclaim of %u references to handle 0x%016x in pool '%s': the previous session of "
        "this process (the ticket the request proves) left %u unclaimed (the grace period may "
        "be over, or they were never its own)",
        count, handle, config_.name, unclaimed));
  }
  uint32_t granted = std::min(count, unclaimed);
  uint64_t capacity = Capacity(*entry);
  // The references existed before the restart: quotas do not refuse them.
  const HolderLedger::Change moved[] = {{source, handle, capacity, -int64_t{granted}},
                                        {holder, handle, capacity, int64_t{granted}}};
  ledger_.Apply(moved);
  return Reclaimed{Describe(handle, *entry), granted};
}

uint64_t Pool::ReleaseUnclaimed() {
  MutexLock lock(&mu_);
  uint64_t released = DropAll(unclaimed_);
  for (const auto& [ticket, unclaimed] : unclaimed_by_ticket_) {
    released += DropAll(unclaimed);
    ledger_.Close(unclaimed);
  }
  unclaimed_by_ticket_.clear();
  reclaim_unproven_ = false;
  return released;
}

HolderId Pool::UnclaimedOf(const std::string& ticket) {
  auto [it, inserted] = unclaimed_by_ticket_.try_emplace(ticket, HolderId::kNone);
  if (inserted) it->second = ledger_.Open(HolderKind::kUnclaimed, Causer{}, ticket);
  return it->second;
}

absl::StatusOr<HolderId> Pool::OpenChannel(HolderId creator, const std::string& op) {
  MutexLock lock(&mu_);
  HolderId channel = ledger_.Open(HolderKind::kChannel, ledger_.causer(creator));
  if (absl::Status s = ledger_.Charge(channel, SessionUsage{.channels = 1}, op.c_str()); !s.ok()) {
    ledger_.Close(channel);
    return s;
  }
  return channel;
}

absl::StatusOr<HolderId> Pool::OpenMessage(HolderId sender, const std::vector<uint64_t>& handles,
                                           TransferMode mode, uint64_t message_bytes,
                                           const std::string& op) {
  MutexLock lock(&mu_);
  // Under one lock: nobody sees the message before it holds its references.
  HolderId message = ledger_.Open(HolderKind::kMessage, ledger_.causer(sender));
  absl::Status status =
      ledger_.Charge(message, SessionUsage{.message_bytes = message_bytes}, op.c_str());
  if (status.ok()) {
    status = TransferLocked(sender, message, handles, op.c_str(), mode, /*check_quotas=*/true)
                 .status();
  }
  if (!status.ok()) {
    ledger_.Close(message);
    return status;
  }
  return message;
}

absl::StatusOr<std::vector<BufferInfo>> Pool::Deliver(HolderId message, HolderId to,
                                                      const std::vector<uint64_t>& handles,
                                                      const std::string& op, bool give_back) {
  MutexLock lock(&mu_);
  absl::StatusOr<std::vector<BufferInfo>> moved =
      TransferLocked(message, to, handles, op.c_str(), TransferMode::kMove, !give_back);
  if (moved.ok()) ledger_.Close(message);
  return moved;
}

absl::Status Pool::Park(HolderId session, const std::string& op) {
  MutexLock lock(&mu_);
  return ledger_.Charge(session, SessionUsage{.parked = 1}, op.c_str());
}

void Pool::Unpark(HolderId session) {
  MutexLock lock(&mu_);
  if (ledger_.Contains(session)) ledger_.Uncharge(session, SessionUsage{.parked = 1});
}

}  // namespace memd
