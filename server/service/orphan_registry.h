// OrphanRegistry: sessions whose stream ended while their process still
// lived: a broken stream (the client could not parse an answer, its lane
// was closed for scribbling), an admin's end-session. Their references are
// not released: the process may still write through pointers into those
// buffers, so giving them to another process would let it corrupt that
// process's memory. They stay with the session's holder until the process
// reclaims them on a new session, proving it with the old session's ticket
// (ReclaimRequest.ticket), or exits (its pidfd becomes readable), and are
// released then. A session that ends with a `close` request (libmemd's
// Client going away) or whose process is gone is released at once.
//
// Ownership: one per Daemon; outlives the sessions, dies before the pools.
// Thread-safe: one mutex; a reaper thread of its own watches the pidfds.
#ifndef MEMD_SERVER_SERVICE_ORPHAN_REGISTRY_H_
#define MEMD_SERVER_SERVICE_ORPHAN_REGISTRY_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "memd/shared/mutex.h"
#include "memd/shared/unique_fd.h"
#include "pool/pool.h"

namespace memd {

class OrphanRegistry {
 public:
  OrphanRegistry();
  ~OrphanRegistry();  // stops the reaper; the holders stay (the daemon is stopping)
  OrphanRegistry(const OrphanRegistry&) = delete;
  OrphanRegistry& operator=(const OrphanRegistry&) = delete;

  // Keeps `holder` of `pool` for the process behind `pidfd`. Releases it at
  // once when that process has exited already.
  void Add(Pool* pool, HolderId holder, std::string ticket, uid_t uid, UniqueFd pidfd);

  // The holder a session of `uid` with `ticket` left in `pool`; kNone when
  // there is none.
  HolderId Find(const Pool* pool, const std::string& ticket, uid_t uid) const;

  // Wakes the reaper: something was reclaimed (orphans left empty are
  // closed), the list changed, or the registry stops.
  void Wake();
  // The process reclaimed what it knows of (ReclaimRequest.last_batch): the rest
  // that session left is released (by the reaper, at once).
  void Finish(const Pool* pool, const std::string& ticket, uid_t uid);

  size_t size() const;

 private:
  struct Orphan {
    Pool* pool;
    HolderId holder;
    std::string ticket;
    uid_t uid;
    UniqueFd pidfd;
    bool finished = false;  // reclaimed for good: release the rest
  };
  void Reap();  // the reaper thread

  mutable Mutex mu_;
  std::vector<Orphan> orphans_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  UniqueFd wake_;  // eventfd: the list changed, or stop
  std::thread reaper_;
};

// A pidfd for `pid` (pidfd_open); invalid when the kernel has none or the
// process is gone.
UniqueFd OpenPidfd(pid_t pid);
// Whether the process behind `pidfd` has exited.
bool ProcessExited(int pidfd);

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ORPHAN_REGISTRY_H_
