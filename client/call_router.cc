#include "call_router.h"

namespace memd {

void CallRouter::Break(const std::string& why) {
  MutexLock lock(&mu_);
  BreakLocked(why);
}

bool CallRouter::broken() const {
  MutexLock lock(&mu_);
  return broken_;
}

void CallRouter::BreakLocked(const std::string& why) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = why;
  }
  cv_.SignalAll();
}

absl::StatusOr<v1::SessionResponse> CallRouter::Call(v1::SessionRequest request) {
  Waiter waiter;
  uint64_t id;
  {
    MutexLock lock(&mu_);
    if (broken_) return absl::UnavailableError(broken_reason_);
    id = next_request_id_++;
    waiters_[id] = &waiter;
  }
  request.set_request_id(id);
  absl::Status sent = send_(request);
  MutexLock lock(&mu_);
  if (!sent.ok()) BreakLocked(std::string(sent.message()));
  while (!waiter.done && !broken_) {
    if (reading_) {
      cv_.Wait(&mu_);
      continue;
    }
    reading_ = true;
    std::vector<v1::SessionResponse> responses;
    mu_.unlock();
    absl::Status read = read_(&responses);
    mu_.lock();
    reading_ = false;
    for (v1::SessionResponse& response : responses) {
      auto it = waiters_.find(response.request_id());
      if (it != waiters_.end()) {
        it->second->response = std::move(response);
        it->second->done = true;
      }
    }
    if (!read.ok()) BreakLocked(std::string(read.message()));
    cv_.SignalAll();  // the responses' owners, or a new reader, go on
  }
  waiters_.erase(id);
  if (!waiter.done) return absl::UnavailableError(broken_reason_);
  return std::move(waiter.response);
}

}  // namespace memd
