#include "service/orphan_registry.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace memd {

UniqueFd OpenPidfd(pid_t pid) {
  if (pid <= 0) return UniqueFd();
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

bool ProcessExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;  // readable (or an error): the process is gone
}

OrphanRegistry::OrphanRegistry() : wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  reaper_ = std::thread([this] { Reap(); });
}

OrphanRegistry::~OrphanRegistry() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  reaper_.join();
}

void OrphanRegistry::Add(Pool* pool, HolderId holder, std::string ticket, uid_t uid,
                         UniqueFd pidfd) {
  if (!pidfd.valid() || ProcessExited(pidfd.get())) {
    pool->CloseHolder(holder);
    return;
  }
  {
    MutexLock lock(&mu_);
    orphans_.push_back(Orphan{pool, holder, std::move(ticket), uid, std::move(pidfd)});
  }
  Wake();  // the reaper polls the new pidfd too
}

HolderId OrphanRegistry::Find(const Pool* pool, const std::string& ticket, uid_t uid) const {
  if (ticket.empty()) return HolderId::kNone;
  MutexLock lock(&mu_);
  for (const Orphan& o : orphans_) {
    if (o.pool == pool && o.uid == uid && o.ticket == ticket) return o.holder;
  }
  return HolderId::kNone;
}

void OrphanRegistry::Finish(const Pool* pool, const std::string& ticket, uid_t uid) {
  {
    MutexLock lock(&mu_);
    for (Orphan& o : orphans_) {
      if (o.pool == pool && o.uid == uid && o.ticket == ticket) o.finished = true;
    }
  }
  Wake();
}

void OrphanRegistry::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

size_t OrphanRegistry::size() const {
  MutexLock lock(&mu_);
  return orphans_.size();
}

void OrphanRegistry::Reap() {
  // The registry may be made before the daemon blocks its signals for
  // sigwait; this thread must never be the one a SIGTERM or SIGHUP goes to.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::vector<pollfd> fds;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      // Exited processes: their orphans go now. Only this thread removes
      // entries, so the descriptors polled below stay open meanwhile.
      for (auto it = orphans_.begin(); it != orphans_.end();) {
        bool exited = ProcessExited(it->pidfd.get());
        // Usage, not Holdings: O(1), where listing the holdings walks the
        // pool's slot records (holder_ledger.h), and every reclaim wakes this.
        if (!exited && !it->finished && it->pool->Usage(it->holder).held_buffers > 0) {
          ++it;
          continue;
        }
        uint64_t released = it->pool->CloseHolder(it->holder);
        spdlog::debug("session left in pool '{}': {}; released {} references", it->pool->name(),
                      exited ? "its process exited" : "everything was reclaimed", released);
        it = orphans_.erase(it);
      }
      fds.assign(1, pollfd{wake_.get(), POLLIN, 0});
      for (const Orphan& o : orphans_) fds.push_back(pollfd{o.pidfd.get(), POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    uint64_t drained;
    [[maybe_unused]] ssize_t n = ::read(wake_.get(), &drained, sizeof(drained));
  }
}

}  // namespace memd
