// The byte-moving contract of a bridge (issue 19): the daemon that RECEIVES a
// bridged message pulls the message's bytes out of the SENDING daemon's pool
// into memory it allocated in its own pool. Two implementations:
//   - bridge/ucx/   UCX active messages: a pull request {pool, offset, length,
//                   key} that the exposing side checks against the region it
//                   exposed (key from Grant(), sent in the hello) before it
//                   answers with the bytes. Not a one-sided get: over TCP,
//                   UCX 1.13 serves a get of any address without checking
//                   the rkey (docs/ucx-transport.md);
//   - bridge/grpc/  a gRPC stream of chunks from the peer's Bridge service
//                   (the fallback: no UCX at build time, or
//                   --bridge-transport grpc).
// The bridge engine (bridge/) owns peering, sequence numbers, acknowledgements
// and retries; a transport only moves bytes and reports failure. A transport
// never decides what a peer may read: before it serves a byte it asks the
// engine's ReadCheck (the ranges of messages in flight to that peer), and it
// knows the peer by the grant the request shows (issue 24).
//
// Thread-safety: every method may be called from any thread, concurrently.
#ifndef MEMD_SERVER_BRIDGE_TRANSPORT_H_
#define MEMD_SERVER_BRIDGE_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memd::bridge {

// What a peer may read, asked by a transport before it serves any byte: OK
// when [offset, offset + length) of `pool` lies within a buffer of a message
// offered to `peer` and not yet acknowledged (nor refused, nor dropped);
// otherwise PERMISSION_DENIED naming the range, the pool and the peer. The
// engine's one answer (Engine::MayRead, from each Outbound's messages in
// flight): gRPC's Bridge.Read and UCX's RegionServer ask the same function.
// Runs on a transport's threads (UCX: its progress thread, under UCX's worker
// lock) and takes the engine's and an Outbound's mutex: no thread may call
// into a transport while it holds either.
using ReadCheck = std::function<absl::Status(std::string_view peer, std::string_view pool,
                                             uint64_t offset, uint64_t length)>;

// A receiver's connection to one peer daemon. Owned by the engine's peer
// record; destroyed when the link is dropped (pulls in progress then fail
// with UNAVAILABLE).
class PullConnection {
 public:
  virtual ~PullConnection() = default;

  // Copies `length` bytes at byte `offset` of the peer's region described by
  // `region` (the peer's Grant() answer, from its hello) into `dst`.
  // Blocks until the bytes are in `dst` or it fails: UNAVAILABLE when the link
  // is down (the engine retries), DEADLINE_EXCEEDED at `deadline`,
  // OUT_OF_RANGE when [offset, offset+length) is outside the region (naming
  // both), PERMISSION_DENIED when the peer refused (a range not in flight to
  // this daemon, B40), DATA_LOSS when sealed bytes failed their tag check
  // (B41). `dst` is untouched, partly written or garbage on failure.
  virtual absl::Status Pull(std::string_view region, uint64_t offset, void* dst,
                            size_t length, absl::Time deadline) = 0;
};

// One per daemon and transport kind; owned by the bridge engine.
class PullTransport {
 public:
  virtual ~PullTransport() = default;

  // "ucx" or "grpc": shown by memctl and the metrics.
  virtual std::string_view name() const = 0;

  // Sender side: makes [base, base + size) (a pool marked for bridging)
  // servable; no peer reads any of it before a Grant, and then only what the
  // ReadCheck allows. Called once per bridged pool (ALREADY_EXISTS after).
  virtual absl::Status Expose(std::string_view pool, void* base, size_t size) = 0;

  // Sender side: a fresh region descriptor for one link to `peer` (one
  // Deliver stream), sent in its hello. The peer shows it on every pull, and
  // it tells the transport which peer asks (UCX: a random key per grant).
  // With `seal`, every answer's payload is encrypted with a key drawn for
  // this grant and carried in the descriptor (UCX: AES-256-GCM, nonce per
  // answer, tag checked by the receiver); without, bytes go in clear where
  // the transport would otherwise encrypt (a link the operator trusts).
  // NOT_FOUND for a pool not exposed. Revoke it when the link ends.
  virtual absl::StatusOr<std::string> Grant(std::string_view pool, std::string_view peer,
                                            bool seal) = 0;
  // Pulls showing `region` are refused from now on (answers already being
  // sent finish). Unknown descriptors are ignored.
  virtual void Revoke(std::string_view region) = 0;
  // Whether bytes of a grant made with `seal` cross the network encrypted
  // (shown by memctl bridge and memd_bridge_link_encrypted). grpc: always
  // (TLS); ucx: exactly when `seal`.
  virtual bool Encrypted(bool seal) const = 0;

  // Sender side: what a peer needs to connect to this daemon (UCX: the
  // worker address). Sent at peering.
  virtual absl::StatusOr<std::string> LocalAddress() = 0;

  // Receiver side: connects to `peer_name` given its LocalAddress() bytes.
  virtual absl::StatusOr<std::unique_ptr<PullConnection>> Connect(
      std::string_view peer_name, std::string_view peer_address) = 0;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_TRANSPORT_H_
