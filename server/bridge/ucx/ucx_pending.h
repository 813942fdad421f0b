// PendingPulls: the RECEIVING side's pulls in flight, by request id, and the
// handler of the sender's replies (active message kAmPullReply): an error
// ends the pull; bytes go into the pull's `dst`, copied when they came
// eagerly, received with ucp_am_recv_data_nbx when UCX chose rendezvous.
//
// Owned by UcxTransport, shared by its connections. Thread-safety: any
// thread; `mu_` and each pull's `mu` are leaves (never held around a UCX
// call). Handlers run on the progress thread.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_PENDING_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_PENDING_H_

#include <ucp/api/ucp.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {

// One pull in flight, shared by the caller that waits and the handlers.
struct PendingPull {
  enum class State {
    kWaiting,    // asked; no reply yet: may be abandoned
    kReceiving,  // UCX is writing into dst (rendezvous): cannot be abandoned
    kDone,       // `status` holds the outcome; nothing writes dst any more
  };
  PendingPull(const void* owner, void* dst, size_t length)
      : owner(owner), dst(dst), length(length) {}

  const void* const owner;  // the connection that asked (for FailAll)
  void* const dst;
  const size_t length;
  std::mutex mu;
  std::condition_variable cv;
  State state = State::kWaiting;  // guarded by mu
  absl::Status status;            // guarded by mu; set with kDone
  std::string seal;               // guarded by mu; the answer's nonce and tag (ucx_seal.h), empty when clear

  // Sets kDone with `s` and wakes the waiter. REQUIRES: mu held.
  void Finish(absl::Status s) {
    state = State::kDone;
    status = std::move(s);
    cv.notify_all();
  }
  // Waits for kDone until `deadline`; true when done.
  bool WaitDone(absl::Time deadline);
};

class PendingPulls {
 public:
  explicit PendingPulls(UcxWorker* worker) : worker_(worker) {}

  // Registers the reply handler. REQUIRES: once, before any pull.
  absl::Status Start();

  // Records `pull`; returns its request id (random, unique among those in flight).
  uint64_t Add(std::shared_ptr<PendingPull> pull);
  // Forgets `id` (after the pull is done or abandoned).
  void Remove(uint64_t id);
  // Ends every waiting pull of `owner` with `status` (its peer failed).
  void FailAll(const void* owner, const absl::Status& status);

 private:
  static ucs_status_t OnReply(void* arg, const void* header, size_t header_length, void* data,
                              size_t length, const ucp_am_recv_param_t* param);
  static void OnReceived(void* request, ucs_status_t status, size_t length, void* user_data);

  UcxWorker* const worker_;
  Mutex mu_;
  uint64_t fallback_id_ ABSL_GUARDED_BY(mu_) = 0;  // only if getrandom fails
  absl::flat_hash_map<uint64_t, std::shared_ptr<PendingPull>> pulls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_PENDING_H_
