// The two byte strings the UCX transport hands to a peer (docs/wire-format.md,
// "UCX region descriptor and worker address"): the region descriptor that
// Expose() returns (where a pool lies in the sender's address space and the
// packed UCX remote key that lets a peer read it) and the envelope around the
// UCX worker address that LocalAddress() returns.
//
// Both arrive from another machine, so Parse* treat them as hostile: every
// length is checked against the bytes present and against its limit before
// anything is read, and an error names the value and the limit. What is
// inside the rkey and the worker address is UCX's own format; these
// envelopes only guarantee that UCX is handed exactly the bytes the peer
// packed (no truncation, no overrun), not that a malicious peer's UCX bytes
// are harmless (docs/ucx-transport.md, "What a peer can do").
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

// Layout version of both envelopes; a parser refuses any other.
inline constexpr uint16_t kWireVersion = 1;
// A packed UCX rkey is tens to a few hundred bytes (one entry per memory
// domain: tcp, cma, posix, ib ...); 4 KiB leaves room for many RDMA devices
// and bounds what a peer can make us hand to ucp_ep_rkey_unpack.
inline constexpr size_t kMaxRkeyBytes = 4096;
// A packed worker address lists every device of every transport (a few
// hundred bytes with tcp and shared memory, more with many NICs); 64 KiB
// bounds what a peer can make us hand to ucp_ep_create.
inline constexpr size_t kMaxWorkerAddressBytes = 64 * 1024;
// Fixed part of a region descriptor before the pool name and the rkey.
inline constexpr size_t kRegionHeaderBytes = 32;
// Fixed part of an address envelope before the UCX worker address.
inline constexpr size_t kAddressHeaderBytes = 12;

// A pool as a peer may read it: the sender's virtual address range and the
// packed rkey that covers it.
struct Region {
  std::string pool;       // pool name (memd/shared/names.h rules)
  uint64_t base = 0;      // the sender's virtual address of the pool's byte 0
  uint64_t size_bytes = 0;  // bytes from base a peer may read, > 0
  std::string rkey;       // ucp_rkey_pack output, 1..kMaxRkeyBytes bytes
};

// Serializes `region`. REQUIRES: the fields obey the limits above (Expose
// checks them first).
std::string EncodeRegion(const Region& region);

// Parses a peer's descriptor: INVALID_ARGUMENT for a wrong magic or version,
// a truncated or oversized descriptor, a size of 0, base + size past 2^64, an
// invalid pool name, an rkey of 0 or more than kMaxRkeyBytes bytes.
absl::StatusOr<Region> ParseRegion(std::string_view bytes);

// Wraps a UCX worker address (1..kMaxWorkerAddressBytes bytes).
std::string EncodeWorkerAddress(std::string_view ucx_address);

// Returns the UCX worker address inside a peer's envelope (a view into
// `bytes`): INVALID_ARGUMENT for a wrong magic or version, a length that
// disagrees with the bytes present, 0 or more than kMaxWorkerAddressBytes.
absl::StatusOr<std::string_view> ParseWorkerAddress(std::string_view bytes);

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_WIRE_H_
