// ClientLane: the client end of a session's lane (memd/shared/lane.h), the
// shared-memory transport that carries the session's requests with a futex
// wake-up instead of a gRPC message. Private to libmemd.
//
// Like SessionStream: requests are written under a write lock and matched to
// responses by request_id (CallRouter: leader/follower reading, no reader
// thread). The lane does not keep the session alive; SessionLink's stream
// does, and Break()s the lane when that stream is lost.
//
// Thread-safe. Once the lane is broken or the daemon closed it, every call
// fails with UNAVAILABLE.
#ifndef MEMD_CLIENT_CLIENT_LANE_H_
#define MEMD_CLIENT_CLIENT_LANE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "call_router.h"
#include "absl/status/statusor.h"
#include "memd/shared/lane.h"
#include "memd/shared/mutex.h"
#include "memd/shared/spin.h"
#include "memd/v1/memory.pb.h"

namespace memd {

class ClientLane {
 public:
  // Maps the lane's memory `fd` (the descriptor the daemon passed for
  // `session_id`; the caller keeps and closes it) and checks its header.
  // `address` is only used in messages. A reader polls up to `spin` for
  // completions before it sleeps (memd/shared/spin.h).
  static absl::StatusOr<std::unique_ptr<ClientLane>> Open(const v1::OpenLaneResponse& lane,
                                                          uint64_t session_id,
                                                          std::string address, int fd,
                                                          absl::Duration spin);
  ~ClientLane();
  ClientLane(const ClientLane&) = delete;
  ClientLane& operator=(const ClientLane&) = delete;

  // Whether `request` is small enough for the lane (larger ones go on the stream).
  static bool Fits(const v1::SessionRequest& request);

  // Sends `request` (its request_id is assigned here) and waits for the
  // reply; see SessionStream::Call.
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);
  // Sends `request` without waiting; the daemon does not wake this process
  // for its answer, which Collect(id) returns (see CallRouter::Post).
  // `wake` false: the daemon is not woken for it now; the next Submit,
  // Collect or RingLate does.
  absl::StatusOr<uint64_t> Post(v1::SessionRequest request, bool wake) {
    return router_.Post(std::move(request), wake);
  }
  absl::StatusOr<v1::SessionResponse> Collect(uint64_t id) {
    RingLate();  // nothing else may come to announce a post left for the next request
    return router_.Collect(id);
  }
  // Wakes the daemon for a request that was posted without waking it, if
  // one waits (the monitor calls this every tick, so none waits longer).
  void RingLate();

  // Whether the daemon has served every request submitted so far (it
  // publishes sub_head only after serving an entry, SessionLane): a request
  // on the stream sent now cannot overtake one of the lane's.
  bool AllServed();

  // Whether the daemon stopped serving the lane (it ended the session).
  bool closed() const { return header_->closed.load() != 0; }

  // Fails every call, now and later, with UNAVAILABLE: `why`.
  void Break(const std::string& why);

 private:
  ClientLane(void* base, std::string address, absl::Duration spin);

  // Puts one request in the submission ring and, with `wake`, wakes the
  // daemon if it sleeps.
  absl::Status Submit(const v1::SessionRequest& request, bool wake);
  // Rings the doorbell if the daemon sleeps.
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // The router's reader: waits a little for completions and parses those
  // there are into `out`; the error when the lane cannot go on. `any`: be
  // woken by answers to posted requests too.
  absl::Status ReadCompletions(std::vector<v1::SessionResponse>* out, bool any);

  void* const base_;  // the mapping, lane::kObjectBytes
  lane::Header* const header_;
  const std::string address_;

  Mutex write_mu_;
  uint32_t sub_tail_ ABSL_GUARDED_BY(write_mu_) = 0;
  std::string entry_ ABSL_GUARDED_BY(write_mu_);  // the request being written
  bool unannounced_ ABSL_GUARDED_BY(write_mu_) = false;  // written without a wake-up
  uint32_t comp_head_ = 0;  // touched only by the router's current reader
  CallRouter router_;
  AdaptiveSpin spin_;       // touched only by the router's current reader
};

}  // namespace memd

#endif  // MEMD_CLIENT_CLIENT_LANE_H_
