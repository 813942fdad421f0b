#include "client_lane.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

// A reader sleeps at most this long at a time, so Break() is seen promptly
// even if its wake-up raced the sleep.
constexpr absl::Duration kReadWait = absl::Milliseconds(20);

}  // namespace

absl::StatusOr<std::unique_ptr<ClientLane>> ClientLane::Open(const v1::OpenLaneResponse& lane,
                                                             uint64_t session_id,
                                                             std::string address, int fd,
                                                             absl::Duration spin) {
  if (lane.size_bytes() != lane::kObjectBytes || lane.ring_bytes() != lane::kRingBytes ||
      lane.max_payload_bytes() != lane::kMaxPayloadBytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "lane %s is %u bytes with rings of %u; this libmemd expects %u and %u", lane.shm_name(),
        lane.size_bytes(), lane.ring_bytes(), lane::kObjectBytes, lane::kRingBytes));
  }
  struct stat st {};
  void* base = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == lane::kObjectBytes) {
    base = ::mmap(nullptr, lane::kObjectBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (base == MAP_FAILED) {
    return absl::UnavailableError(
        absl::StrFormat("cannot map lane %s: %s", lane.shm_name(), std::strerror(errno)));
  }
  const auto* header = static_cast<const lane::Header*>(base);
  if (header->magic != lane::kMagic || header->version != lane::kVersion ||
      header->session_id != session_id) {
    ::munmap(base, lane::kObjectBytes);
    return absl::FailedPreconditionError(absl::StrFormat(
        "lane %s is not session %u's (version %u, session %u)", lane.shm_name(), session_id,
        header->version, header->session_id));
  }
  return std::unique_ptr<ClientLane>(new ClientLane(base, std::move(address), spin));
}

ClientLane::ClientLane(void* base, std::string address, absl::Duration spin)
    : base_(base),
      header_(static_cast<lane::Header*>(base)),
      address_(std::move(address)),
      router_([this](const v1::SessionRequest& request, bool wake) { return Submit(request, wake); },
              [this](std::vector<v1::SessionResponse>* out, bool any) {
                return ReadCompletions(out, any);
              }),
      spin_(static_cast<uint32_t>(absl::ToInt64Microseconds(spin))) {}

ClientLane::~ClientLane() { ::munmap(base_, lane::kObjectBytes); }

bool ClientLane::Fits(const v1::SessionRequest& request) {
  // + 16: room for the request_id assigned in Call.
  return request.ByteSizeLong() + 16 <= lane::kMaxPayloadBytes;
}

void ClientLane::Break(const std::string& why) {
  router_.Break(why);
  lane::FutexWakeAll(&header_->comp_tail);  // the reader, if it sleeps
}

absl::Status ClientLane::Submit(const v1::SessionRequest& request, bool wake) {
  MutexLock lock(&write_mu_);
  request.SerializeToString(&entry_);
  uint32_t need = lane::EntryBytes(static_cast<uint32_t>(entry_.size()));
  // The daemon consumes promptly; the ring fills only under a burst of
  // requests from many threads, so waiting for room polls.
  while (true) {
    uint32_t used = sub_tail_ - header_->sub_head.load(std::memory_order_acquire);
    if (used > lane::kRingBytes) {
      return absl::InternalError(absl::StrFormat("lane of memd at %s is corrupt (the daemon's "
                                                 "head is %u bytes off)", address_, used));
    }
    if (lane::kRingBytes - used >= need) break;
    if (router_.broken() || closed()) {
      return absl::UnavailableError(absl::StrFormat("lane to memd at %s closed", address_));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  sub_tail_ = lane::WriteEntry(lane::SubmissionRing(base_), sub_tail_, entry_);
  header_->sub_tail.store(sub_tail_, std::memory_order_seq_cst);
  if (wake) {
    WakeLocked();
  } else {
    unannounced_ = true;  // an awake lane thread still takes it
  }
  return absl::OkStatus();
}

void ClientLane::WakeLocked() {
  unannounced_ = false;
  // The daemon sets daemon_waiting before it looks at sub_tail a last time
  // and sleeps (see SessionLane::Run): one of the two sees the other.
  if (header_->daemon_waiting.load(std::memory_order_seq_cst) != 0) lane::RingDoorbell(header_);
}

bool ClientLane::AllServed() {
  // Without write_mu_: a writer waiting for room in a full ring holds it
  // until the monitor thread, which asks this, breaks the lane. sub_tail in
  // the header is what Submit published last (this process writes it alone).
  return header_->sub_head.load(std::memory_order_acquire) ==
         header_->sub_tail.load(std::memory_order_seq_cst);
}

void ClientLane::RingLate() {
  MutexLock lock(&write_mu_);
  if (unannounced_) WakeLocked();
}

absl::Status ClientLane::ReadCompletions(std::vector<v1::SessionResponse>* out, bool any) {
  uint32_t tail = header_->comp_tail.load(std::memory_order_acquire);
  // Poll a little first: the daemon answers most requests within
  // microseconds, and then neither side pays a futex wake-up (the daemon
  // wakes the client only while client_waiting is set).
  if (tail == comp_head_ && spin_.Poll([&] {
        return header_->comp_tail.load(std::memory_order_acquire) != comp_head_ || closed() ||
               router_.broken();
      })) {
    tail = header_->comp_tail.load(std::memory_order_acquire);
  }
  if (tail == comp_head_) {
    header_->client_waiting.store(any ? lane::kWaitingAny : lane::kWaitingWaited,
                                  std::memory_order_seq_cst);
    tail = header_->comp_tail.load(std::memory_order_seq_cst);
    if (tail == comp_head_ && !closed() && !router_.broken()) {
      absl::Time slept = absl::Now();
      lane::FutexWait(&header_->comp_tail, comp_head_, kReadWait);
      if (header_->comp_tail.load(std::memory_order_acquire) != comp_head_) {
        spin_.Slept(absl::ToInt64Nanoseconds(absl::Now() - slept));
      }
    }
    header_->client_waiting.store(lane::kNotWaiting, std::memory_order_seq_cst);
    tail = header_->comp_tail.load(std::memory_order_acquire);
  }
  const uint8_t* ring = lane::CompletionRing(base_);
  std::string entry, why;
  while (tail != comp_head_) {
    std::optional<uint32_t> next = lane::ReadEntry(ring, comp_head_, tail, &entry, &why);
    if (!next) {
      return absl::InternalError(
          absl::StrFormat("lane of memd at %s is corrupt (completion ring: %s)", address_, why));
    }
    comp_head_ = *next;
    v1::SessionResponse response;
    if (!response.ParseFromString(entry)) {
      return absl::InternalError(
          absl::StrFormat("lane of memd at %s is corrupt (a completion does not parse)", address_));
    }
    out->push_back(std::move(response));
  }
  header_->comp_head.store(comp_head_, std::memory_order_seq_cst);
  // The daemon holds completions back while the ring is full; it sets
  // wants_space before it looks at comp_head a last time.
  if (header_->wants_space.load(std::memory_order_seq_cst) != 0) lane::RingDoorbell(header_);
  if (out->empty() && closed()) {
    return absl::UnavailableError(
        absl::StrFormat("memd at %s closed this session's lane (session ended)", address_));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SessionResponse> ClientLane::Call(v1::SessionRequest request) {
  return router_.Call(std::move(request));
}

}  // namespace memd
