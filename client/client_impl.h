// Client::Impl: a Client's session state, shared by libmemd's sources
// through ClientInternals (client_internals.h). Private to libmemd.
//
// Who owns what: the SessionLink owns the connection and the session's
// Holdings (what it holds); the arena (null when off) keeps allocator state
// and reaches the daemon through `chunks`, its port over the link; the
// housekeeper thread runs the arena's tick. Members are declared so that
// they are destroyed in the right order: the housekeeper first (no tick
// runs after), then the arena, its port, the link.
#ifndef MEMD_CLIENT_CLIENT_IMPL_H_
#define MEMD_CLIENT_CLIENT_IMPL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "memd/client.h"
#include "memd/shared/mutex.h"
#include "arena.h"
#include "housekeeper.h"
#include "link_chunk_source.h"
#include "session_link.h"

namespace memd {

// Hidden: nested in an exported class, it would be exported otherwise.
struct __attribute__((visibility("hidden"))) Client::Impl {
  std::string address;
  PoolInfo pool;
  std::unique_ptr<SessionLink> link;
  uint8_t* base = nullptr;  // link->base(): the link owns the mapping
  std::unique_ptr<LinkChunkSource> chunks;  // the arena's port; null: arenas off
  std::unique_ptr<Arena> arena;             // null: arenas off
  std::unique_ptr<Housekeeper> housekeeper;  // the arena's tick; null: arenas off

  // The outstanding posted send (Client::Post). send_mu is held while it is
  // collected and the next one posted, so one thread's posts stay in order
  // and another thread's Post waits for them.
  struct PendingSend {
    SessionLink::Posted posted;
    std::string channel;
  };
  Mutex send_mu;
  std::optional<PendingSend> pending ABSL_GUARDED_BY(send_mu);

  // Collects `pending`, if any; its error names the channel.
  absl::Status CollectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu);
};

}  // namespace memd

#endif  // MEMD_CLIENT_CLIENT_IMPL_H_
