#include "service/descriptor_service.h"

#include <fcntl.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "access/pool_access.h"
#include "memd/shared/fd_handoff.h"

namespace memd {
namespace {

using fd_handoff::Kind;

// Constant time: how many bytes of a guess match tells nothing.
bool TicketMatches(const std::string& ticket, const uint8_t (&given)[fd_handoff::kTicketBytes]) {
  if (ticket.size() != fd_handoff::kTicketBytes) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < fd_handoff::kTicketBytes; ++i) {
    diff |= static_cast<uint8_t>(ticket[i]) ^ given[i];
  }
  return diff == 0;
}

// `fd` opened again, read-only, through /proc/self/fd (a memfd has no other
// name). The new descriptor shares the object, its size and seals.
absl::StatusOr<UniqueFd> ReopenReadOnly(int fd) {
  std::string path = absl::StrFormat("/proc/self/fd/%d", fd);
  int reader = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader < 0) {
    return absl::InternalError(
        absl::StrFormat("cannot open pool memory read-only (%s): %s", path, std::strerror(errno)));
  }
  return UniqueFd(reader);
}

}  // namespace

void DescriptorService::Serve(int connection, const PeerCredentials& peer) {
  UniqueFd offered;
  absl::StatusOr<fd_handoff::Request> request = fd_handoff::ReadRequest(connection, &offered);
  if (!request.ok()) {
    fd_handoff::WriteReply(connection, request.status(), -1, 0);
    return;
  }
  if (std::memcmp(request->magic, fd_handoff::kMagic, sizeof(fd_handoff::kMagic)) != 0) {
    fd_handoff::WriteReply(connection,
                           absl::InvalidArgumentError("not a memd descriptor request"), -1, 0);
    return;
  }
  auto kind = static_cast<Kind>(request->kind);
  if (kind == Kind::kReturnPool) {
    std::vector<Pool*> pools = pools_.pools();
    Pool* pool = request->pool_index < pools.size() ? pools[request->pool_index] : nullptr;
    absl::Status status;
    if (pool == nullptr) {
      status = absl::NotFoundError(absl::StrFormat("no pool number %u", request->pool_index));
    } else if (!MayReadWrite(peer, pool->access())) {
      status = absl::PermissionDeniedError(absl::StrFormat(
          "pool '%s' is not open to uid %u", pool->name(), peer.uid));
    } else if (!offered.valid()) {
      status = absl::InvalidArgumentError("an offer of pool memory carries no descriptor");
    } else {
      status = memory_.Offer(request->pool_index, request->segment_id, std::move(offered));
    }
    if (!status.ok() && !absl::IsFailedPrecondition(status)) {
      spdlog::warn("refused pool memory offered by pid {} uid {}: {}", peer.pid, peer.uid,
                   std::string(status.message()));
    }
    fd_handoff::WriteReply(connection, status, -1, 0);
    return;
  }
  if (kind != Kind::kPoolMemory && kind != Kind::kLaneMemory) {
    fd_handoff::WriteReply(connection, absl::InvalidArgumentError(absl::StrFormat(
                                           "descriptor request kind %u is unknown", request->kind)),
                           -1, 0);
    return;
  }
  absl::Status status = absl::OkStatus();
  bool found = sessions_.WithSession(request->session_id, [&](const SessionRegistry::Record& r) {
    if (!r.peer || r.peer->uid != peer.uid || !TicketMatches(r.ticket, request->ticket)) {
      status = absl::PermissionDeniedError(absl::StrFormat(
          "session %u's descriptors are not open to uid %u with that ticket", request->session_id,
          peer.uid));
      return;
    }
    if (kind == Kind::kLaneMemory) {
      if (r.lane_fd < 0) {
        status = absl::FailedPreconditionError(
            absl::StrFormat("session %u has no lane", request->session_id));
        return;
      }
      fd_handoff::WriteReply(connection, absl::OkStatus(), r.lane_fd, 0);
      return;
    }
    absl::Status reopened = absl::OkStatus();
    status = memory_.WithDescriptor(r.pool->index(), [&](int fd, uint64_t size_bytes) {
      if (!r.read_only) {
        fd_handoff::WriteReply(connection, absl::OkStatus(), fd, size_bytes);
        return;
      }
      // A reader gets the same object opened read-only: the kernel then
      // refuses it a writable mapping and mprotect to write.
      absl::StatusOr<UniqueFd> reader = ReopenReadOnly(fd);
      if (!reader.ok()) {
        reopened = reader.status();
        return;
      }
      fd_handoff::WriteReply(connection, absl::OkStatus(), reader->get(), size_bytes);
    });
    if (status.ok()) status = reopened;
  });
  if (!found) {
    status = absl::NotFoundError(absl::StrFormat("no session %u", request->session_id));
  }
  if (!status.ok()) fd_handoff::WriteReply(connection, status, -1, 0);
}

}  // namespace memd
