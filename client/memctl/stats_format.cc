#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "memctl/format.h"
#include "memd/shared/size.h"

namespace memd {

nlohmann::ordered_json StatsDocument(const v1::GetStatsResponse& stats) {
  nlohmann::ordered_json pools = nlohmann::ordered_json::array();
  for (const v1::PoolStats& p : stats.pools()) {
    nlohmann::ordered_json channels = nlohmann::ordered_json::array();
    for (const v1::ChannelStats& c : p.channels()) {
      channels.push_back({{"name", c.name()},
                          {"depth", c.depth()},
                          {"capacity", c.capacity()},
                          {"sent", c.sent()},
                          {"received", c.received()},
                          {"waiting_senders", c.waiting_senders()},
                          {"waiting_receivers", c.waiting_receivers()},
                          {"send_waits", c.send_waits()},
                          {"dropped", c.dropped()},
                          {"send_timeouts", c.send_timeouts()},
                          {"drained", c.drained()}});
    }
    pools.push_back({
        {"name", p.name()},
        {"shm_name", p.shm_name()},
        {"size_bytes", p.size_bytes()},
        {"used_bytes", p.used_bytes()},
        {"free_bytes", p.free_bytes()},
        {"largest_free_bytes", p.largest_free_bytes()},
        {"live_buffers", p.live_buffers()},
        {"sessions", p.sessions()},
        {"alignment", p.alignment_bytes()},
        {"max_alloc_bytes", p.max_alloc_bytes()},
        {"allocs", p.allocs()},
        {"frees", p.frees()},
        {"failed_allocs", p.failed_allocs()},
        {"peak_used_bytes", p.peak_used_bytes()},
        {"unclaimed_references", p.unclaimed_references()},
        {"quarantined_slots", p.quarantined_slots()},
        {"arena_reserved_bytes", p.arena_reserved_bytes()},
        {"arena_in_use_bytes", p.arena_in_use_bytes()},
        {"arena_local_allocs", p.arena_local_allocs()},
        {"arena_chunks_taken", p.arena_chunks_taken()},
        {"channels", channels},
        {"channels_total", p.channels_total()},
        {"channels_omitted", p.channels_omitted()},
    });
  }
  return nlohmann::ordered_json{
      {"instance", stats.instance()},
      {"version", stats.version()},
      {"uptime_seconds", stats.uptime_seconds()},
      {"cpu_user_us", stats.cpu_user_us()},
      {"cpu_system_us", stats.cpu_system_us()},
      {"pools", pools},
  };
}

std::string StatsTable(const v1::GetStatsResponse& stats, bool wide) {
  std::string out = absl::StrFormat("instance %s, up %us, CPU %.2fs user %.2fs system\n",
                                    stats.instance(), stats.uptime_seconds(),
                                    static_cast<double>(stats.cpu_user_us()) / 1e6,
                                    static_cast<double>(stats.cpu_system_us()) / 1e6);
  constexpr const char* kRow = "%-16s %10s %10s %10s %12s %8s %8s %10s %10s %8s %10s";
  // -o wide: the configuration and restart columns too.
  constexpr const char* kWide = " %9s %10s %10s %9s %s";
  out += absl::StrFormat(kRow, "POOL", "SIZE", "USED", "FREE", "LARGEST", "BUFFERS", "SESSIONS",
                         "ALLOCS", "FREES", "FAILED", "PEAK");
  if (wide) {
    out += absl::StrFormat(kWide, "ALIGN", "MAX ALLOC", "UNCLAIMED", "CHANNELS", "MEMFD");
  }
  out += "\n";
  for (const v1::PoolStats& p : stats.pools()) {
    out += absl::StrFormat(kRow, p.name(), FormatSize(p.size_bytes()), FormatSize(p.used_bytes()),
                           FormatSize(p.free_bytes()), FormatSize(p.largest_free_bytes()),
                           absl::StrCat(p.live_buffers()), absl::StrCat(p.sessions()),
                           absl::StrCat(p.allocs()), absl::StrCat(p.frees()),
                           absl::StrCat(p.failed_allocs()), FormatSize(p.peak_used_bytes()));
    if (wide) {
      out += absl::StrFormat(kWide, absl::StrCat(p.alignment_bytes()),
                             FormatSize(p.max_alloc_bytes()), absl::StrCat(p.unclaimed_references()),
                             absl::StrCat(p.channels_total()), p.shm_name());
    }
    out += "\n";
  }
  // Channels. Each header says what it counts (docs/operations.md): messages
  // queued now out of the capacity, messages sent and received since the
  // channel was made, sends and receives waiting now (backpressure, idle
  // consumers), sends that had to wait for room (backpressure, not loss), and
  // sends that never reached the channel (refused full at once, or waiting
  // when their session ended; waits that ended at their timeout are JSON's
  // send_timeouts, not drops).
  constexpr const char* kChannelRow = "  %-16s %-16s %15s %9s %13s %15s %17s %17s %13s\n";
  bool header = false;
  for (const v1::PoolStats& p : stats.pools()) {
    for (const v1::ChannelStats& c : p.channels()) {
      if (!header) {
        out += absl::StrFormat(kChannelRow, "POOL", "CHANNEL", "QUEUED/CAPACITY", "MSGS SENT",
                               "MSGS RECEIVED", "SENDERS WAITING", "RECEIVERS WAITING",
                               "SENDS THAT WAITED", "SENDS DROPPED");
        header = true;
      }
      out += absl::StrFormat(kChannelRow, p.name(), c.name(),
                             absl::StrFormat("%u/%u", c.depth(), c.capacity()),
                             absl::StrCat(c.sent()), absl::StrCat(c.received()),
                             absl::StrCat(c.waiting_senders()), absl::StrCat(c.waiting_receivers()),
                             absl::StrCat(c.send_waits()), absl::StrCat(c.dropped()));
    }
    if (p.channels_omitted() > 0) {
      out += absl::StrFormat("  (pool %s: %u more channels not shown; the busiest %u of %u are)\n",
                             p.name(), p.channels_omitted(), p.channels_size(), p.channels_total());
    }
  }
  return out;
}

}  // namespace memd
