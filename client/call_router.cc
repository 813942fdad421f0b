#include "call_router.h"

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"

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

std::optional<v1::SessionResponse> CallRouter::RefuseOversized(const v1::SessionRequest& request) {
  const size_t bytes = request.ByteSizeLong();
  if (bytes <= limits::kMaxSessionRequestBytes) return std::nullopt;
  v1::SessionResponse refused;
  refused.set_status_code(static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
  refused.set_status_message(absl::StrFormat(
      "a session request of %u bytes exceeds the limit of %u bytes of one session message "
      "(nothing was sent)",
      bytes, limits::kMaxSessionRequestBytes));
  return refused;
}

absl::StatusOr<v1::SessionResponse> CallRouter::Call(v1::SessionRequest request) {
  if (std::optional<v1::SessionResponse> refused = RefuseOversized(request)) return *refused;
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
    std::optional<v1::SessionResponse> refused = RefuseOversized(request);
    if (refused) {
      // Answered at once: Collect returns the refusal, nothing is sent.
      waiter->response = std::move(*refused);
      waiter->response.set_request_id(*id);
      waiter->done = true;
    }
    posted_[*id] = std::move(waiter);
    if (refused) return *id;
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
