#include "call_router.h"

#include "absl/strings/str_format.h"

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

std::optional<uint64_t> CallRouter::RegisterLocked(Waiter* waiter, v1::SessionRequest& request) {
  if (broken_) return std::nullopt;
  uint64_t id = next_request_id_++;
  waiters_[id] = waiter;
  request.set_request_id(id);
  return id;
}

void CallRouter::AwaitLocked(const Waiter& waiter, bool posted) {
  if (posted) ++collecting_;
  while (!waiter.done && !broken_) {
    if (reading_) {
      cv_.Wait(&mu_);
      continue;
    }
    reading_ = true;
    bool any = collecting_ > 0;
    std::vector<v1::SessionResponse> responses;
    mu_.unlock();
    absl::Status read = read_(&responses, any);
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
  if (posted) --collecting_;
}

absl::StatusOr<v1::SessionResponse> CallRouter::Call(v1::SessionRequest request) {
  Waiter waiter;
  std::optional<uint64_t> id;
  {
    MutexLock lock(&mu_);
    id = RegisterLocked(&waiter, request);
    if (!id) return absl::UnavailableError(broken_reason_);
  }
  absl::Status sent = send_(request, /*wake=*/true);
  MutexLock lock(&mu_);
  if (!sent.ok()) BreakLocked(std::string(sent.message()));
  AwaitLocked(waiter, /*posted=*/false);
  waiters_.erase(*id);
  if (!waiter.done) return absl::UnavailableError(broken_reason_);
  return std::move(waiter.response);
}

absl::StatusOr<uint64_t> CallRouter::Post(v1::SessionRequest request, bool wake) {
  std::optional<uint64_t> id;
  {
    MutexLock lock(&mu_);
    auto waiter = std::make_unique<Waiter>();
    id = RegisterLocked(waiter.get(), request);
    if (!id) return absl::UnavailableError(broken_reason_);
    posted_[*id] = std::move(waiter);
  }
  request.set_posted(true);
  absl::Status sent = send_(request, wake);
  if (!sent.ok()) {
    MutexLock lock(&mu_);
    BreakLocked(std::string(sent.message()));  // Collect reports it
  }
  return *id;
}

absl::StatusOr<v1::SessionResponse> CallRouter::Collect(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = posted_.find(id);
  if (it == posted_.end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request %u was not posted, or was collected already", id));
  }
  std::unique_ptr<Waiter> waiter = std::move(it->second);
  posted_.erase(it);
  AwaitLocked(*waiter, /*posted=*/true);
  waiters_.erase(id);
  if (!waiter->done) return absl::UnavailableError(broken_reason_);
  return std::move(waiter->response);
}

}  // namespace memd
