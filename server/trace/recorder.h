// Recorder: a bounded recording of buffers' lives in the daemon (issue 27,
// `memctl trace`): who allocated, sent, received, retained and released
// which buffer, when, on which channel, and how deep the channel was then.
// The trace points (trace/trace_points.h) feed it; the Admin service starts
// it and reads it (service/admin_trace.cc).
//
// Off by default. While no recording runs, a trace point costs one relaxed
// atomic load (active()); while one runs, a clock read and an append under
// one mutex. A recording ends by itself when its duration passes or it holds
// max_events (then the hot path is back to the one load); its events stay
// until they are read to the end or the next recording starts.
//
// Ownership: one per daemon process (Daemon()), since the trace points sit in
// sessions and channels that have no path to the Daemon object; tests may
// make their own. Thread-safe: any thread may call any method. Its mutex is
// a leaf: Record runs under the channel registry's and a pool's mutexes and
// calls nothing.
#ifndef MEMD_SERVER_TRACE_RECORDER_H_
#define MEMD_SERVER_TRACE_RECORDER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "memd/shared/mutex.h"
#include "trace/trace_event.h"

namespace memd::trace {

// What a recording keeps (the daemon's Admin handler checks the bounds,
// memd/shared/limits.h, before Start).
struct Options {
  absl::Duration duration;
  uint32_t max_events = 0;
  std::optional<uint32_t> pool_index;  // only this pool's events
  std::string channel;                 // non-empty: only sends, receives and drains on it
};

// A session a recording saw: at its start, or attaching during it.
struct SessionInfo {
  uint64_t session_id = 0;
  pid_t pid = 0;  // 0: not a Unix peer
  uid_t uid = 0;
  std::string process_name;  // /proc/<pid>/comm at attach
  std::string client_name;   // AttachRequest.client_name
};

// A part of a recording, as Read returns it.
struct Snapshot {
  std::vector<Event> events;          // [first, first + limit) of the recording
  uint64_t next = 0;                  // index after the last returned; 0 at the end
  bool running = false;               // still recording
  uint64_t lost_events = 0;           // not kept: the recording was full
  int64_t duration_ns = 0;            // how long it ran (so far)
  std::vector<SessionInfo> sessions;  // every session it saw, by id
  std::vector<std::string> channels;  // names by Event::channel
};

class Recorder {
 public:
  Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // The daemon's one recorder, which the trace points feed.
  static Recorder& Daemon();

  // True while a recording runs (it may have just passed its end, which the
  // next Record notices). One relaxed load: the whole cost of a trace point
  // when no recording runs.
  bool active() const { return active_.load(std::memory_order_relaxed); }

  // Starts recording; `sessions` are the sessions live now. Returns the
  // recording's id (never 0). FAILED_PRECONDITION naming when it ends while
  // another recording runs. Drops the events of an earlier recording.
  absl::StatusOr<uint64_t> Start(const Options& options, std::vector<SessionInfo> sessions);
  // Notes a session that attached (a no-op while no recording runs).
  void NoteSession(SessionInfo session);
  // Adds one event, unless no recording runs, it is filtered out, the
  // recording's time passed or it is full. `channel` is empty outside sends,
  // receives and a drain's releases.
  void Record(Kind kind, uint32_t pool_index, uint64_t session_id, uint64_t handle,
              uint64_t size_bytes, std::string_view channel = {}, uint32_t depth = 0,
              bool moved = false);
  // Events [first, first + limit) of recording `id`, stopping it first when
  // `stop`. Reading the last events of a stopped recording drops them.
  // NOT_FOUND for another id or a recording read to the end already.
  absl::StatusOr<Snapshot> Read(uint64_t id, uint64_t first, uint32_t limit, bool stop);

 private:
  // Ends the recording. REQUIRES: mu_ held.
  void StopLocked(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::atomic<bool> active_{false};
  Mutex mu_;
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;  // the current or last recording; 0: none
  bool readable_ ABSL_GUARDED_BY(mu_) = false;  // its events are still here
  Options options_ ABSL_GUARDED_BY(mu_);
  int64_t start_ns_ ABSL_GUARDED_BY(mu_) = 0;  // CLOCK_MONOTONIC
  int64_t end_ns_ ABSL_GUARDED_BY(mu_) = 0;    // when it ends or ended
  uint64_t lost_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, SessionInfo> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> channels_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint32_t, std::less<>> channel_index_ ABSL_GUARDED_BY(mu_);
};

// CLOCK_MONOTONIC in nanoseconds: the recording's clock.
int64_t MonotonicNs();

}  // namespace memd::trace

#endif  // MEMD_SERVER_TRACE_RECORDER_H_
