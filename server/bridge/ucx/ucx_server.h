// RegionServer: the SENDING side of the UCX transport. Holds the pools this
// daemon exposed (name → base, size, random key) and answers pull requests
// (active message kAmPullRequest) with the bytes asked for, after checking
// the key, the pool and the range; a refusal is answered with the error and
// no bytes. This check is the reason the transport asks with active messages
// instead of UCX gets: UCX 1.13 emulates a get over TCP and serves it without
// any check, so a peer could read any byte of the daemon (docs/ucx-transport.md).
//
// Owned by UcxTransport. Thread-safety: Add and the handler may run on any
// thread; `mu_` is a leaf (never held around a UCX call). The handler runs on
// the progress thread.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_

#include <ucp/api/ucp.h>

#include <atomic>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "bridge/ucx/ucx_worker.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {

// Answers with bytes that UCX may still be sending, over all peers: a peer
// that floods requests gets RESOURCE_EXHAUSTED instead of making the daemon
// hold an unbounded number of UCX requests. 256 answers of a 4K frame are
// 3.2 GB in flight, far above what a link carries in the time a puller waits.
inline constexpr int kMaxRepliesInFlight = 256;

// Active message ids of the pull protocol.
inline constexpr unsigned kAmPullRequest = 0x4d44;  // receiver → sender
inline constexpr unsigned kAmPullReply = 0x4d45;    // sender → receiver

class RegionServer {
 public:
  explicit RegionServer(UcxWorker* worker) : worker_(worker) {}

  // Registers the request handler on the worker. REQUIRES: called once,
  // before any peer connects; the server outlives the worker's progress.
  absl::Status Start();

  // Makes [base, base + size) readable as `pool`; returns its region
  // descriptor (ucx_wire.h). ALREADY_EXISTS for a pool exposed before.
  absl::StatusOr<std::string> Add(const std::string& pool, const void* base, size_t size);

 private:
  struct Exposed {
    const char* base;
    size_t size_bytes;
    std::string key;
  };
  static ucs_status_t OnRequest(void* arg, const void* header, size_t header_length, void* data,
                                size_t length, const ucp_am_recv_param_t* param);
  // The bytes a request may read, or why not.
  absl::StatusOr<const char*> Check(std::string_view header, uint64_t* request_id,
                                    uint64_t* length);
  void Reply(ucp_ep_h reply_ep, uint64_t request_id, const absl::Status& status,
             const char* bytes, uint64_t length);
  static void OnReplySent(void* request, ucs_status_t status, void* user_data);

  UcxWorker* const worker_;
  std::atomic<int> replies_in_flight_{0};  // answers with bytes UCX still sends
  Mutex mu_;
  absl::flat_hash_map<std::string, Exposed> exposed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_SERVER_H_
