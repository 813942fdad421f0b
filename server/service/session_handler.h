// SessionHandler: the protocol logic of one client session, free of gRPC
// plumbing: the first request attaches to a pool, later ones are memory
// operations on it. The session holds its references as a holder in the
// pool's ledger (Pool::OpenSession). Close() (or destruction) closes that
// holder, releasing every reference the session still holds: that is how a
// crashed client's memory comes back.
//
// Ownership: owned by its SessionReactor. Not thread-safe: the reactor calls
// it from one gRPC thread at a time (reads are never concurrent).
#ifndef MEMD_SERVER_SERVICE_SESSION_HANDLER_H_
#define MEMD_SERVER_SERVICE_SESSION_HANDLER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "listen/peer_table.h"
#include "memd/shared/unique_fd.h"
#include "channel/channel_registry.h"
#include "metrics/metrics.h"
#include "memd/v1/memory.pb.h"
#include "pool/pool.h"
#include "pool/pool_registry.h"
#include "service/session_registry.h"

namespace memd {

class SessionHandler {
 public:
  // `peer` is empty for TCP peers. `description` names the peer in logs.
  // `end` cancels the session's stream (see SessionRegistry::Record::end).
  // `channels` may be null (no channel operations); it outlives the session.
  SessionHandler(const PoolRegistry& pools, SessionRegistry& sessions, uint64_t session_id,
                 std::optional<PeerCredentials> peer, std::string description,
                 std::function<void()> end = nullptr, Metrics* metrics = nullptr,
                 ChannelRegistry* channels = nullptr);
  ~SessionHandler();

  SessionHandler(const SessionHandler&) = delete;
  SessionHandler& operator=(const SessionHandler&) = delete;

  // Answers `request` in `response` and returns true, or returns false when
  // the operation waits (a channel send or receive): its response then goes
  // to `later`, from another thread, unless Close() came first.
  bool Handle(const v1::SessionRequest& request, v1::SessionResponse* response,
              const std::function<void(v1::SessionResponse)>& later = nullptr);

  // Releases everything; later requests get FAILED_PRECONDITION. Idempotent.
  void Close();

  uint64_t session_id() const { return session_id_; }
  // Attached to a pool and not closed.
  bool attached() const { return pool_ != nullptr && !closed_; }
  // Shows in the session's listing that it has a lane (`lane_fd` >= 0, the
  // lane's memfd for the descriptor service) or no longer has one (-1).
  void NoteLane(int lane_fd) { sessions_.SetLane(session_id_, lane_fd >= 0, lane_fd); }

 private:
  // The session's life (session_handler.cc).
  absl::Status Attach(const v1::AttachRequest& attach, v1::AttachResponse* out);
  absl::Status Reclaim(const v1::ReclaimRequest& reclaim, v1::ReclaimResponse* out);
  // One function per operation of an attached session (session_dispatch.cc);
  // each fills its part of `response` and returns the operation's status.
  absl::Status Dispatch(const v1::SessionRequest& request, v1::SessionResponse* response);
  absl::Status Allocate(const v1::AllocateRequest& allocate, v1::SessionResponse* response);
  absl::Status Realloc(const v1::ReallocRequest& realloc, v1::SessionResponse* response);
  absl::Status Retain(const v1::RetainRequest& retain, v1::SessionResponse* response);
  absl::Status AllocateBatch(const v1::AllocateBatchRequest& batch, v1::SessionResponse* response);
  absl::Status ReleaseBatch(const v1::ReleaseBatchRequest& batch, v1::SessionResponse* response);
  absl::Status Query(const v1::QueryRequest& query, v1::SessionResponse* response);
  absl::Status Release(const v1::ReleaseRequest& release, v1::SessionResponse* response);
  // Arenas (session_arena.cc): a range of a chunk gets a handle; idle
  // chunks, chunks used again and the client's counters.
  absl::Status ArenaRegister(const v1::ArenaRegisterRequest& request,
                             v1::ArenaRegisterResponse* out);
  absl::Status ArenaReport(const v1::ArenaReportRequest& request, v1::ArenaReportResponse* out);
  // A send's register_first: registers each range and puts its handle in
  // place of the next zero of `handles`. On an error nothing stays registered.
  absl::StatusOr<std::vector<BufferInfo>> RegisterForSend(const v1::ChannelSendRequest& send,
                                                          std::vector<uint64_t>* handles);
  // Undoes RegisterForSend after the send failed. Static: a send that waited
  // fails on another thread, maybe after the session closed (which released
  // them already; then this does nothing).
  static void ReleaseRegistered(Pool& pool, HolderId holder,
                                const std::vector<BufferInfo>& registered);
  // A CloseRequest: everything the session holds goes now.
  absl::Status CloseByClient(v1::SessionResponse* response);
  // The deferred releases a request carries (release_first), before its operation.
  absl::Status ReleaseFirst(const v1::SessionRequest& request);
  bool HandleChannel(const v1::SessionRequest& request, v1::SessionResponse* response,
                     const std::function<void(v1::SessionResponse)>& later, RpcTimer& timer);

  const PoolRegistry& pools_;
  SessionRegistry& sessions_;
  const uint64_t session_id_;
  const std::optional<PeerCredentials> peer_;
  const std::string description_;
  const std::function<void()> end_;
  Metrics* const metrics_;  // may be null; outlives the session
  ChannelRegistry* const channels_;  // may be null; outlives the session
  Pool* pool_ = nullptr;  // set by Attach; pools outlive sessions
  // This session's holder in pool_'s ledger (set by Attach, closed by
  // Close); the SessionRegistry record points at it for admin listings.
  HolderId holder_ = HolderId::kNone;
  std::string ticket_;     // AttachResponse.ticket (set by Attach)
  // A reader (set by Attach): its descriptor is read-only and Handle
  // refuses what writes pool memory (PoolWriteOf).
  bool read_only_ = false;
  UniqueFd pidfd_;         // the peer process, to tell a broken stream from its exit
  bool closed_by_client_ = false;  // a CloseRequest came: release everything at the end
  bool closed_ = false;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_SESSION_HANDLER_H_
