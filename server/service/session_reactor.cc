#include "service/session_reactor.h"

#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "memd/shared/lane.h"
#include "memd/shared/limits.h"
#include "service/status_convert.h"

namespace memd {

SessionReactor::SessionReactor(grpc::CallbackServerContext* context, const PoolRegistry& pools,
                               SessionRegistry& sessions, uint64_t session_id,
                               std::optional<PeerCredentials> peer, std::string description,
                               Metrics* metrics, ChannelRegistry* channels, LaneRegistry& lanes)
    : context_(context),
      session_id_(session_id),
      peer_(peer),
      lanes_(lanes),
      handler_(pools, sessions, session_id, peer, std::move(description),
               [context] { context->TryCancel(); }, metrics, channels) {
  StartRead(&request_);
}

absl::Status SessionReactor::OpenLane(v1::OpenLaneResponse* out) {
  if (lane_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("session %u already has a lane (%s)", session_id_, lane_->object_name()));
  }
  {
    MutexLock lock(&handler_mu_);
    if (!handler_.attached()) {
      return absl::FailedPreconditionError("attach to a pool before opening a lane");
    }
  }
  if (!peer_) {
    return absl::PermissionDeniedError("lanes need the local Unix socket (a network peer cannot "
                                       "map shared memory)");
  }
  absl::StatusOr<std::unique_ptr<SessionLane>> lane = lanes_.Open(
      session_id_,
      [this](SessionLane& lane, const v1::SessionRequest& request) { ServeFromLane(lane, request); },
      [context = context_](const std::string&) { context->TryCancel(); });
  if (!lane.ok()) return lane.status();
  lane_ = std::move(*lane);
  lane_counted_ = true;
  {
    MutexLock lock(&handler_mu_);
    handler_.NoteLane(lane_->fd());
  }
  spdlog::debug("session {} opened lane {}", session_id_, lane_->object_name());
  out->set_shm_name(lane_->object_name());
  out->set_size_bytes(lane::kObjectBytes);
  out->set_ring_bytes(lane::kRingBytes);
  out->set_max_payload_bytes(lane::kMaxPayloadBytes);
  return absl::OkStatus();
}

// `lane`, not lane_: a client that guessed the object's name could submit
// before OpenLane stored it.
void SessionReactor::ServeFromLane(SessionLane& lane, const v1::SessionRequest& request) {
  v1::SessionResponse response;
  bool answered;
  if (request.has_open_lane()) {
    response.set_request_id(request.request_id());
    SetResponseStatus(absl::FailedPreconditionError("a lane is opened on the gRPC stream"),
                      &response);
    answered = true;
  } else {
    MutexLock lock(&handler_mu_);
    answered = handler_.Handle(request, &response,
                               [&lane](v1::SessionResponse later) { lane.Complete(later); });
  }
  if (answered) lane.Complete(response);
}

void SessionReactor::StopLane() {
  if (lane_ != nullptr) {
    {
      MutexLock lock(&handler_mu_);
      handler_.NoteLane(-1);  // its descriptor is no longer handed out
    }
    lane_->Stop();
  }
  if (lane_counted_) {
    lanes_.Closed();
    lane_counted_ = false;
  }
}

void SessionReactor::OnReadDone(bool ok) {
  if (!ok) {
    // Client half-closed, died or the connection dropped: give its memory
    // back now, not when the last queued response is flushed. The lane
    // stops first, so no request of it runs on a closed session.
    StopLane();
    {
      MutexLock lock(&handler_mu_);
      handler_.Close();
    }
    MutexLock lock(&mu_);
    reads_done_ = true;
    PumpLocked();
    return;
  }
  v1::SessionResponse response;
  bool answered = true;
  if (const size_t bytes = request_.ByteSizeLong(); bytes > limits::kMaxSessionRequestBytes) {
    // Refused alone: the session and its other requests go on (E18).
    response.set_request_id(request_.request_id());
    SetResponseStatus(absl::ResourceExhaustedError(absl::StrFormat(
                          "a session request of %u bytes exceeds the limit of %u bytes of one "
                          "session message (nothing was done)",
                          bytes, limits::kMaxSessionRequestBytes)),
                      &response);
  } else if (request_.has_open_lane()) {
    response.set_request_id(request_.request_id());
    if (absl::Status s = OpenLane(response.mutable_lane()); !s.ok()) {
      response.clear_lane();
      SetResponseStatus(s, &response);
    }
  } else {
    MutexLock lock(&handler_mu_);
    answered = handler_.Handle(request_, &response, [this](v1::SessionResponse later) {
      Complete(std::move(later));
    });
  }
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
  StopLane();
  {
    MutexLock lock(&handler_mu_);
    handler_.Close();
  }
  delete this;
}

}  // namespace memd
