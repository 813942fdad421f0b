// libmemd's USDT probes (`libmemd:<name>`, <sys/sdt.h>): where this process's
// buffers change hands, so bpftrace or perf can follow them without memctl
// (the daemon's side: server/trace/trace_points.h; the list with arguments:
// docs/operations.md). A probe is a nop instruction until a tracer attaches.
// Private to libmemd; any thread.
#ifndef MEMD_CLIENT_PROBES_H_
#define MEMD_CLIENT_PROBES_H_

#include <sys/sdt.h>

#include <cstdint>
#include <string>
#include <vector>

namespace memd::probes {

// The daemon granted a buffer (allocate, allocate_batch) or another reference (retain).
inline void Allocated(uint64_t handle, uint64_t size_bytes) {
  DTRACE_PROBE2(libmemd, allocate, handle, size_bytes);
}
inline void Retained(uint64_t handle, uint64_t size_bytes) {
  DTRACE_PROBE2(libmemd, retain, handle, size_bytes);
}
// A send to `channel` was answered OK (or, for a post, handed to the daemon).
inline void Sent(const std::string& channel, const std::vector<uint64_t>& handles) {
  DTRACE_PROBE3(libmemd, send, channel.c_str(), handles.size(),
                handles.empty() ? uint64_t{0} : handles.front());
}
// A message from `channel` arrived with `count` buffers, the first `first_handle`.
inline void Received(const std::string& channel, size_t count, uint64_t first_handle) {
  DTRACE_PROBE3(libmemd, receive, channel.c_str(), count, first_handle);
}
// This process let go of its reference to `handle` (now, or deferred).
inline void Released(uint64_t handle) { DTRACE_PROBE1(libmemd, release, handle); }

// The C API served `size_bytes` at `ptr` from the session's arena, without
// the daemon (it sees the block only once it is sent or asked for a handle),
// and took it back.
inline void ArenaAllocated(const void* ptr, uint64_t size_bytes) {
  DTRACE_PROBE2(libmemd, arena_allocate, ptr, size_bytes);
}
inline void ArenaReleased(const void* ptr) { DTRACE_PROBE1(libmemd, arena_release, ptr); }

}  // namespace memd::probes

#endif  // MEMD_CLIENT_PROBES_H_
