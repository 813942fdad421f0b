// The UCX implementation of the bridge's PullTransport (bridge/transport.h):
// a receiving daemon asks the sending daemon for a bridged message's bytes
// with a UCX active message; the sender checks the pool, its key and the
// range, and answers with the bytes straight from its pool (zero-copy
// rendezvous when large). Not a UCX get: over TCP, UCX 1.13 serves emulated
// gets of any address unchecked (docs/ucx-transport.md, "Why active
// messages"). UCX picks the wire from what both workers can reach and from
// the environment (UCX_TLS, UCX_NET_DEVICES ...): TCP here, RDMA where present.
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
  // Asked before any byte is served (bridge/transport.h): the bridge
  // engine's Engine::MayRead. Required: a transport without one serves
  // nothing (MakeUcxTransport refuses it).
  ReadCheck may_read;
};

// Starts one UCX context and worker (UCS_THREAD_MODE_MULTI) and the thread
// that progresses it. The returned transport is thread-safe (transport.h);
// destroy every PullConnection it made before it. Fails with UNAVAILABLE
// naming UCX's error when UCX cannot start (no usable transport, a bad
// UCX_TLS ...); INVALID_ARGUMENT without `may_read`.
absl::StatusOr<std::unique_ptr<PullTransport>> MakeUcxTransport(UcxOptions options);

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_TRANSPORT_H_
