#include "listen/peer_table.h"

#include "absl/strings/numbers.h"

namespace memd {

bool PeerCredentials::InGroup(gid_t group) const {
  if (gid == group) return true;
  for (gid_t g : groups) {
    if (g == group) return true;
  }
  return false;
}

void PeerTable::Record(int fd, PeerCredentials creds) {
  MutexLock lock(&mu_);
  by_fd_[fd] = creds;
}

std::optional<PeerCredentials> PeerTable::Lookup(std::string_view grpc_peer) const {
  int fd = -1;
  if (!grpc_peer.starts_with("fd:") ||
      !absl::SimpleAtoi(absl::string_view(grpc_peer.data() + 3, grpc_peer.size() - 3), &fd)) {
    return std::nullopt;
  }
  MutexLock lock(&mu_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return it->second;
}

}  // namespace memd
