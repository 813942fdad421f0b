// CallRouter: matches responses to waiting callers by request_id for one
// transport (a SessionStream or a ClientLane). Private to libmemd.
//
// There is no reader thread: a caller waiting for its response becomes the
// reader when nobody else is reading and hands other callers' responses over
// (leader/follower). One thread pays no thread hop; several threads pipeline
// their requests on the one transport.
//
// Thread-safe. Once broken, every call fails with UNAVAILABLE and its reason.
#ifndef MEMD_CLIENT_CALL_ROUTER_H_
#define MEMD_CLIENT_CALL_ROUTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memd.pb.h"

namespace memd {

class CallRouter {
 public:
  // Writes one request (any thread; the transport serializes writers).
  using Send = std::function<absl::Status(const v1::SessionRequest&)>;
  // Reads whatever responses have come, waiting a while for at least one
  // (one thread at a time, without the router's lock). An error breaks
  // the router; responses read before it are still delivered.
  using Read = std::function<absl::Status(std::vector<v1::SessionResponse>*)>;

  CallRouter(Send send, Read read) : send_(std::move(send)), read_(std::move(read)) {}

  // Assigns `request` its request_id, sends it and waits for its response.
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);

  // Fails every call, now and later, with UNAVAILABLE: `why` (the first reason stays).
  void Break(const std::string& why);
  bool broken() const;

 private:
  struct Waiter {
    v1::SessionResponse response;
    bool done = false;
  };

  void BreakLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Send send_;
  const Read read_;

  mutable Mutex mu_;
  CondVar cv_;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_CLIENT_CALL_ROUTER_H_
