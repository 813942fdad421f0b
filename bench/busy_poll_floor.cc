#include "busy_poll_floor.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

namespace memd::bench {
namespace {

// Spins on a non-blocking read until 8 bytes came; false on EOF or error.
bool SpinRead(int fd, uint64_t* value) {
  while (true) {
    ssize_t n = ::recv(fd, value, sizeof(*value), MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(sizeof(*value))) return true;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
  }
}

}  // namespace

std::vector<double> BusyPollPingPongNs(int calls) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) != 0) return {};
  pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    uint64_t v;
    while (SpinRead(fds[1], &v)) {
      if (::send(fds[1], &v, sizeof(v), 0) != sizeof(v)) break;
    }
    _exit(0);
  }
  ::close(fds[1]);
  std::vector<double> rtt;
  rtt.reserve(calls);
  for (int i = 0; i < calls + 1000; ++i) {
    uint64_t v = i, back = 0;
    auto t0 = std::chrono::steady_clock::now();
    if (::send(fds[0], &v, sizeof(v), 0) != sizeof(v) || !SpinRead(fds[0], &back) || back != v) {
      rtt.clear();
      break;
    }
    if (i >= 1000) {
      rtt.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                        .count());
    }
  }
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  return rtt;
}

}  // namespace memd::bench
