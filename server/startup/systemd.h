// memd's side of the systemd service protocol (libsystemd's sd-daemon):
// readiness and status (Type=notify), socket activation (memd.socket), and the
// file-descriptor store that keeps every pool's memory across
// `systemctl restart` even when no client holds it (docs/operations.md).
//
// Outside systemd ($NOTIFY_SOCKET and $LISTEN_FDS unset) every function does
// nothing and InheritedFds is empty, so memd runs the same anywhere.
//
// Thread-safety: InheritedFds::Take runs once on the main thread before any
// other thread starts (it unsets $LISTEN_*); the Notify* functions and
// StorePoolMemory may be called from any thread (one datagram each).
#ifndef MEMD_SERVER_STARTUP_SYSTEMD_H_
#define MEMD_SERVER_STARTUP_SYSTEMD_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "memd/shared/unique_fd.h"

namespace memd {

// The descriptors systemd passed at start ($LISTEN_FDS, $LISTEN_FDNAMES):
// listening sockets of memd.socket and pool memfds from the store. Owned by
// the Daemon until each is taken; what nobody takes is closed with it.
class InheritedFds {
 public:
  // Takes every passed descriptor (marks them close-on-exec, unsets $LISTEN_*).
  static InheritedFds Take();

  // The listening Unix stream socket bound to `path`, if one was passed;
  // otherwise an invalid UniqueFd.
  UniqueFd TakeSocket(const std::string& path);
  // Pool `pool`'s memory from the store (FDNAME "pool.<pool>"), if passed.
  UniqueFd TakePoolMemory(const std::string& pool);
  // How many are left untaken (sockets memd does not listen on, memory of
  // pools no longer configured); they are closed with this object.
  size_t left() const { return fds_.size(); }
  // "name=fd" of those left, for a log line.
  std::string Describe() const;

 private:
  std::vector<std::pair<std::string, UniqueFd>> fds_;  // FDNAME, descriptor
};

// The name a pool's memory has in the store: "pool.<pool>".
std::string PoolMemoryFdName(std::string_view pool);

// READY=1 with a STATUS= line: start-up is complete and clients are served.
void NotifyReady(std::string_view status);
// STATUS= only (what `systemctl status memd` shows).
void NotifyStatus(std::string_view status);
// RELOADING=1 (with MONOTONIC_USEC=, as systemd 253+ wants) at the start of
// a SIGHUP reload; NotifyReady ends it.
void NotifyReloading();
// STOPPING=1: shutdown has begun.
void NotifyStopping();
// Puts `fd` (a pool's memfd) into the service's file-descriptor store as
// "pool.<pool>", replacing what the store held under that name. systemd
// keeps it across restarts of the service (FileDescriptorStoreMax= > 0) and
// passes it back at the next start. No-op outside systemd.
void StorePoolMemory(std::string_view pool, int fd);
// Removes pool `pool`'s memory from the store (memctl shutdown --discard), so
// the next start creates the pool empty. No-op outside systemd.
void ForgetPoolMemory(std::string_view pool);

}  // namespace memd

#endif  // MEMD_SERVER_STARTUP_SYSTEMD_H_
