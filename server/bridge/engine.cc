#include "bridge/engine.h"

#include <fstream>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bridge/added_bridges.h"
#include "bridge/grpc/grpc_transport.h"
#include "memd/shared/names.h"
#if MEMD_HAVE_UCX
#include "bridge/ucx/ucx_transport.h"
#endif

namespace memd::bridge {
namespace {

// Bridge holders' session ids (the ledger's causers, the channel registry's
// parked requests): far above any id the session registry hands out.
constexpr uint64_t kOutboundSessionBase = uint64_t{1} << 62;
constexpr uint64_t kInboundSessionBase = kOutboundSessionBase + (uint64_t{1} << 32);
// Bridge.Read answers chunks of GrpcTransport::kChunkBytes; room for framing.
constexpr int kMaxChunkMessageBytes = static_cast<int>(GrpcTransport::kChunkBytes) + (64 << 10);

absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '%s' cannot be read or is empty (needed to reach peers)", flag, path));
  }
  return text;
}

}  // namespace

Engine::Engine(EngineOptions options, PoolRegistry& pools, ChannelRegistry& channels,
               std::string state_dir)
    : options_(std::move(options)), pools_(pools), channels_(channels),
      state_dir_(std::move(state_dir)), node_(NodeName(options_.bridge)) {}

Engine::~Engine() { Stop(); }

absl::Status Engine::Start() {
  const BridgeOptions& b = options_.bridge;
  if (!b.peers.empty()) {
    for (auto [flag, path, out] : {std::tuple{"--tls-client-ca", &options_.tls_client_ca, &ca_pem_},
                                   std::tuple{"--tls-cert", &options_.tls_cert, &cert_pem_},
                                   std::tuple{"--tls-key", &options_.tls_key, &key_pem_}}) {
      absl::StatusOr<std::string> pem = ReadPem(flag, *path);
      if (!pem.ok()) return pem.status();
      *out = *pem;
    }
  }
  std::string kind = b.transport;
#if MEMD_HAVE_UCX
  if (kind.empty()) kind = "ucx";
  // UCX starts only for a daemon with peers: bridges need one, and starting
  // it opens netlink sockets and /dev/shm objects that a daemon without
  // bridges has no business with (memd.service's sandbox forbids them).
  if (kind == "ucx" && !b.peers.empty()) {
    absl::StatusOr<std::unique_ptr<PullTransport>> ucx = MakeUcxTransport(UcxOptions{
        .name = node_,
        .may_read = [this](std::string_view peer, std::string_view pool, uint64_t offset,
                           uint64_t length) { return MayRead(peer, pool, offset, length); }});
    if (!ucx.ok()) return ucx.status();
    transport_ = std::move(*ucx);
  }
#else
  if (kind == "ucx") {
    return absl::FailedPreconditionError(
        "--bridge-transport ucx: this memd was built without UCX (MEMD_BUILD_UCX=OFF or no "
        "libucx-dev); use --bridge-transport grpc");
  }
#endif
  if (transport_ == nullptr) {
    auto grpc = std::make_unique<GrpcTransport>(
        [this](std::string_view peer) { return OpenChannel(peer); });
    grpc_ = grpc.get();
    transport_ = std::move(grpc);
  }
  channels_.SetDeliveryHook(
      [this](const Pool&, const std::string&, uint64_t tag) { Delivered(tag); });
  for (const BridgeSpec& spec : b.bridges) {
    if (absl::Status s = AddBridge(spec, Origin::kConfigured); !s.ok()) return s;
  }
  RestoreAddedBridges();
  if (!b.peers.empty()) {
    spdlog::info("node '{}': {} peers, {} bridges, transport {}, links {}", node_,
                 b.peers.size(), b.bridges.size(), transport_->name(),
                 transport_->Encrypted(Seal()) ? "encrypted" : "in clear (--bridge-link trusted)");
  }
  return absl::OkStatus();
}

void Engine::Stop() {
  std::vector<std::shared_ptr<Outbound>> all;
  {
    MutexLock lock(&mu_);
    all = outbound_;
  }
  for (auto& o : all) o->Stop();  // not under mu_: Stop takes the channel registry's
}

void Engine::RestoreAddedBridges() {
  absl::StatusOr<std::vector<BridgeSpec>> added = LoadAddedBridges(state_dir_);
  if (!added.ok()) {
    spdlog::error("bridges added at run time are not restored: {}", std::string(added.status().message()));
    return;
  }
  for (const BridgeSpec& spec : *added) {
    auto configured = std::find_if(options_.bridge.bridges.begin(), options_.bridge.bridges.end(),
                                   [&](const BridgeSpec& c) { return c.name() == spec.name(); });
    if (configured != options_.bridge.bridges.end()) {
      spdlog::warn("bridge '{}' (to peer '{}') was added at run time and is now configured (to "
                   "peer '{}'): the configured one is kept, the added one forgotten",
                   spec.name(), spec.peer, configured->peer);
    } else if (absl::Status s = AddBridge(spec, Origin::kRestored); !s.ok()) {
      spdlog::error("bridge '{}' (to peer '{}') added at run time is not restored: {}; it is "
                    "forgotten (memctl bridge add it again)", spec.name(), spec.peer,
                    std::string(s.message()));
    }
  }
  MutexLock lock(&mu_);
  if (added_.size() == added->size()) return;
  if (absl::Status s = SaveAddedBridges(state_dir_, added_); !s.ok()) {
    spdlog::error("bridges added at run time: {}", std::string(s.message()));
  }
}

absl::Status Engine::AddBridge(const BridgeSpec& spec, Origin origin) {
  std::vector<PoolConfig> pools;
  for (const Pool* p : pools_.pools()) {
    PoolConfig c;
    c.name = p->name();
    c.bridge = p->bridge();
    pools.push_back(c);
  }
  BridgeOptions one = options_.bridge;
  one.bridges = {spec};
  if (absl::Status s = ValidateBridgeOptions(one, pools, /*mutual_tls=*/true); !s.ok()) return s;
  std::shared_ptr<Outbound> outbound;
  {
    MutexLock lock(&mu_);
    for (const auto& o : outbound_) {
      if (o->spec().name() == spec.name()) {
        return absl::AlreadyExistsError(
            absl::StrFormat("bridge '%s' exists (to peer '%s')", spec.name(), o->spec().peer));
      }
    }
    for (const auto& in : inbound_) {  // B21, as Deliver refuses it on the other side
      if (in->peer() == spec.peer && in->pool().name() == spec.pool &&
          in->channel() == spec.channel && in->serving()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "bridge '%s' to peer '%s' is refused: peer '%s' bridges into it (its bridge '%s'): "
            "a loop; a channel is bridged one way", spec.name(), spec.peer, spec.peer,
            in->bridge()));
      }
    }
    if (origin != Origin::kConfigured) {
      std::vector<BridgeSpec> next = added_;
      next.push_back(spec);
      if (origin == Origin::kAdded) {
        if (absl::Status s = SaveAddedBridges(state_dir_, next); !s.ok()) return s;
      }
      added_ = std::move(next);
    }
    Outbound::Env env{pools_.Find(spec.pool), &channels_, transport_.get(), node_, state_dir_,
                      kOutboundSessionBase + next_outbound_++,
                      [this](std::string_view peer) { return OpenChannel(peer); },
                      [this](Pool& pool) { return Expose(pool); }, options_.reclaim_grace,
                      Seal()};
    outbound = std::make_shared<Outbound>(spec, std::move(env));
    outbound_.push_back(outbound);
  }
  outbound->Start();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Engine::Remove(const std::string& name) {
  std::shared_ptr<Outbound> outbound;
  {
    MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (auto it = outbound_.begin(); it != outbound_.end(); ++it) {
      names.push_back((*it)->spec().name());
      if ((*it)->spec().name() == name) {
        outbound = *it;
        break;
      }
    }
    if (outbound == nullptr) {
      return absl::NotFoundError(absl::StrFormat("no bridge named '%s' (this daemon has: %s)",
                                                 name, names.empty() ? "none"
                                                                     : absl::StrJoin(names, ", ")));
    }
    std::vector<BridgeSpec> next;
    for (const BridgeSpec& b : added_) {
      if (b.name() != name) next.push_back(b);
    }
    if (next.size() != added_.size()) {
      if (absl::Status s = SaveAddedBridges(state_dir_, next); !s.ok()) return s;
      added_ = std::move(next);
    } else {
      spdlog::warn("bridge '{}' is configured: removed until the next start", name);
    }
    outbound_.erase(std::find(outbound_.begin(), outbound_.end(), outbound));
  }
  return outbound->Drop();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Engine::OpenChannel(std::string_view peer) const {
  const PeerSpec* spec = nullptr;
  for (const PeerSpec& p : options_.bridge.peers) {
    if (p.name == peer) spec = &p;
  }
  if (spec == nullptr) {
    return absl::NotFoundError(absl::StrFormat("no peer named '%s' is configured", peer));
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem_;
  ssl.pem_private_key = key_pem_;
  ssl.pem_cert_chain = cert_pem_;
  grpc::ChannelArguments args;
  // The peer's certificate must name the peer, whatever address reaches it.
  args.SetSslTargetNameOverride(spec->name);
  args.SetMaxReceiveMessageSize(kMaxChunkMessageBytes);
  // A link that dies without a reset (a cable, `ip link set down`) is noticed
  // within about 4 s, and a link that comes back is used within a second.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(spec->address, grpc::SslCredentials(ssl), args);
}

absl::Status Engine::Expose(Pool& pool) {
  MutexLock lock(&expose_mu_);
  if (exposed_.contains(pool.name())) return absl::OkStatus();
  absl::Status s = transport_->Expose(pool.name(), pool.memory_base(), pool.size_bytes());
  if (s.ok()) exposed_.insert(pool.name());
  return s;
}

absl::StatusOr<std::string> Engine::PeerOf(const grpc::ServerContext& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::vector<grpc::string_ref> names =
      auth ? auth->FindPropertyValues("x509_common_name") : std::vector<grpc::string_ref>{};
  if (names.empty()) {
    return absl::UnauthenticatedError(
        "bridge calls need a peer certificate: connect over TLS to a listener with "
        "--tls-client-ca");
  }
  std::string name(names.front().data(), names.front().size());
  std::vector<std::string> known;
  for (const PeerSpec& p : options_.bridge.peers) {
    if (p.name == name) return name;
    known.push_back(p.name);
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "node '%s' (the caller's certificate) is not a peer of node '%s' (peers: %s)", name, node_,
      known.empty() ? "none" : absl::StrJoin(known, ", ")));
}

absl::Status Engine::Deliver(const std::string& peer, grpc::ServerContext* context,
                             Inbound::Stream* stream, const v1::BridgeHello& hello) {
  if (hello.node() != peer) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "hello names node '%s' but the certificate is node '%s'", hello.node(), peer));
  }
  for (auto [what, value] : {std::pair{"bridge pool", &hello.pool()},
                             std::pair{"bridge channel", &hello.channel()}}) {
    if (absl::Status s = ValidateName(what, *value); !s.ok()) return s;
  }
  Pool* pool = pools_.Find(hello.pool());
  if (pool == nullptr) {
    return absl::NotFoundError(absl::StrFormat(
        "bridge '%s' from node '%s': node '%s' has no pool named '%s'", hello.bridge(), peer,
        node_, hello.pool()));
  }
  if (!pool->bridge()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "bridge '%s' from node '%s': pool '%s' on node '%s' is not marked for bridging (add "
        "bridge=true to its --pool or [[pool]])", hello.bridge(), peer, hello.pool(), node_));
  }
  // B43: bytes go in clear only where both operators said so.
  if (hello.link_clear() && Seal()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "bridge '%s' from node '%s' sends in clear (--bridge-link trusted on node '%s'); node '%s' "
        "does not trust its links (--bridge-link encrypted): set --bridge-link trusted on both "
        "or on neither", hello.bridge(), peer, peer, node_));
  }
  if (hello.transport() != transport_->name()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "bridge '%s' from node '%s' uses transport '%s'; node '%s' uses '%s' "
        "(--bridge-transport must match)", hello.bridge(), peer, hello.transport(), node_,
        transport_->name()));
  }
  Inbound* inbound = nullptr;
  {
    MutexLock lock(&mu_);
    // B21: messages from `peer` into a channel bridged back to `peer` would
    // bounce between the two daemons for ever.
    for (const auto& o : outbound_) {
      const BridgeSpec& s = o->spec();
      if (s.peer == peer && s.pool == hello.pool() && s.channel == hello.channel()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "bridge '%s' from node '%s' is refused: it delivers into channel '%s' of pool '%s', "
            "which node '%s' bridges back to node '%s' (bridge '%s'): a loop; a channel is bridged "
            "one way (memctl bridge remove one of them)", hello.bridge(), peer, hello.channel(),
            hello.pool(), node_, peer, s.name()));
      }
    }
    for (auto& in : inbound_) {
      if (in->peer() == peer && in->bridge() == hello.bridge()) inbound = in.get();
    }
    if (inbound == nullptr) {
      std::string path = absl::StrFormat("%s/bridge.%s.%s.%s.in", state_dir_, peer, hello.pool(),
                                         hello.channel());
      absl::StatusOr<std::unique_ptr<DeliveredMark>> mark = DeliveredMark::Open(path);
      if (!mark.ok()) return mark.status();
      uint32_t id = static_cast<uint32_t>(inbound_.size() + 1);
      inbound_.push_back(std::make_unique<Inbound>(id, peer, hello.bridge(), pool,
                                                   hello.channel(), &channels_, transport_.get(),
                                                   std::move(*mark), kInboundSessionBase + id));
      inbound = inbound_.back().get();
    }
  }
  return inbound->Serve(context, stream, hello);
}

absl::Status Engine::Read(const std::string& peer, const v1::BridgeReadRequest& request,
                          grpc::ServerWriter<v1::BridgeChunk>* writer) {
  if (grpc_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "node '%s' bridges with '%s', not grpc", node_, transport_->name()));
  }
  if (absl::Status s =
          MayRead(peer, request.region(), request.offset_bytes(), request.length_bytes());
      !s.ok()) {
    return s;
  }
  return grpc_->ServeRead(request, writer);
}

absl::Status Engine::MayRead(std::string_view peer, std::string_view pool, uint64_t offset,
                             uint64_t length) {
  {
    MutexLock lock(&mu_);
    for (const auto& o : outbound_) {
      if (o->spec().peer == peer && o->spec().pool == pool && o->Covers(offset, length)) {
        return absl::OkStatus();
      }
    }
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "read of [%u, %u) in pool '%s' refused: it is not in flight to node '%s' (no message "
      "offered to it and not yet acknowledged holds it)", offset, offset + length, pool, peer));
}

v1::ListBridgesResponse Engine::List() {
  v1::ListBridgesResponse out;
  out.set_node(node_);
  MutexLock lock(&mu_);
  for (auto& o : outbound_) *out.add_bridges() = o->Stats();
  for (auto& in : inbound_) *out.add_bridges() = in->Stats();
  return out;
}

void Engine::Delivered(uint64_t tag) {
  Inbound* inbound = nullptr;
  {
    MutexLock lock(&mu_);
    uint32_t id = Inbound::IdOf(tag);
    if (id == 0 || id > inbound_.size()) return;
    inbound = inbound_[id - 1].get();
  }
  inbound->Delivered(Inbound::SeqOf(tag));
}

}  // namespace memd::bridge
