// ClientLane: the client end of a session's lane (memd/shared/lane.h), the
// shared-memory transport that carries the session's requests with a futex
// wake-up instead of a gRPC message. Private to libmemd.
//
// Like SessionStream: requests are written under a write lock and matched to
// responses by request_id, and a caller waiting for its response becomes the
// reader when nobody else reads (leader/follower), so one thread pays no
// thread hop. The lane does not keep the session alive; SessionLink's stream
// does, and Break()s the lane when that stream is lost.
//
// Thread-safe. Once the lane is broken or the daemon closed it, every call
// fails with UNAVAILABLE.
#ifndef MEMD_CLIENT_CLIENT_LANE_H_
#define MEMD_CLIENT_CLIENT_LANE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/lane.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memd.pb.h"

namespace memd {

class ClientLane {
 public:
  // Maps the object the daemon created for `session_id` and unlinks its name.
  // `address` is only used in messages.
  static absl::StatusOr<std::unique_ptr<ClientLane>> Open(const v1::OpenLaneResponse& lane,
                                                          uint64_t session_id,
                                                          std::string address);
  ~ClientLane();
  ClientLane(const ClientLane&) = delete;
  ClientLane& operator=(const ClientLane&) = delete;

  // Whether `request` is small enough for the lane (larger ones go on the stream).
  static bool Fits(const v1::SessionRequest& request);

  // Sends `request` (its request_id is assigned here) and waits for the
  // reply; see SessionStream::Call.
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);

  // Whether the daemon stopped serving the lane (it ended the session).
  bool closed() const { return header_->closed.load() != 0; }

  // Fails every call, now and later, with UNAVAILABLE: `why`.
  void Break(const std::string& why);

 private:
  struct Waiter {
    v1::SessionResponse response;
    bool done = false;
  };

  ClientLane(void* base, std::string address)
      : base_(base), header_(static_cast<lane::Header*>(base)), address_(std::move(address)) {}

  // Puts one serialized request in the submission ring and wakes the daemon
  // if it sleeps.
  absl::Status Submit(const std::string& bytes);
  // Reader only: waits a little for completions and parses those there are
  // into `out`; the error when the lane cannot go on.
  absl::Status ReadCompletions(std::vector<v1::SessionResponse>* out);
  void BreakLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void* const base_;  // the mapping, lane::kObjectBytes
  lane::Header* const header_;
  const std::string address_;

  Mutex write_mu_;
  uint32_t sub_tail_ ABSL_GUARDED_BY(write_mu_) = 0;
  uint32_t comp_head_ = 0;           // touched only by the current reader
  std::atomic<bool> broken_flag_{false};  // broken_, readable without mu_

  Mutex mu_;
  CondVar cv_;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_CLIENT_CLIENT_LANE_H_
