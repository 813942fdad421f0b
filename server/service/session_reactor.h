// SessionReactor: gRPC I/O for one Session stream.
//
// Reads continue while responses are being written, so a client may pipeline
// requests. Responses wait in a queue; when more than kMaxQueuedResponses are
// unwritten (a client that sends but never reads), reading pauses until the
// queue drains, so such a client costs bounded memory.
//
// Lifetime: created by MemoryService::Session, deletes itself in OnDone().
// gRPC may run OnReadDone and OnWriteDone concurrently; mu_ guards the queue.
#ifndef MEMD_SERVER_SERVICE_SESSION_REACTOR_H_
#define MEMD_SERVER_SERVICE_SESSION_REACTOR_H_

#include <deque>

#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memd.pb.h"
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
                 Metrics* metrics, ChannelRegistry* channels);

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

  SessionHandler handler_;   // touched only from OnReadDone / OnDone
  v1::SessionRequest request_;  // buffer of the single outstanding read

  Mutex mu_;
  std::deque<v1::SessionResponse> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_SESSION_REACTOR_H_
