// ConnectionGate: where a new Unix-socket connection waits until its first
// byte says what it is, before anything else in the daemon sees it.
//
//   'P' (the HTTP/2 preface "PRI * HTTP/2.0"): a gRPC client; handed to the
//       gRPC server, which owns and closes the fd from then on.
//   'M' (fd_handoff::kMagic): a descriptor request (memd/shared/fd_handoff.h),
//       read whole and answered here by the DescriptorHandler, then closed.
//   anything else, nothing within the handshake timeout, or a hang-up: closed.
//
// So an idle connection holds a descriptor for at most the handshake timeout,
// and the limits are applied before a connection costs gRPC anything: at
// most `max_per_uid` open connections per uid (root and the daemon's own
// uid are exempt) and, while the process is within `fd_headroom` descriptors
// of its limit, only connections of root, the daemon's uid or the admin
// group, so `memctl health` and admin calls always get through.
//
// Ownership: owned by its UnixListener; used only by the accept thread.
#ifndef MEMD_SERVER_LISTEN_CONNECTION_GATE_H_
#define MEMD_SERVER_LISTEN_CONNECTION_GATE_H_

#include <poll.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "listen/peer_table.h"

namespace grpc {
class Server;
}

namespace memd {

struct GateLimits {
  // How long a new connection may stay silent before its first byte.
  absl::Duration handshake_timeout = absl::Seconds(5);
  // Open connections per uid (gRPC and pending together); 0: no limit.
  int max_per_uid = 256;
  // Descriptors kept free for privileged peers (root, the daemon's uid,
  // the admin group).
  int fd_headroom = 64;
  std::optional<gid_t> admin_gid;
};

class ConnectionGate {
 public:
  // Answers one descriptor request on `connection` (the bytes are there).
  using DescriptorHandler = std::function<void(int connection, const PeerCredentials& peer)>;

  ConnectionGate(std::string where, GateLimits limits, PeerTable* peers,
                 DescriptorHandler descriptors)
      : where_(std::move(where)), limits_(limits), peers_(peers),
        descriptors_(std::move(descriptors)) {}
  ~ConnectionGate();  // closes the connections still waiting
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // A connection accept() just returned (non-blocking). Refused ones are
  // closed at once (logged, rate-limited).
  void Admit(int connection, PeerCredentials peer);

  // The accept loop polls these after its own fds; then calls Serve with the
  // results. The timeout (ms, -1: none) is when the next one expires.
  void AppendPollFds(std::vector<pollfd>* fds) const;
  int PollTimeoutMs() const;
  void Serve(grpc::Server* server, const pollfd* ready, size_t count);

  size_t waiting() const { return pending_.size(); }

 private:
  struct Pending {
    int fd;
    PeerCredentials peer;
    absl::Time deadline;
  };
  bool Privileged(const PeerCredentials& peer) const;
  // Refusals are logged at most once a second, with how many were not.
  bool LogAllowed(uint64_t* suppressed);

  const std::string where_;
  const GateLimits limits_;
  PeerTable* const peers_;
  const DescriptorHandler descriptors_;
  std::vector<Pending> pending_;
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t unlogged_ = 0;
};

// Raises the soft descriptor limit to the hard one (start-up) and returns it.
int RaiseDescriptorLimit();

}  // namespace memd

#endif  // MEMD_SERVER_LISTEN_CONNECTION_GATE_H_
