// Engine: the bridge engine of one daemon (issue 19; docs/multi-node.md).
// Owns the pull transport, the credentials peers are reached with, one
// Outbound per configured bridge and one Inbound per bridge a peer opened to
// this daemon, and answers the Bridge and BridgeAdmin services
// (bridge_service.h) for them.
//
// Peers are authenticated by mutual TLS on the daemon's TCP listener: a
// caller's certificate must be signed by --tls-client-ca (else the handshake
// fails) and carry a configured peer's node name as its subject common name
// (else PERMISSION_DENIED, B06). This daemon reaches a peer at its --peer
// address with its own --tls-cert/--tls-key and checks that the peer's server
// certificate names the peer (its node name as the TLS target name).
//
// Ownership: one per Daemon, created after the channel registry and stopped
// (Stop) before it and the pools go. Thread-safe.
#ifndef MEMD_SERVER_BRIDGE_ENGINE_H_
#define MEMD_SERVER_BRIDGE_ENGINE_H_

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server_context.h>

#include "absl/time/time.h"
#include "bridge/inbound.h"
#include "bridge/outbound.h"
#include "config/bridge_config.h"
#include "pool/pool_registry.h"

namespace memd::bridge {

class GrpcTransport;

// What the engine reads of the daemon's configuration, and nothing more:
// DaemonOptions (config/options.h) owns these settings and the daemon
// (Daemon::StartServing) copies them in, so the bridge library needs no other.
struct EngineOptions {
  BridgeOptions bridge;  // --node, --peer, --bridge, --bridge-transport, --bridge-link
  // PEM file paths of the daemon's TLS (--tls-client-ca, --tls-cert,
  // --tls-key): Start reads them to reach peers, as the listener serves them.
  std::string tls_client_ca, tls_cert, tls_key;
  // --reclaim-grace, named when a restart lost a journal's buffers (B08).
  absl::Duration reclaim_grace;
};

class Engine {
 public:
  Engine(EngineOptions options, PoolRegistry& pools, ChannelRegistry& channels,
         std::string state_dir);
  ~Engine();

  // Reads the credentials, makes the transport and starts the outbound
  // bridges. Errors name the file or the transport.
  absl::Status Start();
  void Stop();

  // The node name of the caller's certificate when it is a configured peer;
  // UNAUTHENTICATED without a certificate, PERMISSION_DENIED (B06) otherwise.
  absl::StatusOr<std::string> PeerOf(const grpc::ServerContext& context) const;
  // Bridge.Deliver for `peer` (bridge_service.cc reads the hello).
  absl::Status Deliver(const std::string& peer, grpc::ServerContext* context,
                       Inbound::Stream* stream, const v1::BridgeHello& hello);
  // The one answer to "may `peer` read this range" (transport.h ReadCheck):
  // OK when [offset, offset + length) of `pool` lies within a buffer of a
  // message an Outbound to `peer` offered and the peer has not acknowledged;
  // otherwise PERMISSION_DENIED naming the range and the peer (B07 for gRPC,
  // B40 for UCX). Asked by Read (gRPC) and by the UCX transport's
  // RegionServer on its progress thread. Takes mu_ and Outbounds' mutexes.
  absl::Status MayRead(std::string_view peer, std::string_view pool, uint64_t offset,
                       uint64_t length);
  // Bridge.Read for `peer`: only a range of a message in flight to it (B07).
  absl::Status Read(const std::string& peer, const v1::BridgeReadRequest& request,
                    grpc::ServerWriter<v1::BridgeChunk>* writer);
  v1::ListBridgesResponse List();
  // memctl bridge add / remove (admin checked by the service). Add makes the
  // same checks as the configuration (B01-B03) and B09 for a bridge that
  // exists, and records the bridge in the runtime list (added_bridges.h)
  // before it starts; Remove: NOT_FOUND (B10) for an unknown name, and takes
  // a bridge added at run time off that list (a configured one comes back
  // at the next start). A list that cannot be written fails the call and
  // changes nothing. The list is written under mu_ (an admin call, rare: a
  // delivery hook waits for its fsync meanwhile).
  absl::Status Add(const BridgeSpec& spec) { return AddBridge(spec, Origin::kAdded); }
  absl::StatusOr<uint64_t> Remove(const std::string& name);

  const std::string& node() const { return node_; }

 private:
  enum class Origin {
    kConfigured,  // --bridge, [[bridge]]
    kAdded,       // memctl bridge add: recorded in the runtime list first
    kRestored,    // from the runtime list at start (Start saves the list once)
  };
  absl::Status AddBridge(const BridgeSpec& spec, Origin origin);
  // Start: the runtime list's bridges after the configured ones. One also
  // configured (same name) is dropped for the configuration's, one that no
  // longer passes the checks is dropped (B17), both logged; an unreadable
  // list is logged (B18) and left for the next `bridge add` to replace.
  void RestoreAddedBridges();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(std::string_view peer) const;
  // Exposes `pool` to the transport on first use; then nothing (a
  // transport exposes a pool once; each link gets its own Grant).
  absl::Status Expose(Pool& pool);
  // Whether links of this daemon seal UCX bytes: not with --bridge-link trusted.
  bool Seal() const { return options_.bridge.link != kBridgeLinkTrusted; }
  // The channel registry's delivery hook (under its mutex).
  void Delivered(uint64_t tag);

  const EngineOptions options_;
  PoolRegistry& pools_;
  ChannelRegistry& channels_;
  const std::string state_dir_;
  const std::string node_;
  std::string ca_pem_, cert_pem_, key_pem_;  // set by Start
  std::unique_ptr<PullTransport> transport_;
  GrpcTransport* grpc_ = nullptr;  // transport_ when it is the gRPC one
  // Taken under the channel registry's mutex (Delivered); only an
  // Outbound's or Inbound's own mutex is taken under it.
  Mutex mu_;
  std::vector<std::shared_ptr<Outbound>> outbound_ ABSL_GUARDED_BY(mu_);
  uint64_t next_outbound_ ABSL_GUARDED_BY(mu_) = 0;  // numbers their session ids
  // The bridges of outbound_ added at run time, as the runtime list has them.
  std::vector<BridgeSpec> added_ ABSL_GUARDED_BY(mu_);
  Mutex expose_mu_;  // a leaf
  std::set<std::string> exposed_ ABSL_GUARDED_BY(expose_mu_);  // pool names
  // By id - 1; entries are never removed (ids tag channel messages).
  std::vector<std::unique_ptr<Inbound>> inbound_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_ENGINE_H_
