#include "handoff_roles.h"

#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "frame_stamp.h"
#include "memd/client.h"
#include "memd/memd.h"

namespace memd::bench {
namespace {

uint64_t CpuNs() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto ns = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1000000000ull + static_cast<uint64_t>(tv.tv_usec) * 1000ull;
  };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

// Says it is ready, sleeps until the parent says go; the CPU clock at go.
uint64_t AwaitStart(Control& control) {
  control.ready.fetch_add(1, std::memory_order_seq_cst);
  while (control.go.load(std::memory_order_seq_cst) == 0) WaitWord(&control.go, 0, 1000);
  return CpuNs();
}

void Finish(Control& control, RoleResult& result, uint64_t cpu_at_start, RoleError error = RoleError::kNone,
            int error_errno = 0) {
  result.cpu_ns = CpuNs() - cpu_at_start;
  result.error = static_cast<int32_t>(error);
  result.error_errno = error_errno;
  control.done.fetch_add(1, std::memory_order_seq_cst);
  WakeWord(&control.done);
}

void Sample(RoleResult& result, uint32_t* samples, uint64_t now, uint64_t stamped) {
  if (result.samples < kMaxSamples) {
    samples[result.samples++] = static_cast<uint32_t>(std::min<uint64_t>(now - stamped, UINT32_MAX));
  }
}

}  // namespace

void WaitWord(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms) {
  timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &timeout, nullptr, 0);
}

void WakeWord(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

void RingProducer(Control& control, FutexRing& ring, RoleResult& result) {
  RingHeader& h = ring.header();
  uint64_t cpu0 = AwaitStart(control);
  uint64_t seq = 0;
  while (control.stop.load(std::memory_order_relaxed) == 0) {
    uint32_t slot = h.free.Pop();
    StampFrame(ring.slot(slot), h.frame_bytes, seq++);
    h.full.Push(slot);
  }
  h.full.Push(kRingEnd);
  result.frames = seq;
  result.last_ns = MonotonicNs();
  Finish(control, result, cpu0);
}

void RingConsumer(Control& control, FutexRing& ring, RoleResult& result, uint32_t* samples) {
  RingHeader& h = ring.header();
  uint64_t cpu0 = AwaitStart(control);
  uint64_t seq = 0;
  while (true) {
    uint32_t slot = h.full.Pop();
    if (slot == kRingEnd) break;
    uint64_t now = MonotonicNs();
    uint64_t stamped = CheckStamp(ring.slot(slot), h.frame_bytes, seq);
    if (stamped == 0) return Finish(control, result, cpu0, RoleError::kBadStamp);
    Sample(result, samples, now, stamped);
    h.free.Push(slot);
    result.last_ns = now;
    result.frames = ++seq;
  }
  Finish(control, result, cpu0);
}

void MemdProducer(Control& control, const std::string& channel, size_t frame_bytes, RoleResult& result) {
  if (int rc = memd_init(nullptr, nullptr); rc != 0) {
    uint64_t cpu0 = AwaitStart(control);
    return Finish(control, result, cpu0, RoleError::kInit, rc);
  }
  uint64_t cpu0 = AwaitStart(control);
  uint64_t seq = 0;
  while (control.stop.load(std::memory_order_relaxed) == 0) {
    auto* frame = static_cast<uint8_t*>(memd_malloc(frame_bytes));
    if (frame == nullptr) return Finish(control, result, cpu0, RoleError::kAlloc);
    StampFrame(frame, frame_bytes, seq);
    void* ptrs[1] = {frame};
    if (int rc = memd_channel_send(channel.c_str(), ptrs, 1, nullptr, 0, 30000); rc != 0) {
      return Finish(control, result, cpu0, RoleError::kSend, rc);
    }
    result.frames = ++seq;
  }
  // A message without buffers ends the stream.
  int rc = memd_channel_send(channel.c_str(), nullptr, 0, "end", 3, 30000);
  result.last_ns = MonotonicNs();
  Finish(control, result, cpu0, rc == 0 ? RoleError::kNone : RoleError::kSend, rc);
}

void MemdConsumer(Control& control, const std::string& channel, size_t frame_bytes, RoleResult& result,
                  uint32_t* samples) {
  // The C API creates channels with 16 messages of room; this pair's has
  // kRingSlots, made by a first receive (with a timeout: one of 0 makes
  // nothing) of a session of its own, which stays open, idle and without a
  // lane, until the process ends.
  ConnectOptions options;
  options.client_name = "handoff-bench-setup";
  options.lane = false;
  absl::StatusOr<std::unique_ptr<Client>> setup = Client::Connect(options);
  bool made = setup.ok();
  if (made) {
    absl::StatusOr<ChannelMessage> none = (*setup)->Receive(channel, 1, kRingSlots);  // 0 would create nothing
    made = !none.ok() && absl::IsDeadlineExceeded(none.status());
    if (!made) std::fprintf(stderr, "handoff: creating channel %s: %s\n", channel.c_str(),
                            none.ok() ? "a message came" : std::string(none.status().message()).c_str());
  }
  if (!made || memd_init(nullptr, nullptr) != 0) {
    uint64_t cpu0 = AwaitStart(control);
    return Finish(control, result, cpu0, RoleError::kInit);
  }
  uint64_t cpu0 = AwaitStart(control);
  uint64_t seq = 0;
  while (true) {
    void* ptrs[1];
    size_t sizes[1], count = 0, metadata_size = 0;
    char metadata[16];
    int rc = memd_channel_receive(channel.c_str(), ptrs, sizes, 1, &count, metadata, sizeof(metadata),
                                  &metadata_size, 30000);
    uint64_t now = MonotonicNs();
    if (rc != 0) return Finish(control, result, cpu0, RoleError::kReceive, rc);
    if (count == 0) break;
    auto* frame = static_cast<const uint8_t*>(ptrs[0]);
    if (sizes[0] < frame_bytes) return Finish(control, result, cpu0, RoleError::kBadSize);
    uint64_t stamped = CheckStamp(frame, frame_bytes, seq);
    if (stamped == 0) return Finish(control, result, cpu0, RoleError::kBadStamp);
    Sample(result, samples, now, stamped);
    memd_free(ptrs[0]);
    result.last_ns = now;
    result.frames = ++seq;
  }
  Finish(control, result, cpu0);
}

}  // namespace memd::bench
