#include "session_link.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <sys/mman.h>

#include <cerrno>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_format.h"
#include "memd/shared/fd_handoff.h"
#include "memd/shared/limits.h"

namespace memd {
namespace {

// How long the monitor waits on the channel at a time: the bound on how long
// destroying a client waits for its monitor thread.
constexpr absl::Duration kMonitorTick = absl::Milliseconds(25);
// The longest pause between Open's tries (Options::connect_timeout bounds them).
constexpr absl::Duration kMaxPause = absl::Milliseconds(200);

// Set on a link's monitor thread for its whole life (see SessionLink::Call).
thread_local bool t_on_monitor = false;
thread_local bool t_no_wait = false;  // SessionLink::NoWait

std::shared_ptr<grpc::Channel> NewChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  // A channel of its own, not shared with an older one that saw the daemon die.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionLink>> SessionLink::Open(Options options,
                                                               v1::AttachResponse* attached) {
  std::unique_ptr<SessionLink> link(new SessionLink(std::move(options)));
  // A daemon not up yet (no socket, nobody accepting) or a pool whose daemon
  // just restarted and waits for its memory to come back (the daemon answers
  // UNAVAILABLE): try again until the connect timeout.
  const absl::Duration timeout = link->options_.connect_timeout;
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::shared_ptr<SessionStream>> stream;
  for (absl::Duration pause = absl::Milliseconds(5);; pause = std::min(pause * 2, kMaxPause)) {
    stream = link->Attach(0, attached);
    if (stream.ok() || !absl::IsUnavailable(stream.status())) break;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError(absl::StrFormat(
          "connecting to memd at %s: %s; gave up after the connect timeout of %s "
          "(ConnectOptions::connect_timeout_ms, $MEMD_CONNECT_TIMEOUT)",
          link->options_.address, stream.status().message(), absl::FormatDuration(timeout)));
    }
    absl::SleepFor(std::min(pause, left));
  }
  if (!stream.ok()) return stream.status();
  link->segment_id_ = attached->pool().segment_id();
  link->pool_index_ = attached->pool().index();
  if (link->options_.socket_path.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s': its memory is handed over the local Unix socket only; %s is not one",
        attached->pool().name(), link->options_.address));
  }
  absl::StatusOr<UniqueFd> memory = link->FetchDescriptor(
      static_cast<uint32_t>(fd_handoff::Kind::kPoolMemory), attached->session_id(),
      attached->ticket());
  if (!memory.ok()) {
    return absl::Status(memory.status().code(),
                        absl::StrFormat("cannot get the memory of pool '%s': %s",
                                        attached->pool().name(), memory.status().message()));
  }
  link->memory_fd_ = std::move(*memory);
  link->memory_bytes_ = attached->pool().size_bytes();
  link->read_only_ = attached->read_only();
  void* base = ::mmap(nullptr, link->memory_bytes_, link->Protection(), MAP_SHARED,
                      link->memory_fd_.get(), 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot map the memory of pool '%s' (%u bytes): %s", attached->pool().name(),
        link->memory_bytes_, std::strerror(errno)));
  }
  link->base_ = static_cast<uint8_t*>(base);
  std::shared_ptr<ClientLane> lane =
      link->OpenLane(**stream, attached->session_id(), attached->ticket());
  {
    MutexLock lock(&link->mu_);
    link->stream_ = std::move(*stream);
    link->lane_ = std::move(lane);
    link->session_id_ = attached->session_id();
    link->ticket_ = attached->ticket();
  }
  link->monitor_ = std::thread([l = link.get()] { l->Monitor(); });
  return link;
}

SessionLink::~SessionLink() {
  // End the session on purpose, so the daemon releases what it holds now
  // rather than keeping it for this process (CloseRequest).
  std::shared_ptr<SessionStream> stream;
  {
    MutexLock lock(&mu_);
    if (state_ == State::kUp) stream = stream_;
  }
  if (stream != nullptr) {
    v1::SessionRequest request;
    request.mutable_close();
    stream->Call(std::move(request)).IgnoreError();
  }
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (monitor_.joinable()) monitor_.join();
  if (base_ != nullptr) ::munmap(base_, memory_bytes_);
}

absl::StatusOr<std::shared_ptr<SessionStream>> SessionLink::Attach(uint64_t expected_segment_id,
                                                                   v1::AttachResponse* attached) {
  std::shared_ptr<grpc::Channel> channel = NewChannel(options_.grpc_target);
  auto stream = std::make_shared<SessionStream>(channel, options_.address);
  v1::SessionRequest request;
  request.mutable_attach()->set_pool(options_.pool);
  request.mutable_attach()->set_client_name(options_.client_name);
  request.mutable_attach()->set_expected_segment_id(expected_segment_id);
  // Once a reader, always: this process maps the pool read-only.
  request.mutable_attach()->set_read_only(options_.read_only || read_only_);
  absl::StatusOr<v1::SessionResponse> response = stream->Call(std::move(request));
  if (!response.ok()) {
    return absl::UnavailableError(absl::StrFormat(
        "cannot reach memd at %s: is the daemon running there? (%s)", options_.address,
        response.status().message()));
  }
  if (absl::Status s = SessionStream::StatusOf(*response); !s.ok()) return s;
  *attached = response->attach();
  MutexLock lock(&mu_);
  channel_ = std::move(channel);
  return stream;
}

bool SessionLink::HoldsNothing() const {
  MutexLock lock(&mu_);
  return holdings_.empty() && deferred_.empty();
}

std::shared_ptr<ClientLane> SessionLink::OpenLane(SessionStream& stream, uint64_t session_id,
                                                  const std::string& ticket) {
  if (!options_.lane) return nullptr;
  v1::SessionRequest request;
  request.mutable_open_lane();
  absl::StatusOr<v1::SessionResponse> response = stream.Call(std::move(request));
  // A refusal (lanes off or at their limit, another uid the daemon cannot
  // give the object to, an older daemon) leaves the stream, which serves
  // every request alike: nothing to report.
  if (!response.ok() || !SessionStream::StatusOf(*response).ok() || !response->has_lane()) {
    return nullptr;
  }
  absl::StatusOr<UniqueFd> fd =
      FetchDescriptor(static_cast<uint32_t>(fd_handoff::Kind::kLaneMemory), session_id, ticket);
  if (!fd.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<ClientLane>> lane =
      ClientLane::Open(response->lane(), session_id, options_.address, fd->get(),
                       options_.lane_spin);
  if (!lane.ok()) return nullptr;
  return std::move(*lane);
}

absl::Status SessionLink::Route(absl::Time deadline, v1::SessionRequest& request,
                                std::shared_ptr<SessionStream>* stream,
                                std::shared_ptr<ClientLane>* lane) {
  MutexLock lock(&mu_);
  while (state_ == State::kDown && !stopping_ && absl::Now() < deadline) {
    cv_.WaitFor(&mu_, absl::ToChronoNanoseconds(deadline - absl::Now()));
  }
  if (state_ == State::kLost) return absl::FailedPreconditionError(why_);
  if (state_ == State::kDown) {
    return absl::UnavailableError(absl::StrFormat(
        "memd unavailable: %s; reconnecting in the background (mapped buffers stay usable)", why_));
  }
  *stream = stream_;
  *lane = lane_;
  // Deferred releases ride with the session they belong to: a reconnect
  // cleared those of the old one, so what is queued now is this stream's.
  size_t n = std::min<size_t>(deferred_.size(), limits::kMaxBatch);
  for (size_t i = 0; i < n; ++i) request.add_release_first(deferred_[i]);
  bool via_lane = lane_ != nullptr && !t_on_monitor && ClientLane::Fits(request);
  if (n > 0 && !via_lane && !ReleasesMayGoOnStreamLocked()) {
    request.clear_release_first();  // they wait for a later request or tick
  } else {
    deferred_.erase(deferred_.begin(), deferred_.begin() + static_cast<ptrdiff_t>(n));
  }
  return absl::OkStatus();
}

bool SessionLink::ReleasesMayGoOnStreamLocked() {
  // A release queued after a request on the lane (a posted send of the same
  // buffer, sharing it) must reach the daemon after it: on the stream it
  // could be served first, and the send then finds the reference gone
  // ("this session holds no reference"). The lane's requests are all served
  // once its head reached its tail; checked after the releases were queued,
  // so every lane request made before them is counted.
  return lane_ == nullptr || lane_->AllServed();
}

absl::StatusOr<v1::SessionResponse> SessionLink::Call(v1::SessionRequest request) {
  const bool on_monitor = t_on_monitor;  // see the header: no waiting, no lane
  absl::Time deadline =
      on_monitor || t_no_wait ? absl::Now() : absl::Now() + options_.outage_wait;
  // A release whose session broke mid-call is not repeated: either the daemon
  // did it, or the reference is not reclaimed and the daemon drops it. Other
  // operations are repeated on the new session; if the first try did happen,
  // its reference is unclaimed and released when the grace period ends.
  // Channel operations move references; a repeat could move them twice.
  bool repeatable = !request.has_release() && !request.has_release_batch() &&
                    !request.has_send() && !request.has_receive();
  while (true) {
    std::shared_ptr<SessionStream> stream;
    std::shared_ptr<ClientLane> lane;
    if (absl::Status s = Route(deadline, request, &stream, &lane); !s.ok()) return s;
    absl::StatusOr<v1::SessionResponse> response =
        lane != nullptr && !on_monitor && ClientLane::Fits(request) ? lane->Call(request)
                                                                    : stream->Call(request);
    if (response.ok()) {
      if (SessionStream::StatusOf(*response).ok()) holdings_.Apply(request, *response);
      return response;
    }
    MarkDown(stream, std::string(response.status().message()));
    if (!repeatable || absl::Now() >= deadline) return response;
    // As for a release: the new session never reclaimed these references.
    request.clear_release_first();
  }
}

SessionLink::Posted SessionLink::Post(v1::SessionRequest request, bool wake) {
  Posted posted;
  std::shared_ptr<ClientLane> lane;
  if (absl::Status s = Route(absl::Now() + options_.outage_wait, request, &posted.stream, &lane);
      !s.ok()) {
    posted.answer = s;
    return posted;
  }
  if (lane != nullptr && ClientLane::Fits(request)) posted.lane = std::move(lane);
  if (request.has_send() && !request.send().share()) {
    posted.moved.assign(request.send().handles().begin(), request.send().handles().end());
  }
  absl::StatusOr<uint64_t> id = posted.lane != nullptr ? posted.lane->Post(std::move(request), wake)
                                                       : posted.stream->Post(std::move(request));
  if (!id.ok()) {
    MarkDown(posted.stream, std::string(id.status().message()));
    posted.answer = id.status();
    return posted;
  }
  posted.id = *id;
  return posted;
}

absl::StatusOr<v1::SessionResponse> SessionLink::Collect(Posted& posted) {
  if (posted.id != 0) {
    posted.answer = posted.lane != nullptr ? posted.lane->Collect(posted.id)
                                           : posted.stream->Collect(posted.id);
    posted.id = 0;
    if (!posted.answer.ok()) {
      MarkDown(posted.stream, std::string(posted.answer.status().message()));
    } else if (SessionStream::StatusOf(*posted.answer).ok()) {
      holdings_.GaveToChannel(posted.moved);  // the channel's now
    }
  }
  return std::move(posted.answer);
}

absl::StatusOr<v1::SessionResponse> SessionLink::CallOk(v1::SessionRequest request) {
  absl::StatusOr<v1::SessionResponse> response = Call(std::move(request));
  if (!response.ok()) return response.status();
  if (absl::Status s = SessionStream::StatusOf(*response); !s.ok()) return s;
  return response;
}

SessionLink::NoWait::NoWait() { t_no_wait = true; }
SessionLink::NoWait::~NoWait() { t_no_wait = false; }

absl::StatusOr<bool> SessionLink::Release(uint64_t handle) {
  v1::SessionRequest request;
  request.mutable_release()->set_handle(handle);
  bool held = holdings_.Remove(handle);
  absl::StatusOr<v1::SessionResponse> response = Call(std::move(request));
  // While the daemon is away the release is noted locally: the reconnection
  // does not reclaim the reference, so the daemon drops it.
  if (!response.ok() && held && absl::IsUnavailable(response.status())) return false;
  if (!response.ok()) return response.status();
  if (absl::Status s = SessionStream::StatusOf(*response); !s.ok()) return s;
  return response->release().freed();
}

void SessionLink::DeferRelease(const std::vector<uint64_t>& handles) {
  MutexLock lock(&mu_);
  for (uint64_t handle : handles) {
    if (holdings_.Remove(handle)) deferred_.push_back(handle);
  }
}

absl::Status SessionLink::FlushReleases() {
  v1::SessionRequest request;
  {
    MutexLock lock(&mu_);
    if (deferred_.empty()) return absl::OkStatus();
    // This call goes on the stream; the monitor rang the lane at the
    // tick's start, so the next tick finds it served.
    if (!ReleasesMayGoOnStreamLocked()) return absl::OkStatus();
    size_t n = std::min<size_t>(deferred_.size(), limits::kMaxBatch);
    for (size_t i = 0; i < n; ++i) request.mutable_release_batch()->add_handles(deferred_[i]);
    deferred_.erase(deferred_.begin(), deferred_.begin() + static_cast<ptrdiff_t>(n));
  }
  absl::StatusOr<v1::SessionResponse> response = Call(std::move(request));
  if (!response.ok()) return response.status();
  return SessionStream::StatusOf(*response);
}

void SessionLink::MarkDown(const std::shared_ptr<SessionStream>& broken, const std::string& why) {
  MutexLock lock(&mu_);
  if (stream_ != broken || state_ != State::kUp) return;  // already noticed
  state_ = State::kDown;
  why_ = why;
  if (lane_ != nullptr) lane_->Break(why);  // its calls fail as the stream's do
  cv_.SignalAll();
}

bool SessionLink::up() const {
  MutexLock lock(&mu_);
  return state_ == State::kUp;
}

uint64_t SessionLink::reconnects() const {
  MutexLock lock(&mu_);
  return reconnects_;
}

uint64_t SessionLink::session_id() const {
  MutexLock lock(&mu_);
  return session_id_;
}

void SessionLink::Monitor() {
  t_on_monitor = true;
  absl::Duration backoff = options_.min_backoff;
  MutexLock lock(&mu_);
  while (!stopping_) {
    if (state_ == State::kUp) {
      backoff = options_.min_backoff;
      std::shared_ptr<grpc::Channel> channel = channel_;
      std::shared_ptr<SessionStream> stream = stream_;
      std::shared_ptr<ClientLane> lane = lane_;
      bool lane_closed = lane_ != nullptr && lane_->closed();
      mu_.unlock();
      if (lane != nullptr) lane->RingLate();  // a post left for a next request that did not come
      if (lane_closed) {
        // The daemon ended the session (an operator, or a lane it could not
        // trust): reconnect now, not at the next call.
        MarkDown(stream, absl::StrFormat("memd at %s ended this session", options_.address));
        mu_.lock();
        continue;
      }
      // The session stream keeps the connection open, so a daemon that died
      // shows as the channel leaving READY even when no call is running. The
      // wait polls the connection: nothing else does while the client is idle
      // (gRPC's backup poller would notice only after 5 s).
      bool changed = channel->WaitForStateChange(
          GRPC_CHANNEL_READY, absl::ToChronoTime(absl::Now() + kMonitorTick));
      bool lost = changed && channel->GetState(false) != GRPC_CHANNEL_READY;
      if (lost) {
        MarkDown(stream, absl::StrFormat("connection to memd at %s lost", options_.address));
      } else {
        FlushReleases().IgnoreError();  // deferred releases wait at most a tick
      }
      mu_.lock();
    } else if (state_ == State::kDown) {
      mu_.unlock();
      bool done = Reconnect();
      mu_.lock();
      if (!done && !stopping_) {
        cv_.WaitFor(&mu_, absl::ToChronoNanoseconds(backoff));
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
    } else {
      cv_.Wait(&mu_);  // lost for good: wait for the destructor
    }
  }
}

bool SessionLink::Reconnect() {
  OfferMemory();  // a restarted daemon continues in the memory this process maps
  v1::AttachResponse attached;
  absl::StatusOr<std::shared_ptr<SessionStream>> stream = Attach(segment_id_, &attached);
  if (absl::IsFailedPrecondition(stream.status()) && HoldsNothing()) {
    // The pool is other memory now (the daemon came back without the old
    // one), but this process holds no buffer in the old: continue in the new
    // memory, mapped at the same address.
    stream = AttachToNewMemory(&attached);
  }
  if (!stream.ok()) {
    if (absl::IsUnavailable(stream.status())) return false;  // daemon not back yet
    MutexLock lock(&mu_);
    state_ = State::kLost;
    why_ = absl::StrFormat("the pool '%s' this client mapped is gone: %s", options_.pool,
                           stream.status().message());
    holdings_.Clear();
    cv_.SignalAll();
    return true;
  }
  std::vector<std::pair<uint64_t, uint32_t>> claims;
  std::string previous_ticket;  // proves the references the last session left are ours
  {
    MutexLock lock(&mu_);
    claims = holdings_.Snapshot();
    previous_ticket = ticket_;
  }
  std::shared_ptr<ClientLane> lane = OpenLane(**stream, attached.session_id(), attached.ticket());
  absl::flat_hash_map<uint64_t, uint32_t> granted;
  // At least one request, the last one final: what the last session left
  // beyond these (answers it never got) is released.
  for (size_t start = 0; start == 0 || start < claims.size(); start += limits::kMaxReclaimEntries) {
    v1::SessionRequest request;
    request.mutable_reclaim()->set_ticket(previous_ticket);
    size_t end = std::min(claims.size(), start + limits::kMaxReclaimEntries);
    request.mutable_reclaim()->set_last_batch(end == claims.size());
    for (size_t i = start; i < end; ++i) {
      v1::HeldReference* held = request.mutable_reclaim()->add_held();
      held->set_handle(claims[i].first);
      held->set_references(claims[i].second);
    }
    absl::StatusOr<v1::SessionResponse> response = (*stream)->Call(std::move(request));
    if (!response.ok()) return false;  // the daemon went away again: start over
    for (const v1::ReclaimedReference& r : response->reclaim().reclaimed()) {
      granted[r.buffer().handle()] += r.references();
    }
  }
  // Releases made while the daemon was away were only noted locally; hand
  // back the references reclaimed beyond what is still held.
  std::vector<uint64_t> excess;
  {
    MutexLock lock(&mu_);
    excess = holdings_.KeepGranted(granted);  // references not granted are lost
    // Deferred releases were of the old session; the new one never reclaimed
    // those references, so the daemon drops them when its grace period ends.
    deferred_.clear();
    stream_ = std::move(*stream);
    lane_ = std::move(lane);
    session_id_ = attached.session_id();
    ticket_ = attached.ticket();
    ++reconnects_;
    state_ = State::kUp;
    cv_.SignalAll();
  }
  for (uint64_t handle : excess) {
    v1::SessionRequest request;
    request.mutable_release()->set_handle(handle);
    Call(std::move(request)).IgnoreError();  // not held: the holdings have nothing to drop
  }
  return true;
}

}  // namespace memd
