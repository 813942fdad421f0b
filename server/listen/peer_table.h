// PeerTable: kernel-verified credentials (SO_PEERCRED) of every Unix-socket
// connection, keyed by the peer string gRPC reports for it ("fd:<n>").
//
// Written by UnixListener's accept thread, read by gRPC threads; thread-safe.
// An fd number is reused only after its connection closed, and the listener
// overwrites the entry on every accept, so a live call always sees its own peer.
#ifndef MEMD_SERVER_LISTEN_PEER_TABLE_H_
#define MEMD_SERVER_LISTEN_PEER_TABLE_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "memd/shared/mutex.h"

namespace memd {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;                // primary group
  std::vector<gid_t> groups;    // supplementary groups (SO_PEERGROUPS)

  bool InGroup(gid_t group) const;
};

class PeerTable {
 public:
  // `socket_inode`: fstat(fd).st_ino of the connection, which tells later
  // whether the fd still is that connection (gRPC closes fds it owns).
  void Record(int fd, PeerCredentials creds, uint64_t socket_inode = 0);
  // Connections of `uid` that are still open (their fd is still the socket
  // recorded for it). O(connections); called once per accepted connection.
  int OpenConnections(uid_t uid) const;
  // Credentials of a gRPC peer string; nullopt for TCP peers or unknown fds.
  std::optional<PeerCredentials> Lookup(std::string_view grpc_peer) const;

 private:
  mutable Mutex mu_;
  struct Entry {
    PeerCredentials creds;
    uint64_t socket_inode = 0;
  };
  absl::flat_hash_map<int, Entry> by_fd_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd

#endif  // MEMD_SERVER_LISTEN_PEER_TABLE_H_
