#include "shm/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "absl/strings/str_format.h"
#include "memd/shared/size.h"

namespace memd {

namespace bip = boost::interprocess;

namespace {

// Gives the object the configured owner, group and mode (shm_open applies the
// umask, and operators set modes and groups to share pools).
absl::Status ApplyAccess(int fd, const SegmentOptions& options) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrFormat("cannot stat shared-memory object '%s': %s",
                                               options.object_name, std::strerror(errno)));
  }
  if ((st.st_uid != options.owner_uid || st.st_gid != options.group_gid) &&
      ::fchown(fd, options.owner_uid, options.group_gid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot give shared-memory object '%s' owner %u and group %u: %s (run memd as root, "
        "or as that user in that group)",
        options.object_name, options.owner_uid, options.group_gid, std::strerror(errno)));
  }
  if (::fchmod(fd, options.mode) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot set mode %04o on shared-memory object '%s': %s", options.mode,
        options.object_name, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

bool Segment::RemoveIfExists(const std::string& object_name) {
  return bip::shared_memory_object::remove(object_name.c_str());
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(const SegmentOptions& options) {
  const std::string& name = options.object_name;
  try {
    bip::permissions perms(options.mode);
    bip::shared_memory_object object(bip::create_only, name.c_str(), bip::read_write, perms);
    int fd = object.get_mapping_handle().handle;
    if (absl::Status s = ApplyAccess(fd, options); !s.ok()) {
      bip::shared_memory_object::remove(name.c_str());
      return s;
    }
    object.truncate(static_cast<bip::offset_t>(options.size_bytes));
    if (options.reserve) {
      int err = ::posix_fallocate(fd, 0, static_cast<off_t>(options.size_bytes));
      if (err != 0) {
        bip::shared_memory_object::remove(name.c_str());
        return absl::ResourceExhaustedError(absl::StrFormat(
            "cannot reserve %s for shared-memory object '%s': %s. Give /dev/shm more room "
            "(Docker: --shm-size; Kubernetes: emptyDir medium Memory with a sizeLimit) or "
            "shrink the pool",
            FormatSize(options.size_bytes), name, std::strerror(err)));
      }
    }
    bip::mapped_region region(object, bip::read_write);
    return std::unique_ptr<Segment>(new Segment(name, options.size_bytes, std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    bip::shared_memory_object::remove(name.c_str());
    return absl::InternalError(absl::StrFormat("cannot create shared-memory object '%s' of %s: %s",
                                               name, FormatSize(options.size_bytes), e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Open(const SegmentOptions& options) {
  const std::string& name = options.object_name;
  const uint64_t size_bytes = options.size_bytes;
  try {
    bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_write);
    if (absl::Status s = ApplyAccess(object.get_mapping_handle().handle, options); !s.ok()) {
      return s;
    }
    bip::offset_t actual = 0;
    object.get_size(actual);
    if (static_cast<uint64_t>(actual) != size_bytes) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "shared-memory object '%s' has %u bytes; its state table says %u", name,
          static_cast<uint64_t>(actual), size_bytes));
    }
    bip::mapped_region region(object, bip::read_write);
    return std::unique_ptr<Segment>(new Segment(name, size_bytes, std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error) {
      return absl::NotFoundError(absl::StrFormat("shared-memory object '%s' is gone", name));
    }
    return absl::InternalError(
        absl::StrFormat("cannot open shared-memory object '%s': %s", name, e.what()));
  }
}

Segment::~Segment() = default;

void Segment::Remove() {
  if (removed_) return;
  removed_ = true;
  bip::shared_memory_object::remove(object_name_.c_str());
}

absl::Status CheckShmCapacity(uint64_t needed_bytes, const std::string& shm_dir) {
  struct statvfs fs {};
  if (::statvfs(shm_dir.c_str(), &fs) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot inspect %s (%s): POSIX shared memory needs a tmpfs there", shm_dir,
        std::strerror(errno)));
  }
  uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (available < needed_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "pools need %s (%u bytes) but %s has only %s (%u bytes) free. Enlarge it: Docker "
        "`--shm-size=%u`, Compose `shm_size`, Kubernetes an emptyDir with medium: Memory and a "
        "sizeLimit mounted at /dev/shm; or configure smaller pools",
        FormatSize(needed_bytes), needed_bytes, shm_dir, FormatSize(available), available,
        needed_bytes));
  }
  return absl::OkStatus();
}

}  // namespace memd
