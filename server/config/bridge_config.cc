#include "config/bridge_config.h"

#include <unistd.h>

#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/address.h"
#include "memd/shared/names.h"

namespace memd::bridge {

absl::StatusOr<PeerSpec> ParsePeerFlag(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--peer '%s' must be NAME=HOST:PORT (the peer's node name and TLS listener)", text));
  }
  PeerSpec peer{text.substr(0, eq), text.substr(eq + 1)};
  if (absl::Status s = ValidateName("--peer node name", peer.name); !s.ok()) return s;
  absl::StatusOr<Address> address = ParseAddress(peer.address);
  if (!address.ok() || address->kind == Address::Kind::kUnix) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--peer '%s': '%s' is not a HOST:PORT (peers are reached over TCP with TLS)", text,
        peer.address));
  }
  return peer;
}

absl::StatusOr<BridgeSpec> ParseBridgeFlag(const std::string& text) {
  size_t slash = text.find('/');
  size_t eq = text.find('=');
  if (slash == std::string::npos || eq == std::string::npos || eq < slash) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--bridge '%s' must be POOL/CHANNEL=PEER", text));
  }
  BridgeSpec spec{text.substr(0, slash), text.substr(slash + 1, eq - slash - 1),
                  text.substr(eq + 1)};
  for (auto [what, value] : {std::pair{"--bridge pool", &spec.pool},
                             std::pair{"--bridge channel", &spec.channel},
                             std::pair{"--bridge peer", &spec.peer}}) {
    if (absl::Status s = ValidateName(what, *value); !s.ok()) return s;
  }
  return spec;
}

std::string NodeName(const BridgeOptions& options) {
  if (!options.node.empty()) return options.node;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return host;
}

absl::Status ValidateBridgeOptions(const BridgeOptions& options,
                                   const std::vector<PoolConfig>& pools, bool mutual_tls) {
  if (!options.node.empty()) {
    if (absl::Status s = ValidateName("--node", options.node); !s.ok()) return s;
  }
  if (!options.transport.empty() && options.transport != "grpc" && options.transport != "ucx") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--bridge-transport '%s' is unknown; known: ucx, grpc", options.transport));
  }
  if (!options.link.empty() && options.link != kBridgeLinkEncrypted &&
      options.link != kBridgeLinkTrusted) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--bridge-link '%s' is unknown; known: %s (the default), %s", options.link,
        kBridgeLinkEncrypted, kBridgeLinkTrusted));
  }
  if (!options.peers.empty() && !mutual_tls) {
    return absl::InvalidArgumentError(
        "--peer needs mutual TLS: --tls-cert, --tls-key, --tls-client-ca (the CA that signs the "
        "peers' certificates) and a TCP --listen");
  }
  std::set<std::string> peers;
  for (const PeerSpec& p : options.peers) {
    if (!peers.insert(p.name).second) {
      return absl::InvalidArgumentError(absl::StrFormat("peer '%s' is configured twice", p.name));
    }
  }
  std::set<std::string> names;
  for (const BridgeSpec& b : options.bridges) {
    auto pool = std::find_if(pools.begin(), pools.end(),
                             [&](const PoolConfig& p) { return p.name == b.pool; });
    if (pool == pools.end()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bridge '%s': no pool named '%s'", b.name(), b.pool));
    }
    if (!pool->bridge) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "bridge '%s': pool '%s' is not marked for bridging (peers may read only such pools); "
          "add bridge=true to its --pool or [[pool]]", b.name(), b.pool));
    }
    if (!peers.contains(b.peer)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "bridge '%s': no peer named '%s' (configured: %s)", b.name(), b.peer,
          peers.empty() ? "none" : absl::StrJoin(peers, ", ")));
    }
    if (!names.insert(b.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bridge '%s' is configured twice", b.name()));
    }
  }
  return absl::OkStatus();
}

}  // namespace memd::bridge
