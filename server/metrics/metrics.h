// Metrics: memd's Prometheus metrics (prometheus-cpp), served over HTTP at
// /metrics on --metrics-listen.
//
//   per pool (read from Pool::Stats at scrape time, so the hot path pays
//   nothing): size, used, free, largest free block, peak used, live buffers,
//   sessions, unclaimed references; allocs, frees, failures by reason
//   per RPC (session operations and admin calls): a latency histogram and
//   error counts by gRPC code
//   per channel, channels per pool, queued message bytes, open lanes
//   (daemon_collector.h, once WatchDaemon ran)
//   process: process_* from /proc/self (process_collector.h), uptime,
//   memd_build_info{version}
//   Method labels are snake_case, session operations and admin calls alike.
//
// Ownership: one per Daemon, created before the services (which record into
// it) and destroyed after the gRPC server. Thread-safe: ObserveRpc may be
// called from any gRPC thread; prometheus-cpp metrics are atomic.
#ifndef MEMD_SERVER_METRICS_METRICS_H_
#define MEMD_SERVER_METRICS_METRICS_H_

#include <array>
#include <vector>
#include <chrono>
#include <memory>
#include <string>

#include <functional>

#include "absl/status/status.h"
#include "channel/channel_registry.h"
#include "pool/pool_registry.h"

namespace prometheus {
class Exposer;
class Registry;
class Collectable;
class Histogram;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace memd {

// Every RPC memd times; session operations first.
enum class Rpc {
  kAttach, kAllocate, kRealloc, kRetain, kRelease, kReclaim, kAllocateBatch, kReleaseBatch,
  kSend, kReceive, kQuery,
  kGetStats, kCheckPools, kListSessions, kListBuffers, kSetMaxAlloc, kEndSession,
  kShutdown, kStartTrace, kReadTrace, kDrainChannel, kDeleteChannel,
};
inline constexpr int kRpcCount = 22;
const char* RpcName(Rpc rpc);  // the `method` label: "allocate", "get_stats", ...

class Metrics {
 public:
  explicit Metrics(const PoolRegistry& pools);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves /metrics on "host:port". UNAVAILABLE naming the address when it
  // cannot listen there.
  // Stops the /metrics endpoint and joins its threads: after it, no scrape
  // reads the daemon's parts (the Daemon calls it before they go).
  void StopServing();
  absl::Status Serve(const std::string& address);

  // Adds the channel and lane metrics. REQUIRES: `channels` and what
  // `open_lanes` reads outlive this object. Call once, before clients come.
  void WatchDaemon(const ChannelRegistry& channels, std::function<int()> open_lanes);
  // Adds another part's collector (the bridges: bridge/bridge_collector.h).
  // REQUIRES: what it reads outlives this object's endpoint.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);

  // Records one finished RPC: its latency and, unless OK, its status code.
  void ObserveRpc(Rpc rpc, std::chrono::steady_clock::duration latency, absl::StatusCode code);

  // The text exposition of everything, as a scrape would return it.
  std::string Render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;           // RPC metrics
  const PoolRegistry& pools_;
  std::shared_ptr<prometheus::Collectable> pools_collector_;  // pools, uptime
  std::shared_ptr<prometheus::Collectable> process_collector_;
  std::shared_ptr<prometheus::Collectable> daemon_collector_;  // null until WatchDaemon
  std::vector<std::shared_ptr<prometheus::Collectable>> more_;  // AddCollectable
  prometheus::Family<prometheus::Counter>* errors_;
  std::array<prometheus::Histogram*, kRpcCount> latency_{};
  std::unique_ptr<prometheus::Exposer> exposer_;
};

// Times a scope and records it as one RPC when it ends.
class RpcTimer {
 public:
  RpcTimer(Metrics* metrics, Rpc rpc)
      : metrics_(metrics), rpc_(rpc), start_(std::chrono::steady_clock::now()) {}
  ~RpcTimer() {
    if (metrics_ != nullptr) {
      metrics_->ObserveRpc(rpc_, std::chrono::steady_clock::now() - start_, code_);
    }
  }
  void set_code(absl::StatusCode code) { code_ = code; }

 private:
  Metrics* metrics_;
  Rpc rpc_;
  std::chrono::steady_clock::time_point start_;
  absl::StatusCode code_ = absl::StatusCode::kOk;
};

}  // namespace memd

#endif  // MEMD_SERVER_METRICS_METRICS_H_
