// UnixListener: memd's own accept loop for a Unix-domain socket. Each accepted
// connection's SO_PEERCRED is taken, then its ConnectionGate decides: a gRPC
// connection is recorded in the PeerTable and handed to the gRPC server
// (grpc::AddInsecureChannelFromFd), a descriptor request is answered, the
// rest are closed. Owning the socket also
// lets memd set its mode and tell a stale socket file from a live daemon.
//
// Ownership: owned by the Daemon. Start() spawns one accept thread; Stop()
// joins it, closes the socket and unlinks its path. Not copyable.
#ifndef MEMD_SERVER_LISTEN_UNIX_LISTENER_H_
#define MEMD_SERVER_LISTEN_UNIX_LISTENER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "listen/connection_gate.h"
#include "listen/peer_table.h"

namespace grpc {
class Server;
}

namespace memd {

// Who gets a socket file (or a directory UnixListener creates): -1 keeps the
// daemon's own uid or gid.
struct SocketOwnership {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

class UnixListener {
 public:
  // Creates the parent directory if missing (0755, given to `dir_owner.uid` so
  // a daemon that drops privileges can still remove its socket), replaces a
  // stale socket file (nobody accepts on it), refuses a live one, binds, and
  // gives the socket `mode` and `socket_owner`.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Bind(const std::string& path, mode_t mode,
                                                            SocketOwnership socket_owner = {},
                                                            SocketOwnership dir_owner = {});

  // Serves on a listening socket someone else bound (systemd's memd.socket,
  // passed in $LISTEN_FDS). Its file and mode stay the owner's: Stop() closes
  // the descriptor but never unlinks `path`, so the socket outlives restarts.
  static std::unique_ptr<UnixListener> Adopt(const std::string& path, int listen_fd);
  ~UnixListener();

  // REQUIRES: server, peers and what `descriptors` uses outlive Stop().
  void Start(grpc::Server* server, PeerTable* peers, GateLimits limits,
             ConnectionGate::DescriptorHandler descriptors);
  void Stop();

  const std::string& path() const { return path_; }

 private:
  UnixListener(std::string path, int listen_fd, int wake_fd, bool owns_path = true)
      : path_(std::move(path)), listen_fd_(listen_fd), wake_fd_(wake_fd), owns_path_(owns_path) {}
  void AcceptLoop(grpc::Server* server);

  const std::string path_;
  int listen_fd_;
  int wake_fd_;  // eventfd that interrupts poll() on Stop()
  const bool owns_path_;  // Bind made the file (Stop unlinks it); Adopt did not
  std::unique_ptr<ConnectionGate> gate_;  // the accept thread's, once started
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace memd

#endif  // MEMD_SERVER_LISTEN_UNIX_LISTENER_H_
