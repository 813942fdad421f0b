// Daemon: the memd application. Creates or re-adopts the pools, binds the
// listeners, serves gRPC until SIGTERM/SIGINT, then stops, keeping every pool's
// state so the next start (this build or a newer one) re-adopts every buffer
// (docs/reliability.md, the restart matrix).
//
// Ownership: one per process, owned by main(). Run() is called once from the
// main thread; everything it creates is torn down before it returns.
#ifndef MEMD_SERVER_DAEMON_DAEMON_H_
#define MEMD_SERVER_DAEMON_DAEMON_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/status.h"
#include "bridge/bridge_service.h"
#include "bridge/engine.h"
#include "config/options.h"
#include "listen/peer_table.h"
#include "listen/unix_listener.h"
#include "channel/channel_registry.h"
#include "metrics/metrics.h"
#include "pool/pool_registry.h"
#include "service/admin_service.h"
#include "service/memory_service.h"
#include "service/session_registry.h"
#include "memd/shared/mutex.h"
#include "service/descriptor_service.h"
#include "startup/instance_lock.h"
#include "startup/pool_memory.h"
#include "startup/systemd.h"

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
  // Binds the sockets and starts gRPC; Unix connections are accepted only
  // once StartAccepting runs (after privileges are dropped).
  absl::Status StartServing();
  void StartAccepting();
  // --user/--group: hands the lock and state tables over, then drops to them.
  absl::Status DropPrivileges();
  // SIGHUP: parses the command line and --config file again and applies what
  // can change while serving (log level and format, max_alloc, quotas, new
  // pools); logs what needs a restart. Main thread (daemon_reload.cc).
  void Reload();
  // Releases the references nobody reclaimed once the grace period is over.
  void StartGraceTimer();
  // Stops serving. `started`: the daemon served, so every pool's state stays
  // for the next start; otherwise (start-up failed) pools created by this run
  // are removed and re-adopted ones stay.
  void Shutdown(bool started);
  // Admin's Shutdown (any gRPC thread): wakes Run's sigwait with SIGTERM;
  // with `discard` Run then discards every pool (DiscardPools).
  void RequestStop(bool discard);
  // After Shutdown: removes every pool's state and stored memory, so the next
  // start creates them empty (memctl shutdown --discard).
  void DiscardPools();

  // Offers each pending pool the memory systemd's file-descriptor store
  // passed back (startup/systemd.h); what the store had is then this run's.
  void TakeStoredMemory();
  // The one-line state `systemctl status` shows: instance, listeners, pools.
  std::string StatusLine() const;

  const DaemonOptions options_;
  InheritedFds inherited_;  // what systemd passed at start, until taken
  std::string state_dir_;  // the instance's private state directory
  std::unique_ptr<InstanceLock> lock_;
  std::vector<bool> adopted_;  // index-aligned with pools_
  PoolRegistry pools_;
  PoolMemory memory_;          // index-aligned with pools_; outlives the listeners
  std::unique_ptr<DescriptorService> descriptors_;
  PeerTable peers_;
  SessionRegistry sessions_;  // outlives the services and the server
  std::unique_ptr<Metrics> metrics_;  // outlives the services and the server
  std::unique_ptr<ChannelRegistry> channels_;  // outlives the sessions; dies before the pools
  // Bridges to peer daemons (issue 19); stopped after the server, before the channels.
  std::unique_ptr<bridge::Engine> bridge_;
  std::unique_ptr<MemoryService> memory_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<bridge::BridgeService> bridge_service_;
  std::unique_ptr<bridge::BridgeAdminService> bridge_admin_service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<UnixListener>> listeners_;

  Mutex grace_mu_;
  CondVar grace_cv_;
  bool stopping_ ABSL_GUARDED_BY(grace_mu_) = false;
  std::thread grace_thread_;
  bool shut_down_ = false;
  std::atomic<bool> discard_on_stop_{false};  // set by RequestStop, read by Run
  std::string log_level_, log_format_;  // as applied (start-up or the last reload)
};

}  // namespace memd

#endif  // MEMD_SERVER_DAEMON_DAEMON_H_
