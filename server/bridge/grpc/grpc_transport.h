// GrpcTransport: the fallback PullTransport (bridge/transport.h) when memd is
// built without UCX or runs with --bridge-transport grpc. The receiver pulls a
// range with a server-streaming Bridge.Read call to the sender over the same
// mutual-TLS TCP connection the peers use for everything else; the sender
// answers with chunks of at most kChunkBytes straight from its pool memory.
// Bytes in flight per pull are bounded by gRPC's HTTP/2 flow-control window
// plus one chunk (the sender writes a chunk only once the previous one is
// accepted); a receiver runs one pull at a time per bridge.
//
// What a peer may read is the engine's decision (Engine::Read asks
// Engine::MayRead, the ReadCheck, before ServeRead).
//
// Ownership: one per daemon, owned by the bridge Engine. Thread-safe.
#ifndef MEMD_SERVER_BRIDGE_GRPC_GRPC_TRANSPORT_H_
#define MEMD_SERVER_BRIDGE_GRPC_GRPC_TRANSPORT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include "bridge/transport.h"
#include "memd/shared/mutex.h"
#include "memd/v1/bridge.grpc.pb.h"

namespace memd::bridge {

class GrpcTransport : public PullTransport {
 public:
  static constexpr size_t kChunkBytes = size_t{2} << 20;  // 2 MiB per BridgeChunk

  // `open_channel(peer_name)`: a mutual-TLS channel to that peer (the engine
  // knows addresses and credentials).
  using OpenChannel = std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(
      std::string_view peer_name)>;
  explicit GrpcTransport(OpenChannel open_channel) : open_channel_(std::move(open_channel)) {}

  std::string_view name() const override { return "grpc"; }
  absl::Status Expose(std::string_view pool, void* base, size_t size) override;
  // The region descriptor is the pool name: the peer is known by its
  // certificate (Bridge.Read is a mutual-TLS call), nothing to revoke.
  absl::StatusOr<std::string> Grant(std::string_view pool, std::string_view peer,
                                    bool seal) override;
  void Revoke(std::string_view /*region*/) override {}
  // Always: every byte goes over the peers' TLS, whatever `seal` says.
  bool Encrypted(bool /*seal*/) const override { return true; }
  // Peers are reached at their configured --peer address: nothing to send.
  absl::StatusOr<std::string> LocalAddress() override { return std::string(); }
  absl::StatusOr<std::unique_ptr<PullConnection>> Connect(std::string_view peer_name,
                                                          std::string_view peer_address) override;

  // Sender side, for Bridge.Read once the engine allowed the range: writes
  // [offset, offset + length) of `region` as chunks. OUT_OF_RANGE (naming
  // both) outside the exposed region; CANCELLED when the reader went away.
  absl::Status ServeRead(const v1::BridgeReadRequest& request,
                         grpc::ServerWriter<v1::BridgeChunk>* writer);

 private:
  struct Region {
    const uint8_t* base;
    size_t size;
  };
  const OpenChannel open_channel_;
  Mutex mu_;
  std::map<std::string, Region, std::less<>> regions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_GRPC_GRPC_TRANSPORT_H_
