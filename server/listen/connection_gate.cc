#include "listen/connection_gate.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "memd/shared/fd_handoff.h"

namespace memd {
namespace {

int DescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

}  // namespace

bool ConnectionGate::LogAllowed(uint64_t* suppressed) {
  absl::Time now = absl::Now();
  if (now - last_log_ < absl::Seconds(1)) {
    ++unlogged_;
    return false;
  }
  last_log_ = now;
  *suppressed = std::exchange(unlogged_, 0);
  return true;
}

int RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  return DescriptorLimit();
}

ConnectionGate::~ConnectionGate() {
  for (const Pending& p : pending_) ::close(p.fd);
}

bool ConnectionGate::Privileged(const PeerCredentials& peer) const {
  return peer.uid == 0 || peer.uid == ::geteuid() ||
         (limits_.admin_gid && peer.InGroup(*limits_.admin_gid));
}

void ConnectionGate::Admit(int connection, PeerCredentials peer) {
  const char* refused = nullptr;
  int count = 0, limit = 0;
  if (!Privileged(peer)) {
    // accept() returns the lowest free descriptor: one this high means
    // nearly every lower one is in use.
    if (limit = DescriptorLimit() - limits_.fd_headroom; connection >= limit) {
      refused = "descriptors are nearly exhausted; the rest are kept for root, memd's user and "
                "the admin group";
      count = connection;
    } else if (limits_.max_per_uid > 0) {
      count = peers_->OpenConnections(peer.uid);
      for (const Pending& p : pending_) count += p.peer.uid == peer.uid;
      if (count >= limits_.max_per_uid) {
        refused = "connections per uid are at their limit";
        limit = limits_.max_per_uid;
      }
    }
  }
  if (refused != nullptr) {
    if (uint64_t suppressed = 0; LogAllowed(&suppressed)) {
      spdlog::warn("refused a connection on {} from pid {} uid {}: {} ({} of {}){}", where_,
                   peer.pid, peer.uid, refused, count, limit,
                   suppressed > 0 ? fmt::format(" ({} more refusals not logged)", suppressed) : "");
    }
    ::close(connection);
    return;
  }
  pending_.push_back(Pending{connection, std::move(peer),
                             absl::Now() + limits_.handshake_timeout});
}

void ConnectionGate::AppendPollFds(std::vector<pollfd>* fds) const {
  for (const Pending& p : pending_) fds->push_back(pollfd{p.fd, POLLIN | POLLRDHUP, 0});
}

int ConnectionGate::PollTimeoutMs() const {
  if (pending_.empty()) return -1;
  absl::Time first = absl::InfiniteFuture();
  for (const Pending& p : pending_) first = std::min(first, p.deadline);
  return static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(first - absl::Now()) + 1, 0, 60'000));
}

void ConnectionGate::Serve(grpc::Server* server, const pollfd* ready, size_t count) {
  absl::Time now = absl::Now();
  std::vector<Pending> still;
  for (size_t i = 0; i < pending_.size(); ++i) {
    Pending& p = pending_[i];
    short events = i < count ? ready[i].revents : 0;
    if (events == 0) {
      if (now < p.deadline) {
        still.push_back(std::move(p));
      } else {
        if (uint64_t suppressed = 0; LogAllowed(&suppressed)) {
          spdlog::warn("closed a connection on {} from pid {} uid {} that sent nothing for {}",
                       where_, p.peer.pid, p.peer.uid,
                       absl::FormatDuration(limits_.handshake_timeout));
        }
        ::close(p.fd);
      }
      continue;
    }
    char first = 0;
    ssize_t got = ::recv(p.fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got == 1 && first == 'P') {
      struct stat st {};
      ::fstat(p.fd, &st);
      peers_->Record(p.fd, p.peer, static_cast<uint64_t>(st.st_ino));
      grpc::AddInsecureChannelFromFd(server, p.fd);  // gRPC owns and closes it now
    } else if (got == 1 && first == fd_handoff::kMagic[0]) {
      descriptors_(p.fd, p.peer);
      ::close(p.fd);
    } else {
      ::close(p.fd);  // a hang-up, or bytes no memd client sends
    }
  }
  pending_ = std::move(still);
}

}  // namespace memd
