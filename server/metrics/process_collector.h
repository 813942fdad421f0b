// ProcessCollector: the standard Prometheus process_* metrics for memd,
// read from /proc/self at scrape time (prometheus-cpp has no process
// collector): CPU seconds, resident and virtual memory, open and maximum
// file descriptors, threads, start time.
//
// Owned by Metrics; Collect runs on the endpoint's worker threads and keeps
// no state, so it is thread-safe.
#ifndef MEMD_SERVER_METRICS_PROCESS_COLLECTOR_H_
#define MEMD_SERVER_METRICS_PROCESS_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace memd {

class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace memd

#endif  // MEMD_SERVER_METRICS_PROCESS_COLLECTOR_H_
