// SessionLane: the daemon end of one session's lane (memd/shared/lane.h), a
// shared-memory transport for the session's requests that costs a futex
// wake-up where the gRPC stream costs a message through gRPC's threads.
//
// Ownership: owned by its SessionReactor, which Stop()s it before the
// session's handler closes and destroys it after. Threads: a lane thread of
// its own reads the submission ring and hands each request to `serve` (one
// at a time, in ring order); Complete() may be called from any thread.
// Nothing the client writes into the object is trusted: a lane whose
// positions or entries cannot be right is stopped and `fail` ends the session.
#ifndef MEMD_SERVER_LANE_SESSION_LANE_H_
#define MEMD_SERVER_LANE_SESSION_LANE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "memd/shared/lane.h"
#include "memd/shared/spin.h"
#include "memd/shared/mutex.h"
#include "memd/shared/unique_fd.h"
#include "memd/v1/memory.pb.h"

namespace memd {

class SessionLane {
 public:
  // Runs one request; its response, now or later, goes to the lane's Complete().
  using Serve = std::function<void(SessionLane&, const v1::SessionRequest&)>;
  // Called once, from the lane thread, when the client broke the lane.
  using Fail = std::function<void(const std::string& why)>;

  // Creates the lane's memory (a sealed memfd labelled `label`, its pages
  // allocated: RESOURCE_EXHAUSTED when memory is short) and starts the thread.
  // The client gets the descriptor through the daemon's descriptor service.
  // The thread polls up to `spin` for the next request before it sleeps.
  static absl::StatusOr<std::unique_ptr<SessionLane>> Create(
      std::string label, uint64_t session_id, Serve serve, Fail fail,
      absl::Duration spin = absl::ZeroDuration());
  ~SessionLane();
  SessionLane(const SessionLane&) = delete;
  SessionLane& operator=(const SessionLane&) = delete;

  // Queues `response` for the client; dropped once the lane stopped.
  void Complete(const v1::SessionResponse& response);

  // Ends the thread and marks the lane closed for the client. Idempotent.
  void Stop();

  const std::string& object_name() const { return object_name_; }
  // The lane's memfd, for passing to the client (the lane keeps ownership).
  int fd() const { return fd_.get(); }

 private:
  SessionLane(std::string object_name, uint64_t session_id, UniqueFd fd, void* base,
              absl::Duration spin, Serve serve,
              Fail fail);

  void Run();  // the lane thread
  // Serves the entries the client has published; false when there were none.
  bool ServeSubmissions();
  // A completion: the serialized response, and whether it answers a posted
  // request (which wakes the client only when it waits for any answer).
  struct Completion {
    std::string bytes;
    bool posted = false;
  };

  // Writes one completion if the ring has room (false otherwise).
  bool WriteLocked(const Completion& completion) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records why the lane is broken; the lane thread acts on it.
  void BreakLocked(std::string why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string object_name_;
  const uint64_t session_id_;
  const UniqueFd fd_;          // the memfd
  void* const base_;           // the mapping, kObjectBytes
  lane::Header* const header_;
  const Serve serve_;
  const Fail fail_;

  uint32_t sub_head_ = 0;      // lane thread only
  AdaptiveSpin spin_;          // lane thread only: polling before it sleeps
  std::string entry_;          // lane thread only: the entry being parsed (a copy)
  v1::SessionRequest request_;  // lane thread only: entry_ parsed

  Mutex mu_;
  uint32_t comp_tail_ ABSL_GUARDED_BY(mu_) = 0;  // the daemon's own copy
  uint32_t comp_head_ ABSL_GUARDED_BY(mu_) = 0;  // last checked client head
  std::deque<Completion> overflow_ ABSL_GUARDED_BY(mu_);  // completions without room yet
  // request_ids of posted requests not answered yet (set by the lane thread
  // before it serves one, erased by Complete).
  absl::flat_hash_set<uint64_t> posted_ ABSL_GUARDED_BY(mu_);
  std::string broken_ ABSL_GUARDED_BY(mu_);   // why the lane is broken; "" while it is not
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id lane_thread_ ABSL_GUARDED_BY(mu_);  // set by Run (thread_ is Stop's)

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace memd

#endif  // MEMD_SERVER_LANE_SESSION_LANE_H_
