#include "bridge/journal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "shm/dual_copy.h"
#include "shm/holdings_file.h"
#include "shm/private_file.h"

namespace memd::bridge {

constexpr uint64_t kJournalMagic = 0x6d656d6462726a31ull;  // "memdbrj1"
constexpr size_t kTicketBytes = HoldingsFile::kTicketBytes;

struct OutboundJournal::HeaderCopy {
  uint32_t seq;
  uint32_t check;
  uint64_t magic;
  uint64_t acked_seq;
  uint32_t ticket_count;
  uint32_t reserved;
  char tickets[kMaxTickets][kTicketBytes];
};

struct OutboundJournal::SlotCopy {
  uint32_t seq;
  uint32_t check;
  uint64_t message_seq;  // 0: a free slot
  // Two 16-bit halves of what was one 32-bit handle count (at most 64), so
  // a journal written before hops were counted reads hops 0, size unchanged.
  uint16_t handle_count;
  uint16_t hops;  // Entry::hops
  uint32_t metadata_bytes;
  uint64_t handles[limits::kMaxChannelHandles];
  char metadata[limits::kMaxChannelMetadataBytes];
};

struct OutboundJournal::Layout {
  HeaderCopy header[2];
  SlotCopy slots[kSlots][2];
};

struct DeliveredMark::Copy {
  uint32_t seq;
  uint32_t check;
  uint64_t magic;
  uint64_t delivered_seq;
};

static_assert(sizeof(OutboundJournal::HeaderCopy) % 8 == 0);
static_assert(limits::kMaxChannelHandles <= UINT16_MAX && limits::kMaxBridgeHops <= UINT16_MAX);
static_assert(offsetof(OutboundJournal::SlotCopy, metadata_bytes) == 20,
              "the slot layout of journals already on disk");
static_assert(sizeof(OutboundJournal::SlotCopy) % 8 == 0);
static_assert(sizeof(DeliveredMark::Copy) == 24);

namespace {

// The check value of a copy: every 8-byte word after `seq` and `check`, the
// copy's seq and the record index; odd, so an all-zero copy is never valid.
template <typename Copy>
uint32_t CheckOf(uint32_t index, const Copy& copy) {
  static_assert(offsetof(Copy, check) == 4);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&copy);
  uint64_t h = dual_copy::Mix(0x6d656d6462726467ull ^ index ^ (uint64_t{copy.seq} << 32));
  for (size_t at = 8; at < sizeof(Copy); at += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + at, 8);
    h = dual_copy::Mix(h ^ word);
  }
  return static_cast<uint32_t>(h) | 1u;
}

template <typename Copy>
const Copy* NewestOf(uint32_t index, const Copy (&copies)[2]) {
  int newest = dual_copy::Newest(index, copies, CheckOf<Copy>);
  return newest < 0 ? nullptr : &copies[newest];
}

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::OpenOrCreate(const std::string& path,
                                                                     uint64_t size_bytes,
                                                                     const char* what) {
  uint64_t existing = 0;
  bool created = false;
  absl::StatusOr<UniqueFd> fd = OpenPrivateFile(path, what, &existing);
  if (absl::IsNotFound(fd.status())) {
    fd = CreatePrivateFile(path, what);
    if (!fd.ok()) return fd.status();
    if (::ftruncate(fd->get(), static_cast<off_t>(size_bytes)) != 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "cannot size %s '%s' to %u bytes: %s", what, path, size_bytes, std::strerror(errno)));
    }
    created = true;
  } else if (!fd.ok()) {
    return fd.status();
  } else if (existing != size_bytes) {
    return absl::DataLossError(absl::StrFormat(
        "%s '%s' has %u bytes; this build's layout has %u (remove it to start the bridge afresh: "
        "its unacknowledged messages are then lost)", what, path, existing, size_bytes));
  }
  void* data = ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  if (data == MAP_FAILED) {
    return absl::InternalError(
        absl::StrFormat("cannot map %s '%s': %s", what, path, std::strerror(errno)));
  }
  return std::unique_ptr<MappedFile>(new MappedFile(std::move(*fd), data, size_bytes, created));
}

MappedFile::~MappedFile() { ::munmap(data_, size_bytes_); }

// --- OutboundJournal ---

absl::StatusOr<std::unique_ptr<OutboundJournal>> OutboundJournal::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file =
      MappedFile::OpenOrCreate(path, sizeof(Layout), "bridge journal");
  if (!file.ok()) return file.status();
  std::unique_ptr<OutboundJournal> journal(new OutboundJournal(std::move(*file)));
  const HeaderCopy* header = NewestOf(0, journal->layout()->header);
  if (header == nullptr) {
    if (!journal->file_->created()) {
      return absl::DataLossError(absl::StrFormat(
          "bridge journal '%s' has no valid header (not a memd bridge journal?)", path));
    }
    journal->SetTickets({});
  } else if (header->magic != kJournalMagic) {
    return absl::DataLossError(absl::StrFormat("bridge journal '%s' has magic %#x, not %#x",
                                               path, header->magic, kJournalMagic));
  }
  return journal;
}

OutboundJournal::~OutboundJournal() = default;

OutboundJournal::Layout* OutboundJournal::layout() const {
  return static_cast<Layout*>(file_->data());
}

std::vector<std::string> OutboundJournal::tickets() const {
  std::vector<std::string> out;
  const HeaderCopy* h = NewestOf(0, layout()->header);
  for (uint32_t i = 0; h != nullptr && i < h->ticket_count && i < kMaxTickets; ++i) {
    out.emplace_back(h->tickets[i], kTicketBytes);
  }
  return out;
}

void OutboundJournal::SetTickets(const std::vector<std::string>& tickets) {
  uint64_t acked = acked_seq();
  dual_copy::Write(0, layout()->header, CheckOf<HeaderCopy>, [&](HeaderCopy& c) {
    std::memset(reinterpret_cast<char*>(&c) + 8, 0, sizeof(HeaderCopy) - 8);
    c.magic = kJournalMagic;
    c.acked_seq = acked;
    c.ticket_count = static_cast<uint32_t>(tickets.size());
    for (size_t i = 0; i < tickets.size() && i < kMaxTickets; ++i) {
      std::memcpy(c.tickets[i], tickets[i].data(), kTicketBytes);
    }
  });
}

uint64_t OutboundJournal::acked_seq() const {
  const HeaderCopy* h = NewestOf(0, layout()->header);
  return h == nullptr ? 0 : h->acked_seq;
}

uint64_t OutboundJournal::last_seq() const {
  uint64_t last = acked_seq();
  for (uint32_t s = 0; s < kSlots; ++s) {
    const SlotCopy* c = NewestOf(s + 1, layout()->slots[s]);
    if (c != nullptr && c->message_seq > last) last = c->message_seq;
  }
  return last;
}

std::vector<OutboundJournal::Entry> OutboundJournal::Load() const {
  std::vector<Entry> out;
  uint64_t acked = acked_seq();
  for (uint32_t s = 0; s < kSlots; ++s) {
    const SlotCopy* c = NewestOf(s + 1, layout()->slots[s]);
    if (c == nullptr || c->message_seq <= acked) continue;
    Entry e;
    e.seq = c->message_seq;
    e.handles.assign(c->handles, c->handles + std::min<size_t>(c->handle_count,
                                                               limits::kMaxChannelHandles));
    e.metadata.assign(c->metadata, std::min<size_t>(c->metadata_bytes,
                                                    limits::kMaxChannelMetadataBytes));
    e.hops = c->hops;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
  return out;
}

bool OutboundJournal::full() const { return Load().size() >= kSlots; }

uint64_t OutboundJournal::Append(const std::vector<uint64_t>& handles,
                                 const std::string& metadata, uint32_t hops) {
  uint64_t seq = last_seq() + 1;
  uint64_t acked = acked_seq();
  for (uint32_t s = 0; s < kSlots; ++s) {
    const SlotCopy* c = NewestOf(s + 1, layout()->slots[s]);
    if (c != nullptr && c->message_seq > acked) continue;  // in use
    dual_copy::Write(s + 1, layout()->slots[s], CheckOf<SlotCopy>, [&](SlotCopy& copy) {
      std::memset(reinterpret_cast<char*>(&copy) + 8, 0, sizeof(SlotCopy) - 8);
      copy.message_seq = seq;
      copy.handle_count = static_cast<uint16_t>(handles.size());
      copy.hops = static_cast<uint16_t>(std::min<uint32_t>(hops, UINT16_MAX));
      copy.metadata_bytes = static_cast<uint32_t>(metadata.size());
      // An empty vector's data() may be null, which memcpy must not get.
      if (!handles.empty()) {
        std::memcpy(copy.handles, handles.data(), handles.size() * sizeof(uint64_t));
      }
      std::memcpy(copy.metadata, metadata.data(), metadata.size());
    });
    return seq;
  }
  return 0;  // REQUIRES !full()
}

void OutboundJournal::Ack(uint64_t seq) {
  if (seq <= acked_seq()) return;
  std::vector<std::string> kept = tickets();
  const HeaderCopy* h = NewestOf(0, layout()->header);
  HeaderCopy previous = *h;
  dual_copy::Write(0, layout()->header, CheckOf<HeaderCopy>, [&](HeaderCopy& c) {
    std::memcpy(reinterpret_cast<char*>(&c) + 8, reinterpret_cast<const char*>(&previous) + 8,
                sizeof(HeaderCopy) - 8);
    c.acked_seq = seq;
  });
  // Slots at or below the acknowledged seq are free now (Load skips them);
  // they are overwritten by later Appends.
}

// --- DeliveredMark ---

absl::StatusOr<std::unique_ptr<DeliveredMark>> DeliveredMark::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file =
      MappedFile::OpenOrCreate(path, sizeof(Copy) * 2, "bridge delivered mark");
  if (!file.ok()) return file.status();
  std::unique_ptr<DeliveredMark> mark(new DeliveredMark(std::move(*file)));
  if (mark->file_->created()) mark->Set(0);
  return mark;
}

uint64_t DeliveredMark::delivered() const {
  const Copy(&copies)[2] = *static_cast<Copy(*)[2]>(file_->data());
  const Copy* c = NewestOf(0, copies);
  return c == nullptr ? 0 : c->delivered_seq;
}

void DeliveredMark::Set(uint64_t seq) {
  Copy(&copies)[2] = *static_cast<Copy(*)[2]>(file_->data());
  dual_copy::Write(0, copies, CheckOf<Copy>, [&](Copy& c) {
    c.magic = kJournalMagic;
    c.delivered_seq = seq;
  });
}

}  // namespace memd::bridge
