#include "metrics/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <exception>

#include "absl/strings/str_format.h"
#include "memd/version.h"
#include "metrics/daemon_collector.h"
#include "metrics/process_collector.h"

namespace memd {
namespace {

// The endpoint's HTTP server (civetweb, under prometheus-cpp) serves one
// connection per worker thread and waits for a request's headers up to its
// request timeout (30 s by default): two idle clients holding its default 2
// workers stalled every scrape (issue 13, case 13). With 8 workers and 2 s,
// idle or slow clients delay a scrape by at most 2 s per 8 of them, and a
// scraper's whole request (~200 bytes) comes in far less than 2 s.
constexpr int kMetricsThreads = 8;
constexpr int kMetricsRequestTimeoutMs = 2000;

constexpr const char* kRpcNames[kRpcCount] = {
    "attach",   "allocate",   "realloc",      "retain",      "release",     "reclaim",
    "allocate_batch", "release_batch", "send", "receive", "query",
    "get_stats", "check_pools", "list_sessions", "list_buffers", "set_max_alloc", "end_session",
    "shutdown", "start_trace", "read_trace", "drain_channel", "delete_channel"};

// Reads every pool's counters at scrape time.
class PoolCollector : public prometheus::Collectable {
 public:
  explicit PoolCollector(const PoolRegistry& pools)
      : pools_(pools), started_(std::chrono::steady_clock::now()) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    struct Column {
      const char* name;
      const char* help;
      MetricType type;
      uint64_t PoolStats::*field;
    };
    static constexpr Column kColumns[] = {
        {"memd_pool_size_bytes", "Size of the pool's segment in bytes.", MetricType::Gauge, &PoolStats::size_bytes},
        {"memd_pool_used_bytes", "Bytes in allocated blocks.", MetricType::Gauge, &PoolStats::used_bytes},
        {"memd_pool_free_bytes", "Bytes in free blocks.", MetricType::Gauge, &PoolStats::free_bytes},
        {"memd_pool_largest_free_bytes", "Size of the largest free block in bytes.", MetricType::Gauge, &PoolStats::largest_free_bytes},
        {"memd_pool_peak_used_bytes", "Highest used bytes since the daemon started.", MetricType::Gauge, &PoolStats::peak_used_bytes},
        {"memd_pool_live_buffers", "Live allocations.", MetricType::Gauge, &PoolStats::live_buffers},
        {"memd_pool_sessions", "Sessions attached to the pool.", MetricType::Gauge, &PoolStats::sessions},
        {"memd_pool_unclaimed_references", "References re-adopted after a restart that no client reclaimed yet.", MetricType::Gauge, &PoolStats::unclaimed_references},
        {"memd_pool_arena_reserved_bytes", "Bytes of arena chunks the pool's sessions hold for local allocation, as their clients reported.", MetricType::Gauge, &PoolStats::arena_reserved_bytes},
        {"memd_pool_arena_in_use_bytes", "Bytes of arena chunks in live blocks, as the clients reported.", MetricType::Gauge, &PoolStats::arena_in_use_bytes},
        {"memd_pool_arena_local_allocs", "Allocations the open sessions' arenas served without a round trip, as their clients reported.", MetricType::Gauge, &PoolStats::arena_local_allocs},
        {"memd_pool_arena_chunks_taken_total", "Idle arena chunks the pool took back because an allocation found no room.", MetricType::Counter, &PoolStats::arena_chunks_taken},
        {"memd_pool_quarantined_slots_total", "Buffer records of the previous daemon's state table that adoption could not back and dropped.", MetricType::Counter, &PoolStats::quarantined_slots},
        {"memd_pool_allocs_total", "Successful allocations.", MetricType::Counter, &PoolStats::allocs},
        {"memd_pool_frees_total", "Blocks returned to the free structure.", MetricType::Counter, &PoolStats::frees},
    };
    std::vector<Pool*> pools = pools_.pools();
    std::vector<PoolStats> stats;
    for (Pool* pool : pools) stats.push_back(pool->Stats());
    std::vector<prometheus::MetricFamily> families;
    for (const Column& column : kColumns) {
      prometheus::MetricFamily family{column.name, column.help, column.type, {}};
      for (size_t i = 0; i < stats.size(); ++i) {
        prometheus::ClientMetric metric;
        metric.label = {{"pool", pools[i]->name()}};
        auto value = static_cast<double>(stats[i].*column.field);
        if (column.type == MetricType::Counter) {
          metric.counter.value = value;
        } else {
          metric.gauge.value = value;
        }
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    }
    prometheus::MetricFamily failed{"memd_pool_failed_allocs_total",
                                    "Allocations and reallocs refused, by reason.",
                                    MetricType::Counter, {}};
    for (size_t i = 0; i < stats.size(); ++i) {
      for (int r = 0; r < kFailReasons; ++r) {
        prometheus::ClientMetric metric;
        metric.label = {{"pool", pools[i]->name()},
                        {"reason", FailReasonName(static_cast<FailReason>(r))}};
        metric.counter.value = static_cast<double>(stats[i].failed_by_reason[r]);
        failed.metric.push_back(std::move(metric));
      }
    }
    families.push_back(std::move(failed));
    prometheus::MetricFamily uptime{"memd_uptime_seconds", "Seconds since the daemon started.",
                                    MetricType::Gauge, {}};
    prometheus::ClientMetric up;
    up.gauge.value = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    uptime.metric.push_back(up);
    families.push_back(std::move(uptime));
    return families;
  }

 private:
  const PoolRegistry& pools_;
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace

const char* RpcName(Rpc rpc) { return kRpcNames[static_cast<int>(rpc)]; }

Metrics::Metrics(const PoolRegistry& pools)
    : registry_(std::make_shared<prometheus::Registry>()), pools_(pools) {
  auto& latency = prometheus::BuildHistogram()
                      .Name("memd_rpc_duration_seconds")
                      .Help("Time the daemon spent handling a request, by method.")
                      .Register(*registry_);
  // 5 us .. 1 s: session operations take microseconds, admin listings more.
  const prometheus::Histogram::BucketBoundaries buckets = {
      5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2, 0.1, 1.0};
  for (int i = 0; i < kRpcCount; ++i) {
    latency_[i] = &latency.Add({{"method", kRpcNames[i]}}, buckets);
  }
  errors_ = &prometheus::BuildCounter()
                 .Name("memd_rpc_errors_total")
                 .Help("Requests answered with an error, by method and gRPC status code.")
                 .Register(*registry_);
  // The usual Prometheus idiom: a constant 1 whose label carries the version,
  // so `memd_build_info * on(instance) group_left(version) ...` tags any series.
  prometheus::BuildGauge()
      .Name("memd_build_info")
      .Help("Always 1; the version label is the daemon's version (CMake project VERSION).")
      .Register(*registry_)
      .Add({{"version", MEMD_VERSION_STRING}})
      .Set(1);
  pools_collector_ = std::make_shared<PoolCollector>(pools);
  process_collector_ = std::make_shared<ProcessCollector>();
}

void Metrics::WatchDaemon(const ChannelRegistry& channels, std::function<int()> open_lanes) {
  daemon_collector_ = std::make_shared<DaemonCollector>(pools_, channels, std::move(open_lanes));
  if (exposer_ != nullptr) exposer_->RegisterCollectable(daemon_collector_);
}

void Metrics::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  more_.push_back(collectable);
  if (exposer_ != nullptr) exposer_->RegisterCollectable(collectable);
}

Metrics::~Metrics() = default;

void Metrics::StopServing() { exposer_.reset(); }

absl::Status Metrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", address,
        "num_threads", std::to_string(kMetricsThreads),
        "request_timeout_ms", std::to_string(kMetricsRequestTimeoutMs),
        "enable_keep_alive", "no",  // a connection is one scrape: none stays idle between
    });
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrFormat("cannot serve metrics on %s: %s", address, e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(pools_collector_);
  exposer_->RegisterCollectable(process_collector_);
  if (daemon_collector_ != nullptr) exposer_->RegisterCollectable(daemon_collector_);
  for (const auto& c : more_) exposer_->RegisterCollectable(c);
  return absl::OkStatus();
}

void Metrics::ObserveRpc(Rpc rpc, std::chrono::steady_clock::duration latency,
                         absl::StatusCode code) {
  latency_[static_cast<int>(rpc)]->Observe(std::chrono::duration<double>(latency).count());
  if (code != absl::StatusCode::kOk) {
    errors_->Add({{"method", RpcName(rpc)}, {"code", absl::StatusCodeToString(code)}}).Increment();
  }
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (const auto& collector : {pools_collector_, process_collector_, daemon_collector_}) {
    if (collector == nullptr) continue;
    std::vector<prometheus::MetricFamily> more = collector->Collect();
    families.insert(families.end(), more.begin(), more.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace memd
