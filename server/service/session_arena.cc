// SessionHandler: the arena operations of a session (memory.proto, numbers
// 40..49). The pool does the work (server/pool/pool_arena.cc); the session
// checks the wire limits and records its client's counters for listings.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "memd/shared/text.h"
#include "service/session_handler.h"
#include "service/status_convert.h"
#include "trace/trace_points.h"

namespace memd {

absl::Status SessionHandler::ArenaRegister(const v1::ArenaRegisterRequest& request,
                                           v1::ArenaRegisterResponse* out) {
  absl::StatusOr<BufferInfo> range =
      pool_->ArenaRegister(holder_, request.chunk(), request.offset_bytes(),
                           request.size_bytes(), request.capacity_bytes());
  if (range.ok()) {
    trace::Allocated(pool_->index(), session_id_, range->handle, range->size_bytes);
    FillBuffer(*range, out->mutable_range());
  }
  return range.status();
}

absl::StatusOr<std::vector<BufferInfo>> SessionHandler::RegisterForSend(
    const v1::ChannelSendRequest& send, std::vector<uint64_t>* handles) {
  const int zeros = static_cast<int>(std::count(handles->begin(), handles->end(), 0));
  if (send.register_first_size() != zeros) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "send to channel '%s' names %d ranges to register for %d zero handles; each zero "
        "handle stands for one range", Escaped(send.channel()), send.register_first_size(),
        zeros));
  }
  if (absl::Status s = ChannelRegistry::CheckHandleCount(send.channel(), handles->size()); !s.ok()) {
    return s;
  }
  std::vector<BufferInfo> registered;
  int next = 0;
  for (uint64_t& handle : *handles) {
    if (handle != 0) continue;
    const v1::ArenaRegisterRequest& r = send.register_first(next++);
    absl::StatusOr<BufferInfo> range = pool_->ArenaRegister(
        holder_, r.chunk(), r.offset_bytes(), r.size_bytes(), r.capacity_bytes());
    if (!range.ok()) {
      ReleaseRegistered(*pool_, holder_, registered);
      return range.status();
    }
    handle = range->handle;
    registered.push_back(*range);
  }
  for (const BufferInfo& info : registered) {
    trace::Allocated(pool_->index(), session_id_, info.handle, info.size_bytes);
  }
  return registered;
}

void SessionHandler::ReleaseRegistered(Pool& pool, HolderId holder,
                                       const std::vector<BufferInfo>& registered) {
  if (registered.empty()) return;
  std::vector<uint64_t> handles;
  for (const BufferInfo& info : registered) handles.push_back(info.handle);
  // Fails only when the session closed meanwhile, which released them.
  pool.ReleaseMany(holder, handles).IgnoreError();
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
