#include "bridge/bridge_collector.h"

namespace memd::bridge {

std::vector<prometheus::MetricFamily> BridgeCollector::Collect() const {
  using prometheus::MetricType;
  struct Column {
    const char* name;
    const char* help;
    MetricType type;
    double (*value)(const v1::BridgeStats&);
  };
  static constexpr Column kColumns[] = {
      {"memd_bridge_messages_total", "Messages the bridge moved (acknowledged out, enqueued in).",
       MetricType::Counter, [](const v1::BridgeStats& s) { return double(s.messages()); }},
      {"memd_bridge_bytes_total", "Payload bytes the bridge moved.", MetricType::Counter,
       [](const v1::BridgeStats& s) { return double(s.bytes()); }},
      {"memd_bridge_in_flight", "Messages sent and not yet acknowledged (out).", MetricType::Gauge,
       [](const v1::BridgeStats& s) { return double(s.in_flight()); }},
      {"memd_bridge_retries_total", "Reconnects and resent offers (out); repeats dropped (in).",
       MetricType::Counter, [](const v1::BridgeStats& s) { return double(s.retries()); }},
      {"memd_bridge_lost_total",
       "Messages the peer refused for good (B20: larger than its pool), never delivered (out).",
       MetricType::Counter, [](const v1::BridgeStats& s) { return double(s.lost()); }},
      {"memd_bridge_link_up", "1 while the bridge's link to its peer is up, else 0.",
       MetricType::Gauge, [](const v1::BridgeStats& s) { return s.link() == "up" ? 1.0 : 0.0; }},
      {"memd_bridge_link_encrypted",
       "1 when the bridge's payload bytes cross the network encrypted (grpc: TLS; ucx: AES-256-GCM), "
       "0 on a link trusted to carry them in clear (--bridge-link trusted).",
       MetricType::Gauge, [](const v1::BridgeStats& s) { return s.encrypted() ? 1.0 : 0.0; }},
      {"memd_bridge_tag_failures_total",
       "Pulled frames whose AES-256-GCM tag did not match, refused (B41) (in).",
       MetricType::Counter, [](const v1::BridgeStats& s) { return double(s.tag_failures()); }},
      {"memd_bridge_bytes_per_second", "Payload throughput over the last interval (about 5 s).",
       MetricType::Gauge, [](const v1::BridgeStats& s) { return s.bytes_per_second(); }},
  };
  std::vector<prometheus::MetricFamily> families;
  for (const Column& c : kColumns) families.push_back({c.name, c.help, c.type, {}});
  v1::ListBridgesResponse list = engine_.List();
  for (const v1::BridgeStats& s : list.bridges()) {
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      prometheus::ClientMetric metric;
      metric.label = {{"bridge", s.name()},
                      {"peer", s.peer()},
                      {"direction", s.direction()},
                      {"transport", s.transport()}};
      double value = kColumns[i].value(s);
      if (kColumns[i].type == MetricType::Counter) {
        metric.counter.value = value;
      } else {
        metric.gauge.value = value;
      }
      families[i].metric.push_back(std::move(metric));
    }
  }
  return families;
}

}  // namespace memd::bridge
