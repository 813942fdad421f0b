// UcxConnection: a receiving daemon's UCX endpoint to one peer, and the
// peer's regions (descriptor → unpacked rkey) it has pulled from.
//
// Owned by the bridge engine's peer record (bridge/transport.h). The endpoint
// uses UCP_ERR_HANDLING_MODE_PEER: when the peer dies or the link breaks,
// UCX fails the pulls in flight and every later Pull answers UNAVAILABLE at
// once; the engine then drops this connection and connects anew.
// A pull that reaches its deadline force-closes the endpoint too: UCX 1.13
// cannot cancel a get in flight (ucp_request_cancel handles only tag
// receives), and closing is the only way to be sure UCX writes nothing into
// `dst` after Pull returned.
//
// Thread-safety: Pull may run on many threads at once; callbacks from the
// progress thread touch only atomics and the per-pull wait (UcxWorker's rule).
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_

#include <ucp/api/ucp.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "bridge/transport.h"
#include "bridge/ucx/ucx_wire.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {

// Regions (distinct descriptors) one connection keeps unpacked: a peer
// exposes one per bridged pool, so 64 is generous; more is refused.
inline constexpr size_t kMaxRegionsPerConnection = 64;

class UcxConnection : public PullConnection {
 public:
  // Creates the endpoint to `ucx_address` (the UCX worker address from the
  // peer's envelope). `worker` must outlive the connection.
  static absl::StatusOr<std::unique_ptr<UcxConnection>> Open(UcxWorker* worker,
                                                              std::string peer_name,
                                                              std::string_view ucx_address);
  // Force-closes the endpoint (pulls in flight fail with UNAVAILABLE), waits
  // for them to return, then releases the rkeys.
  ~UcxConnection() override;

  absl::Status Pull(std::string_view region, uint64_t offset, void* dst, size_t length,
                    absl::Time deadline) override;

 private:
  struct Remote {
    Region region;
    ucp_rkey_h rkey = nullptr;
  };

  UcxConnection(UcxWorker* worker, std::string peer_name);
  static void OnPeerError(void* arg, ucp_ep_h ep, ucs_status_t status);
  // The unpacked form of a descriptor, parsed and unpacked on first use.
  absl::StatusOr<const Remote*> FindOrUnpack(std::string_view descriptor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UNAVAILABLE naming the failure when the endpoint is closed or failed.
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForceClose() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  UcxWorker* const worker_;
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
  absl::flat_hash_map<std::string, Remote> remotes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_CONNECTION_H_
