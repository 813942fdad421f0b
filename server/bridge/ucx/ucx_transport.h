// The UCX implementation of the bridge's PullTransport (bridge/transport.h):
// a receiving daemon reads a bridged message's bytes straight out of the
// sending daemon's pool with a UCX one-sided get (ucp_get_nbx). UCX picks the
// wire by itself from what both workers can reach and from the environment
// (UCX_TLS, UCX_NET_DEVICES ...): TCP between machines, RDMA where present,
// cma (process_vm_readv) between processes of one host.
// How it works and why: docs/ucx-transport.md. Built when libucx-dev is found
// (CMake option MEMD_BUILD_UCX; MEMD_HAVE_UCX=1 is then defined).
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_TRANSPORT_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bridge/transport.h"

namespace memd::bridge {

struct UcxOptions {
  // Names this transport in log lines ("ucx transport 'node-a': ...").
  std::string name = "memd";
};

// Starts one UCX context and worker (UCS_THREAD_MODE_MULTI) and the thread
// that progresses it. The returned transport is thread-safe (transport.h);
// destroy every PullConnection it made before it. Fails with UNAVAILABLE
// naming UCX's error when UCX cannot start (no usable transport, a bad
// UCX_TLS ...).
absl::StatusOr<std::unique_ptr<PullTransport>> MakeUcxTransport(UcxOptions options);

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_TRANSPORT_H_
