// LaneRegistry: the daemon's lanes as a whole: how each is named (after the
// instance and the session, memd/shared/lane.h's LaneObjectName) and how
// many are open, within --max-lanes. A SessionReactor opens its session's
// lane here and gives the place back when the lane stopped.
//
// Ownership: owned by the MemoryService; outlives every session. Thread-safe
// (one atomic counter).
#ifndef MEMD_SERVER_LANE_LANE_REGISTRY_H_
#define MEMD_SERVER_LANE_LANE_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lane/session_lane.h"

namespace memd {

class LaneRegistry {
 public:
  // Lanes are named after `instance`; at most `max_lanes` are open (0: none).
  // Each lane thread polls up to `spin` for its next request before it sleeps.
  LaneRegistry(std::string instance, int max_lanes,
               absl::Duration spin = lane::kDefaultSpin)
      : instance_(std::move(instance)), max_lanes_(max_lanes), spin_(spin) {}

  // Opens the lane of session `session_id` and counts it. FAILED_PRECONDITION
  // when this daemon opens no lanes; RESOURCE_EXHAUSTED naming the count and
  // the limit when max_lanes are open; SessionLane::Create's errors.
  absl::StatusOr<std::unique_ptr<SessionLane>> Open(uint64_t session_id, SessionLane::Serve serve,
                                                    SessionLane::Fail fail);
  // A lane Open gave has stopped: its place is free. Once per opened lane.
  void Closed() { open_.fetch_sub(1); }

  int open() const { return open_.load(); }
  int max_lanes() const { return max_lanes_; }

 private:
  const std::string instance_;
  const int max_lanes_;
  const absl::Duration spin_;
  std::atomic<int> open_{0};  // lanes open now
};

}  // namespace memd

#endif  // MEMD_SERVER_LANE_LANE_REGISTRY_H_
