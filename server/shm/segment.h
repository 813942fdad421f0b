// Segment: one pool's POSIX shared-memory object, created, sized, reserved
// and mapped read-write by the daemon (Boost.Interprocess).
//
// Ownership: owned by the Daemon; the Pool using its memory must be destroyed
// first. Remove() unlinks the object (clean shutdown); the destructor only
// unmaps, so a crash leaves the object for the next start to clean up.
// Thread-safe after creation (immutable).
#ifndef MEMD_SERVER_SHM_SEGMENT_H_
#define MEMD_SERVER_SHM_SEGMENT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include <boost/interprocess/mapped_region.hpp>

#include "absl/status/statusor.h"

namespace memd {

struct SegmentOptions {
  std::string object_name;  // "/memd.<instance>.<pool>"
  uint64_t size_bytes = 0;
  mode_t mode = 0600;
  uid_t owner_uid = 0;  // applied with fchown when it differs from the creator's
  gid_t group_gid = 0;
  // Allocate the tmpfs pages up front (posix_fallocate) so that a full
  // /dev/shm fails here, with a message, and never as SIGBUS in a client.
  bool reserve = true;
};

class Segment {
 public:
  // Creates the object, replacing a stale one of the same name (same instance
  // and pool: only a crashed predecessor of this daemon can have made it).
  static absl::StatusOr<std::unique_ptr<Segment>> Create(const SegmentOptions& options);

  // Maps an existing object a killed predecessor left (re-adoption).
  // NOT_FOUND when it is gone; FAILED_PRECONDITION when its size differs.
  // The owner, group and mode of `options` are applied to it.
  static absl::StatusOr<std::unique_ptr<Segment>> Open(const SegmentOptions& options);

  // True when an object of that name existed and was removed.
  static bool RemoveIfExists(const std::string& object_name);

  ~Segment();

  uint8_t* base() const { return static_cast<uint8_t*>(region_.get_address()); }
  uint64_t size_bytes() const { return size_bytes_; }
  const std::string& object_name() const { return object_name_; }

  // Unlinks the object; existing mappings (the daemon's, clients') stay valid.
  void Remove();

 private:
  Segment(std::string object_name, uint64_t size_bytes, boost::interprocess::mapped_region region)
      : object_name_(std::move(object_name)), size_bytes_(size_bytes), region_(std::move(region)) {}

  std::string object_name_;
  uint64_t size_bytes_;
  boost::interprocess::mapped_region region_;
  bool removed_ = false;
};

// Checks that the filesystem behind POSIX shared memory (/dev/shm) has room
// for `needed_bytes`; the error names both sizes and the container fixes.
absl::Status CheckShmCapacity(uint64_t needed_bytes, const std::string& shm_dir = "/dev/shm");

}  // namespace memd

#endif  // MEMD_SERVER_SHM_SEGMENT_H_
