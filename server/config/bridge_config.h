// What the bridge engine is configured with (issue 19; docs/multi-node.md):
// this daemon's node name, its peers and its outbound bridges, from
// --node, --peer NAME=HOST:PORT, --bridge POOL/CHANNEL=PEER,
// --bridge-transport and --bridge-link (and the same keys in memd.toml). Parsing and
// validation only; stateless, thread-compatible.
//
// Owned by config/ (the memd_server library), not by the bridge library
// (bridge/, memd_bridge): DaemonOptions carries these settings and
// options.cc parses and validates them, and the bridge library links the
// server core, so the core must not need anything of bridge/. The bridge
// engine reads them (bridge::EngineOptions, bridge/engine.h).
#ifndef MEMD_SERVER_CONFIG_BRIDGE_CONFIG_H_
#define MEMD_SERVER_CONFIG_BRIDGE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/pool_config.h"

namespace memd::bridge {

struct PeerSpec {
  std::string name;     // the peer's --node; its certificate's common name
  std::string address;  // host:port of its TLS TCP listener
};

// Messages sent to `channel` of `pool` here go to the channel of the same
// name in the pool of the same name on `peer`.
struct BridgeSpec {
  std::string pool, channel, peer;
  std::string name() const { return pool + "/" + channel; }
};

struct BridgeOptions {
  std::string node;  // empty: the host name
  std::vector<PeerSpec> peers;
  std::vector<BridgeSpec> bridges;
  std::string transport;  // "ucx", "grpc"; empty: ucx when built with it, else grpc
  // kBridgeLinkEncrypted or kBridgeLinkTrusted; empty: encrypted.
  std::string link;
};

// --bridge-link values. encrypted: UCX answers are sealed (AES-256-GCM, a
// key per link sent in the hello over mutual TLS). trusted: UCX bytes go in
// clear; a receiver accepts a clear link only when it is trusted too (B43).
// The gRPC transport is TLS either way.
inline constexpr char kBridgeLinkEncrypted[] = "encrypted";
inline constexpr char kBridgeLinkTrusted[] = "trusted";

// "NAME=HOST:PORT".
absl::StatusOr<PeerSpec> ParsePeerFlag(const std::string& text);
// "POOL/CHANNEL=PEER".
absl::StatusOr<BridgeSpec> ParseBridgeFlag(const std::string& text);

// The node name in effect (options.node, else the host name).
std::string NodeName(const BridgeOptions& options);

// B01-B05 of docs/errors.md: a bridge on an unknown pool or one not marked
// `bridge=true`, to an unknown peer, twice; peers without mutual TLS; an
// unknown transport or --bridge-link. INVALID_ARGUMENT naming the value.
absl::Status ValidateBridgeOptions(const BridgeOptions& options,
                                   const std::vector<PoolConfig>& pools, bool mutual_tls);

}  // namespace memd::bridge

#endif  // MEMD_SERVER_CONFIG_BRIDGE_CONFIG_H_
