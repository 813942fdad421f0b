// CopyCache: the pool copies of the last few non-memd buffers memdsinks of
// one process sent, so that a tee into several memdsinks (tee gives
// upstream no downstream pool when it has more than one branch) copies each
// buffer once and every sink sends that one copy by reference. Private to
// the memd plugin.
//
// An entry is keyed by the GstBuffer's address and its PTS (a pooled
// GstBuffer comes back with other bytes under a later PTS) and holds one
// memd reference of the copy, released on eviction. It holds no ref of the
// GstBuffer: upstream pools of a few buffers (capture devices) never wait
// for the cache. Buffers without a PTS are not cached. At most kEntries per
// process; a sink that lags further behind copies again (correct, not shared).
//
// Thread-safety: every function may be called from any streaming thread.
#ifndef MEMD_GST_MEMD_COPY_CACHE_H_
#define MEMD_GST_MEMD_COPY_CACHE_H_

#include <gst/gst.h>

#include <memory>

#include "absl/status/statusor.h"
#include "memd/client.h"

namespace memd::gst {

struct CopyResult {
  uint64_t handle = 0;       // send it with SendMode::kShare
  bool copied = false;       // this call made the copy (false: another sink's)
  bool caller_owns = false;  // not cached: send with SendMode::kMove instead
};

// The pool copy of `buffer` in `client`'s session, made now if none is cached.
absl::StatusOr<CopyResult> CopyOf(const std::shared_ptr<Client>& client, GstBuffer* buffer);

// Drops the entries of `client` (a sink that stops).
void DropCopies(const Client* client);

}  // namespace memd::gst

#endif  // MEMD_GST_MEMD_COPY_CACHE_H_
