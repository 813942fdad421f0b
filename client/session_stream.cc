#include "session_stream.h"

#include "absl/strings/str_format.h"

namespace memd {

SessionStream::SessionStream(std::shared_ptr<grpc::Channel> channel, std::string address)
    : address_(std::move(address)), stub_(v1::Memory::NewStub(channel)) {
  stream_ = stub_->Session(&context_);
}

SessionStream::~SessionStream() {
  {
    MutexLock lock(&write_mu_);
    stream_->WritesDone();
  }
  // Drain until the daemon closes its side (at once if the stream is already
  // broken), then collect the status; no call is in flight any more.
  v1::SessionResponse ignored;
  while (stream_->Read(&ignored)) {
  }
  stream_->Finish().ok();
}

absl::Status SessionStream::StatusOf(const v1::SessionResponse& response) {
  if (response.status_code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(response.status_code()),
                      response.status_message());
}

void SessionStream::BreakLocked(const std::string& why) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = why;
  }
  cv_.SignalAll();
}

absl::StatusOr<v1::SessionResponse> SessionStream::Call(v1::SessionRequest request) {
  Waiter waiter;
  uint64_t id;
  {
    MutexLock lock(&mu_);
    if (broken_) return absl::UnavailableError(broken_reason_);
    id = next_request_id_++;
    waiters_[id] = &waiter;
  }
  request.set_request_id(id);
  bool written;
  {
    MutexLock lock(&write_mu_);
    written = stream_->Write(request);
  }
  MutexLock lock(&mu_);
  if (!written) {
    BreakLocked(absl::StrFormat("memd at %s is unavailable (session stream closed)", address_));
  }
  while (!waiter.done && !broken_) {
    if (reading_) {
      cv_.Wait(&mu_);
      continue;
    }
    reading_ = true;
    v1::SessionResponse response;
    mu_.unlock();
    bool ok = stream_->Read(&response);
    mu_.lock();
    reading_ = false;
    if (!ok) {
      BreakLocked(absl::StrFormat("memd at %s is unavailable (session stream closed)", address_));
      break;
    }
    auto it = waiters_.find(response.request_id());
    if (it != waiters_.end()) {
      it->second->response = std::move(response);
      it->second->done = true;
    }
    cv_.SignalAll();  // the response's owner, or a new reader, goes on
  }
  waiters_.erase(id);
  if (!waiter.done) return absl::UnavailableError(broken_reason_);
  return std::move(waiter.response);
}

}  // namespace memd
