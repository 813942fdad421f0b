#include "service/admin_service.h"

namespace memd {

grpc::ServerUnaryReactor* AdminService::GetStats(grpc::CallbackServerContext* context,
                                                 const v1::GetStatsRequest* request,
                                                 v1::GetStatsResponse* response) {
  for (const auto& pool : pools_.pools()) {
    PoolStats s = pool->Stats();
    v1::PoolStats* out = response->add_pools();
    out->set_name(pool->name());
    out->set_shm_name(pool->shm_name());
    out->set_size_bytes(s.size_bytes);
    out->set_used_bytes(s.used_bytes);
    out->set_free_bytes(s.free_bytes);
    out->set_largest_free_bytes(s.largest_free_bytes);
    out->set_live_buffers(s.live_buffers);
    out->set_sessions(s.sessions);
    out->set_alignment_bytes(s.alignment_bytes);
    out->set_max_alloc_bytes(s.max_alloc_bytes);
    out->set_allocs(s.allocs);
    out->set_frees(s.frees);
    out->set_failed_allocs(s.failed_allocs);
    out->set_peak_used_bytes(s.peak_used_bytes);
  }
  response->set_instance(instance_);
  response->set_uptime_seconds(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                         std::chrono::steady_clock::now() - started_)
                                                         .count()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CheckPools(grpc::CallbackServerContext* context,
                                                   const v1::CheckPoolsRequest* request,
                                                   v1::CheckPoolsResponse* response) {
  for (const auto& pool : pools_.pools()) {
    absl::Status status = pool->CheckInvariants();
    v1::PoolCheck* out = response->add_pools();
    out->set_name(pool->name());
    out->set_ok(status.ok());
    if (!status.ok()) out->set_error(std::string(status.message()));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace memd
