#include "service/session_registry.h"

namespace memd {

trace::SessionInfo TraceSessionOf(const SessionRegistry::Record& record) {
  return trace::SessionInfo{record.session_id, record.peer ? record.peer->pid : 0,
                            record.peer ? record.peer->uid : 0, record.process_name,
                            record.client_name};
}

void SessionRegistry::Add(Record record) {
  // A recording that runs learns who this session is (memctl trace).
  trace::Recorder::Daemon().NoteSession(TraceSessionOf(record));
  MutexLock lock(&mu_);
  records_[record.session_id] = std::move(record);
}

void SessionRegistry::Remove(uint64_t session_id) {
  MutexLock lock(&mu_);
  records_.erase(session_id);
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
