// AdminHandler: the Admin service's logic, free of gRPC (AdminService is
// only its gRPC adapter, as SessionReactor is SessionHandler's): operator
// queries (stats, listings, pool checks) and the admin operations (set
// max_alloc, end a session, drain or delete a channel), which only root, the daemon's uid and the admin
// group may run. Every answer stays under kMaxAnswerBytes
// (service/admin_answer.h): listings come in pages, stats summarize channels.
//
// Ownership: owned by the AdminService; the pools, sessions and channels
// outlive it. Thread-safe: any gRPC thread may call any method at once
// (pools, the session registry and the channel registry lock themselves).
#ifndef MEMD_SERVER_SERVICE_ADMIN_HANDLER_H_
#define MEMD_SERVER_SERVICE_ADMIN_HANDLER_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "channel/channel_registry.h"
#include "listen/peer_table.h"
#include "memd/v1/admin.pb.h"
#include "pool/pool_registry.h"
#include "service/session_registry.h"

namespace memd {

// Who makes an admin call: kernel credentials for a Unix peer (none for a
// TCP peer), and how logs and refusals name it.
struct AdminCaller {
  std::optional<PeerCredentials> peer;
  std::string description;
};

class AdminHandler {
 public:
  // OK when the caller may run admin operations (root, the daemon's uid, the
  // admin group, over a Unix socket); PERMISSION_DENIED naming who may.
  absl::Status AuthorizeAdmin(const AdminCaller& caller, const char* what) const;
  // `admin_gid`: members may run admin operations besides root and the
  // daemon's own uid. `channels` may be null (no channel statistics).
  // Asks the daemon to stop (discarding every pool when true); returns at
  // once, the stop happens on the daemon's main thread.
  using StopDaemon = std::function<void(bool discard)>;

  AdminHandler(const PoolRegistry& pools, SessionRegistry& sessions, std::string instance,
               std::optional<gid_t> admin_gid, ChannelRegistry* channels,
               StopDaemon stop = nullptr)
      : pools_(pools),
        sessions_(sessions),
        instance_(std::move(instance)),
        admin_gid_(admin_gid),
        channels_(channels),
        stop_(std::move(stop)),
        started_(std::chrono::steady_clock::now()) {}

  // Open to anyone who may connect.
  absl::Status GetStats(const v1::GetStatsRequest& request, v1::GetStatsResponse* response);
  absl::Status CheckPools(const v1::CheckPoolsRequest& request, v1::CheckPoolsResponse* response);
  absl::Status ListSessions(const v1::ListSessionsRequest& request,
                            v1::ListSessionsResponse* response);
  absl::Status ListBuffers(const v1::ListBuffersRequest& request,
                           v1::ListBuffersResponse* response);
  // Admin operations: PERMISSION_DENIED naming who may, for anyone else.
  absl::Status SetMaxAlloc(const AdminCaller& caller, const v1::SetMaxAllocRequest& request,
                           v1::SetMaxAllocResponse* response);
  absl::Status EndSession(const AdminCaller& caller, const v1::EndSessionRequest& request,
                          v1::EndSessionResponse* response);
  // memctl channel drain|delete (ChannelRegistry::Drain, Delete): logged
  // with who asked. FAILED_PRECONDITION without a channel registry.
  absl::Status DrainChannel(const AdminCaller& caller, const v1::DrainChannelRequest& request,
                            v1::DrainChannelResponse* response);
  absl::Status DeleteChannel(const AdminCaller& caller, const v1::DeleteChannelRequest& request,
                             v1::DeleteChannelResponse* response);
  // FAILED_PRECONDITION when this daemon was built without a way to stop
  // (tests of the handler alone).
  absl::Status Shutdown(const AdminCaller& caller, const v1::ShutdownRequest& request,
                        v1::ShutdownResponse* response);
  // A recording of buffers' lives (memctl trace; admin_trace.cc): starts one
  // of trace::Recorder::Daemon(), reads its pages.
  absl::Status StartTrace(const AdminCaller& caller, const v1::StartTraceRequest& request,
                          v1::StartTraceResponse* response);
  absl::Status ReadTrace(const AdminCaller& caller, const v1::ReadTraceRequest& request,
                         v1::ReadTraceResponse* response);

 private:
  // The opening steps of DrainChannel and DeleteChannel: AuthorizeAdmin(`what`),
  // FAILED_PRECONDITION without a channel registry, then the pool named
  // `pool` (NOT_FOUND naming it).
  absl::StatusOr<Pool*> ChannelAdminPool(const AdminCaller& caller, const char* what,
                                         std::string_view pool) const;

  const PoolRegistry& pools_;
  SessionRegistry& sessions_;
  const std::string instance_;
  const std::optional<gid_t> admin_gid_;
  ChannelRegistry* const channels_;  // may be null; outlives the handler
  const StopDaemon stop_;                  // may be null
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_HANDLER_H_
