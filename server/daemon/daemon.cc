#include "daemon/daemon.h"

#include <grp.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <pthread.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/address.h"
#include <cerrno>
#include <cstring>
#include "memd/shared/names.h"
#include "memd/shared/size.h"
#include "memd/version.h"
#include "bridge/bridge_collector.h"
#include "memd/shared/limits.h"
#include "startup/pool_startup.h"
#include "startup/state_directory.h"

namespace memd {

grpc::Server* g_finished_server = nullptr;  // see Daemon::Shutdown

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) in.setstate(std::ios::failbit);
  if (!in || text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '%s' cannot be read or is empty", flag, path));
  }
  return text;
}

// TLS for TCP listeners: the server certificate, and client certificates
// verified against --tls-client-ca when it is given.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(const DaemonOptions& o) {
  absl::StatusOr<std::string> cert = ReadFile("--tls-cert", o.tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile("--tls-key", o.tls_key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!o.tls_client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("--tls-client-ca", o.tls_client_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Termination signals, and SIGHUP.
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);  // reload the configuration
  return set;
}

}  // namespace

Daemon::~Daemon() { Shutdown(/*started=*/false); }

absl::Status Daemon::CreatePools() {
  log_level_ = options_.log_level;
  log_format_ = options_.log_format;
  uid_t owner = options_.run_as ? options_.run_as->uid : ::geteuid();
  gid_t owner_gid = options_.run_as ? options_.run_as->gid : ::getegid();
  absl::StatusOr<std::string> dir = PrepareStateDirectory(
      options_.state_dir.empty() ? DefaultStateRoot() : options_.state_dir, options_.instance,
      owner, owner_gid);
  if (!dir.ok()) return dir.status();
  state_dir_ = *dir;
  absl::StatusOr<std::unique_ptr<InstanceLock>> lock =
      InstanceLock::Acquire(options_.instance, state_dir_);
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);
  absl::StatusOr<std::vector<OpenedPool>> opened = OpenPools(
      options_.pools, PoolStartupOptions{.instance = options_.instance,
                                         .state_dir = state_dir_,
                                         .reserve = options_.reserve,
                                         .fresh = options_.fresh});
  if (!opened.ok()) return opened.status();
  memory_.SetMemoryHook([](const Pool& pool, int fd) { StorePoolMemory(pool.name(), fd); });
  for (OpenedPool& p : *opened) {
    if (p.adopted) {
      PoolStats s = p.pool->Stats();
      spdlog::warn("re-adopted pool '{}' from the previous daemon: {} live buffers, {} used; "
                   "waiting for a client to hand its memory back, and clients have {} to reclaim "
                   "{} references",
                   p.pool->name(), s.live_buffers, FormatSize(s.used_bytes),
                   absl::FormatDuration(options_.reclaim_grace), s.unclaimed_references);
    }
    adopted_.push_back(p.adopted);
    bool reserve = p.pool->prefaulted();
    pools_.Add(std::move(p.pool));
    memory_.Add(pools_.pools().back(), std::move(p.segment), reserve);
  }
  TakeStoredMemory();
  return absl::OkStatus();
}

void Daemon::TakeStoredMemory() {
  for (uint32_t i = 0; i < pools_.size(); ++i) {
    Pool* pool = pools_.pools()[i];
    UniqueFd stored = inherited_.TakePoolMemory(pool->name());
    if (!stored.valid() || !memory_.pending(i)) continue;  // unused: closed here
    if (absl::Status s = memory_.Offer(i, pool->segment_id(), std::move(stored)); !s.ok()) {
      spdlog::warn("pool '{}': the memory systemd kept is not this pool's ({}); waiting for "
                   "clients to hand it back",
                   pool->name(), std::string(s.message()));
    } else {
      spdlog::info("pool '{}': continues in the memory systemd's descriptor store kept",
                   pool->name());
    }
  }
}

std::string Daemon::StatusLine() const {
  std::vector<std::string> pools;
  for (const auto& pool : pools_.pools()) {
    pools.push_back(absl::StrFormat("%s=%s", pool->name(), FormatSize(pool->size_bytes())));
  }
  return absl::StrFormat("instance '%s' serving on %s; pools %s", options_.instance,
                         absl::StrJoin(options_.listen, ", "), absl::StrJoin(pools, ", "));
}

absl::Status Daemon::DropPrivileges() {
  if (!options_.run_as) return absl::OkStatus();
  uid_t uid = options_.run_as->uid;
  gid_t gid = options_.run_as->gid;
  if (::geteuid() == uid && ::getegid() == gid) return absl::OkStatus();
  // What the daemon must still write goes to the new user first.
  if (absl::Status s = lock_->Chown(uid, gid); !s.ok()) return s;
  if (::chown(state_dir_.c_str(), uid, gid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot give state directory '%s' to uid %u: %s", state_dir_, uid, std::strerror(errno)));
  }
  for (const auto& pool : pools_.pools()) {
    if (absl::Status s = pool->ChownState(uid, gid); !s.ok()) return s;
  }
  // glibc applies these to every thread of the process (gRPC's included).
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot drop privileges to uid %u gid %u: %s (start memd as root to use --user/--group)",
        uid, gid, std::strerror(errno)));
  }
  if (uid != 0 && ::setuid(0) == 0) {
    return absl::InternalError("dropped privileges but could regain root; refusing to run");
  }
  spdlog::info("dropped privileges to uid {} gid {}", uid, gid);
  return absl::OkStatus();
}

void Daemon::StartGraceTimer() {
  bool any = false;
  for (const auto& pool : pools_.pools()) any |= pool->Stats().unclaimed_references > 0;
  for (uint32_t i = 0; i < pools_.size(); ++i) any |= memory_.pending(i);
  if (!any) return;
  grace_thread_ = std::thread([this] {
    absl::Time deadline = absl::Now() + options_.reclaim_grace;
    {
      MutexLock lock(&grace_mu_);
      while (!stopping_ && absl::Now() < deadline) {
        grace_cv_.WaitFor(&grace_mu_, absl::ToChronoNanoseconds(deadline - absl::Now()));
      }
      if (stopping_) return;
    }
    for (const auto& pool : pools_.pools()) {
      if (uint64_t released = pool->ReleaseUnclaimed(); released > 0) {
        // Nothing here knows whether a holder's process lives: one that was
        // stopped (SIGSTOP) or slow to reconnect loses them too (issue 24).
        spdlog::warn("reclaim grace over: released {} references in pool '{}' that no client "
                     "reclaimed within the {} grace (--reclaim-grace): their processes exited "
                     "while the daemon was down, or did not reconnect in time (stopped or "
                     "stalled); such a process finds those buffers gone when it reconnects",
                     released, pool->name(), absl::FormatDuration(options_.reclaim_grace));
      }
    }
    memory_.RenewPending();  // pools whose memory no client handed back
  });
}

absl::Status Daemon::StartServing() {
  metrics_ = std::make_unique<Metrics>(pools_);
  if (!options_.metrics_listen.empty()) {
    if (absl::Status s = metrics_->Serve(options_.metrics_listen); !s.ok()) return s;
  }
  channels_ = std::make_unique<ChannelRegistry>();
  sessions_.set_max_per_uid(static_cast<uint64_t>(options_.max_sessions_per_uid));
  memory_service_ = std::make_unique<MemoryService>(pools_, peers_, sessions_, metrics_.get(),
                                                    channels_.get(), options_.instance,
                                                    options_.max_lanes, options_.lane_spin);
  metrics_->WatchDaemon(*channels_, [service = memory_service_.get()] { return service->open_lanes(); });
  admin_service_ = std::make_unique<AdminService>(pools_, sessions_, peers_, options_.instance,
                                                  options_.admin_gid, metrics_.get(),
                                                  channels_.get(),
                                                  [this](bool discard) { RequestStop(discard); });
  // grpc.health.v1.Health: the standard probe for load balancers, Kubernetes
  // gRPC probes and grpc_health_probe; SERVING while the daemon runs.
  grpc::EnableDefaultHealthCheckService(true);
  // Server reflection: grpcurl and grpc_cli can list and call memd's services.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Requests are a few dozen bytes. A session request over 64 KiB is
  // answered RESOURCE_EXHAUSTED by its session (SessionReactor), which goes
  // on; gRPC itself ends a stream whose message exceeds this (E18).
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits::kMaxGrpcMessageBytes));
  builder.RegisterService(memory_service_.get());
  builder.RegisterService(admin_service_.get());
  bridge::EngineOptions bridge_options{options_.bridge, options_.tls_client_ca, options_.tls_cert,
                                       options_.tls_key, options_.reclaim_grace};
  bridge_ = std::make_unique<bridge::Engine>(std::move(bridge_options), pools_, *channels_,
                                             state_dir_);
  if (absl::Status s = bridge_->Start(); !s.ok()) return s;
  metrics_->AddCollectable(std::make_shared<bridge::BridgeCollector>(*bridge_));
  bridge_service_ = std::make_unique<bridge::BridgeService>(*bridge_);
  bridge_admin_service_ = std::make_unique<bridge::BridgeAdminService>(*bridge_, *admin_service_);
  builder.RegisterService(bridge_service_.get());
  builder.RegisterService(bridge_admin_service_.get());
  if (!options_.bridge.peers.empty()) {
    // Peers ping every 2 s to notice a dead link (bridge/engine.cc); without
    // these, gRPC would answer their pings with GOAWAY (too many pings).
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  }
  // Sockets belong to the --user (so it can remove them) in the --socket-group.
  SocketOwnership socket_owner, dir_owner;
  if (options_.run_as) {
    socket_owner = dir_owner = {options_.run_as->uid, options_.run_as->gid};
  }
  if (options_.socket_gid) socket_owner.gid = *options_.socket_gid;
  std::vector<std::pair<std::string, int>> tcp_ports;  // address, bound port
  tcp_ports.reserve(options_.listen.size());
  for (const std::string& text : options_.listen) {
    Address address = *ParseAddress(text);  // validated with the options
    if (address.kind == Address::Kind::kUnix) {
      if (UniqueFd passed = inherited_.TakeSocket(address.unix_path); passed.valid()) {
        // memd.socket: systemd owns the file and keeps it across restarts.
        spdlog::info("serving on {} from systemd's socket (fd {})", address.unix_path, passed.get());
        listeners_.push_back(UnixListener::Adopt(address.unix_path, passed.Release()));
        continue;
      }
      absl::StatusOr<std::unique_ptr<UnixListener>> listener =
          UnixListener::Bind(address.unix_path, options_.socket_mode, socket_owner, dir_owner);
      if (!listener.ok()) return listener.status();
      listeners_.push_back(std::move(*listener));
    } else {
      absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = TlsCredentials(options_);
      if (!tls.ok()) return tls.status();
      tcp_ports.emplace_back(text, 0);
      builder.AddListeningPort(address.host_port, *tls, &tcp_ports.back().second);
    }
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError(absl::StrFormat("gRPC server failed to start on %s",
                                               absl::StrJoin(options_.listen, ", ")));
  }
  for (const auto& [text, port] : tcp_ports) {
    if (port == 0) {
      return absl::UnavailableError(absl::StrFormat("cannot listen on %s (address in use?)", text));
    }
  }
  return absl::OkStatus();
}

void Daemon::StartAccepting() {
  descriptors_ = std::make_unique<DescriptorService>(pools_, sessions_, memory_);
  RaiseDescriptorLimit();
  GateLimits limits{.admin_gid = options_.admin_gid};
  for (auto& listener : listeners_) {
    listener->Start(server_.get(), &peers_, limits,
                    [this](int connection, const PeerCredentials& peer) {
                      descriptors_->Serve(connection, peer);
                    });
  }
}

int Daemon::Run() {
  // Block termination signals before gRPC starts its threads, so only the
  // sigwait below receives them.
  sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // As PID 1 of a container (docker run without --init, a Kubernetes pod)
  // the kernel drops signals whose action is the default, even blocked ones:
  // a handler, never run, makes them pend for sigwait.
  struct sigaction pending {};
  pending.sa_handler = [](int) {};
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &pending, nullptr);
  // Before any thread: systemd's sockets and stored pool memory ($LISTEN_FDS).
  inherited_ = InheritedFds::Take();

  for (absl::Status (Daemon::*step)() : {&Daemon::CreatePools, &Daemon::StartServing,
                                         &Daemon::DropPrivileges}) {
    if (absl::Status s = (this->*step)(); !s.ok()) {
      spdlog::critical("cannot start: {}", std::string(s.message()));
      NotifyStatus(absl::StrCat("cannot start: ", s.message()));
      Shutdown(/*started=*/false);
      return 1;
    }
  }
  if (inherited_.left() > 0) {
    spdlog::warn("closing descriptors systemd passed that memd does not use: {}",
                 inherited_.Describe());
    inherited_ = InheritedFds();
  }
  StartAccepting();  // only now: no client is ever served by a privileged daemon
  StartGraceTimer();
  std::vector<std::string> pool_text;
  for (const auto& pool : pools_.pools()) {
    pool_text.push_back(absl::StrFormat("%s=%s (%s, alignment %u)", pool->name(),
                                        FormatSize(pool->size_bytes()), pool->shm_name(),
                                        pool->alignment_bytes()));
  }
  spdlog::info("memd {} instance '{}' serving on {} with pools {}", MEMD_VERSION_STRING,
               options_.instance, absl::StrJoin(options_.listen, ", "),
               absl::StrJoin(pool_text, ", "));
  NotifyReady(StatusLine());

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    NotifyReloading();
    Reload();
    NotifyReady(StatusLine());
  }
  bool discard = discard_on_stop_.load();
  spdlog::info("received signal {}; shutting down ({})", signal,
               discard ? "discarding every pool, as memctl shutdown --discard asked"
                       : "every pool's state stays for the next start");
  NotifyStopping();
  Shutdown(/*started=*/true);
  if (discard) DiscardPools();
  return 0;
}

void Daemon::RequestStop(bool discard) {
  if (discard) discard_on_stop_.store(true);
  ::kill(::getpid(), SIGTERM);  // blocked in every thread: only Run's sigwait takes it
}

void Daemon::DiscardPools() {
  for (const auto& pool : pools_.pools()) {
    pool->RemoveState();
    ForgetPoolMemory(pool->name());
    spdlog::warn("discarded pool '{}' and every buffer in it", pool->name());
  }
}

void Daemon::Shutdown(bool started) {
  if (shut_down_) return;
  shut_down_ = true;
  {
    MutexLock lock(&grace_mu_);
    stopping_ = true;
  }
  grace_cv_.SignalAll();
  if (grace_thread_.joinable()) grace_thread_.join();
  if (started) sessions_.SetStopping();  // sessions keep their references for the next start
  for (auto& listener : listeners_) listener->Stop();
  // The endpoint's scrapes read the channels and the lane count
  // (DaemonCollector): it stops before they go with the members below.
  if (metrics_) metrics_->StopServing();
  if (server_) {
    // Session streams never end by themselves, so any deadline would be used
    // up in full; 100 ms lets in-flight unary calls (stats) complete.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    server_->Wait();
    // Every call is finished now, but ~Server runs grpc_shutdown(), which can
    // block for seconds joining a gRPC executor thread that still polls the
    // connection of a client that stopped reading (E20 in docs/errors.md).
    // The process is about to exit, so the server is left to the OS; a global
    // keeps it reachable, so leak checkers do not report it.
    g_finished_server = server_.release();
  }
  if (bridge_) bridge_->Stop();  // its threads use the channels and the pools
  listeners_.clear();
  // A daemon that served keeps every pool's state: clients keep the memory,
  // and the next start re-adopts both. One whose start failed removes the
  // pools it created; re-adopted ones stay for the next start.
  if (started) return;
  for (size_t i = 0; i < adopted_.size(); ++i) {
    if (!adopted_[i]) pools_.pools()[i]->RemoveState();
  }
}

}  // namespace memd
