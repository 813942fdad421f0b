#include "shm/holdings_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "shm/dual_copy.h"
#include "shm/private_file.h"

namespace memd {

namespace {

constexpr char kHoldingsMagic[8] = {'m', 'e', 'm', 'd', 'h', 'l', 'd', '1'};
constexpr uint32_t kHoldingsVersion = 1;
constexpr uint64_t kInitialRecords = 1024;

}  // namespace

struct HoldingsFile::Header {
  char magic[8];
  uint32_t version;
  uint32_t record_bytes;  // sizeof(Record), checked on open
  uint64_t reserved[6];
};
static_assert(sizeof(HoldingsFile::Header) == 64);

struct HoldingsFile::Copy {
  uint8_t ticket[kTicketBytes];
  uint64_t handle;
  uint32_t refs;
  uint32_t reserved;  // 0
  uint32_t seq;       // higher (mod 2^32) is newer
  uint32_t check;     // HoldingCheckOf(record, copy); odd
};
static_assert(sizeof(HoldingsFile::Copy) == 40);

struct HoldingsFile::Record {
  Copy copies[2];
};

namespace {

uint32_t HoldingCheckOf(uint32_t record, const HoldingsFile::Copy& c) {
  uint64_t words[2];
  std::memcpy(words, c.ticket, sizeof(words));
  uint64_t h = dual_copy::Mix(0x6d656d64686c6431ull ^ record);
  h = dual_copy::Mix(h ^ words[0]);
  h = dual_copy::Mix(h ^ words[1]);
  h = dual_copy::Mix(h ^ c.handle);
  h = dual_copy::Mix(h ^ ((static_cast<uint64_t>(c.refs) << 32) | c.reserved));
  h = dual_copy::Mix(h ^ c.seq);
  return static_cast<uint32_t>(h) | 1u;
}

uint64_t BytesFor(uint64_t records) {
  return sizeof(HoldingsFile::Header) + records * sizeof(HoldingsFile::Record);
}

}  // namespace

HoldingsFile::HoldingsFile(std::string path, UniqueFd fd)
    : path_(std::move(path)), fd_(std::move(fd)) {}

HoldingsFile::~HoldingsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
}

std::string HoldingsFile::PathFor(const std::string& state_path) {
  constexpr std::string_view kState = ".state";
  std::string_view base = state_path;
  if (base.size() > kState.size() && base.substr(base.size() - kState.size()) == kState) {
    base.remove_suffix(kState.size());
  }
  return std::string(base) + ".holders";
}

HoldingsFile::Record* HoldingsFile::records_at() const {
  return reinterpret_cast<Record*>(static_cast<uint8_t*>(mapping_) + sizeof(Header));
}

absl::Status HoldingsFile::Grow(uint64_t records) {
  uint64_t old_bytes = capacity_ == 0 ? 0 : BytesFor(capacity_);
  uint64_t new_bytes = BytesFor(records);
  // Pages allocated now: a full filesystem is an error here, never SIGBUS later.
  if (int err = ::posix_fallocate(fd_.get(), static_cast<off_t>(old_bytes),
                                  static_cast<off_t>(new_bytes - old_bytes));
      err != 0) {
    if (old_bytes != 0) ::ftruncate(fd_.get(), static_cast<off_t>(old_bytes));
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot grow holdings file '%s' to %u bytes for %u records: %s", path_, new_bytes,
        records, std::strerror(err)));
  }
  void* mapping = ::mmap(nullptr, new_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrFormat("cannot map holdings file '%s': %s", path_,
                                               std::strerror(errno)));
  }
  if (mapping_ != nullptr) ::munmap(mapping_, mapped_bytes_);
  mapping_ = mapping;
  mapped_bytes_ = new_bytes;
  capacity_ = records;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HoldingsFile>> HoldingsFile::Create(const std::string& path) {
  absl::StatusOr<UniqueFd> fd = CreatePrivateFile(path, "holdings file");
  if (!fd.ok()) return fd.status();
  std::unique_ptr<HoldingsFile> file(new HoldingsFile(path, std::move(*fd)));
  if (absl::Status s = file->Grow(kInitialRecords); !s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  auto* h = static_cast<Header*>(file->mapping_);
  std::memcpy(h->magic, kHoldingsMagic, sizeof(kHoldingsMagic));
  h->version = kHoldingsVersion;
  h->record_bytes = sizeof(Record);
  return file;
}

absl::StatusOr<std::unique_ptr<HoldingsFile>> HoldingsFile::Open(const std::string& path) {
  uint64_t bytes = 0;
  absl::StatusOr<UniqueFd> fd = OpenPrivateFile(path, "holdings file", &bytes);
  if (!fd.ok()) return fd.status();
  if (bytes < BytesFor(1) || (bytes - sizeof(Header)) % sizeof(Record) != 0) {
    return absl::DataLossError(absl::StrFormat(
        "holdings file '%s' has %u bytes: not a header of %u bytes and whole %u-byte records",
        path, bytes, sizeof(Header), sizeof(Record)));
  }
  std::unique_ptr<HoldingsFile> file(new HoldingsFile(path, std::move(*fd)));
  file->capacity_ = (bytes - sizeof(Header)) / sizeof(Record);
  void* mapping = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file->fd_.get(), 0);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrFormat("cannot map holdings file '%s': %s", path,
                                               std::strerror(errno)));
  }
  file->mapping_ = mapping;
  file->mapped_bytes_ = bytes;
  const auto* h = static_cast<const Header*>(mapping);
  if (std::memcmp(h->magic, kHoldingsMagic, sizeof(kHoldingsMagic)) != 0 || h->version != kHoldingsVersion ||
      h->record_bytes != sizeof(Record)) {
    return absl::DataLossError(absl::StrFormat(
        "holdings file '%s' is not a version %u memd holdings file", path, kHoldingsVersion));
  }
  // Index the records with references; the rest below used_ are free.
  std::vector<bool> in_use(file->capacity_, false);
  for (uint32_t r = 0; r < file->capacity_; ++r) {
    const Record& record = file->records_at()[r];
    int newest = dual_copy::Newest(r, record.copies, HoldingCheckOf);
    if (newest < 0) continue;
    file->used_ = r + 1;
    const Copy& c = record.copies[newest];
    if (c.refs == 0) continue;
    std::string_view ticket(reinterpret_cast<const char*>(c.ticket), kTicketBytes);
    if (file->index_.try_emplace(KeyOf(ticket, c.handle), r).second) {
      in_use[r] = true;
    } else {
      file->Write(r, {}, 0, 0);  // a second record of one holding: the first stands
    }
  }
  for (uint32_t r = 0; r < file->used_; ++r) {
    if (!in_use[r]) file->free_.push_back(r);
  }
  return file;
}

std::vector<Holding> HoldingsFile::Load() const {
  std::vector<std::pair<uint32_t, Holding>> found;
  for (const auto& [key, r] : index_) {
    const Record& record = records_at()[r];
    const Copy& c = record.copies[dual_copy::Newest(r, record.copies, HoldingCheckOf)];
    found.push_back({r, Holding{std::string(key.first.data(), key.first.size()), key.second,
                                c.refs}});
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Holding> out;
  out.reserve(found.size());
  for (auto& [r, holding] : found) out.push_back(std::move(holding));
  return out;
}

HoldingsFile::Key HoldingsFile::KeyOf(std::string_view ticket, uint64_t handle) {
  Key key{{}, handle};
  std::memcpy(key.first.data(), ticket.data(), std::min(ticket.size(), key.first.size()));
  return key;
}

void HoldingsFile::Write(uint32_t record, std::string_view ticket, uint64_t handle,
                         uint32_t refs) {
  dual_copy::Write(record, records_at()[record].copies, HoldingCheckOf, [&](Copy& c) {
    std::memset(c.ticket, 0, sizeof(c.ticket));
    std::memcpy(c.ticket, ticket.data(), std::min(ticket.size(), sizeof(c.ticket)));
    c.handle = handle;
    c.refs = refs;
    c.reserved = 0;
  });
}

absl::Status HoldingsFile::Set(std::string_view ticket, uint64_t handle, uint32_t refs) {
  if (ticket.size() != kTicketBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "holding of handle 0x%016x: a ticket of %u bytes; tickets have %u", handle,
        ticket.size(), kTicketBytes));
  }
  Key key = KeyOf(ticket, handle);
  auto it = index_.find(key);
  if (it != index_.end()) {
    uint32_t record = it->second;
    Write(record, ticket, handle, refs);
    if (refs == 0) {
      index_.erase(it);
      free_.push_back(record);
    }
    return absl::OkStatus();
  }
  if (refs == 0) return absl::OkStatus();
  uint32_t record;
  if (!free_.empty()) {
    record = free_.back();
    free_.pop_back();
  } else {
    if (used_ == capacity_) {
      if (absl::Status s = Grow(capacity_ * 2); !s.ok()) return s;
    }
    record = static_cast<uint32_t>(used_++);
  }
  Write(record, ticket, handle, refs);
  index_.emplace(key, record);
  return absl::OkStatus();
}

absl::Status HoldingsFile::Chown(uid_t uid, gid_t gid) {
  if (::fchown(fd_.get(), uid, gid) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot give holdings file '%s' to uid %u gid %u: %s", path_, uid, gid,
        std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace memd
