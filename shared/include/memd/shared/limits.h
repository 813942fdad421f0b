// The limits of the session protocol (proto/memd/v1/memory.proto), written
// once: the daemon refuses what exceeds them (INVALID_ARGUMENT naming the
// value and the limit), and libmemd splits or clamps what it sends so that it
// never does. Changing one changes the wire contract: older clients may
// then be refused, so raise them only together with the proto comments.
#ifndef MEMD_SHARED_LIMITS_H_
#define MEMD_SHARED_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace memd::limits {

// Handles (or buffers) in one batched operation: allocate_batch.count,
// release_batch.handles, query.handles and a request's release_first.
// 1024 handles are 8 KiB on the wire; the bound keeps one request's time
// under the pool mutex (all or nothing) from growing with the client's wish.
inline constexpr uint32_t kMaxBatch = 1024;

// Held references named in one reclaim request (ReclaimRequest.held); a
// client with more sends several requests, the last with last_batch.
inline constexpr uint32_t kMaxReclaimEntries = 1024;

// The longest a channel send or receive waits (timeout_ms): one hour.
// Longer values are clamped by the client and cut to this by the daemon.
inline constexpr uint32_t kMaxTimeoutMs = 3'600'000;

// AttachRequest.client_name, in bytes (memctl shows it in a column).
inline constexpr size_t kMaxClientNameBytes = 64;

// One channel message: handles it carries and its metadata bytes (a frame
// header and side data fit: client/ffmpeg's header is 280 bytes).
inline constexpr size_t kMaxChannelHandles = 64;
inline constexpr size_t kMaxChannelMetadataBytes = 4096;
// INVALID_ARGUMENT naming the value and the limit when a message to
// `channel` carries more than kMaxChannelHandles handles or
// kMaxChannelMetadataBytes of metadata: the one check, made by libmemd before
// it sends and by the daemon's channel registry when it receives one.
absl::Status CheckChannelMessage(std::string_view channel, size_t handles, size_t metadata_bytes);
// A channel's capacity in messages, as its creator may ask for it.
inline constexpr uint32_t kMaxChannelCapacity = 4096;
// Bridges one channel message may cross (bridge.proto BridgeOffer.hops): a
// receiving daemon refuses an offer with more for good (B23), so a loop of
// bridges over any number of daemons (a to b to c to a) moves each message
// at most this many times instead of forever. 8 hops are far more than any
// honest chain of relays (a site's cameras to an edge, to a region, to a
// cloud is 3).
inline constexpr uint32_t kMaxBridgeHops = 8;

// One session request (memory.proto SessionRequest, serialized), on the
// stream or a lane: 64 KiB holds the largest a well-formed request can be
// (1024 handles of a batch are 8 KiB; a send's 4096 bytes of metadata and
// 64 handles about 4.6 KiB). libmemd refuses a larger one before sending it
// (RESOURCE_EXHAUSTED, nothing sent, the session goes on); the daemon answers
// one it reads with RESOURCE_EXHAUSTED for that request alone.
inline constexpr size_t kMaxSessionRequestBytes = 64 * 1024;
// The largest message the daemon's gRPC server reads at all: a larger one
// ends that stream (gRPC's own RESOURCE_EXHAUSTED), since gRPC must buffer a
// message whole before anyone can look at it. 4 MiB is gRPC's default and
// what libmemd reads.
inline constexpr size_t kMaxGrpcMessageBytes = 4 * 1024 * 1024;
// A recording of buffers' lives (Admin StartTrace, `memctl trace`): how long
// it runs at most, and the events it keeps. An event costs the daemon 48
// bytes, so the default holds 4.6 MiB and the limit 46 MiB until it is read.
inline constexpr uint32_t kMaxTraceDurationMs = 600'000;
inline constexpr uint32_t kDefaultTraceEvents = 100'000;
inline constexpr uint32_t kMaxTraceEvents = 1'000'000;
// Events in one ReadTrace answer: at most about 40 bytes each on the wire,
// 16,384 keep an answer under the Admin service's 1 MiB.
inline constexpr uint32_t kMaxTraceEventsPerPage = 16'384;

}  // namespace memd::limits

#endif  // MEMD_SHARED_LIMITS_H_
