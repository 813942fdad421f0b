#include "lane/lane_registry.h"

#include "absl/strings/str_format.h"
#include "memd/shared/lane.h"

namespace memd {

absl::StatusOr<std::unique_ptr<SessionLane>> LaneRegistry::Open(uint64_t session_id,
                                                                SessionLane::Serve serve,
                                                                SessionLane::Fail fail) {
  if (max_lanes_ <= 0) {
    return absl::FailedPreconditionError("this daemon opens no lanes (max_lanes is 0)");
  }
  if (int open = open_.fetch_add(1); open >= max_lanes_) {
    open_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%d lanes are open; the limit is %d (the session keeps using its gRPC stream)", open,
        max_lanes_));
  }
  absl::StatusOr<std::unique_ptr<SessionLane>> lane =
      SessionLane::Create(lane::LaneObjectName(instance_, session_id).substr(1), session_id,
                          std::move(serve), std::move(fail), spin_);
  if (!lane.ok()) open_.fetch_sub(1);
  return lane;
}

}  // namespace memd
