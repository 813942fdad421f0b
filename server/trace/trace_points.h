// The trace points of the daemon: the one small interface through which
// every path that changes who holds a buffer reports it (sessions,
// server/service/session_dispatch.cc and session_arena.cc; channels,
// server/channel/channel_registry.cc and channel_admin.cc; a later per-frame fast path that
// bypasses the daemon's requests feeds the same functions when it settles).
//
// Each point fires its USDT probe `memd:<name>` (a nop until bpftrace or perf
// attaches; the arguments are listed in docs/operations.md) and, while a
// recording runs, adds an event to Recorder::Daemon(). When no recording
// runs, a point costs the probe's nop and one relaxed atomic load.
//
// Thread-safe; callable under the channel registry's and a pool's mutexes
// (the recorder's mutex is a leaf).
#ifndef MEMD_SERVER_TRACE_TRACE_POINTS_H_
#define MEMD_SERVER_TRACE_TRACE_POINTS_H_

#include <sys/sdt.h>

#include <cstdint>
#include <string>

#include "trace/recorder.h"

namespace memd::trace {

// `session_id` got a new buffer `handle` of `size_bytes` in pool `pool_index`.
inline void Allocated(uint32_t pool_index, uint64_t session_id, uint64_t handle,
                      uint64_t size_bytes) {
  DTRACE_PROBE4(memd, allocate, pool_index, session_id, handle, size_bytes);
  Recorder& r = Recorder::Daemon();
  if (r.active()) r.Record(Kind::kAllocate, pool_index, session_id, handle, size_bytes);
}

// `session_id` took one more reference to `handle`.
inline void Retained(uint32_t pool_index, uint64_t session_id, uint64_t handle,
                     uint64_t size_bytes) {
  DTRACE_PROBE4(memd, retain, pool_index, session_id, handle, size_bytes);
  Recorder& r = Recorder::Daemon();
  if (r.active()) r.Record(Kind::kRetain, pool_index, session_id, handle, size_bytes);
}

// A message of `session_id` holding `handle` went into `channel`'s queue,
// which holds `depth` messages now. `moved`: the sender gave its reference.
inline void Sent(uint32_t pool_index, uint64_t session_id, const std::string& channel,
                 uint64_t handle, uint32_t depth, bool moved) {
  DTRACE_PROBE6(memd, send, pool_index, session_id, channel.c_str(), handle, depth, moved);
  Recorder& r = Recorder::Daemon();
  if (r.active()) r.Record(Kind::kSend, pool_index, session_id, handle, 0, channel, depth, moved);
}

// `session_id` received `handle` (`size_bytes`) from `channel`, which holds
// `depth` messages now.
inline void Received(uint32_t pool_index, uint64_t session_id, const std::string& channel,
                     uint64_t handle, uint64_t size_bytes, uint32_t depth) {
  DTRACE_PROBE6(memd, receive, pool_index, session_id, channel.c_str(), handle, size_bytes,
                depth);
  Recorder& r = Recorder::Daemon();
  if (r.active()) {
    r.Record(Kind::kReceive, pool_index, session_id, handle, size_bytes, channel, depth);
  }
}

// `session_id` let go of one reference to `handle`. Session 0 with a
// `channel`: the daemon released a reference a message queued in `channel`
// held (an operator's `memctl channel drain`).
inline void Released(uint32_t pool_index, uint64_t session_id, uint64_t handle,
                     const std::string& channel = {}) {
  DTRACE_PROBE3(memd, release, pool_index, session_id, handle);
  Recorder& r = Recorder::Daemon();
  if (r.active()) r.Record(Kind::kRelease, pool_index, session_id, handle, 0, channel);
}

}  // namespace memd::trace

#endif  // MEMD_SERVER_TRACE_TRACE_POINTS_H_
