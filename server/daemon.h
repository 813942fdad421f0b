// Daemon: the memd application. Creates the pools' segments, binds the
// listeners, serves gRPC until SIGTERM/SIGINT, then removes what it created.
//
// Ownership: one per process, owned by main(). Run() is called once from the
// main thread; everything it creates is torn down before it returns.
#ifndef MEMD_SERVER_DAEMON_H_
#define MEMD_SERVER_DAEMON_H_

#include <memory>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/status.h"
#include "config/options.h"
#include "listen/peer_table.h"
#include "listen/unix_listener.h"
#include "pool/pool_registry.h"
#include "service/admin_service.h"
#include "service/memory_service.h"
#include "service/session_registry.h"
#include "shm/segment.h"

namespace memd {

class Daemon {
 public:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}
  ~Daemon();

  // Serves until a termination signal; returns the process exit code
  // (0 after a clean shutdown, 1 when start-up failed).
  int Run();

 private:
  absl::Status CreatePools();
  absl::Status StartServing();
  void Shutdown();

  const DaemonOptions options_;
  std::vector<std::unique_ptr<Segment>> segments_;  // index-aligned with pools_
  PoolRegistry pools_;
  PeerTable peers_;
  SessionRegistry sessions_;  // outlives the services and the server
  std::unique_ptr<MemoryService> memory_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<UnixListener>> listeners_;
};

}  // namespace memd

#endif  // MEMD_SERVER_DAEMON_H_
