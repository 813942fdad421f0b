#include "memd/shared/fd_handoff.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace memd::fd_handoff {
namespace {

// How long a client waits for the daemon's reply (ms). The daemon answers
// from its accept thread at once; this only bounds a daemon that hangs.
constexpr int kReplyTimeoutMs = 10'000;

absl::Status Unavailable(const std::string& what, const std::string& path, int err) {
  return absl::UnavailableError(
      absl::StrFormat("descriptor handoff with memd at %s: %s: %s", path, what, std::strerror(err)));
}

// Sends `bytes` with `fd` (when valid) attached to the first byte.
bool SendWithFd(int socket, const void* bytes, size_t size, int fd) {
  iovec iov{const_cast<void*>(bytes), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  ssize_t sent;
  do {
    sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(size);
}

// Receives up to `size` bytes and at most one descriptor (extra ones are
// closed). Returns the byte count, or -1 with errno.
ssize_t ReceiveWithFd(int socket, void* bytes, size_t size, UniqueFd* fd) {
  iovec iov{bytes, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int passed;
      std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (fd != nullptr && !fd->valid()) {
        fd->Reset(passed);
      } else {
        ::close(passed);  // more than the one descriptor a message may carry
      }
    }
  }
  return got;
}

// Reads exactly `size` bytes within the reply timeout.
bool ReadFully(int socket, char* bytes, size_t size, UniqueFd* fd) {
  size_t done = 0;
  while (done < size) {
    pollfd p{socket, POLLIN, 0};
    int ready = ::poll(&p, 1, kReplyTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (ready == 0) errno = ETIMEDOUT;
      return false;
    }
    ssize_t got = ReceiveWithFd(socket, bytes + done, size - done, fd);
    if (got <= 0) {
      if (got == 0) errno = ECONNRESET;
      return false;
    }
    done += static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

Request MakeRequest(Kind kind) {
  Request request{};
  std::memcpy(request.magic, kMagic, sizeof(kMagic));
  request.kind = static_cast<uint32_t>(kind);
  return request;
}

absl::StatusOr<UniqueFd> Exchange(const std::string& socket_path, const Request& request,
                                  int give) {
  UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return Unavailable("socket", socket_path, errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "socket path '%s' is %u bytes; the limit is %u", socket_path, socket_path.size(),
        sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Unavailable("connect", socket_path, errno);
  }
  if (!SendWithFd(socket.get(), &request, sizeof(request), give)) {
    return Unavailable("send", socket_path, errno);
  }
  Reply reply{};
  UniqueFd passed;
  if (!ReadFully(socket.get(), reinterpret_cast<char*>(&reply), sizeof(reply), &passed)) {
    return Unavailable("reply", socket_path, errno);
  }
  std::string message(std::min(reply.message_bytes, kMaxMessageBytes), '\0');
  if (!message.empty() && !ReadFully(socket.get(), message.data(), message.size(), &passed)) {
    return Unavailable("reply text", socket_path, errno);
  }
  if (reply.status_code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(reply.status_code), message);
  }
  return passed;
}

absl::StatusOr<Request> ReadRequest(int connection, UniqueFd* passed) {
  Request request{};
  ssize_t got = ReceiveWithFd(connection, &request, sizeof(request), passed);
  if (got != static_cast<ssize_t>(sizeof(request))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a descriptor request of %d bytes; it is %u bytes", got, sizeof(request)));
  }
  return request;
}

void WriteReply(int connection, const absl::Status& status, int fd, uint64_t size_bytes) {
  std::string message(status.message().substr(0, kMaxMessageBytes));
  std::string bytes(sizeof(Reply) + message.size(), '\0');
  Reply reply{static_cast<int32_t>(status.code()), static_cast<uint32_t>(message.size()),
              status.ok() ? size_bytes : 0};
  std::memcpy(bytes.data(), &reply, sizeof(reply));
  std::memcpy(bytes.data() + sizeof(reply), message.data(), message.size());
  SendWithFd(connection, bytes.data(), bytes.size(), status.ok() ? fd : -1);
}

}  // namespace memd::fd_handoff
