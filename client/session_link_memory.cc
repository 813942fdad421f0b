// SessionLink: the pool's memory across daemon restarts (session_link.h):
// descriptors fetched over the Unix socket, the memory offered back to a
// restarted daemon, and a process that held nothing continuing in new
// memory at the same address. Called by Open and the monitor thread
// (Reconnect); the rest of the link is session_link.cc.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "memd/shared/fd_handoff.h"
#include "session_link.h"

namespace memd {

absl::StatusOr<UniqueFd> SessionLink::FetchDescriptor(uint32_t kind, uint64_t session_id,
                                                      const std::string& ticket) const {
  fd_handoff::Request request = fd_handoff::MakeRequest(static_cast<fd_handoff::Kind>(kind));
  request.session_id = session_id;
  std::memcpy(request.ticket, ticket.data(), std::min(ticket.size(), sizeof(request.ticket)));
  return fd_handoff::Exchange(options_.socket_path, request);
}

absl::StatusOr<std::shared_ptr<SessionStream>> SessionLink::AttachToNewMemory(
    v1::AttachResponse* attached) {
  absl::StatusOr<std::shared_ptr<SessionStream>> stream = Attach(0, attached);
  if (!stream.ok()) return stream;
  if (attached->pool().size_bytes() != memory_bytes_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' is %u bytes now, not the %u bytes this client mapped", options_.pool,
        attached->pool().size_bytes(), memory_bytes_));
  }
  absl::StatusOr<UniqueFd> memory =
      FetchDescriptor(static_cast<uint32_t>(fd_handoff::Kind::kPoolMemory),
                      attached->session_id(), attached->ticket());
  if (!memory.ok()) return memory.status();
  // MAP_FIXED replaces the old mapping in one step: no other mapping can
  // take the range in between.
  void* at = ::mmap(base_, memory_bytes_, Protection(), MAP_SHARED | MAP_FIXED, memory->get(), 0);
  if (at == MAP_FAILED) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot map the new memory of pool '%s' in place: %s", options_.pool,
        std::strerror(errno)));
  }
  memory_fd_ = std::move(*memory);
  segment_id_ = attached->pool().segment_id();
  pool_index_ = attached->pool().index();
  return stream;
}

int SessionLink::Protection() const { return read_only_ ? PROT_READ : PROT_READ | PROT_WRITE; }

void SessionLink::OfferMemory() const {
  // A reader's descriptor is read-only: no daemon could continue in it.
  if (!memory_fd_.valid() || options_.socket_path.empty() || read_only_) return;
  fd_handoff::Request request = fd_handoff::MakeRequest(fd_handoff::Kind::kReturnPool);
  request.pool_index = pool_index_;
  request.segment_id = segment_id_;
  fd_handoff::Exchange(options_.socket_path, request, memory_fd_.get()).IgnoreError();
}

}  // namespace memd
