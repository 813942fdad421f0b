#ifndef MEMD_CLIENT_CLIENT_INTERNALS_H_
#define MEMD_CLIENT_CLIENT_INTERNALS_H_

// libmemd's private view of a Client: the public header
// (include/memd/client.h) names no internal type; the one friend it declares
// is this key. Only libmemd's own sources include this header.

#include "memd/client.h"

namespace memd {

struct ClientInternals {
  // The session's state behind `client` (Client::Impl, client_impl.h):
  // the link and its holdings, the arena. Used by ArenaOf, Locate and
  // SendRegistering (arena.h), through which the C API reaches the arena.
  static Client::Impl& ImplOf(const Client& client) { return *client.impl_; }
};

}  // namespace memd

#endif  // MEMD_CLIENT_CLIENT_INTERNALS_H_
