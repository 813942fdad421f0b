// AdminService: the gRPC adapter of the Admin service. Each call takes the
// caller's credentials from the PeerTable, runs the AdminHandler (all the
// logic, service/admin_handler.h), and finishes with its status; the answer
// passes the UTF-8 guard (service/admin_answer.h) first. Owned by the
// Daemon; must outlive the grpc::Server. Thread-safe.
#ifndef MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
#define MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "memd/v1/admin.grpc.pb.h"
#include "listen/peer_table.h"
#include "channel/channel_registry.h"
#include "metrics/metrics.h"
#include "pool/pool_registry.h"
#include "service/admin_handler.h"
#include "service/session_registry.h"

namespace memd {

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `admin_gid`: members may run admin operations besides root and the
  // daemon's own uid.
  AdminService(const PoolRegistry& pools, SessionRegistry& sessions, const PeerTable& peers,
               std::string instance, std::optional<gid_t> admin_gid, Metrics* metrics,
               ChannelRegistry* channels, AdminHandler::StopDaemon stop = nullptr)
      : handler_(pools, sessions, std::move(instance), admin_gid, channels, std::move(stop)),
        peers_(peers),
        metrics_(metrics) {}

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
  grpc::ServerUnaryReactor* DrainChannel(grpc::CallbackServerContext* context,
                                         const v1::DrainChannelRequest* request,
                                         v1::DrainChannelResponse* response) override;
  grpc::ServerUnaryReactor* DeleteChannel(grpc::CallbackServerContext* context,
                                          const v1::DeleteChannelRequest* request,
                                          v1::DeleteChannelResponse* response) override;
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context,
                                     const v1::ShutdownRequest* request,
                                     v1::ShutdownResponse* response) override;
  grpc::ServerUnaryReactor* StartTrace(grpc::CallbackServerContext* context,
                                       const v1::StartTraceRequest* request,
                                       v1::StartTraceResponse* response) override;
  grpc::ServerUnaryReactor* ReadTrace(grpc::CallbackServerContext* context,
                                      const v1::ReadTraceRequest* request,
                                      v1::ReadTraceResponse* response) override;

  // PERMISSION_DENIED unless the caller may run admin operations (the rule of
  // SetMaxAlloc), for admin RPCs of other services (bridge/bridge_service.cc).
  absl::Status AuthorizeAdmin(const grpc::ServerContextBase& context, const char* what) const {
    return handler_.AuthorizeAdmin(AdminCaller{peers_.Lookup(context.peer()), context.peer()},
                                   what);
  }

 private:
  AdminCaller CallerOf(grpc::CallbackServerContext* context) const;

  AdminHandler handler_;
  const PeerTable& peers_;
  Metrics* const metrics_;  // may be null; outlives the service
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
