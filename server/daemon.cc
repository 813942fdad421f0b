#include "daemon.h"

#include <csignal>
#include <pthread.h>

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/address.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

constexpr int kMaxRequestBytes = 64 * 1024;

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

Daemon::~Daemon() { Shutdown(); }

absl::Status Daemon::CreatePools() {
  // A crashed predecessor of this instance may have left objects behind; they
  // are ours (same instance and pool name) and would block the start.
  uint64_t needed = 0;
  for (const PoolConfig& config : options_.pools) {
    std::string object = PoolObjectName(options_.instance, config.name);
    if (Segment::RemoveIfExists(object)) {
      spdlog::warn("removed stale shared-memory object {} left by a previous daemon", object);
    }
    needed += config.size_bytes;
  }
  if (options_.reserve) {
    if (absl::Status s = CheckShmCapacity(needed); !s.ok()) return s;
  }
  for (const PoolConfig& config : options_.pools) {
    SegmentOptions seg{PoolObjectName(options_.instance, config.name), config.size_bytes,
                       options_.shm_mode, options_.reserve};
    absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Create(seg);
    if (!segment.ok()) return segment.status();
    auto index = static_cast<uint32_t>(pools_.size());
    pools_.Add(std::make_unique<Pool>(config, index, (*segment)->base(), seg.object_name));
    segments_.push_back(std::move(*segment));
  }
  return absl::OkStatus();
}

absl::Status Daemon::StartServing() {
  memory_service_ = std::make_unique<MemoryService>(pools_, peers_, sessions_);
  admin_service_ = std::make_unique<AdminService>(pools_, sessions_, peers_, options_.instance);
  // grpc.health.v1.Health: the standard probe for load balancers, Kubernetes
  // gRPC probes and grpc_health_probe; SERVING while the daemon runs.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // Requests are a few dozen bytes; anything near this is abuse and gets
  // RESOURCE_EXHAUSTED naming both sizes from gRPC, without being buffered.
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.RegisterService(memory_service_.get());
  builder.RegisterService(admin_service_.get());
  std::vector<Address> unix_addresses;
  for (const std::string& text : options_.listen) {
    Address address = *ParseAddress(text);  // validated with the options
    if (address.kind == Address::Kind::kUnix) {
      absl::StatusOr<std::unique_ptr<UnixListener>> listener =
          UnixListener::Bind(address.unix_path, options_.socket_mode);
      if (!listener.ok()) return listener.status();
      listeners_.push_back(std::move(*listener));
    } else {
      builder.AddListeningPort(address.host_port, grpc::InsecureServerCredentials());
    }
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError(absl::StrFormat("gRPC server failed to start on %s",
                                               absl::StrJoin(options_.listen, ", ")));
  }
  for (auto& listener : listeners_) listener->Start(server_.get(), &peers_);
  return absl::OkStatus();
}

int Daemon::Run() {
  // Block termination signals before gRPC starts its threads, so only the
  // sigwait below receives them.
  sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::Status s = CreatePools(); !s.ok()) {
    spdlog::critical("cannot start: {}", std::string(s.message()));
    Shutdown();
    return 1;
  }
  if (absl::Status s = StartServing(); !s.ok()) {
    spdlog::critical("cannot start: {}", std::string(s.message()));
    Shutdown();
    return 1;
  }
  std::vector<std::string> pool_text;
  for (const auto& pool : pools_.pools()) {
    pool_text.push_back(absl::StrFormat("%s=%s (%s, alignment %u)", pool->name(),
                                        FormatSize(pool->size_bytes()), pool->shm_name(),
                                        pool->alignment_bytes()));
  }
  spdlog::info("memd instance '{}' serving on {} with pools {}", options_.instance,
               absl::StrJoin(options_.listen, ", "), absl::StrJoin(pool_text, ", "));

  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("received signal {}; shutting down", signal);
  Shutdown();
  return 0;
}

void Daemon::Shutdown() {
  for (auto& listener : listeners_) listener->Stop();
  if (server_) {
    // Session streams never end by themselves, so any deadline would be used
    // up in full; 100 ms lets in-flight unary calls (stats) complete.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    server_->Wait();
    server_.reset();
  }
  listeners_.clear();
  for (auto& segment : segments_) segment->Remove();
}

}  // namespace memd
