// AdminService: read-only operator queries (stats). Owned by the Daemon;
// must outlive the grpc::Server. Thread-safe (pools lock themselves).
#ifndef MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
#define MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <chrono>
#include <string>

#include "memd/v1/memd.grpc.pb.h"
#include "pool/pool_registry.h"

namespace memd {

class AdminService final : public v1::Admin::CallbackService {
 public:
  AdminService(const PoolRegistry& pools, std::string instance)
      : pools_(pools), instance_(std::move(instance)), started_(std::chrono::steady_clock::now()) {}

  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* CheckPools(grpc::CallbackServerContext* context,
                                       const v1::CheckPoolsRequest* request,
                                       v1::CheckPoolsResponse* response) override;

 private:
  const PoolRegistry& pools_;
  const std::string instance_;
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_SERVICE_H_
