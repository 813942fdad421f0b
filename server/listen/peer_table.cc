#include "listen/peer_table.h"

#include <sys/stat.h>

#include "absl/strings/numbers.h"

namespace memd {

bool PeerCredentials::InGroup(gid_t group) const {
  if (gid == group) return true;
  for (gid_t g : groups) {
    if (g == group) return true;
  }
  return false;
}

void PeerTable::Record(int fd, PeerCredentials creds, uint64_t socket_inode) {
  MutexLock lock(&mu_);
  by_fd_[fd] = Entry{std::move(creds), socket_inode};
}

int PeerTable::OpenConnections(uid_t uid) const {
  MutexLock lock(&mu_);
  int open = 0;
  for (const auto& [fd, entry] : by_fd_) {
    if (entry.creds.uid != uid || entry.socket_inode == 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
        static_cast<uint64_t>(st.st_ino) == entry.socket_inode) {
      ++open;
    }
  }
  return open;
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
  return it->second.creds;
}

}  // namespace memd
