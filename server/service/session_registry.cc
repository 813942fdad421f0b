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

}  // namespace memd
