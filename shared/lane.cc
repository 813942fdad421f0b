#include "memd/shared/lane.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "memd/shared/names.h"

namespace memd::lane {

void RingWrite(uint8_t* ring, uint32_t pos, const void* src, uint32_t n) {
  uint32_t at = pos % kRingBytes;
  uint32_t first = n < kRingBytes - at ? n : kRingBytes - at;
  std::memcpy(ring + at, src, first);
  std::memcpy(ring, static_cast<const uint8_t*>(src) + first, n - first);
}

void RingRead(const uint8_t* ring, uint32_t pos, void* dst, uint32_t n) {
  uint32_t at = pos % kRingBytes;
  uint32_t first = n < kRingBytes - at ? n : kRingBytes - at;
  std::memcpy(dst, ring + at, first);
  std::memcpy(static_cast<uint8_t*>(dst) + first, ring, n - first);
}

uint8_t* SubmissionRing(void* object) { return static_cast<uint8_t*>(object) + kHeaderBytes; }

uint8_t* CompletionRing(void* object) {
  return static_cast<uint8_t*>(object) + kHeaderBytes + kRingBytes;
}

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout) {
  timespec ts = absl::ToTimespec(timeout);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::string LaneObjectName(std::string_view instance, uint64_t session_id) {
  return absl::StrCat("/", LaneObjectPrefix(instance), session_id);
}

std::string LaneObjectPrefix(std::string_view instance) {
  return absl::StrCat(InstanceObjectPrefix(instance), "lane.");
}

}  // namespace memd::lane
