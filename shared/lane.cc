#include "memd/shared/lane.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

uint32_t WriteEntry(uint8_t* ring, uint32_t pos, std::string_view payload) {
  uint32_t length = static_cast<uint32_t>(payload.size());
  RingWrite(ring, pos, &length, 4);
  RingWrite(ring, pos + 4, payload.data(), length);
  return pos + EntryBytes(length);
}

std::optional<uint32_t> ReadEntry(const uint8_t* ring, uint32_t head, uint32_t tail,
                                  std::string* payload, std::string* why) {
  uint32_t available = tail - head;
  if (available > kRingBytes) {
    *why = absl::StrFormat("the tail %u is %u bytes past the head %u; the ring holds %u", tail,
                           available, head, kRingBytes);
    return std::nullopt;
  }
  if (available < 4) {
    *why = absl::StrFormat("%u published bytes: not even a length", available);
    return std::nullopt;
  }
  uint32_t length = 0;
  RingRead(ring, head, &length, 4);
  if (length > kMaxPayloadBytes) {
    *why = absl::StrFormat("an entry of %u bytes; the limit is %u", length, kMaxPayloadBytes);
    return std::nullopt;
  }
  if (EntryBytes(length) > available) {
    *why = absl::StrFormat("an entry of %u bytes, but only %u bytes were published", length,
                           available);
    return std::nullopt;
  }
  // Copied out: the other side could rewrite the ring while it is parsed.
  payload->resize(length);
  RingRead(ring, head + 4, payload->data(), length);
  return head + EntryBytes(length);
}

void RingDoorbell(Header* header) {
  header->doorbell.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(&header->doorbell);
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
