#include "service/session_registry.h"

#include "absl/strings/str_format.h"

namespace memd {

trace::SessionInfo TraceSessionOf(const SessionRegistry::Record& record) {
  return trace::SessionInfo{record.session_id, record.peer ? record.peer->pid : 0,
                            record.peer ? record.peer->uid : 0, record.process_name,
                            record.client_name};
}

absl::Status SessionRegistry::Add(Record record) {
  trace::SessionInfo traced = TraceSessionOf(record);
  {
    MutexLock lock(&mu_);
    if (record.peer) {
      const uint64_t max = max_per_uid_.load();
      uint64_t& count = per_uid_[record.peer->uid];
      if (max != 0 && count >= max) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "uid %u has %u attached sessions; the limit is %u per uid (--max-sessions-per-uid): "
            "end one, or share one session among the threads of a process", record.peer->uid,
            count, max));
      }
      ++count;
    }
    records_[record.session_id] = std::move(record);
  }
  // A recording that runs learns who this session is (memctl trace); not
  // under this registry's mutex (the recorder's is a leaf of its own).
  trace::Recorder::Daemon().NoteSession(traced);
  return absl::OkStatus();
}

void SessionRegistry::Remove(uint64_t session_id) {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it == records_.end()) return;
  if (it->second.peer) {
    auto count = per_uid_.find(it->second.peer->uid);
    if (count != per_uid_.end() && --count->second == 0) per_uid_.erase(count);
  }
  records_.erase(it);
}

void SessionRegistry::SetLane(uint64_t session_id, bool lane, int lane_fd) {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it == records_.end()) return;
  it->second.lane = lane;
  it->second.lane_fd = lane ? lane_fd : -1;
}

bool SessionRegistry::WithSession(uint64_t session_id,
                                  const std::function<void(const Record&)>& fn) const {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it == records_.end()) return false;
  fn(it->second);
  return true;
}

bool SessionRegistry::End(uint64_t session_id) {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it == records_.end()) return false;
  if (it->second.end) it->second.end();
  return true;
}

}  // namespace memd
