#include "trace/recorder.h"

#include <time.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace memd::trace {

int64_t MonotonicNs() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

Recorder& Recorder::Daemon() {
  static Recorder* const recorder = new Recorder();  // never destroyed: threads may still record
  return *recorder;
}

absl::StatusOr<uint64_t> Recorder::Start(const Options& options,
                                         std::vector<SessionInfo> sessions) {
  MutexLock lock(&mu_);
  const int64_t now = MonotonicNs();
  if (active() && now < end_ns_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "trace %u is running for another %d ms; wait for it or read it with stop", id_,
        (end_ns_ - now) / 1'000'000));
  }
  ++id_;
  readable_ = true;
  options_ = options;
  start_ns_ = now;
  end_ns_ = now + absl::ToInt64Nanoseconds(options.duration);
  lost_ = 0;
  events_.clear();
  events_.shrink_to_fit();
  // Room for the first events up front, so short recordings never grow the
  // vector on the hot path (65,536 events: 3 MiB).
  events_.reserve(std::min<uint32_t>(options.max_events, 65'536));
  sessions_.clear();
  for (SessionInfo& s : sessions) sessions_[s.session_id] = std::move(s);
  channels_.clear();
  channel_index_.clear();
  active_.store(true, std::memory_order_relaxed);
  return id_;
}

void Recorder::NoteSession(SessionInfo session) {
  if (!active()) return;
  MutexLock lock(&mu_);
  if (active()) sessions_[session.session_id] = std::move(session);
}

void Recorder::StopLocked(int64_t now_ns) {
  active_.store(false, std::memory_order_relaxed);
  end_ns_ = std::min(end_ns_, now_ns);
}

void Recorder::Record(Kind kind, uint32_t pool_index, uint64_t session_id, uint64_t handle,
                      uint64_t size_bytes, std::string_view channel, uint32_t depth, bool moved) {
  if (!active()) return;
  const int64_t now = MonotonicNs();
  MutexLock lock(&mu_);
  if (!active()) return;
  if (now >= end_ns_) {
    StopLocked(now);
    return;
  }
  if (options_.pool_index && *options_.pool_index != pool_index) return;
  if (!channel.empty() && !options_.channel.empty() && channel != options_.channel) return;
  if (events_.size() >= options_.max_events) {
    ++lost_;
    StopLocked(now);
    return;
  }
  uint32_t channel_number = 0;
  if (!channel.empty()) {
    auto it = channel_index_.find(channel);
    if (it == channel_index_.end()) {
      it = channel_index_.emplace(std::string(channel), channels_.size()).first;
      channels_.emplace_back(channel);
    }
    channel_number = it->second;
  }
  events_.push_back(Event{now, session_id, handle, size_bytes, pool_index, channel_number, depth,
                          kind, moved});
}

absl::StatusOr<Snapshot> Recorder::Read(uint64_t id, uint64_t first, uint32_t limit, bool stop) {
  MutexLock lock(&mu_);
  if (id == 0 || id != id_ || !readable_) {
    return absl::NotFoundError(absl::StrFormat(
        "no trace %u to read (the last one started is %u%s)", id, id_,
        id == id_ && id != 0 ? " and it was read to the end" : ""));
  }
  const int64_t now = MonotonicNs();
  if (active() && (stop || now >= end_ns_)) StopLocked(now);
  Snapshot out;
  first = std::min<uint64_t>(first, events_.size());
  const uint64_t last = std::min<uint64_t>(events_.size(), first + limit);
  out.events.reserve(last - first);
  for (uint64_t i = first; i < last; ++i) {
    Event e = events_[i];
    e.time_ns -= start_ns_;
    out.events.push_back(e);
  }
  out.running = active();
  out.next = last < events_.size() ? last : 0;
  out.lost_events = lost_;
  out.duration_ns = (out.running ? now : end_ns_) - start_ns_;
  for (const auto& [session_id, info] : sessions_) out.sessions.push_back(info);
  out.channels = channels_;
  if (out.next == 0 && !out.running) {
    readable_ = false;  // read to the end: its memory goes
    events_.clear();
    events_.shrink_to_fit();
  }
  return out;
}

}  // namespace memd::trace
