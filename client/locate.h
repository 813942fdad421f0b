// Locate: what a pointer a caller passes is, resolved in one place for the
// C API, the C++ API (Client::Held) and channel sends: a live arena block
// (with its handle, 0 when it has none yet), a buffer the session holds, or
// neither, with the error that says why (foreign, interior, freed, sent
// away, lost at a daemon restart). The arena is asked first: a chunk and
// the first block carved from it share an offset. Private to libmemd;
// thread-safe (the arena and the Holdings are).
#ifndef MEMD_CLIENT_LOCATE_H_
#define MEMD_CLIENT_LOCATE_H_

#include "absl/status/status.h"
#include "arena.h"
#include "memd/client.h"

namespace memd {

struct Located {
  enum class Kind { kArenaBlock, kBuffer, kNotOurs };
  Kind kind = Kind::kNotOurs;
  Arena::Block block;  // kArenaBlock
  BufferRef buffer;    // kBuffer
  absl::Status why;    // kNotOurs
};

Located Locate(const Client& client, const void* ptr);

}  // namespace memd

#endif  // MEMD_CLIENT_LOCATE_H_
