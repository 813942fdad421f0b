// Outbound::Recover: after a start (first, or after a kill -9), takes back
// the references of the messages the journal lists as unacknowledged.
#include <sys/random.h>

#include <map>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "bridge/outbound.h"
#include "shm/holdings_file.h"

namespace memd::bridge {
namespace {

std::string NewTicket() {
  std::string ticket(HoldingsFile::kTicketBytes, '\0');
  while (::getrandom(ticket.data(), ticket.size(), 0) != static_cast<ssize_t>(ticket.size())) {
  }
  return ticket;
}

}  // namespace

absl::Status Outbound::Recover() {
  Pool& pool = *env_.pool;
  // The pool's memory comes back with a client after a restart; the bytes of
  // in-flight messages are in it.
  while (!pool.memory_ready()) {
    MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    cv_.WaitFor(&mu_, std::chrono::milliseconds(100));
  }
  if (absl::Status s = env_.expose(pool); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<OutboundJournal>> journal = OutboundJournal::Open(JournalPath());
  if (!journal.ok()) return journal.status();
  // The holdings file keys the bridge's references by a ticket. A new one
  // per start, recorded before the holder exists, so that the journal
  // always names every ticket that may hold them (a kill during recovery
  // leaves both for the next start).
  std::vector<std::string> old = (*journal)->tickets();
  std::string ticket = NewTicket();
  std::vector<std::string> tickets = {ticket};
  for (const std::string& t : old) {
    if (tickets.size() < OutboundJournal::kMaxTickets) tickets.push_back(t);
  }
  (*journal)->SetTickets(tickets);
  holder_ = pool.OpenSession(env_.session_id, std::nullopt, ticket);
  std::deque<InFlight> recovered;
  for (OutboundJournal::Entry& e : (*journal)->Load()) {
    std::map<uint64_t, uint32_t> wanted;
    for (uint64_t h : e.handles) ++wanted[h];
    std::map<uint64_t, BufferInfo> info;
    bool complete = true;
    for (auto& [handle, count] : wanted) {
      uint32_t got = 0;
      for (const std::string& t : old) {
        if (got == count) break;
        absl::StatusOr<Reclaimed> r = pool.Reclaim(holder_, handle, count - got, HolderId::kNone, t);
        if (r.ok()) {
          got += r->references;
          info[handle] = r->info;
        }
      }
      complete &= got == count;
    }
    if (!complete) {
      // B08: the buffers are gone (the pool's memory was not handed back
      // within the grace period): the message cannot be delivered.
      spdlog::error("bridge '{}': message seq {} is lost: its buffers were not re-adopted "
                    "(no client handed pool '{}''s memory back within --reclaim-grace {})",
                    spec_.name(), e.seq, pool.name(), absl::FormatDuration(env_.reclaim_grace));
      std::vector<uint64_t> held;
      for (const auto& [handle, refs] : pool.Holdings(holder_)) {
        if (wanted.contains(handle)) held.insert(held.end(), refs, handle);
      }
      pool.ReleaseMany(holder_, held).IgnoreError();
      continue;
    }
    InFlight f{e.seq, {}, std::move(e.metadata), e.hops};
    for (uint64_t h : e.handles) f.buffers.push_back(info[h]);
    recovered.push_back(std::move(f));
  }
  (*journal)->SetTickets({ticket});
  if (!recovered.empty()) {
    spdlog::warn("bridge '{}': {} unacknowledged messages re-adopted (seq {}..{})", spec_.name(),
                 recovered.size(), recovered.front().seq, recovered.back().seq);
  }
  MutexLock lock(&mu_);
  journal_ = std::move(*journal);
  in_flight_ = std::move(recovered);
  sent_max_ = journal_->last_seq();  // anything below may have been offered before
  AckLost();
  ready_ = true;
  stats_.SetInFlight(in_flight_.size());
  cv_.SignalAll();
  return absl::OkStatus();
}

}  // namespace memd::bridge
