// One step of a buffer's life as a recording keeps it (trace/recorder.h);
// the wire form is admin.proto's TraceEvent. 48 bytes (the cost per event
// memd/shared/limits.h's kMaxTraceEvents counts with).
#ifndef MEMD_SERVER_TRACE_TRACE_EVENT_H_
#define MEMD_SERVER_TRACE_TRACE_EVENT_H_

#include <cstdint>

namespace memd::trace {

enum class Kind : uint8_t {
  kAllocate,  // a session got a new buffer (allocate, allocate_batch, an arena block registered)
  kRetain,    // a session took one more reference by handle
  kSend,      // a message holding the buffer went into a channel's queue
  kReceive,   // a receiver took the message: the references are its session's now
  kRelease,   // a session let go of one reference (release, release_batch, release_first),
              // or the daemon (session 0) one a drained channel message held
};

struct Event {
  int64_t time_ns;      // CLOCK_MONOTONIC (ns); Read makes it relative to the start
  uint64_t session_id;  // the session that acted; 0: the daemon itself (a bridge, a drain)
  uint64_t handle;      // 0: a message without buffers
  uint64_t size_bytes;  // allocate, retain, receive; 0 where unknown
  uint32_t pool_index;
  uint32_t channel;     // send, receive, a drain's release: index of the channel's name in
                        // the recording
  uint32_t depth;       // send, receive: messages queued in the channel after the event
  Kind kind;
  bool moved;           // send: the sender's reference went into the message (else shared)
};
static_assert(sizeof(Event) == 48, "limits.h's kMaxTraceEvents counts 48 bytes per event");

}  // namespace memd::trace

#endif  // MEMD_SERVER_TRACE_TRACE_EVENT_H_
