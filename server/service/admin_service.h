// AdminService: read-only operator queries (stats, listings) and the admin
// operations. Every answer stays under kMaxAnswerBytes and passes the UTF-8
// guard (service/admin_answer.h): listings come in pages, stats summarize
// channels. Owned by the Daemon; must outlive the grpc::Server. Thread-safe
// (pools lock themselves).
#ifndef MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
#define MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "memd/v1/memd.grpc.pb.h"
#include "listen/peer_table.h"
#include "channel/channel_registry.h"
#include "metrics/metrics.h"
#include "pool/pool_registry.h"
#include "service/session_registry.h"

namespace memd {

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `admin_gid`: members may run admin operations besides root and the
  // daemon's own uid.
  AdminService(const PoolRegistry& pools, SessionRegistry& sessions, const PeerTable& peers,
               std::string instance, std::optional<gid_t> admin_gid, Metrics* metrics,
               const ChannelRegistry* channels)
      : pools_(pools),
        sessions_(sessions),
        peers_(peers),
        instance_(std::move(instance)),
        admin_gid_(admin_gid),
        metrics_(metrics),
        channels_(channels),
        started_(std::chrono::steady_clock::now()) {}

  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* CheckPools(grpc::CallbackServerContext* context,
                                       const v1::CheckPoolsRequest* request,
                                       v1::CheckPoolsResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* ListBuffers(grpc::CallbackServerContext* context,
                                        const v1::ListBuffersRequest* request,
                                        v1::ListBuffersResponse* response) override;
  grpc::ServerUnaryReactor* SetMaxAlloc(grpc::CallbackServerContext* context,
                                        const v1::SetMaxAllocRequest* request,
                                        v1::SetMaxAllocResponse* response) override;
  grpc::ServerUnaryReactor* EndSession(grpc::CallbackServerContext* context,
                                       const v1::EndSessionRequest* request,
                                       v1::EndSessionResponse* response) override;

 private:
  // OK when the peer may change the daemon: its own uid or root, over a Unix
  // socket (kernel-verified credentials).
  absl::Status AuthorizeAdmin(grpc::CallbackServerContext* context, const char* what) const;

  const PoolRegistry& pools_;
  SessionRegistry& sessions_;
  const PeerTable& peers_;
  const std::string instance_;
  const std::optional<gid_t> admin_gid_;
  Metrics* const metrics_;  // may be null; outlives the service
  const ChannelRegistry* const channels_;  // may be null; outlives the service
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
