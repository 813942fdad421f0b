#include "shm/state_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <sys/mman.h>

#include "absl/strings/str_format.h"
#include "shm/dual_copy.h"
#include "shm/private_file.h"

namespace memd {

namespace {

constexpr char kMagic[8] = {'m', 'e', 'm', 'd', 's', 't', '0', '1'};
// 2: the pool's memory is a memfd; the header records which one.
constexpr uint32_t kVersion = 2;
constexpr uint64_t kReadyValue = 0x7265616479214d44ull;  // written last at creation
constexpr uint64_t kHeaderBytes = 4096;                  // one page; records follow
constexpr uint64_t kInitialSlots = 1024;

}  // namespace

struct StateTable::Header {
  char magic[8];
  uint32_t version;
  uint32_t pool_index;
  uint64_t size_bytes;
  uint64_t alignment_bytes;
  uint64_t segment_id;
  uint64_t ready;  // kReadyValue once the segment exists
  uint64_t memory_device;  // the memfd's st_dev and st_ino (SegmentIdentity)
  uint64_t memory_inode;
};

struct StateTable::Copy {
  uint64_t offset_bytes;
  uint64_t capacity_bytes;
  uint64_t size_bytes;
  uint32_t generation_state;  // generation << 8 | SlotImage::State
  uint32_t refs;
  uint32_t seq;    // higher (mod 2^32) is newer
  uint32_t check;  // CheckOf(slot, copy); odd, so a zeroed copy is never valid
};

struct StateTable::Record {
  Copy copies[2];
};

static_assert(sizeof(StateTable::Copy) == 40);

namespace {

using dual_copy::Mix;

uint32_t CheckOf(uint32_t slot, const StateTable::Copy& c) {
  uint64_t h = Mix(0x6d656d6473746174ull ^ slot);
  h = Mix(h ^ c.offset_bytes);
  h = Mix(h ^ c.capacity_bytes);
  h = Mix(h ^ c.size_bytes);
  h = Mix(h ^ ((static_cast<uint64_t>(c.generation_state) << 32) | c.refs));
  h = Mix(h ^ c.seq);
  return static_cast<uint32_t>(h) | 1u;
}

}  // namespace

StateTable::StateTable(std::string path, UniqueFd fd)
    : object_name_(std::move(path)), fd_(std::move(fd)) {}

StateTable::~StateTable() { Unmap(); }

void StateTable::Unmap() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
  mapping_ = nullptr;
  mapped_bytes_ = 0;
}

StateTable::Header* StateTable::header() const { return static_cast<Header*>(mapping_); }

StateTable::Record* StateTable::records() const {
  return reinterpret_cast<Record*>(static_cast<uint8_t*>(mapping_) + kHeaderBytes);
}

absl::Status StateTable::Map(uint64_t slot_capacity) {
  uint64_t bytes = kHeaderBytes + slot_capacity * sizeof(Record);
  void* mapping = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrFormat("cannot map state file '%s': %s", object_name_,
                                               std::strerror(errno)));
  }
  Unmap();
  mapping_ = mapping;
  mapped_bytes_ = bytes;
  capacity_ = slot_capacity;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StateTable>> StateTable::Create(const std::string& object_name,
                                                               const StateIdentity& identity) {
  absl::StatusOr<UniqueFd> fd = CreatePrivateFile(object_name, "state file");
  if (!fd.ok()) return fd.status();
  std::unique_ptr<StateTable> table(new StateTable(object_name, std::move(*fd)));
  std::string holdings_path = HoldingsFile::PathFor(object_name);
  ::unlink(holdings_path.c_str());  // a leftover of a table that is gone says nothing
  absl::StatusOr<std::unique_ptr<HoldingsFile>> holdings = HoldingsFile::Create(holdings_path);
  if (!holdings.ok()) {
    RemoveIfExists(object_name);
    return holdings.status();
  }
  table->holdings_ = std::move(*holdings);
  if (absl::Status s = table->Reserve(kInitialSlots); !s.ok()) {
    RemoveIfExists(object_name);
    return s;
  }
  Header* h = table->header();
  std::memcpy(h->magic, kMagic, sizeof(kMagic));
  h->version = kVersion;
  h->pool_index = identity.pool_index;
  h->size_bytes = identity.size_bytes;
  h->alignment_bytes = identity.alignment_bytes;
  h->segment_id = identity.segment_id;
  h->memory_device = identity.memory.device;
  h->memory_inode = identity.memory.inode;
  table->identity_ = identity;
  return table;
}

void StateTable::MarkReady() {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // header fields first
  header()->ready = kReadyValue;
}

absl::StatusOr<std::unique_ptr<StateTable>> StateTable::Open(const std::string& object_name) {
  uint64_t bytes = 0;
  absl::StatusOr<UniqueFd> fd = OpenPrivateFile(object_name, "state file", &bytes);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<StateTable> table(new StateTable(object_name, std::move(*fd)));
  if (bytes < kHeaderBytes) {
    return absl::DataLossError(absl::StrFormat(
        "state object '%s' has %u bytes, less than its %u-byte header", object_name, bytes,
        kHeaderBytes));
  }
  if (absl::Status s = table->Map((bytes - kHeaderBytes) / sizeof(Record)); !s.ok()) return s;
  const Header* h = table->header();
  if (std::memcmp(h->magic, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(
        absl::StrFormat("state object '%s' is not a memd state table", object_name));
  }
  if (h->version != kVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "state object '%s' has format version %u; this memd reads version %u", object_name,
        h->version, kVersion));
  }
  if (h->ready != kReadyValue) {
    return absl::DataLossError(absl::StrFormat(
        "state object '%s' is incomplete: its daemon died while creating the pool", object_name));
  }
  table->identity_ = StateIdentity{h->pool_index, h->size_bytes, h->alignment_bytes,
                                   h->segment_id,
                                   SegmentIdentity{h->memory_device, h->memory_inode,
                                                   h->memory_inode != 0 ? h->size_bytes : 0}};
  std::string holdings_path = HoldingsFile::PathFor(object_name);
  absl::StatusOr<std::unique_ptr<HoldingsFile>> holdings = HoldingsFile::Open(holdings_path);
  if (!holdings.ok()) {
    table->holders_record_ = absl::IsNotFound(holdings.status()) ? HoldersRecord::kNotKept
                                                                 : HoldersRecord::kLost;
    ::unlink(holdings_path.c_str());
    holdings = HoldingsFile::Create(holdings_path);
    if (!holdings.ok()) return holdings.status();
  }
  table->holdings_ = std::move(*holdings);
  return table;
}

bool StateTable::RemoveIfExists(const std::string& object_name) {
  ::unlink(HoldingsFile::PathFor(object_name).c_str());
  return ::unlink(object_name.c_str()) == 0;
}

void StateTable::SetMemory(const SegmentIdentity& memory, uint64_t segment_id) {
  header()->memory_device = memory.device;
  header()->memory_inode = memory.inode;
  header()->segment_id = segment_id;
  identity_.memory = memory;
  identity_.segment_id = segment_id;
}

absl::Status StateTable::Reserve(uint64_t slot_count) {
  if (slot_count <= capacity_) return absl::OkStatus();
  uint64_t wanted = std::max(slot_count, std::max(capacity_ * 2, kInitialSlots));
  uint64_t old_bytes = capacity_ == 0 ? 0 : kHeaderBytes + capacity_ * sizeof(Record);
  int fd = fd_.get();
  // Allocate the pages now: a full /dev/shm must be an allocation error here,
  // never SIGBUS on a later store.
  auto allocate = [&](uint64_t slots) {
    uint64_t new_bytes = kHeaderBytes + slots * sizeof(Record);
    int err = ::posix_fallocate(fd, static_cast<off_t>(old_bytes),
                                static_cast<off_t>(new_bytes - old_bytes));
    if (err != 0 && old_bytes != 0) ::ftruncate(fd, static_cast<off_t>(old_bytes));
    return err;
  };
  int err = allocate(wanted);
  if (err != 0 && wanted > slot_count) {
    // Doubling did not fit: take only what this request needs (64 slots at
    // a time), so a nearly full state filesystem refuses the request that
    // asked for more, not one that fitted (issue 24).
    const uint64_t needed = (slot_count + 63) / 64 * 64;
    if (needed < wanted && allocate(needed) == 0) {
      err = 0;
      wanted = needed;
    }
  }
  if (err != 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot grow state object '%s' to %u bytes for %u slots: %s", object_name_,
        kHeaderBytes + slot_count * sizeof(Record), slot_count, std::strerror(err)));
  }
  return Map(wanted);
}

std::vector<SlotImage> StateTable::Load() const {
  std::vector<SlotImage> images;
  uint64_t last = 0;  // one past the last slot with a valid copy
  for (uint32_t slot = 0; slot < capacity_; ++slot) {
    const Record& record = records()[slot];
    int newest = dual_copy::Newest(slot, record.copies, CheckOf);
    if (newest < 0) {
      images.push_back(SlotImage{});
      continue;
    }
    const Copy& c = record.copies[newest];
    SlotImage image;
    image.state = static_cast<SlotImage::State>(c.generation_state & 0xff);
    image.generation = c.generation_state >> 8;
    image.refs = c.refs;
    image.offset_bytes = c.offset_bytes;
    image.capacity_bytes = c.capacity_bytes;
    image.size_bytes = c.size_bytes;
    images.push_back(image);
    last = slot + 1;
  }
  images.resize(last);
  return images;
}

void StateTable::Write(uint32_t slot, const SlotImage& image) {
  dual_copy::Write(slot, records()[slot].copies, CheckOf, [&](Copy& c) {
    c.offset_bytes = image.offset_bytes;
    c.capacity_bytes = image.capacity_bytes;
    c.size_bytes = image.size_bytes;
    c.generation_state = (image.generation << 8) | static_cast<uint32_t>(image.state);
    c.refs = image.refs;
  });
}

absl::Status StateTable::Chown(uid_t uid, gid_t gid) {
  if (::fchown(fd_.get(), uid, gid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot give state object '%s' to uid %u gid %u: %s", object_name_, uid, gid,
        std::strerror(errno)));
  }
  return holdings_->Chown(uid, gid);
}

void StateTable::Remove() {
  if (removed_) return;
  removed_ = true;
  RemoveIfExists(object_name_);
}

}  // namespace memd
