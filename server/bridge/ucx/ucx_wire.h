// The UCX transport's wire formats (docs/wire-format.md, "UCX region
// descriptor, worker address and pull messages"): the region descriptor that
// Grant() returns (a pool's name, size, the random key a peer must show to
// read it, and the AES-256-GCM key its answers are sealed with, if any), the envelope around the UCX worker address that
// LocalAddress() returns, and the headers of the pull request and reply
// active messages.
//
// Both arrive from another machine, so Parse* treat them as hostile: every
// length is checked against the bytes present and against its limit before
// anything is read, and an error names the value and the limit. What is
// inside the worker address is UCX's own format; the envelope only
// guarantees that UCX is handed exactly the bytes the peer packed (no
// truncation, no overrun), not that a malicious peer's UCX bytes are
// harmless (docs/ucx-transport.md, "What a peer can do").
//
// Plain functions, no state: safe from any thread.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_WIRE_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace memd::bridge::ucx {

// Layout version of both envelopes; a parser refuses any other. Version 2
// (issue 24): the region descriptor carries the grant's seal key.
inline constexpr uint16_t kWireVersion = 2;
// Bytes of a region's key: 128 random bits, so a peer that did not receive
// the descriptor (over mutual TLS) cannot guess it.
inline constexpr size_t kRegionKeyBytes = 16;
// A packed worker address lists every device of every transport (a few
// hundred bytes with tcp and shared memory, more with many NICs); 64 KiB
// bounds what a peer can make us hand to ucp_ep_create.
inline constexpr size_t kMaxWorkerAddressBytes = 64 * 1024;
// Fixed part of a region descriptor before the pool name and the keys.
inline constexpr size_t kRegionHeaderBytes = 32;
// Fixed part of an address envelope before the UCX worker address.
inline constexpr size_t kAddressHeaderBytes = 12;

// A pool as one peer's link may read it (one grant): its name, its size, the
// random key the sender checks on every request (it also tells the sender
// which grant, hence which peer, asks), and the key answers are sealed with.
struct Region {
  std::string pool;         // pool name (memd/shared/names.h rules)
  uint64_t size_bytes = 0;  // bytes of the pool, > 0 (what a peer may read is narrower: the ranges in flight to it)
  std::string key;          // kRegionKeyBytes random bytes
  std::string seal_key;     // empty: answers come in clear (a trusted link); else kSealKeyBytes (ucx_seal.h)
};

// One pull as the receiver asks the sender for it (an active message
// header, receiver → sender), and the sender's answer header.
struct PullRequest {
  uint64_t request_id = 0;  // the receiver's, echoed in the reply
  uint64_t offset = 0;      // byte offset in the pool
  uint64_t length = 0;      // bytes wanted
  std::string pool;         // pool name, 1..kMaxNameBytes
  std::string key;          // kRegionKeyBytes, from the pool's region descriptor
};
// Fixed size of an encoded PullRequest (the pool name is padded to 64 bytes).
inline constexpr size_t kPullRequestBytes = 112;
std::string EncodePullRequest(const PullRequest& request);
// INVALID_ARGUMENT for any other size, magic or a bad pool name length.
absl::StatusOr<PullRequest> ParsePullRequest(std::string_view bytes);

struct PullReply {
  uint64_t request_id = 0;
  uint32_t code = 0;      // absl::StatusCode; 0 = the bytes follow as the message's data
  std::string message;    // why, when code != 0; at most kMaxReplyMessageBytes
  std::string seal;       // empty: the bytes are clear; else kSealBytes (nonce, tag: ucx_seal.h)
};
inline constexpr size_t kPullReplyHeaderBytes = 16;
inline constexpr size_t kMaxReplyMessageBytes = 512;
std::string EncodePullReply(const PullReply& reply);
absl::StatusOr<PullReply> ParsePullReply(std::string_view bytes);

// Serializes `region`. REQUIRES: the fields obey the limits above (Expose
// checks them first).
std::string EncodeRegion(const Region& region);

// Parses a peer's descriptor: INVALID_ARGUMENT for a wrong magic or version,
// a truncated or oversized descriptor, a non-zero reserved field, a size of
// 0, an invalid pool name, a key of other than kRegionKeyBytes bytes, a
// seal key of other than 0 or kSealKeyBytes bytes.
absl::StatusOr<Region> ParseRegion(std::string_view bytes);

// Wraps a UCX worker address (1..kMaxWorkerAddressBytes bytes).
std::string EncodeWorkerAddress(std::string_view ucx_address);

// Returns the UCX worker address inside a peer's envelope (a view into
// `bytes`): INVALID_ARGUMENT for a wrong magic or version, a length that
// disagrees with the bytes present, 0 or more than kMaxWorkerAddressBytes.
absl::StatusOr<std::string_view> ParseWorkerAddress(std::string_view bytes);

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_WIRE_H_
