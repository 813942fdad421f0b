// SessionReactor: gRPC I/O for one Session stream.
//
// Reads continue while responses are being written, so a client may pipeline
// requests. Responses wait in a queue; when more than kMaxQueuedResponses are
// unwritten (a client that sends but never reads), reading pauses until the
// queue drains, so such a client costs bounded memory.
//
// A session may also open a lane (SessionLane, OpenLaneRequest): then its
// requests arrive on the lane thread as well, and handler_mu_ keeps the
// handler single-threaded. The stream stays the session's life: when it
// ends, the lane stops before the handler releases the session's memory.
//
// Lifetime: created by MemoryService::Session, deletes itself in OnDone().
// gRPC may run OnReadDone and OnWriteDone concurrently; mu_ guards the queue.
#ifndef MEMD_SERVER_SERVICE_SESSION_REACTOR_H_
#define MEMD_SERVER_SERVICE_SESSION_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>

#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.pb.h"
#include "lane/lane_registry.h"
#include "lane/session_lane.h"
#include "service/session_handler.h"

namespace memd {

class SessionReactor final
    : public grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse> {
 public:
  static constexpr size_t kMaxQueuedResponses = 1024;

  // `context` is the call's; an operator ending the session cancels it.
  SessionReactor(grpc::CallbackServerContext* context, const PoolRegistry& pools,
                 SessionRegistry& sessions, uint64_t session_id,
                 std::optional<PeerCredentials> peer, std::string description,
                 Metrics* metrics, ChannelRegistry* channels, LaneRegistry& lanes);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  void OnCancel() override;

  // Queues the response of an operation that waited (a channel send or
  // receive). Any thread; never after the session closed (see
  // ChannelRegistry::CancelSession).
  void Complete(v1::SessionResponse response);

 private:
  // Starts the next write or, once reads ended and the queue is empty, Finish.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers an OpenLaneRequest (from OnReadDone only).
  absl::Status OpenLane(v1::OpenLaneResponse* out);
  // Runs one request that came on the lane (lane thread).
  void ServeFromLane(SessionLane& lane, const v1::SessionRequest& request);
  // Stops the lane, if there is one, and gives its place back. OnReadDone/OnDone.
  void StopLane();

  grpc::CallbackServerContext* const context_;
  const uint64_t session_id_;
  const std::optional<PeerCredentials> peer_;
  LaneRegistry& lanes_;  // the daemon's lanes (names, count); outlives the session

  Mutex handler_mu_;  // the handler is called from gRPC's threads and the lane thread
  SessionHandler handler_ ABSL_GUARDED_BY(handler_mu_);
  v1::SessionRequest request_;  // buffer of the single outstanding read
  // Set and stopped only from OnReadDone/OnDone (never concurrent); destroyed
  // with the reactor, after the handler closed (no callback reaches it then).
  std::unique_ptr<SessionLane> lane_;
  bool lane_counted_ = false;  // lane_ holds a place in lanes_ (LaneRegistry::Closed gives it back)

  Mutex mu_;
  std::deque<v1::SessionResponse> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_SESSION_REACTOR_H_
