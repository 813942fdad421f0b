// CallRouter: matches responses to waiting callers by request_id for one
// transport (a SessionStream or a ClientLane). Private to libmemd.
//
// There is no reader thread: a caller waiting for its response becomes the
// reader when nobody else is reading and hands other callers' responses over
// (leader/follower). One thread pays no thread hop; several threads pipeline
// their requests on the one transport.
//
// A request may also be posted: sent now, its answer collected later, so
// the caller does not wait for it (and on a lane is not woken for it).
//
// Thread-safe. Once broken, every call fails with UNAVAILABLE and its reason.
#ifndef MEMD_CLIENT_CALL_ROUTER_H_
#define MEMD_CLIENT_CALL_ROUTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/mutex.h"
#include "memd/v1/memory.pb.h"

namespace memd {

class CallRouter {
 public:
  // Writes one request (any thread; the transport serializes writers).
  // `wake`: false lets the request wait, unannounced, for the next one (see
  // Post); transports without that choice ignore it.
  using Send = std::function<absl::Status(const v1::SessionRequest&, bool wake)>;
  // Reads whatever responses have come, waiting a while for at least one
  // (one thread at a time, without the router's lock). `any`: some caller
  // waits for a posted request's answer, so the transport must wake for
  // those too. An error breaks the router; responses read before it are
  // still delivered.
  using Read = std::function<absl::Status(std::vector<v1::SessionResponse>*, bool any)>;

  CallRouter(Send send, Read read) : send_(std::move(send)), read_(std::move(read)) {}

  // Assigns `request` its request_id, sends it and waits for its response.
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);

  // Assigns `request` its request_id, marks it posted and sends it; returns
  // the id to Collect. Every posted request must be collected once. With
  // `wake` false the daemon is not woken for it: the next request does that
  // for both (the transport also does within a tick, see ClientLane).
  absl::StatusOr<uint64_t> Post(v1::SessionRequest request, bool wake = true);
  // Waits for the answer of the posted request `id`.
  absl::StatusOr<v1::SessionResponse> Collect(uint64_t id);

  // A request larger than one session message (limits::kMaxSessionRequestBytes)
  // is never sent: Call answers, and Collect of a Post returns, an operation
  // error RESOURCE_EXHAUSTED naming both sizes; the transport stays usable.

  // Fails every call, now and later, with UNAVAILABLE: `why` (the first reason stays).
  void Break(const std::string& why);
  bool broken() const;

 private:
  struct Waiter {
    v1::SessionResponse response;
    bool done = false;
  };

  // The answer to a request too large to send, or nullopt when it fits.
  static std::optional<v1::SessionResponse> RefuseOversized(const v1::SessionRequest& request);
  // Registers `waiter` under a new request_id, set in `request`; nullopt
  // once broken.
  std::optional<uint64_t> RegisterLocked(Waiter* waiter, v1::SessionRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads (or waits for the reader) until `waiter` is answered or the router
  // breaks; `posted`: it answers a posted request.
  void AwaitLocked(const Waiter& waiter, bool posted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BreakLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Send send_;
  const Read read_;

  mutable Mutex mu_;
  CondVar cv_;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  // Answers of posted requests, kept until collected (their waiters_ entries
  // point here).
  absl::flat_hash_map<uint64_t, std::unique_ptr<Waiter>> posted_ ABSL_GUARDED_BY(mu_);
  int collecting_ ABSL_GUARDED_BY(mu_) = 0;  // callers in Collect, waiting
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_CLIENT_CALL_ROUTER_H_
