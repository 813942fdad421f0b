#include "shm/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

// The seals every memory object memd hands out carries: its size is final
// and no one can lift that.
constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

absl::StatusOr<uint8_t*> MapShared(int fd, uint64_t size_bytes, const std::string& label) {
  void* base = ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot map memory object '%s' of %s: %s", label, FormatSize(size_bytes),
        std::strerror(errno)));
  }
  return static_cast<uint8_t*>(base);
}

}  // namespace

absl::StatusOr<UniqueFd> CreateSealedMemory(const std::string& label, uint64_t size_bytes,
                                            bool reserve) {
  UniqueFd fd(::memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot create memory object '%s': memfd_create: %s", label, std::strerror(errno)));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot size memory object '%s' to %s: %s", label, FormatSize(size_bytes),
        std::strerror(errno)));
  }
  if (reserve) {
    // fallocate on shmem allocates every page now (and fails with ENOSPC or
    // ENOMEM when the machine or the memory cgroup cannot give them).
    if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(size_bytes)) != 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "cannot reserve %s (%u bytes) for memory object '%s': %s. Free memory, raise the "
          "container's memory limit, or shrink the pool",
          FormatSize(size_bytes), size_bytes, label, std::strerror(errno)));
    }
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kSeals) != 0) {
    return absl::InternalError(absl::StrFormat("cannot seal memory object '%s': %s", label,
                                               std::strerror(errno)));
  }
  return fd;
}

absl::Status CheckSealedMemory(int fd, const std::string& label) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "memory object '%s' is not sealed against resizing (seals 0x%x)", label,
        seals < 0 ? 0 : seals));
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) {
    return absl::PermissionDeniedError(
        absl::StrFormat("memory object '%s' is not open read-write", label));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(const SegmentOptions& options) {
  absl::StatusOr<UniqueFd> fd =
      CreateSealedMemory(options.label, options.size_bytes, options.reserve);
  if (!fd.ok()) return fd.status();
  struct stat st {};
  ::fstat(fd->get(), &st);
  absl::StatusOr<uint8_t*> base = MapShared(fd->get(), options.size_bytes, options.label);
  if (!base.ok()) return base.status();
  return std::unique_ptr<Segment>(
      new Segment(std::move(*fd), *base,
                  SegmentIdentity{static_cast<uint64_t>(st.st_dev),
                                  static_cast<uint64_t>(st.st_ino), options.size_bytes},
                  options.label));
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::FromDescriptor(UniqueFd fd,
                                                                 const SegmentIdentity& expected,
                                                                 const std::string& label) {
  if (absl::Status s = CheckSealedMemory(fd.get(), label); !s.ok()) return s;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("cannot stat the descriptor offered for '%s': %s", label,
                        std::strerror(errno)));
  }
  SegmentIdentity offered{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                          static_cast<uint64_t>(st.st_size)};
  if (offered != expected) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "the descriptor offered for '%s' is object %u:%u of %u bytes, not the pool's object "
        "%u:%u of %u bytes", label, offered.device, offered.inode, offered.size_bytes,
        expected.device, expected.inode, expected.size_bytes));
  }
  absl::StatusOr<uint8_t*> base = MapShared(fd.get(), expected.size_bytes, label);
  if (!base.ok()) return base.status();
  return std::unique_ptr<Segment>(new Segment(std::move(fd), *base, expected, label));
}

Segment::~Segment() { ::munmap(base_, identity_.size_bytes); }

}  // namespace memd
