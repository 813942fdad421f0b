// RegionServer: the SENDING side of the UCX transport. Holds the pools this
// daemon exposed (name → base, size), the grants (one per bridge link: a
// random key that names the peer, and the AES-256-GCM key of a sealed link),
// and answers pull requests (active message kAmPullRequest): it finds the
// grant by the request's key, asks the engine's ReadCheck whether that peer
// may read the range (only ranges in flight to it, issue 24), and answers
// with the bytes, sealed when the grant says so; a refusal is answered with
// the error and no bytes. This check is the reason the transport asks with
// active messages instead of UCX gets: UCX 1.13 emulates a get over TCP and
// serves it without any check, so a peer could read any byte of the daemon
// (docs/ucx-transport.md).
//
// Owned by UcxTransport. Thread-safety: Add, Grant, Revoke and the handler
// may run on any thread; `mu_` is a leaf (never held around a UCX call nor
// around the ReadCheck). The handler runs on the progress thread; so does the
// ReadCheck it calls and the sealing of an answer.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_

#include <ucp/api/ucp.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "bridge/transport.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {

// Answers with bytes that UCX may still be sending, over all peers: a peer
// that floods requests gets RESOURCE_EXHAUSTED instead of making the daemon
// hold an unbounded number of UCX requests. 256 answers of a 4K frame are
// 3.2 GB in flight, far above what a link carries in the time a puller waits.
inline constexpr int kMaxRepliesInFlight = 256;
// Sealed answers are copies (the ciphertext cannot be the pool's bytes): at
// most this many bytes of them are held while UCX sends, over all peers
// (B42). A bridge pulls one buffer at a time per link, so 256 MiB is 20 4K
// frames (12.4 MB each) at once; past it the peer is told to ask again.
inline constexpr uint64_t kMaxSealedBytesInFlight = uint64_t{256} << 20;

// Ciphertext buffers of answers UCX finished sending, kept for the next ones:
// a fresh 12.4 MB buffer per answer costs its page faults and the kernel's
// zeroing every time (sealing a 4K frame took 7.8 ms into fresh memory and
// 5.4 ms into reused memory, measured at load average 9 on the shared 2-core
// machine). A link pulls one buffer at a time, so 2 serve the usual case.
inline constexpr size_t kSpareSealBuffers = 2;

// Memory a sealed answer is written into (its ciphertext).
struct SealBuffer {
  std::unique_ptr<char[]> bytes;
  size_t capacity_bytes = 0;
};

// Active message ids of the pull protocol.
inline constexpr unsigned kAmPullRequest = 0x4d44;  // receiver → sender
inline constexpr unsigned kAmPullReply = 0x4d45;    // sender → receiver

class RegionServer {
 public:
  // `may_read`: the engine's ReadCheck (bridge/transport.h), asked for every
  // request before a byte is served.
  RegionServer(UcxWorker* worker, ReadCheck may_read)
      : worker_(worker), may_read_(std::move(may_read)) {}

  // Registers the request handler on the worker. REQUIRES: called once,
  // before any peer connects; the server outlives the worker's progress.
  absl::Status Start();

  // Makes [base, base + size) servable as `pool` (to no one before a Grant).
  // ALREADY_EXISTS for a pool exposed before.
  absl::Status Add(const std::string& pool, const void* base, size_t size);
  // A new grant of `pool` to `peer` (PullTransport::Grant): its region
  // descriptor (ucx_wire.h), with a seal key when `seal`. NOT_FOUND for a
  // pool not exposed.
  absl::StatusOr<std::string> Grant(const std::string& pool, const std::string& peer, bool seal);
  // Forgets the grant `region` describes (PullTransport::Revoke).
  void Revoke(std::string_view region);

 private:
  struct Exposed {
    const char* base;
    size_t size_bytes;
  };
  struct Granted {
    std::string pool, peer;
    std::string key;           // kRegionKeyBytes, shown on every request
    std::string seal_key;      // empty: clear; else kSealKeyBytes
    uint64_t answers = 0;      // sealed answers so far: the next nonce's counter
  };
  // What one accepted request reads, and how.
  struct Serve {
    const char* bytes;
    std::string pool, peer, seal_key;
    uint64_t counter;  // the nonce's, when sealed
  };
  static ucs_status_t OnRequest(void* arg, const void* header, size_t header_length, void* data,
                                size_t length, const ucp_am_recv_param_t* param);
  // The grant, pool and range a request may read, or why not (the
  // ReadCheck is asked by the caller, outside mu_).
  absl::StatusOr<Serve> Check(std::string_view header, uint64_t* request_id, uint64_t* offset,
                              uint64_t* length);
  void Reply(ucp_ep_h reply_ep, uint64_t request_id, const absl::Status& status,
             const Serve* serve, uint64_t length);
  static void OnReplySent(void* request, ucs_status_t status, void* user_data);
  // A spare buffer of at least `length` bytes, or a new one.
  SealBuffer TakeSealBuffer(size_t length);
  // Keeps `buffer` for a later answer (at most kSpareSealBuffers, the largest).
  void GiveSealBuffer(SealBuffer buffer);

  UcxWorker* const worker_;
  const ReadCheck may_read_;
  std::atomic<int> replies_in_flight_{0};            // answers with bytes UCX still sends
  std::atomic<uint64_t> sealed_bytes_in_flight_{0};  // their ciphertext copies
  Mutex mu_;
  absl::flat_hash_map<std::string, Exposed> exposed_ ABSL_GUARDED_BY(mu_);
  // One per live bridge link; searched in full on every request, comparing
  // keys in constant time (a handful of entries).
  std::vector<Granted> grants_ ABSL_GUARDED_BY(mu_);
  Mutex spare_mu_;  // a leaf: taken on the progress thread around no other lock
  std::vector<SealBuffer> spare_ ABSL_GUARDED_BY(spare_mu_);
};

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_
