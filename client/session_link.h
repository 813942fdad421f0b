// SessionLink: a client's session with the daemon, kept alive across daemon
// crashes and restarts. Private to libmemd.
//
// It owns the current SessionStream and the session's Holdings (what it
// holds), which it keeps from every answer it passes on. A monitor thread notices a lost connection (the channel
// leaves READY, or a call fails at the transport) and reconnects with
// bounded exponential backoff: a new stream attaches to the same pool,
// insisting on the same segment (so the process's mapping stays the pool's
// memory), and reclaims every held reference in batches. If the daemon comes
// back without that segment, the link is lost for good and every call fails
// with FAILED_PRECONDITION saying so.
//
// Each session also gets a lane when the daemon grants one (ClientLane): the
// shared-memory transport every request that fits then takes, while the
// stream keeps the session alive and carries attach, reclaim and whatever is
// too large for the lane.
//
// Thread-safe: Call and the holdings may be used from any thread; the
// monitor thread is the only one that replaces the stream and the lane.
#ifndef MEMD_CLIENT_SESSION_LINK_H_
#define MEMD_CLIENT_SESSION_LINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "memd/shared/mutex.h"
#include "memd/shared/unique_fd.h"
#include "memd/v1/memory.pb.h"
#include "client_lane.h"
#include "holdings.h"
#include "session_stream.h"

namespace memd {

class SessionLink {
 public:
  struct Options {
    std::string address;      // for messages: "unix:///run/memd/memd.sock"
    std::string grpc_target;  // what gRPC dials
    // The Unix socket's path, for descriptor requests (memd/shared/fd_handoff.h);
    // empty for a TCP address (which serves no memory).
    std::string socket_path;
    std::string pool;
    std::string client_name;
    // How long Open tries again while the daemon is not up or its pool waits
    // for its memory (ConnectOptions::connect_timeout_ms).
    absl::Duration connect_timeout;
    absl::Duration outage_wait;  // how long a call waits for a reconnection
    absl::Duration min_backoff, max_backoff;
    bool lane = true;  // ask for a lane (see ConnectOptions::lane)
    // How long a reader polls the lane before it sleeps ($MEMD_LANE_SPIN).
    absl::Duration lane_spin = lane::kDefaultSpin;
    bool read_only = false;  // attach as a reader (ConnectOptions::read_only)
  };

  // Connects and attaches; `attached` receives the daemon's answer. Tries
  // again until connect_timeout while the daemon cannot be reached or answers
  // UNAVAILABLE (a restarted pool waiting for its memory).
  static absl::StatusOr<std::unique_ptr<SessionLink>> Open(Options options,
                                                           v1::AttachResponse* attached);
  ~SessionLink();
  SessionLink(const SessionLink&) = delete;
  SessionLink& operator=(const SessionLink&) = delete;

  // Runs one operation on the current session. While the daemon is away the
  // call waits up to outage_wait, then fails with UNAVAILABLE.
  //
  // On the monitor thread (deferred releases) a call neither waits for a
  // reconnection nor uses the lane: that thread is the one that notices a
  // dead daemon and reconnects, and a lane call to a daemon that died waits
  // until someone notices, while the stream fails by itself. Under a NoWait
  // (the client's housekeeping thread) a call does not wait either.
  absl::StatusOr<v1::SessionResponse> Call(v1::SessionRequest request);
  // Call, with the daemon's refusal as the error: an answer only when the
  // operation succeeded (the one copy of "call, then its status").
  absl::StatusOr<v1::SessionResponse> CallOk(v1::SessionRequest request);

  // While one lives, calls made by its thread fail at once with UNAVAILABLE
  // when the daemon is away instead of waiting for a reconnection (the
  // arena's tick: a memd_free must never wait behind a tick that waits).
  class NoWait {
   public:
    NoWait();
    ~NoWait();
    NoWait(const NoWait&) = delete;
    NoWait& operator=(const NoWait&) = delete;
  };

  // Gives up one reference to `handle` (the one release of a held
  // reference: Client::ReleaseRef and the arena's). It leaves the holdings
  // first, so one made while the daemon is away succeeds locally (false:
  // the reconnection does not reclaim it, so the daemon drops it); otherwise
  // the daemon's answer: whether the buffer was freed.
  absl::StatusOr<bool> Release(uint64_t handle);

  // A request whose answer is collected later: the caller goes on at once.
  // On the session's lane the daemon also does not wake this process for
  // the answer.
  struct Posted {
    std::shared_ptr<SessionStream> stream;  // the session it went on
    std::shared_ptr<ClientLane> lane;       // null: it went on the stream
    uint64_t id = 0;                        // its request_id there; 0 once collected
    std::vector<uint64_t> moved;            // references a moving send gives up on success
    absl::StatusOr<v1::SessionResponse> answer = absl::UnknownError("not collected");
  };
  // Posts a channel operation (never repeated on a new session, as in Call).
  // Each Posted must be collected once. `wake` false: on a lane the daemon
  // learns of it with this process's next request, or from the monitor
  // within a tick.
  Posted Post(v1::SessionRequest request, bool wake = true);
  absl::StatusOr<v1::SessionResponse> Collect(Posted& posted);

  // What this session holds, kept from every answer by Call and Collect
  // (Holdings); the link reclaims it after a daemon restart.
  Holdings& holdings() { return holdings_; }

  // Queues one release per handle (each held): it travels in the
  // release_first of the next Call, or the monitor sends it within one tick
  // (25 ms). Handles this process does not hold are ignored.
  void DeferRelease(const std::vector<uint64_t>& handles);
  // Sends the queued releases now (one release_batch), if there are any.
  absl::Status FlushReleases();

  bool up() const;
  uint64_t reconnects() const;
  uint64_t session_id() const;
  // The process's mapping of the pool's memory (a sealed memfd the daemon
  // passed at Open), memory_bytes() long. The link keeps the descriptor for
  // its whole life: after a daemon restart it is offered back, so the new
  // daemon continues in the same memory. The address never changes, even
  // when a process that held nothing continues in new memory.
  uint8_t* base() const { return base_; }
  // Whether the session is a reader: the pool is mapped PROT_READ from a
  // read-only descriptor (asked for, or all the pool's access allows).
  bool read_only() const { return read_only_; }
  uint64_t memory_bytes() const { return memory_bytes_; }

 private:
  enum class State { kUp, kDown, kLost };

  explicit SessionLink(Options options) : options_(std::move(options)) {}

  // Waits (until `deadline`) for the session to be up and gives its stream
  // and lane; moves queued deferred releases into `request`.
  absl::Status Route(absl::Time deadline, v1::SessionRequest& request,
                     std::shared_ptr<SessionStream>* stream, std::shared_ptr<ClientLane>* lane);
  // Whether queued releases may go on the stream now without overtaking a
  // request the lane has not served yet.
  bool ReleasesMayGoOnStreamLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new channel and stream, attached to the pool. Transport failures come
  // back as UNAVAILABLE; the daemon's refusal as its own status.
  absl::StatusOr<std::shared_ptr<SessionStream>> Attach(uint64_t expected_segment_id,
                                                        v1::AttachResponse* attached);
  // The mapping's protection: PROT_READ for a reader.
  int Protection() const;
  // A descriptor request for this link's session (`kind` kPoolMemory or kLaneMemory).
  absl::StatusOr<UniqueFd> FetchDescriptor(uint32_t kind, uint64_t session_id,
                                           const std::string& ticket) const;
  // After a daemon restart: hands the pool's memory back to the new daemon
  // (it continues in it when it waits for it). Errors are the daemon's to
  // report; the attach that follows tells whether the pool is this memory.
  void OfferMemory() const;
  // Whether this process holds no reference (nothing points into the memory).
  bool HoldsNothing() const;
  // Attaches to the pool's new memory and maps it over the old one, at the
  // same address. REQUIRES: HoldsNothing(); the monitor thread.
  absl::StatusOr<std::shared_ptr<SessionStream>> AttachToNewMemory(v1::AttachResponse* attached);
  // Asks the daemon for a lane on `stream`; null when it refuses (the session
  // then uses the stream alone).
  std::shared_ptr<ClientLane> OpenLane(SessionStream& stream, uint64_t session_id,
                                       const std::string& ticket);
  // One reconnection attempt; false to retry later.
  bool Reconnect();
  void MarkDown(const std::shared_ptr<SessionStream>& broken, const std::string& why);
  void Monitor();

  const Options options_;
  // Set by Open; afterwards only the monitor thread changes them (Reconnect).
  uint64_t segment_id_ = 0;
  uint32_t pool_index_ = 0;
  UniqueFd memory_fd_;
  uint8_t* base_ = nullptr;  // fixed for the link's life
  uint64_t memory_bytes_ = 0;
  bool read_only_ = false;  // set by Open from the daemon's answer; fixed

  mutable Mutex mu_;
  CondVar cv_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kUp;
  std::string why_ ABSL_GUARDED_BY(mu_);  // reason while down or lost
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<SessionStream> stream_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ClientLane> lane_ ABSL_GUARDED_BY(mu_);  // null: the stream alone
  uint64_t session_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::string ticket_ ABSL_GUARDED_BY(mu_);  // the current session's (AttachResponse.ticket)
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  Holdings holdings_;  // its own (leaf) mutex; swapped under mu_ at a reconnect
  std::vector<uint64_t> deferred_ ABSL_GUARDED_BY(mu_);  // releases not sent yet
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread monitor_;
};

}  // namespace memd

#endif  // MEMD_CLIENT_SESSION_LINK_H_
