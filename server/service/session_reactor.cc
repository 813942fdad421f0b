#include "service/session_reactor.h"

#include <grpcpp/server_context.h>

namespace memd {

SessionReactor::SessionReactor(grpc::CallbackServerContext* context, const PoolRegistry& pools,
                               SessionRegistry& sessions, uint64_t session_id,
                               std::optional<PeerCredentials> peer, std::string description,
                               Metrics* metrics, ChannelRegistry* channels)
    : handler_(pools, sessions, session_id, peer, std::move(description),
               [context] { context->TryCancel(); }, metrics, channels) {
  StartRead(&request_);
}

void SessionReactor::OnReadDone(bool ok) {
  if (!ok) {
    // Client half-closed, died or the connection dropped: give its memory
    // back now, not when the last queued response is flushed.
    handler_.Close();
    MutexLock lock(&mu_);
    reads_done_ = true;
    PumpLocked();
    return;
  }
  v1::SessionResponse response;
  bool answered = handler_.Handle(request_, &response,
                                  [this](v1::SessionResponse later) { Complete(std::move(later)); });
  MutexLock lock(&mu_);
  if (answered) queue_.push_back(std::move(response));
  PumpLocked();
  if (queue_.size() >= kMaxQueuedResponses) {
    read_paused_ = true;  // resumed by OnWriteDone
  } else {
    StartRead(&request_);
  }
}

void SessionReactor::Complete(v1::SessionResponse response) {
  MutexLock lock(&mu_);
  if (finished_) return;
  queue_.push_back(std::move(response));
  PumpLocked();
}

void SessionReactor::OnWriteDone(bool ok) {
  MutexLock lock(&mu_);
  writing_ = false;
  queue_.pop_front();
  if (!ok) {
    // The stream is broken: drop what is queued. If reads already ended,
    // PumpLocked finishes the call now; otherwise OnReadDone(false) will.
    // (Returning without it left the call open forever when the read failed
    // first: a leaked reactor per killed client, and a hung Server::Wait.)
    // With reads paused no read is outstanding, so no OnReadDone will come:
    // the reads are over too (E20: a client that never read, then left).
    queue_.clear();
    if (read_paused_) reads_done_ = true;
    PumpLocked();
    return;
  }
  if (read_paused_ && !reads_done_ && queue_.size() < kMaxQueuedResponses / 2) {
    read_paused_ = false;
    StartRead(&request_);
  }
  PumpLocked();
}

void SessionReactor::PumpLocked() {
  if (writing_ || finished_) return;
  if (!queue_.empty()) {
    writing_ = true;
    StartWrite(&queue_.front());
  } else if (reads_done_) {
    finished_ = true;
    Finish(grpc::Status::OK);
  }
}

// Cancellation (client gone) also fails the outstanding read, and OnReadDone
// releases the session there; OnCancel may run concurrently with it, so it
// must not touch the handler.
void SessionReactor::OnCancel() {}

void SessionReactor::OnDone() {
  handler_.Close();
  delete this;
}

}  // namespace memd
