#include "startup/systemd.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace memd {
namespace {

// sd_notify with the status text on one line (a newline would start a new
// assignment in the datagram).
std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

void Notify(const std::string& state) {
  if (int rc = sd_notify(0, state.c_str()); rc < 0) {
    spdlog::warn("cannot notify systemd ({}): {}", state.substr(0, state.find('\n')),
                 std::strerror(-rc));
  }
}

}  // namespace

InheritedFds InheritedFds::Take() {
  InheritedFds inherited;
  char** names = nullptr;
  int n = sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  if (n < 0) {
    spdlog::warn("ignoring descriptors passed by systemd ($LISTEN_FDS): {}", std::strerror(-n));
    return inherited;
  }
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    inherited.fds_.emplace_back(names != nullptr && names[i] != nullptr ? names[i] : "unknown",
                                UniqueFd(fd));
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return inherited;
}

UniqueFd InheritedFds::TakeSocket(const std::string& path) {
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    if (sd_is_socket_unix(it->second.get(), SOCK_STREAM, /*listening=*/1, path.c_str(), 0) > 0) {
      UniqueFd fd = std::move(it->second);
      fds_.erase(it);
      return fd;
    }
  }
  return UniqueFd();
}

UniqueFd InheritedFds::TakePoolMemory(const std::string& pool) {
  std::string name = PoolMemoryFdName(pool);
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    if (it->first == name) {
      UniqueFd fd = std::move(it->second);
      fds_.erase(it);
      return fd;
    }
  }
  return UniqueFd();
}

std::string InheritedFds::Describe() const {
  return absl::StrJoin(fds_, ", ", [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.first, "=", entry.second.get());
  });
}

std::string PoolMemoryFdName(std::string_view pool) { return "pool." + std::string(pool); }

void NotifyReady(std::string_view status) {
  Notify("READY=1\nSTATUS=" + OneLine(status));
}

void NotifyStatus(std::string_view status) { Notify("STATUS=" + OneLine(status)); }

void NotifyReloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec = static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  Notify(absl::StrFormat("RELOADING=1\nMONOTONIC_USEC=%u\nSTATUS=reloading the configuration",
                         usec));
}

void NotifyStopping() { Notify("STOPPING=1\nSTATUS=stopping; every pool's state stays"); }

void StorePoolMemory(std::string_view pool, int fd) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  std::string name = PoolMemoryFdName(pool);
  // One entry per pool: drop what an earlier start (or older memory) left.
  ForgetPoolMemory(pool);
  std::string state = "FDSTORE=1\nFDNAME=" + name;
  if (int rc = sd_pid_notify_with_fds(0, 0, state.c_str(), &fd, 1); rc < 0) {
    spdlog::warn("cannot store the memory of pool '{}' with systemd: {} (a restart without "
                 "clients then starts the pool empty)",
                 std::string(pool), std::strerror(-rc));
  }
}

void ForgetPoolMemory(std::string_view pool) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  Notify("FDSTOREREMOVE=1\nFDNAME=" + PoolMemoryFdName(pool));
}

}  // namespace memd
