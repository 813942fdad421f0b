#include "service/session_registry.h"

namespace memd {

void SessionRegistry::Add(Record record) {
  MutexLock lock(&mu_);
  records_[record.session_id] = std::move(record);
}

void SessionRegistry::Remove(uint64_t session_id) {
  MutexLock lock(&mu_);
  records_.erase(session_id);
}

void SessionRegistry::SetLane(uint64_t session_id, bool lane) {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it != records_.end()) it->second.lane = lane;
}

bool SessionRegistry::End(uint64_t session_id) {
  MutexLock lock(&mu_);
  auto it = records_.find(session_id);
  if (it == records_.end()) return false;
  if (it->second.end) it->second.end();
  return true;
}

}  // namespace memd
