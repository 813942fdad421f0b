#include "lane/session_lane.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "shm/segment.h"

namespace memd {
namespace {

// Completions held back while the client's ring is full; past this the lane
// thread stops taking requests until the client reads (bounded memory for a
// client that submits and never reads).
constexpr size_t kMaxOverflow = 256;
// The lane thread sleeps at most this long at a time, so Stop never waits
// on a lost wake-up.
constexpr absl::Duration kIdleWait = absl::Milliseconds(500);

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

absl::StatusOr<std::unique_ptr<SessionLane>> SessionLane::Create(std::string label,
                                                                  uint64_t session_id, Serve serve,
                                                                  Fail fail, absl::Duration spin) {
  // Sealed and with its pages allocated: the client can neither resize it
  // nor make the lane thread's accesses fault.
  absl::StatusOr<UniqueFd> fd = CreateSealedMemory(label, lane::kObjectBytes, /*reserve=*/true);
  if (!fd.ok()) return fd.status();
  void* base = ::mmap(nullptr, lane::kObjectBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot map lane object %s: %s", label, ErrnoText()));
  }
  // The object is fresh (zero-filled); construct the header in place.
  auto* header = new (base) lane::Header{};
  header->magic = lane::kMagic;
  header->version = lane::kVersion;
  header->ring_bytes = lane::kRingBytes;
  header->max_payload_bytes = lane::kMaxPayloadBytes;
  header->session_id = session_id;
  std::unique_ptr<SessionLane> lane(new SessionLane(std::move(label), session_id, std::move(*fd),
                                                    base, spin, std::move(serve), std::move(fail)));
  lane->thread_ = std::thread([l = lane.get()] { l->Run(); });
  return lane;
}

SessionLane::SessionLane(std::string object_name, uint64_t session_id, UniqueFd fd, void* base,
                         absl::Duration spin, Serve serve, Fail fail)
    : object_name_(std::move(object_name)),
      session_id_(session_id),
      fd_(std::move(fd)),
      base_(base),
      header_(static_cast<lane::Header*>(base)),
      serve_(std::move(serve)),
      fail_(std::move(fail)),
      spin_(static_cast<uint32_t>(absl::ToInt64Microseconds(spin))) {}

SessionLane::~SessionLane() {
  Stop();
  ::munmap(base_, lane::kObjectBytes);
}

void SessionLane::Stop() {
  stop_.store(true);
  lane::RingDoorbell(header_);
  if (thread_.joinable()) {
    // The session may end from inside the lane thread (fail_ cancels the
    // call, and gRPC may run the reactor's callbacks inline).
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  overflow_.clear();
  header_->closed.store(1, std::memory_order_seq_cst);
  lane::FutexWakeAll(&header_->comp_tail);  // a waiting client sees `closed`
}

void SessionLane::Run() {
  // "memd-lane-<session>" (cut to the kernel's 15 characters), for top -H.
  std::string name = absl::StrFormat("memd-lane-%u", session_id_).substr(0, 15);
  ::pthread_setname_np(::pthread_self(), name.c_str());
  {
    MutexLock lock(&mu_);
    lane_thread_ = std::this_thread::get_id();
  }
  while (!stop_.load()) {
    bool paused;
    {
      MutexLock lock(&mu_);
      FlushOverflowLocked();
      if (!broken_.empty()) break;
      paused = overflow_.size() >= kMaxOverflow;
    }
    if (!paused && ServeSubmissions()) continue;
    {
      MutexLock lock(&mu_);
      if (!broken_.empty()) break;
    }
    uint32_t bell = header_->doorbell.load(std::memory_order_seq_cst);
    // Poll a little first: a client in a loop sends its next request within
    // microseconds, and then neither side pays a futex wake-up (the client
    // rings only while daemon_waiting is set). A rung doorbell ends the poll
    // too: Stop, a broken lane, or room the client made for completions.
    if (!paused && spin_.Poll([&] {
          return header_->sub_tail.load(std::memory_order_acquire) != sub_head_ ||
                 header_->doorbell.load(std::memory_order_acquire) != bell;
        })) {
      continue;
    }
    // Sleep until the client rings. It rings only when it sees
    // daemon_waiting set after publishing its tail, so the tail is read
    // again after setting it (both seq_cst: one side sees the other).
    header_->daemon_waiting.store(1, std::memory_order_seq_cst);
    bool more = !paused && header_->sub_tail.load(std::memory_order_seq_cst) != sub_head_;
    if (!more && !stop_.load()) {
      absl::Time slept = absl::Now();
      lane::FutexWait(&header_->doorbell, bell, kIdleWait);
      if (header_->sub_tail.load(std::memory_order_acquire) != sub_head_) {
        spin_.Slept(absl::ToInt64Nanoseconds(absl::Now() - slept));
      }
    }
    header_->daemon_waiting.store(0, std::memory_order_seq_cst);
  }
  std::string why;
  {
    MutexLock lock(&mu_);
    why = broken_;
  }
  if (!why.empty() && !stop_.load()) {
    spdlog::warn("lane {}: {}; ending the session", object_name_, why);
    // A copy: ending the session may stop and destroy this lane meanwhile.
    Fail fail = fail_;
    fail(why);
  }
}

bool SessionLane::ServeSubmissions() {
  uint8_t* ring = lane::SubmissionRing(base_);
  bool served = false;
  // A bounded batch, so completions and Stop are looked at between batches.
  for (int n = 0; n < 64 && !stop_.load(); ++n) {
    uint32_t tail = header_->sub_tail.load(std::memory_order_acquire);
    if (tail == sub_head_) break;
    std::string why;
    std::optional<uint32_t> next = lane::ReadEntry(ring, sub_head_, tail, &entry_, &why);
    if (next) {
      sub_head_ = *next;
      if (!request_.ParseFromString(entry_)) {  // reuses the last request's storage
        why = absl::StrFormat("a submission of %u bytes is not a SessionRequest", entry_.size());
      }
    } else {
      why = "submission ring: " + why;
    }
    if (!why.empty()) {
      MutexLock lock(&mu_);
      BreakLocked(std::move(why));
      return false;
    }
    if (request_.posted()) {
      MutexLock lock(&mu_);
      posted_.insert(request_.request_id());
    }
    serve_(*this, request_);
    // Published only once served: a client that sees its tail reached knows
    // that a request it sends on the stream now comes after this one
    // (ClientLane::AllServed; a deferred release must not overtake a posted
    // send of the same buffer).
    header_->sub_head.store(sub_head_, std::memory_order_release);
    served = true;
  }
  return served;
}

void SessionLane::Complete(const v1::SessionResponse& response) {
  Completion completion{response.SerializeAsString()};
  MutexLock lock(&mu_);
  if (stopped_ || !broken_.empty()) return;
  if (!posted_.empty()) completion.posted = posted_.erase(response.request_id()) != 0;
  if (completion.bytes.size() > lane::kMaxPayloadBytes) {
    // Cannot happen with the daemon's request limits (see lane.h).
    BreakLocked(absl::StrFormat("a response of %u bytes exceeds the lane's %u",
                                completion.bytes.size(), lane::kMaxPayloadBytes));
    return;
  }
  if (overflow_.empty() && WriteLocked(completion)) return;
  overflow_.push_back(std::move(completion));
  header_->wants_space.store(1, std::memory_order_seq_cst);
  FlushOverflowLocked();  // the client may have made room meanwhile
}

void SessionLane::FlushOverflowLocked() {
  while (!overflow_.empty() && broken_.empty() && WriteLocked(overflow_.front())) {
    overflow_.pop_front();
  }
  if (overflow_.empty()) header_->wants_space.store(0, std::memory_order_seq_cst);
}

bool SessionLane::WriteLocked(const Completion& completion) {
  const std::string& bytes = completion.bytes;
  uint32_t head = header_->comp_head.load(std::memory_order_acquire);
  // The client's head moves forward, never past what was written.
  if (head - comp_head_ > comp_tail_ - comp_head_) {
    BreakLocked(absl::StrFormat("the client's completion head %u is outside the written range "
                                "%u..%u", head, comp_head_, comp_tail_));
    return false;
  }
  comp_head_ = head;
  uint32_t need = lane::EntryBytes(static_cast<uint32_t>(bytes.size()));
  if (need > lane::kRingBytes - (comp_tail_ - comp_head_)) return false;
  comp_tail_ = lane::WriteEntry(lane::CompletionRing(base_), comp_tail_, bytes);
  header_->comp_tail.store(comp_tail_, std::memory_order_seq_cst);
  uint32_t waiting = header_->client_waiting.load(std::memory_order_seq_cst);
  if (waiting == lane::kWaitingAny || (waiting != lane::kNotWaiting && !completion.posted)) {
    lane::FutexWakeAll(&header_->comp_tail);
  }
  return true;
}

void SessionLane::BreakLocked(std::string why) {
  if (broken_.empty()) broken_ = std::move(why);
  overflow_.clear();
  if (std::this_thread::get_id() != lane_thread_) lane::RingDoorbell(header_);  // the lane thread acts on it
}

}  // namespace memd
