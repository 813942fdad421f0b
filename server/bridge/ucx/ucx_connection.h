// UcxConnection: a receiving daemon's UCX endpoint to one peer. A pull is a
// request (active message) naming the pool, the range and the pool's key;
// the peer's RegionServer checks it and answers with the bytes, which
// PendingPulls puts into `dst` (docs/ucx-transport.md, "A pull").
//
// Owned by the bridge engine's peer record (bridge/transport.h). The endpoint
// uses UCP_ERR_HANDLING_MODE_PEER: when the peer dies or the link breaks,
// UCX reports it, the pulls waiting on this connection end with UNAVAILABLE
// and so does every later Pull; the engine then connects anew.
// A pull that reaches its deadline while UCX is already writing into `dst`
// (a rendezvous receive, which UCX 1.13 cannot cancel) force-closes the
// endpoint: the only way to be sure nothing writes `dst` after Pull returned.
// A pull still waiting for its answer is just forgotten (a late answer is
// dropped) and the link stays up.
//
// Thread-safety: Pull may run on many threads at once; the error callback
// touches only an atomic and PendingPulls (UcxWorker's rule).
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_

#include <ucp/api/ucp.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "bridge/transport.h"
#include "bridge/ucx/ucx_pending.h"
#include "bridge/ucx/ucx_wire.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {

class UcxConnection : public PullConnection {
 public:
  // Creates the endpoint to `ucx_address` (the UCX worker address from the
  // peer's envelope). `worker` and `pending` must outlive the connection.
  static absl::StatusOr<std::unique_ptr<UcxConnection>> Open(UcxWorker* worker,
                                                              PendingPulls* pending,
                                                              std::string peer_name,
                                                              std::string_view ucx_address);
  // Force-closes the endpoint (pulls in flight fail with UNAVAILABLE) and
  // waits for them to return.
  ~UcxConnection() override;

  absl::Status Pull(std::string_view region, uint64_t offset, void* dst, size_t length,
                    absl::Time deadline) override;

 private:
  UcxConnection(UcxWorker* worker, PendingPulls* pending, std::string peer_name);
  static void OnPeerError(void* arg, ucp_ep_h ep, ucs_status_t status);
  // After an answer came: opens sealed bytes in `dst` in place when the
  // grant is sealed (ucx_seal.h). DATA_LOSS naming the range when the tag
  // fails, or when the answer is clear on a sealed grant (or the reverse).
  absl::Status OpenSealed(const Region& region, std::string_view seal, uint64_t request_id,
                          uint64_t offset, void* dst, size_t length);
  // UNAVAILABLE naming the failure when the endpoint is closed or failed.
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForceClose() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  UcxWorker* const worker_;
  PendingPulls* const pending_;
  const std::string peer_name_;
  // UCS_OK until UCX reports the peer failed (set on the progress thread).
  std::atomic<ucs_status_t> peer_failure_{UCS_OK};

  mutable Mutex mu_;
  CondVar pulls_done_;  // signalled when in_flight_ drops
  ucp_ep_h ep_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Why the endpoint was closed by us ("a pull missed its deadline" ...).
  std::string closed_reason_ ABSL_GUARDED_BY(mu_);
  void* close_request_ ABSL_GUARDED_BY(mu_) = nullptr;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_
