#include "listen/unix_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <grpcpp/server.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

sockaddr_un MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);  // ParseAddress bounded it
  return addr;
}

// True when something accepts connections on `path` (another daemon).
bool SocketIsLive(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr = MakeAddress(path);
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return live;
}

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::UnavailableError(absl::StrFormat("%s '%s': %s", what, path, std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Bind(const std::string& path,
                                                                 mode_t mode,
                                                                 SocketOwnership socket_owner,
                                                                 SocketOwnership dir_owner) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent)) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrFormat("cannot create socket directory '%s': %s",
                                                    parent.string(), ec.message()));
    }
    ::chmod(parent.c_str(), 0755);
    if (dir_owner.uid != static_cast<uid_t>(-1) || dir_owner.gid != static_cast<gid_t>(-1)) {
      if (::chown(parent.c_str(), dir_owner.uid, dir_owner.gid) != 0) {
        return Errno("cannot give the socket directory to the --user", parent.string());
      }
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("'%s' exists and is not a socket; refusing to replace it", path));
    }
    if (SocketIsLive(path)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "another daemon is serving on '%s'; stop it or choose another --listen address", path));
    }
    spdlog::warn("replacing stale socket {} left by a previous daemon", path);
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot create socket for", path);
  sockaddr_un addr = MakeAddress(path);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status status = Errno("cannot bind", path);
    ::close(fd);
    return status;
  }
  bool chown_needed = socket_owner.uid != static_cast<uid_t>(-1) ||
                      socket_owner.gid != static_cast<gid_t>(-1);
  if (chown_needed && ::chown(path.c_str(), socket_owner.uid, socket_owner.gid) != 0) {
    absl::Status status = Errno("cannot set the owner or group (--socket-group) of", path);
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  }
  if (::chmod(path.c_str(), mode) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    absl::Status status = Errno("cannot listen on", path);
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  }
  int wake = ::eventfd(0, EFD_CLOEXEC);
  return std::unique_ptr<UnixListener>(new UnixListener(path, fd, wake));
}

std::unique_ptr<UnixListener> UnixListener::Adopt(const std::string& path, int listen_fd) {
  int wake = ::eventfd(0, EFD_CLOEXEC);
  return std::unique_ptr<UnixListener>(new UnixListener(path, listen_fd, wake, /*owns_path=*/false));
}

UnixListener::~UnixListener() { Stop(); }

void UnixListener::Start(grpc::Server* server, PeerTable* peers, GateLimits limits,
                         ConnectionGate::DescriptorHandler descriptors) {
  gate_ = std::make_unique<ConnectionGate>(path_, limits, peers, std::move(descriptors));
  thread_ = std::thread([this, server] { AcceptLoop(server); });
}

void UnixListener::AcceptLoop(grpc::Server* server) {
  std::vector<pollfd> fds;
  while (true) {
    fds.assign({{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}});
    gate_->AppendPollFds(&fds);
    if (::poll(fds.data(), fds.size(), gate_->PollTimeoutMs()) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll on {} failed: {}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    gate_->Serve(server, fds.data() + 2, fds.size() - 2);
    if (fds[0].revents == 0) continue;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("accept on {} failed: {}", path_, std::strerror(errno));
        if (errno == EMFILE || errno == ENFILE) ::usleep(10000);  // let connections drain
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("SO_PEERCRED on {} failed: {}; closing connection", path_, std::strerror(errno));
      ::close(conn);
      continue;
    }
    PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}};
    // Supplementary groups as the kernel saw them at connect(); group access
    // to pools and the admin group rest on them.
    std::vector<gid_t> groups(64);
    socklen_t groups_len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    int rc = ::getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &groups_len);
    if (rc != 0 && errno == ERANGE) {  // groups_len now says how much is needed
      groups.resize(groups_len / sizeof(gid_t));
      rc = ::getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &groups_len);
    }
    groups.resize(rc == 0 ? groups_len / sizeof(gid_t) : 0);  // none known: no group access
    peer.groups = std::move(groups);
    spdlog::debug("connection fd {} on {} from pid {} uid {}", conn, path_, cred.pid, cred.uid);
    gate_->Admit(conn, std::move(peer));
  }
}

void UnixListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  uint64_t one = 1;
  if (thread_.joinable()) {
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  gate_.reset();  // closes connections still waiting
  ::close(listen_fd_);
  ::close(wake_fd_);
  if (owns_path_) ::unlink(path_.c_str());
}

}  // namespace memd
