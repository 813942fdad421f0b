// SessionRegistry: the live, attached sessions, for admin listings
// (`memctl clients`, `memctl buffers`). Thread-safe.
//
// A record points at its session's holder id in the pool's ledger (set
// before the record is added, never changed). Lock order: registry mutex,
// then a pool mutex. A session removes its record (Remove) before closing its
// holder and before the handler is destroyed, so a record seen under the
// registry mutex is always valid.
#ifndef MEMD_SERVER_SERVICE_SESSION_REGISTRY_H_
#define MEMD_SERVER_SERVICE_SESSION_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "listen/peer_table.h"
#include "memd/shared/mutex.h"
#include "pool/pool.h"
#include "service/orphan_registry.h"
#include "trace/recorder.h"

namespace memd {

class SessionRegistry {
 public:
  struct Record {
    uint64_t session_id = 0;
    std::optional<PeerCredentials> peer;
    std::string process_name;
    std::string client_name;
    Pool* pool = nullptr;
    const SessionRefs* refs = nullptr;  // the session's HolderId (AdminService's spelling)
    uint64_t connected_unix_ms = 0;
    bool lane = false;  // the session has a lane
    // A reader: its descriptor of the pool is read-only (DescriptorService)
    // and it may not write pool memory (SessionHandler::Dispatch).
    bool read_only = false;
    // The lane's memfd while the lane lives (-1: none); owned by the
    // SessionLane, which clears it here (SetLane) before it goes.
    int lane_fd = -1;
    // Secret the session proves itself with on a descriptor request
    // (AttachResponse.ticket); only the session's own stream carries it.
    std::string ticket;
    // Cancels the session's stream (an operator ending it); called under the
    // registry mutex, so the session is still alive.
    std::function<void()> end;
  };

  // Adds a live session. RESOURCE_EXHAUSTED naming the uid, its count and
  // the limit when the record's uid has max_per_uid() sessions already
  // (issue 24: one uid attached 2,028 sessions over one connection); nothing
  // is added then. A record without a peer (no uid) is not counted.
  absl::Status Add(Record record);
  // Attached sessions one uid may have at once (--max-sessions-per-uid; 0:
  // no limit). Set before serving.
  void set_max_per_uid(uint64_t max) { max_per_uid_.store(max); }
  uint64_t max_per_uid() const { return max_per_uid_.load(); }
  void Remove(uint64_t session_id);
  // Records whether the session has a lane and its memfd (no-op for an
  // unknown session).
  void SetLane(uint64_t session_id, bool lane, int lane_fd = -1);
  // Calls fn(record) for session `session_id` under the registry mutex
  // (descriptors in it stay valid for fn); false when there is none.
  bool WithSession(uint64_t session_id, const std::function<void(const Record&)>& fn) const;
  // Sessions that ended while their process lived (see OrphanRegistry).
  OrphanRegistry& orphans() { return orphans_; }

  // The daemon is stopping: sessions that end from now on keep their
  // references in the pools' state tables for the next daemon.
  void SetStopping() { stopping_.store(true); }
  bool stopping() const { return stopping_.load(); }

  // Ends a live session (its stream is cancelled, its references released).
  // False when there is no such session.
  bool End(uint64_t session_id);

  // Calls fn(record) for each live session in id order, under the registry
  // mutex (fn may take pool mutexes, nothing else).
  template <typename Fn>
  void ForEach(Fn fn) const {
    MutexLock lock(&mu_);
    for (const auto& [id, record] : records_) fn(record);
  }

  // Calls fn(records) once with every record, under the registry mutex, so
  // the records' refs stay valid for all of fn (fn may take pool mutexes).
  template <typename Fn>
  void WithRecords(Fn fn) const {
    MutexLock lock(&mu_);
    fn(records_);
  }

 private:
  mutable Mutex mu_;
  std::map<uint64_t, Record> records_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uid_t, uint64_t> per_uid_ ABSL_GUARDED_BY(mu_);  // records by peer uid
  std::atomic<uint64_t> max_per_uid_{0};
  std::atomic<bool> stopping_{false};
  OrphanRegistry orphans_;
};

// Who the session is, as a trace recording names it (trace/recorder.h).
trace::SessionInfo TraceSessionOf(const SessionRegistry::Record& record);

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_SESSION_REGISTRY_H_
