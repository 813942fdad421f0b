// The byte-moving contract of a bridge (issue 19): the daemon that RECEIVES a
// bridged message pulls the message's bytes out of the SENDING daemon's pool
// into memory it allocated in its own pool. Two implementations:
//   - bridge/ucx/   UCX active messages: a pull request {pool, offset, length,
//                   key} that the exposing side checks against the region it
//                   exposed (key from Expose(), sent at peering) before it
//                   answers with the bytes. Not a one-sided get: over TCP,
//                   UCX 1.13 serves a get of any address without checking
//                   the rkey (docs/ucx-transport.md);
//   - bridge/grpc/  a gRPC stream of chunks from the peer's Bridge service
//                   (the fallback: no UCX at build time, or
//                   --bridge-transport grpc).
// The bridge engine (bridge/) owns peering, sequence numbers, acknowledgements
// and retries; a transport only moves bytes and reports failure. A transport
// never decides what a peer may read: the engine passes only ranges of
// messages the peer sent to this daemon.
//
// Thread-safety: every method may be called from any thread, concurrently.
#ifndef MEMD_SERVER_BRIDGE_TRANSPORT_H_
#define MEMD_SERVER_BRIDGE_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memd::bridge {

// A receiver's connection to one peer daemon. Owned by the engine's peer
// record; destroyed when the link is dropped (pulls in progress then fail
// with UNAVAILABLE).
class PullConnection {
 public:
  virtual ~PullConnection() = default;

  // Copies `length` bytes at byte `offset` of the peer's region described by
  // `region` (the peer's Expose() answer, received at peering) into `dst`.
  // Blocks until the bytes are in `dst` or it fails: UNAVAILABLE when the link
  // is down (the engine retries), DEADLINE_EXCEEDED at `deadline`,
  // OUT_OF_RANGE when [offset, offset+length) is outside the region (naming
  // both). `dst` is untouched or partly written on failure.
  virtual absl::Status Pull(std::string_view region, uint64_t offset, void* dst,
                            size_t length, absl::Time deadline) = 0;
};

// One per daemon and transport kind; owned by the bridge engine.
class PullTransport {
 public:
  virtual ~PullTransport() = default;

  // "ucx" or "grpc": shown by memctl and the metrics.
  virtual std::string_view name() const = 0;

  // Sender side: makes [base, base + size) (a pool marked for bridging) readable
  // by connected peers and returns the opaque region descriptor peers need
  // (UCX: base address + packed rkey). Called once per bridged pool at start.
  virtual absl::StatusOr<std::string> Expose(std::string_view pool, void* base,
                                             size_t size) = 0;

  // Sender side: what a peer needs to connect to this daemon (UCX: the
  // worker address). Sent at peering.
  virtual absl::StatusOr<std::string> LocalAddress() = 0;

  // Receiver side: connects to `peer_name` given its LocalAddress() bytes.
  virtual absl::StatusOr<std::unique_ptr<PullConnection>> Connect(
      std::string_view peer_name, std::string_view peer_address) = 0;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_TRANSPORT_H_
