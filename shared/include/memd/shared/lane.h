// Lane: the shared-memory transport of one session (docs/architecture.md,
// "Lanes"). It carries the same SessionRequest and SessionResponse messages
// as the gRPC session stream, serialized into two byte rings in one POSIX
// shared-memory object the daemon creates for that session alone:
//
//   [Header, kHeaderBytes][submission ring, kRingBytes][completion ring, kRingBytes]
//
// - The submission ring has one producer, the client (under its own lock),
//   and one consumer, the daemon's lane thread.
// - The completion ring has one producer, the daemon (under its own lock),
//   and one consumer, the client (the thread that is reading).
// - An entry is a little-endian uint32 payload length, the payload, and zero
//   padding to 8 bytes; positions are byte counts that wrap at 2^32, and an
//   entry may wrap around the ring's end.
//
// Trust: the whole object is writable by the client, so it holds no allocator
// metadata and the daemon keeps its own copy of every position it publishes.
// What the client writes (sub_tail, comp_head) is checked before use; a lane
// whose values cannot be right ends its session. No locks live here: each
// side waits on a futex word and is woken only when it said it sleeps.
#ifndef MEMD_SHARED_LANE_H_
#define MEMD_SHARED_LANE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace memd::lane {

inline constexpr uint32_t kMagic = 0x6c646d6d;  // "mmdl"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kHeaderBytes = 4096;
inline constexpr uint32_t kRingBytes = 512 * 1024;
// The largest payload either side puts in a lane. Every response the daemon
// can give fits (its largest, 1024 buffers of an allocate_batch, is about
// 32 KiB); a larger request travels on the gRPC stream instead.
inline constexpr uint32_t kMaxPayloadBytes = 64 * 1024;
inline constexpr uint64_t kObjectBytes = kHeaderBytes + 2ull * kRingBytes;
// How long either side polls the other's word before it sleeps on the futex
// (memd/shared/spin.h adapts below it): the default of the daemon's
// --lane-spin and the client's $MEMD_LANE_SPIN, and the most either takes;
// polling longer saves nothing a futex wake-up would cost.
inline constexpr absl::Duration kDefaultSpin = absl::Microseconds(50);
inline constexpr absl::Duration kMaxSpin = absl::Milliseconds(1);

static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be plain words");

// Header::client_waiting: whether a client thread sleeps on comp_tail, and
// for which answers the daemon wakes it. An answer to a posted request
// (SessionRequest.posted: nobody waits for it now) wakes only kWaitingAny,
// so a client that posted a send and then waits for a receive sleeps on
// through the send's answer.
inline constexpr uint32_t kNotWaiting = 0;
inline constexpr uint32_t kWaitingWaited = 1;  // for answers to requests that were not posted
inline constexpr uint32_t kWaitingAny = 2;     // for any answer

// The control words, at offset 0 of the object. Client and daemon map it at
// different addresses; nothing in it is a pointer.
struct Header {
  // Written once by the daemon before the client maps the object.
  uint32_t magic;
  uint32_t version;
  uint32_t ring_bytes;
  uint32_t max_payload_bytes;
  uint64_t session_id;

  // Written by the client; the daemon checks them before use.
  alignas(64) std::atomic<uint32_t> sub_tail;  // bytes written to the submission ring
  std::atomic<uint32_t> comp_head;             // completion-ring bytes consumed
  std::atomic<uint32_t> client_waiting;        // kNotWaiting, kWaitingWaited or kWaitingAny
  // Bumped by whoever wakes the daemon's lane thread (futex word).
  std::atomic<uint32_t> doorbell;

  // Written by the daemon; the client reads them.
  alignas(64) std::atomic<uint32_t> sub_head;  // submission bytes served (published after serving)
  std::atomic<uint32_t> comp_tail;             // completion bytes written (futex word)
  std::atomic<uint32_t> daemon_waiting;        // the lane thread sleeps on doorbell
  std::atomic<uint32_t> wants_space;           // the daemon waits for completion room
  std::atomic<uint32_t> closed;                // the daemon stopped serving the lane
};
static_assert(sizeof(Header) <= kHeaderBytes);

// Ring bytes an entry with `payload` bytes takes.
constexpr uint32_t EntryBytes(uint32_t payload) { return (4 + payload + 7) & ~7u; }

// Copies to and from a ring of kRingBytes at a wrapping position.
void RingWrite(uint8_t* ring, uint32_t pos, const void* src, uint32_t n);
void RingRead(const uint8_t* ring, uint32_t pos, void* dst, uint32_t n);

// Writes one entry (length, payload) at `pos`, which the producer has
// checked has room; returns the position after it.
uint32_t WriteEntry(uint8_t* ring, uint32_t pos, std::string_view payload);
// Reads the entry at `head` of the `tail - head` published bytes into
// `payload` and returns the position after it, or nullopt with `why` saying
// what cannot be right (published bytes beyond the ring or short of an entry,
// a length over kMaxPayloadBytes). The consumer's own copy of `head` is
// trusted; `tail` is the other side's.
std::optional<uint32_t> ReadEntry(const uint8_t* ring, uint32_t head, uint32_t tail,
                                  std::string* payload, std::string* why);

// Bumps the doorbell and wakes the daemon's lane thread if it sleeps on it.
void RingDoorbell(Header* header);

uint8_t* SubmissionRing(void* object);
uint8_t* CompletionRing(void* object);

// futex(2) on a word of a shared mapping (not FUTEX_PRIVATE: the other side
// is another process). Wait returns when *word != expected, on a wake, or
// after `timeout`, whichever comes first.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout);
void FutexWakeAll(std::atomic<uint32_t>* word);

// "/memd.<instance>.lane.<session id>": the lane object of one session.
std::string LaneObjectName(std::string_view instance, uint64_t session_id);
// "memd.<instance>.lane.": what every lane file of an instance starts with.
std::string LaneObjectPrefix(std::string_view instance);

}  // namespace memd::lane

#endif  // MEMD_SHARED_LANE_H_
