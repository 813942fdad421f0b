// SessionHandler: the arena operations of a session (memory.proto, numbers
// 40..49). The pool does the work (server/pool/pool_arena.cc); the session
// checks the wire limits and records its client's counters for listings.
#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "service/session_handler.h"
#include "service/status_convert.h"

namespace memd {

absl::Status SessionHandler::ArenaRegister(const v1::ArenaRegisterRequest& request,
                                           v1::ArenaRegisterResponse* out) {
  absl::StatusOr<BufferInfo> range =
      pool_->ArenaRegister(holder_, request.chunk(), request.offset_bytes(),
                           request.size_bytes(), request.capacity_bytes());
  if (range.ok()) FillBuffer(*range, out->mutable_range());
  return range.status();
}

absl::Status SessionHandler::ArenaReport(const v1::ArenaReportRequest& request,
                                         v1::ArenaReportResponse* out) {
  for (int n : {request.idle_size(), request.use_size()}) {
    if (static_cast<uint32_t>(n) > limits::kMaxBatch) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "arena report of %d chunks; at most %u are allowed", n, limits::kMaxBatch));
    }
  }
  if (request.idle_size() > 0) {
    pool_->ArenaIdle(holder_, std::vector<uint64_t>(request.idle().begin(), request.idle().end()));
  }
  if (request.use_size() > 0) {
    for (uint64_t taken :
         pool_->ArenaUse(holder_, std::vector<uint64_t>(request.use().begin(), request.use().end()))) {
      out->add_taken(taken);
    }
  }
  if (request.has_counters()) {
    const v1::ArenaCounters& c = request.counters();
    pool_->SetArenaUsage(holder_, ArenaUsage{.reserved_bytes = c.reserved_bytes(),
                                             .in_use_bytes = c.in_use_bytes(),
                                             .local_allocs = c.local_allocs()});
  }
  return absl::OkStatus();
}

}  // namespace memd
