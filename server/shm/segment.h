// Segment: one pool's memory, a sealed memfd the daemon creates, reserves and
// maps read-write, and hands to clients as a descriptor (fd_handoff.h).
//
// No name: nothing in /dev/shm or elsewhere can be opened, planted or
// truncated by another process. Seals (F_SEAL_SHRINK | F_SEAL_GROW |
// F_SEAL_SEAL) make its size final before any client sees it, so a client
// holding the descriptor cannot make the daemon's or another client's
// accesses fault (the SIGBUS wl_shm compositors met). Its pages are
// allocated at creation (fallocate) unless the pool opts out: a machine
// without the memory fails at start with a message, never later.
//
// The memory outlives the daemon only while something holds a descriptor
// or mapping of it: clients do, and a restarted daemon takes it back from
// one of them (FromDescriptor, checked against the state table's record).
//
// Ownership: owned by the Daemon; the Pool using its memory must be destroyed
// first. Thread-safe after creation (immutable).
#ifndef MEMD_SERVER_SHM_SEGMENT_H_
#define MEMD_SERVER_SHM_SEGMENT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "memd/shared/unique_fd.h"

namespace memd {

struct SegmentOptions {
  std::string label;  // "memd.<instance>.<pool>": shown as memfd:<label> in /proc/<pid>/fd
  uint64_t size_bytes = 0;
  // Allocate every page now, so that a lack of memory fails here, with a
  // message, and never as a fault in a client.
  bool reserve = true;
};

// What identifies one memory object while it lives (fstat's inode on the
// kernel's internal shmem mount): a restarted daemon accepts a descriptor
// handed back only when it is this object.
struct SegmentIdentity {
  uint64_t device = 0;  // st_dev: the kernel's internal shmem mount
  uint64_t inode = 0;   // st_ino: unique among live objects of that mount
  uint64_t size_bytes = 0;

  bool operator==(const SegmentIdentity&) const = default;
};

class Segment {
 public:
  static absl::StatusOr<std::unique_ptr<Segment>> Create(const SegmentOptions& options);

  // Takes a descriptor a client handed back after a restart: it must be a
  // sealed memfd, open read-write, of exactly `expected`. PERMISSION_DENIED
  // (naming what differs) otherwise; the descriptor is then closed.
  static absl::StatusOr<std::unique_ptr<Segment>> FromDescriptor(UniqueFd fd,
                                                                 const SegmentIdentity& expected,
                                                                 const std::string& label);

  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  uint8_t* base() const { return base_; }
  uint64_t size_bytes() const { return identity_.size_bytes; }
  const SegmentIdentity& identity() const { return identity_; }
  const std::string& label() const { return label_; }
  // The memfd, for passing to clients (the Segment keeps ownership).
  int fd() const { return fd_.get(); }

 private:
  Segment(UniqueFd fd, uint8_t* base, SegmentIdentity identity, std::string label)
      : fd_(std::move(fd)), base_(base), identity_(identity), label_(std::move(label)) {}

  UniqueFd fd_;
  uint8_t* const base_;
  const SegmentIdentity identity_;
  const std::string label_;
};

// A sealed memfd of `size_bytes` (pages reserved when `reserve`): pools and
// lanes alike. RESOURCE_EXHAUSTED naming the size when memory is short.
absl::StatusOr<UniqueFd> CreateSealedMemory(const std::string& label, uint64_t size_bytes,
                                            bool reserve);

// OK when `fd` is a sealed memfd (size can neither shrink nor grow) open
// read-write; otherwise PERMISSION_DENIED naming what is missing.
absl::Status CheckSealedMemory(int fd, const std::string& label);

}  // namespace memd

#endif  // MEMD_SERVER_SHM_SEGMENT_H_
