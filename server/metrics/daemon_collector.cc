#include "metrics/daemon_collector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace memd {

std::vector<prometheus::MetricFamily> DaemonCollector::Collect() const {
  using prometheus::MetricType;
  struct Column {
    const char* name;
    const char* help;
    MetricType type;
    uint64_t ChannelStats::*field;
  };
  static constexpr Column kColumns[] = {
      {"memd_channel_depth", "Messages queued in the channel now.", MetricType::Gauge, &ChannelStats::depth},
      {"memd_channel_capacity", "Most messages the channel holds.", MetricType::Gauge, &ChannelStats::capacity},
      {"memd_channel_waiting_senders", "Sends waiting for room now.", MetricType::Gauge, &ChannelStats::waiting_senders},
      {"memd_channel_waiting_receivers", "Receives waiting for a message now.", MetricType::Gauge, &ChannelStats::waiting_receivers},
      {"memd_channel_sent_total", "Messages sent into the channel since it was made.", MetricType::Counter, &ChannelStats::sent},
      {"memd_channel_received_total", "Messages received from the channel since it was made.", MetricType::Counter, &ChannelStats::received},
      {"memd_channel_send_waits_total", "Sends that had to wait for room since the channel was made.", MetricType::Counter, &ChannelStats::send_waits},
      {"memd_channel_dropped_total", "Frames that never went in because the channel was full and that their sender cannot send again: refused at once (a sender that does not wait, e.g. a leaky memdsink), or waiting when the sender's session ended; since the channel was made.", MetricType::Counter, &ChannelStats::dropped},
      {"memd_channel_send_timeouts_total", "Waits for room that ended at the send's timeout since the channel was made: backpressure, not loss (a sender waiting in slices, as memdsink does every 100 ms, sends the frame again).", MetricType::Counter, &ChannelStats::send_timeouts},
      {"memd_channel_drained_total", "Messages an operator released from the channel (memctl channel drain) since it was made.", MetricType::Counter, &ChannelStats::drained},
  };
  std::vector<prometheus::MetricFamily> families;
  for (const Column& column : kColumns) families.push_back({column.name, column.help, column.type, {}});
  prometheus::MetricFamily count{"memd_channels", "Channels of the pool (all, exported or not).",
                                 MetricType::Gauge, {}};
  for (Pool* pool : pools_.pools()) {
    std::vector<ChannelStats> stats = channels_.Stats(*pool);
    prometheus::ClientMetric total;
    total.label = {{"pool", pool->name()}};
    total.gauge.value = static_cast<double>(stats.size());
    count.metric.push_back(std::move(total));
    if (stats.size() > kMaxChannelsPerPool) {
      std::partial_sort(stats.begin(), stats.begin() + kMaxChannelsPerPool, stats.end(),
                        [](const ChannelStats& a, const ChannelStats& b) { return a.depth > b.depth; });
      stats.resize(kMaxChannelsPerPool);
    }
    for (const ChannelStats& c : stats) {
      for (size_t i = 0; i < std::size(kColumns); ++i) {
        prometheus::ClientMetric metric;
        metric.label = {{"pool", pool->name()}, {"channel", c.name}};
        auto value = static_cast<double>(c.*kColumns[i].field);
        if (kColumns[i].type == MetricType::Counter) {
          metric.counter.value = value;
        } else {
          metric.gauge.value = value;
        }
        families[i].metric.push_back(std::move(metric));
      }
    }
  }
  families.push_back(std::move(count));
  prometheus::ClientMetric queued;
  queued.gauge.value = static_cast<double>(channels_.queued_message_bytes());
  static const std::string kQueuedHelp = absl::StrCat(
      "Charges of queued and waiting messages, all pools (bytes; the daemon-wide bound is ",
      ChannelRegistry::kMaxQueuedMessageBytes, ").");
  families.push_back({"memd_channel_queued_message_bytes", kQueuedHelp, MetricType::Gauge, {queued}});
  prometheus::ClientMetric lanes;
  lanes.gauge.value = open_lanes_();
  families.push_back({"memd_lanes", "Sessions with a lane (shared-memory transport) now.",
                      MetricType::Gauge, {lanes}});
  return families;
}

}  // namespace memd
