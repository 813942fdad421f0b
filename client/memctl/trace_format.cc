// TraceDocument: a recording of buffers' lives (Admin ReadTrace) as the
// Trace Event Format JSON that Perfetto (ui.perfetto.dev) and chrome://tracing
// open. What it shows (docs/operations.md walks through it):
//   - a process track per client process (its pid and name), a thread per
//     session (tid = session id), with a short slice per operation
//     ("allocate", "send raw", "receive raw", "retain", "release"); an
//     operator's drain releases on the daemon's track ("drain raw");
//   - "buffer 0x..." async slices in each process: from the moment its
//     session got a reference (allocate, retain, receive) until it let it go
//     (release, or a send that moved it);
//   - flow arrows ("frame") linking a buffer's send to its receive, and on
//     through a process that forwards it (its next send), producer to consumer;
//   - in the daemon's track ("memd"), each channel's depth as a counter and
//     "queued in POOL/CHANNEL" slices for the time a buffer waited in it.
// Times are microseconds since the recording started.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "memctl/memctl.h"

namespace memd {
namespace {

using Json = nlohmann::ordered_json;
using v1::TraceEvent;

constexpr int64_t kSliceNs = 1000;  // an operation's slice: 1 µs, or less to the next one

double Micros(int64_t ns) { return static_cast<double>(ns) / 1000.0; }
std::string Hex(uint64_t handle) { return absl::StrFormat("0x%x", handle); }
bool IsChannelEvent(const TraceEvent& e) {
  return e.kind() == TraceEvent::SEND || e.kind() == TraceEvent::RECEIVE;
}
// The daemon released a queued message's reference: `memctl channel drain`.
bool IsDrain(const TraceEvent& e) {
  return e.kind() == TraceEvent::RELEASE && e.session_id() == 0;
}

class Builder {
 public:
  Builder(const v1::ReadTraceResponse& trace, std::vector<const TraceEvent*> events)
      : trace_(trace), events_(std::move(events)) {
    for (const v1::TraceSession& s : trace.sessions()) sessions_[s.session_id()] = &s;
  }

  Json Build() {
    PlaceSlices();
    Metadata();
    for (size_t i = 0; i < events_.size(); ++i) {
      Slice(i);
      Hold(i);
      Queue(i);
    }
    CloseOpen();
    Flows();
    Json doc;
    doc["traceEvents"] = std::move(out_);
    doc["displayTimeUnit"] = "ns";
    doc["otherData"] = {{"producer", "memctl trace"},
                        {"duration_ms", trace_.duration_ns() / 1'000'000},
                        {"events", trace_.events_size()},
                        {"lost_events", trace_.lost_events()}};
    return doc;
  }

 private:
  const TraceEvent& E(size_t i) const { return *events_[i]; }
  int64_t Pid(uint64_t session_id) const {
    auto it = sessions_.find(session_id);
    return it != sessions_.end() && it->second->pid() > 0 ? it->second->pid()
                                                          : trace_.daemon_pid();
  }
  std::string Pool(const TraceEvent& e) const {
    return static_cast<int>(e.pool_index()) < trace_.pools_size() ? trace_.pools(e.pool_index())
                                                                  : "?";
  }
  std::string Channel(const TraceEvent& e) const {
    return static_cast<int>(e.channel_index()) < trace_.channels_size()
               ? trace_.channels(e.channel_index())
               : "?";
  }

  // Each session's operations in time order, at distinct times, each slice
  // ending before the next begins (a thread's slices must nest in Perfetto).
  void PlaceSlices() {
    ts_.resize(events_.size());
    dur_.resize(events_.size());
    std::map<uint64_t, std::vector<size_t>> by_session;
    for (size_t i = 0; i < events_.size(); ++i) by_session[E(i).session_id()].push_back(i);
    for (auto& [session, indices] : by_session) {
      int64_t prev = -1;
      for (size_t i : indices) {
        ts_[i] = std::max<int64_t>(static_cast<int64_t>(E(i).time_ns()), prev + 1);
        prev = ts_[i];
      }
      for (size_t k = 0; k < indices.size(); ++k) {
        int64_t next = k + 1 < indices.size() ? ts_[indices[k + 1]] : INT64_MAX;
        dur_[indices[k]] = std::min(kSliceNs, next - ts_[indices[k]]);
      }
    }
  }

  void Metadata() {
    const int64_t daemon = trace_.daemon_pid();
    out_.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", daemon}, {"tid", 0},
                    {"args", {{"name", "memd"}}}});
    out_.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", daemon}, {"tid", 0},
                    {"args", {{"name", "channels"}}}});
    std::set<int64_t> named;
    for (const v1::TraceSession& s : trace_.sessions()) {
      const int64_t pid = Pid(s.session_id());
      if (pid != daemon && named.insert(pid).second) {
        out_.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"tid", 0},
                        {"args", {{"name", s.process_name().empty() ? "?" : s.process_name()}}}});
      }
      std::string name = absl::StrFormat("session %u", s.session_id());
      if (!s.client_name().empty()) name += " (" + s.client_name() + ")";
      out_.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", pid},
                      {"tid", s.session_id()}, {"args", {{"name", name}}}});
    }
  }

  void Slice(size_t i) {
    const TraceEvent& e = E(i);
    std::string name;
    switch (e.kind()) {
      case TraceEvent::ALLOCATE: name = "allocate"; break;
      case TraceEvent::RETAIN: name = "retain"; break;
      case TraceEvent::SEND: name = "send " + Channel(e); break;
      case TraceEvent::RECEIVE: name = "receive " + Channel(e); break;
      case TraceEvent::RELEASE: name = IsDrain(e) ? "drain " + Channel(e) : "release"; break;
      default: name = "?"; break;
    }
    Json args = {{"handle", Hex(e.handle())}, {"pool", Pool(e)}};
    if (e.size_bytes() > 0) args["size_bytes"] = e.size_bytes();
    if (IsChannelEvent(e)) {
      args["channel"] = Channel(e);
      args["depth"] = e.depth();
    }
    if (IsDrain(e)) args["channel"] = Channel(e);
    if (e.kind() == TraceEvent::SEND) args["moved"] = e.moved();
    out_.push_back({{"name", name}, {"cat", "memd"}, {"ph", "X"}, {"pid", Pid(e.session_id())},
                    {"tid", e.session_id()}, {"ts", Micros(ts_[i])}, {"dur", Micros(dur_[i])},
                    {"args", std::move(args)}});
  }

  // "buffer 0x..." from a session's reference's start to its end.
  void Hold(size_t i) {
    const TraceEvent& e = E(i);
    if (e.handle() == 0) return;
    auto key = std::make_tuple(e.session_id(), e.pool_index(), e.handle());
    const bool starts = e.kind() == TraceEvent::ALLOCATE || e.kind() == TraceEvent::RETAIN ||
                        e.kind() == TraceEvent::RECEIVE;
    const bool ends = e.kind() == TraceEvent::RELEASE ||
                      (e.kind() == TraceEvent::SEND && e.moved());
    if (starts) {
      const uint64_t id = next_id_++;
      holds_[key].push_back(id);
      Async("b", "hold", "buffer " + Hex(e.handle()), id, Pid(e.session_id()),
            static_cast<int64_t>(e.time_ns()), {{"size_bytes", e.size_bytes()}});
    } else if (ends) {
      auto it = holds_.find(key);
      if (it == holds_.end() || it->second.empty()) return;  // held before the recording
      Async("e", "hold", "buffer " + Hex(e.handle()), it->second.back(), Pid(e.session_id()),
            static_cast<int64_t>(e.time_ns()), {});
      it->second.pop_back();
    }
  }

  // "queued in POOL/CHANNEL" from a buffer's send to its receive or drain,
  // and the channel's depth.
  void Queue(size_t i) {
    const TraceEvent& e = E(i);
    if (!IsChannelEvent(e) && !IsDrain(e)) return;
    const std::string channel = Pool(e) + "/" + Channel(e);
    const int64_t daemon = trace_.daemon_pid();
    if (IsChannelEvent(e)) {
      out_.push_back({{"name", "depth " + channel}, {"ph", "C"}, {"pid", daemon},
                      {"ts", Micros(static_cast<int64_t>(e.time_ns()))},
                      {"args", {{"messages", e.depth()}}}});
    }
    if (e.handle() == 0) return;
    auto key = std::make_tuple(e.pool_index(), e.channel_index(), e.handle());
    if (e.kind() == TraceEvent::SEND) {
      const uint64_t id = next_id_++;
      queued_[key].push_back(id);
      Async("b", "queue", "queued in " + channel, id, daemon, static_cast<int64_t>(e.time_ns()),
            {{"handle", Hex(e.handle())}});
    } else if (auto it = queued_.find(key); it != queued_.end() && !it->second.empty()) {
      Async("e", "queue", "queued in " + channel, it->second.front(), daemon,
            static_cast<int64_t>(e.time_ns()), {});
      it->second.pop_front();
    }
  }

  // What is still held or queued when the recording ends ends there.
  void CloseOpen() {
    const int64_t end = static_cast<int64_t>(trace_.duration_ns());
    for (const auto& [key, ids] : holds_) {
      const auto& [session, pool, handle] = key;
      for (uint64_t id : ids) {
        Async("e", "hold", "buffer " + Hex(handle), id, Pid(session), end,
              {{"still_held", true}});
      }
    }
    for (const auto& [key, ids] : queued_) {
      const auto& [pool, channel, handle] = key;
      std::string name = "queued in " +
                         (static_cast<int>(pool) < trace_.pools_size() ? trace_.pools(pool) : "?") +
                         "/" + trace_.channels(channel);
      for (uint64_t id : ids) {
        Async("e", "queue", name, id, trace_.daemon_pid(), end, {{"still_queued", true}});
      }
    }
  }

  void Async(const char* ph, const char* cat, const std::string& name, uint64_t id, int64_t pid,
             int64_t ns, Json args) {
    Json event = {{"name", name}, {"cat", cat}, {"ph", ph}, {"id", id}, {"pid", pid},
                  {"tid", 0}, {"ts", Micros(ns)}};
    if (!args.is_null()) event["args"] = std::move(args);
    out_.push_back(std::move(event));
  }

  // A frame's flow: a buffer's send, its receive, and on through each
  // process that sends it on. Each send by a session that did not just
  // receive it (a producer; a buffer sent again after it came back; a
  // second channel) starts a new flow.
  void Flows() {
    struct Chain {
      std::vector<size_t> steps;  // event indices, in time order
    };
    std::map<std::pair<uint32_t, uint64_t>, std::vector<Chain>> chains;  // (pool, handle)
    for (size_t i = 0; i < events_.size(); ++i) {
      const TraceEvent& e = E(i);
      if (!IsChannelEvent(e) || e.handle() == 0) continue;
      std::vector<Chain>& of = chains[{e.pool_index(), e.handle()}];
      Chain* into = nullptr;
      for (Chain& c : of) {
        const TraceEvent& last = E(c.steps.back());
        const bool continues =
            e.kind() == TraceEvent::SEND
                ? last.kind() == TraceEvent::RECEIVE && last.session_id() == e.session_id()
                : last.kind() == TraceEvent::SEND && last.channel_index() == e.channel_index();
        if (continues) {
          into = &c;
          break;
        }
      }
      if (into == nullptr) into = &of.emplace_back();
      into->steps.push_back(i);
    }
    uint64_t flow_id = 0;
    for (const auto& [key, list] : chains) {
      for (const Chain& c : list) {
        if (c.steps.size() < 2) continue;
        ++flow_id;
        for (size_t k = 0; k < c.steps.size(); ++k) {
          const size_t i = c.steps[k];
          const char* ph = k == 0 ? "s" : k + 1 == c.steps.size() ? "f" : "t";
          Json flow = {{"name", "frame"}, {"cat", "frame"}, {"ph", ph}, {"id", flow_id},
                       {"pid", Pid(E(i).session_id())}, {"tid", E(i).session_id()},
                       {"ts", Micros(ts_[i])}};
          if (k + 1 == c.steps.size()) flow["bp"] = "e";  // binds to the receive's slice
          out_.push_back(std::move(flow));
        }
      }
    }
  }

  const v1::ReadTraceResponse& trace_;
  const std::vector<const TraceEvent*> events_;  // in time order
  std::map<uint64_t, const v1::TraceSession*> sessions_;
  std::vector<int64_t> ts_, dur_;  // each event's slice (ns)
  Json out_ = Json::array();
  uint64_t next_id_ = 1;  // async slices' ids
  // Open "buffer" slices by (session, pool, handle), open "queued" slices
  // by (pool, channel, handle).
  std::map<std::tuple<uint64_t, uint32_t, uint64_t>, std::vector<uint64_t>> holds_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::deque<uint64_t>> queued_;
};

}  // namespace

nlohmann::ordered_json TraceDocument(const v1::ReadTraceResponse& trace,
                                     const std::string& channel) {
  std::vector<const TraceEvent*> events;
  for (const TraceEvent& e : trace.events()) events.push_back(&e);
  if (!channel.empty()) {
    // The daemon kept only this channel's sends, receives and drains; the
    // buffers that went through it are the ones to show.
    std::set<std::pair<uint32_t, uint64_t>> through;
    for (const TraceEvent* e : events) {
      if (IsChannelEvent(*e)) through.insert({e->pool_index(), e->handle()});
    }
    std::erase_if(events, [&](const TraceEvent* e) {
      return !IsChannelEvent(*e) && !IsDrain(*e) &&
             !through.contains({e->pool_index(), e->handle()});
    });
  }
  std::stable_sort(events.begin(), events.end(), [](const TraceEvent* a, const TraceEvent* b) {
    return a->time_ns() < b->time_ns();
  });
  return Builder(trace, std::move(events)).Build();
}

}  // namespace memd
