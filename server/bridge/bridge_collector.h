// BridgeCollector: the bridges' Prometheus metrics, read at scrape time from
// the Engine (labels bridge, peer, direction, transport):
//   memd_bridge_messages_total, memd_bridge_bytes_total (moved),
//   memd_bridge_in_flight, memd_bridge_retries_total,
//   memd_bridge_link_up (1 up, 0 otherwise),
//   memd_bridge_bytes_per_second (over the last interval, LinkStats::kInterval).
// Owned by Metrics (Metrics::AddCollectable); the Engine outlives its scrapes
// (Daemon::Shutdown stops the endpoint first). Thread-safe.
#ifndef MEMD_SERVER_BRIDGE_BRIDGE_COLLECTOR_H_
#define MEMD_SERVER_BRIDGE_BRIDGE_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "bridge/engine.h"

namespace memd::bridge {

class BridgeCollector : public prometheus::Collectable {
 public:
  explicit BridgeCollector(Engine& engine) : engine_(engine) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Engine& engine_;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_BRIDGE_COLLECTOR_H_
