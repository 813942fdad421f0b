// MemoryService: the gRPC Memory service. Each Session stream gets a
// SessionReactor (callback API, no thread per client) that reads requests,
// hands them to a SessionHandler and queues the responses.
//
// Ownership: owned by the Daemon; must outlive the grpc::Server. Thread-safe.
#ifndef MEMD_SERVER_SERVICE_MEMORY_SERVICE_H_
#define MEMD_SERVER_SERVICE_MEMORY_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "lane/lane_registry.h"
#include "listen/peer_table.h"
#include "memd/v1/memory.grpc.pb.h"
#include "pool/pool_registry.h"
#include "channel/channel_registry.h"
#include "metrics/metrics.h"
#include "service/session_registry.h"

namespace memd {

class MemoryService final : public v1::Memory::CallbackService {
 public:
  // `metrics` (may be null) outlives the service. Lane objects are named
  // after `instance`; at most `max_lanes` sessions have one (0: none); a lane
  // thread polls for the next request up to `lane_spin` before it sleeps.
  MemoryService(const PoolRegistry& pools, const PeerTable& peers, SessionRegistry& sessions,
                Metrics* metrics, ChannelRegistry* channels, std::string instance,
                int max_lanes, absl::Duration lane_spin)
      : pools_(pools), peers_(peers), sessions_(sessions), metrics_(metrics), channels_(channels),
        lanes_(std::move(instance), max_lanes, lane_spin) {}

  grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>* Session(
      grpc::CallbackServerContext* context) override;

  // Sessions with a lane now (any thread; for the memd_lanes metric).
  int open_lanes() const { return lanes_.open(); }

 private:
  const PoolRegistry& pools_;
  const PeerTable& peers_;
  SessionRegistry& sessions_;
  Metrics* const metrics_;
  ChannelRegistry* const channels_;
  LaneRegistry lanes_;  // the sessions' lanes: their names and count
  std::atomic<uint64_t> next_session_id_{1};
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_MEMORY_SERVICE_H_
