// DaemonCollector: metrics of the daemon's moving parts, read at scrape time:
// per channel (depth, capacity, waiting senders and receivers; sent,
// received and waited sends as counters), channels per pool, queued message
// bytes, and open lanes.
//
// A channel's series go with the channel (an idle one is removed after 5 s).
// At most kMaxChannelsPerPool channels per pool are exported, the deepest
// first, so a client making thousands of channels cannot blow up a scrape;
// memd_channels counts them all.
//
// Owned by Metrics; the registry and the lane counter outlive its scrapes
// (Daemon::Shutdown stops the endpoint first: Metrics::StopServing).
// Thread-safe: reads only, through the
// registry's and the pools' own locks.
#ifndef MEMD_SERVER_METRICS_DAEMON_COLLECTOR_H_
#define MEMD_SERVER_METRICS_DAEMON_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <vector>

#include "channel/channel_registry.h"
#include "pool/pool_registry.h"

namespace memd {

class DaemonCollector : public prometheus::Collectable {
 public:
  static constexpr size_t kMaxChannelsPerPool = 256;

  DaemonCollector(const PoolRegistry& pools, const ChannelRegistry& channels,
                  std::function<int()> open_lanes)
      : pools_(pools), channels_(channels), open_lanes_(std::move(open_lanes)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const PoolRegistry& pools_;
  const ChannelRegistry& channels_;
  const std::function<int()> open_lanes_;
};

}  // namespace memd

#endif  // MEMD_SERVER_METRICS_DAEMON_COLLECTOR_H_
