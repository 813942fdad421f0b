// DescriptorService: answers descriptor requests (memd/shared/fd_handoff.h)
// that the ConnectionGate hands it: a session's pool memory and lane memory,
// and a restarted daemon's pool memory offered back by a client.
//
// Who gets what: a request names its session and proves it with the
// session's ticket (16 random bytes only that session's stream received),
// and the connection's kernel credentials must be the session's uid. The
// session passed the pool's access check at attach, so only peers allowed on
// a pool ever hold its descriptor. An offer of pool memory needs no session
// (its daemon restarted) but the peer must be allowed on that pool, and the
// descriptor must be the very object the pool's private state records.
//
// Ownership: owned by the Daemon; outlives the listeners. Thread-safe; called
// on the accept thread.
#ifndef MEMD_SERVER_SERVICE_DESCRIPTOR_SERVICE_H_
#define MEMD_SERVER_SERVICE_DESCRIPTOR_SERVICE_H_

#include "listen/peer_table.h"
#include "pool/pool_registry.h"
#include "service/session_registry.h"
#include "startup/pool_memory.h"

namespace memd {

class DescriptorService {
 public:
  DescriptorService(const PoolRegistry& pools, const SessionRegistry& sessions, PoolMemory& memory)
      : pools_(pools), sessions_(sessions), memory_(memory) {}

  // Reads one request from `connection` and writes its reply.
  void Serve(int connection, const PeerCredentials& peer);

 private:
  const PoolRegistry& pools_;
  const SessionRegistry& sessions_;
  PoolMemory& memory_;
};

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_DESCRIPTOR_SERVICE_H_
