// UniqueFd: sole owner of one file descriptor, closed when the owner goes.
// Not thread-safe (like any value); move-only.
#ifndef MEMD_SHARED_UNIQUE_FD_H_
#define MEMD_SHARED_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace memd {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace memd

#endif  // MEMD_SHARED_UNIQUE_FD_H_
