#include "memd/client.h"

#include <algorithm>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_format.h"
#include "memd/shared/address.h"
#include "memd/shared/duration.h"
#include "memd/shared/client_env.h"
#include "memd/shared/limits.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"
#include "client_impl.h"
#include "client_internals.h"
#include "locate.h"
#include "connect_env.h"
#include "probes.h"
#include "session_link.h"

namespace memd {


namespace {

BufferRef FromWire(const v1::BufferInfo& b) {
  return BufferRef{b.handle(), b.offset_bytes(), b.size_bytes(), b.capacity_bytes()};
}

int64_t OutageWaitMs(int64_t configured, const ClientEnvironment& env) {
  if (configured >= 0) return configured;
  return env.outage_wait_ms ? std::max<int64_t>(0, std::atoll(env.outage_wait_ms->c_str())) : 0;
}

// ConnectOptions::connect_timeout_ms, or $MEMD_CONNECT_TIMEOUT, or 30 s.
absl::StatusOr<absl::Duration> ConnectTimeout(int64_t configured_ms, const ClientEnvironment& env) {
  constexpr absl::Duration kMax = absl::Hours(1);
  if (configured_ms >= 0) {
    if (absl::Milliseconds(configured_ms) > kMax) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "connect_timeout_ms %d exceeds the limit of 1h (3600000 ms)", configured_ms));
    }
    return absl::Milliseconds(configured_ms);
  }
  if (!env.connect_timeout) return absl::Seconds(30);
  return ParseDuration("MEMD_CONNECT_TIMEOUT", *env.connect_timeout, kMax);
}

// $MEMD_LANE_SPIN (a duration up to lane::kMaxSpin), else the default.
absl::StatusOr<absl::Duration> LaneSpin(const ClientEnvironment& env) {
  if (!env.lane_spin) return lane::kDefaultSpin;
  return ParseDuration("MEMD_LANE_SPIN", *env.lane_spin, lane::kMaxSpin);
}

// ConnectOptions::arena_threshold_bytes, or $MEMD_ARENA_THRESHOLD, or 64 KiB.
absl::StatusOr<uint64_t> ArenaThreshold(int64_t configured, const ClientEnvironment& env) {
  uint64_t threshold = Arena::kDefaultThresholdBytes;
  const char* what = "arena_threshold_bytes";
  if (configured >= 0) {
    threshold = static_cast<uint64_t>(configured);
  } else if (env.arena_threshold) {
    absl::StatusOr<uint64_t> parsed = ParseSize(*env.arena_threshold);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("MEMD_ARENA_THRESHOLD: %s",
                                                        parsed.status().message()));
    }
    threshold = *parsed;
    what = "MEMD_ARENA_THRESHOLD";
  }
  if (threshold > Arena::kMaxThresholdBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %u exceeds the limit of %u bytes (256 KiB)", what, threshold,
        Arena::kMaxThresholdBytes));
  }
  return threshold;
}

// Runs one operation on the session and returns its BufferInfo.
absl::StatusOr<BufferRef> CallForBuffer(SessionLink& link, v1::SessionRequest request) {
  absl::StatusOr<v1::SessionResponse> response = link.CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return FromWire(response->buffer());
}

}  // namespace

// --- Buffer ---

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release().IgnoreError();  // a destructor-like path: nowhere to report
    client_ = std::exchange(other.client_, nullptr);
    ref_ = std::exchange(other.ref_, BufferRef{});
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

Buffer::~Buffer() { Release().IgnoreError(); }

absl::Status Buffer::Release() {
  if (client_ == nullptr) return absl::OkStatus();
  Client* client = std::exchange(client_, nullptr);
  uint64_t handle = std::exchange(ref_, BufferRef{}).handle;
  data_ = nullptr;
  return client->ReleaseRef(handle).status();
}

uint64_t Buffer::Detach() {
  client_ = nullptr;
  data_ = nullptr;
  return std::exchange(ref_, BufferRef{}).handle;
}

// --- Client ---

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ConnectOptions options) {
  auto impl = std::make_unique<Impl>();
  const ClientEnvironment env = ReadClientEnvironment();  // the one reader (client_env.h)
  impl->address = options.address.empty() ? env.address : options.address;
  std::string pool = PoolOrDefault(options.pool);
  absl::StatusOr<Address> address = ParseAddress(impl->address);
  if (!address.ok()) return address.status();
  if (absl::Status s = ValidateName("pool name", pool); !s.ok()) return s;
  absl::StatusOr<absl::Duration> connect_timeout = ConnectTimeout(options.connect_timeout_ms, env);
  if (!connect_timeout.ok()) return connect_timeout.status();
  absl::StatusOr<absl::Duration> lane_spin = LaneSpin(env);
  if (!lane_spin.ok()) return lane_spin.status();
  absl::StatusOr<uint64_t> arena_threshold = ArenaThreshold(options.arena_threshold_bytes, env);
  if (!arena_threshold.ok()) return arena_threshold.status();

  v1::AttachResponse attached;
  absl::StatusOr<std::unique_ptr<SessionLink>> link = SessionLink::Open(
      SessionLink::Options{
          .address = impl->address,
          .grpc_target = address->grpc_target,
          .socket_path = address->kind == Address::Kind::kUnix ? address->unix_path : "",
          .pool = pool,
          .client_name = options.client_name,
          .connect_timeout = *connect_timeout,
          .outage_wait = absl::Milliseconds(OutageWaitMs(options.outage_wait_ms, env)),
          .min_backoff = absl::Milliseconds(std::max<int64_t>(1, options.reconnect_min_backoff_ms)),
          .max_backoff = absl::Milliseconds(std::max(options.reconnect_min_backoff_ms,
                                                     options.reconnect_max_backoff_ms)),
          .lane = options.lane && env.lane,
          .lane_spin = *lane_spin,
          .read_only = options.read_only || env.read_only,
      },
      &attached);
  if (!link.ok()) return link.status();
  impl->link = std::move(*link);
  const v1::PoolInfo& info = attached.pool();
  impl->pool = PoolInfo{info.name(), info.shm_name(), info.size_bytes(), info.alignment_bytes(),
                        info.max_alloc_bytes(), info.index()};
  impl->base = impl->link->base();
  bool populate = options.populate || env.populate;
  if (populate && info.prefaulted()) {
    // The pages exist (the daemon reserved them); this only fills our page
    // tables. Failure (an old kernel) just means faults on first touch.
    ::madvise(impl->base, info.size_bytes(),
              impl->link->read_only() ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
  }
  // Slabs start on 4 KiB boundaries: a pool aligned more coarsely has no
  // arena; a reader allocates nothing.
  if (*arena_threshold > 0 && info.alignment_bytes() <= 4096 && !impl->link->read_only()) {
    impl->chunks = std::make_unique<LinkChunkSource>(*impl->link);
    impl->arena = std::make_unique<Arena>(
        *impl->chunks, impl->link->holdings(),
        Arena::Pool{impl->base, impl->link->memory_bytes(), info.alignment_bytes()},
        *arena_threshold);
    impl->housekeeper = std::make_unique<Housekeeper>(
        Arena::kTickPeriod, [link = impl->link.get(), arena = impl->arena.get()] {
          if (!link->up()) return;  // nothing to keep while the daemon is away
          SessionLink::NoWait no_wait;  // a memd_free never waits behind a tick
          arena->Tick();
        });
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

absl::StatusOr<BufferRef> Client::AllocateRef(uint64_t size_bytes, bool zero) {
  v1::SessionRequest request;
  request.mutable_allocate()->set_size_bytes(size_bytes);
  request.mutable_allocate()->set_zero(zero);
  absl::StatusOr<BufferRef> ref = CallForBuffer(*impl_->link, std::move(request));  // the holdings record it
  if (ref.ok()) probes::Allocated(ref->handle, ref->size_bytes);
  return ref;
}

absl::StatusOr<BufferRef> Client::RetainRef(uint64_t handle) {
  v1::SessionRequest request;
  request.mutable_retain()->set_handle(handle);
  absl::StatusOr<BufferRef> ref = CallForBuffer(*impl_->link, std::move(request));
  if (ref.ok()) probes::Retained(ref->handle, ref->size_bytes);
  return ref;
}

absl::StatusOr<BufferRef> Client::ReallocRef(uint64_t handle, uint64_t size_bytes) {
  v1::SessionRequest request;
  request.mutable_realloc()->set_handle(handle);
  request.mutable_realloc()->set_size_bytes(size_bytes);
  return CallForBuffer(*impl_->link, std::move(request));
}

absl::StatusOr<bool> Client::ReleaseRef(uint64_t handle) {
  probes::Released(handle);
  return impl_->link->Release(handle);
}

absl::StatusOr<std::vector<BufferRef>> Client::AllocateRefs(uint64_t size_bytes, uint32_t count,
                                                            bool zero) {
  v1::SessionRequest request;
  request.mutable_allocate_batch()->set_size_bytes(size_bytes);
  request.mutable_allocate_batch()->set_count(count);
  request.mutable_allocate_batch()->set_zero(zero);
  absl::StatusOr<v1::SessionResponse> response = impl_->link->CallOk(std::move(request));
  if (!response.ok()) return response.status();
  std::vector<BufferRef> refs;
  refs.reserve(response->buffers().buffers_size());
  for (const v1::BufferInfo& b : response->buffers().buffers()) {
    refs.push_back(FromWire(b));
    probes::Allocated(b.handle(), b.size_bytes());
  }
  return refs;
}

absl::StatusOr<uint32_t> Client::ReleaseRefs(const std::vector<uint64_t>& handles) {
  v1::SessionRequest request;
  for (uint64_t handle : handles) request.mutable_release_batch()->add_handles(handle);
  absl::StatusOr<v1::SessionResponse> response = impl_->link->Call(std::move(request));
  if (!response.ok() && absl::IsUnavailable(response.status())) {
    // As in ReleaseRef: the session broke before the answer (the daemon
    // died, or is away). The release is noted locally; the reconnection does
    // not reclaim these references, so the daemon drops them if it had not
    // already. Keeping them here would make a process that released
    // everything look like a holder, and a daemon back in new memory would
    // then refuse it the pool for good.
    for (uint64_t handle : handles) impl_->link->holdings().Remove(handle);
    return 0u;
  }
  if (!response.ok()) return response.status();
  // A refusal changes nothing (a batch is released all or nothing): the
  // references stay held.
  if (absl::Status s = SessionStream::StatusOf(*response); !s.ok()) return s;
  for (uint64_t handle : handles) {
    probes::Released(handle);
    impl_->link->holdings().Remove(handle);
  }
  return response->release_batch().freed();
}

void Client::ReleaseRefsLater(const std::vector<uint64_t>& handles) {
  for (uint64_t handle : handles) probes::Released(handle);
  impl_->link->DeferRelease(handles);
}

absl::Status Client::FlushReleases() { return impl_->link->FlushReleases(); }

absl::StatusOr<std::vector<RefCount>> Client::QueryRefs(const std::vector<uint64_t>& handles) {
  v1::SessionRequest request;
  v1::QueryRequest* query = request.mutable_query();  // set even when empty
  for (uint64_t handle : handles) query->add_handles(handle);
  absl::StatusOr<v1::SessionResponse> response = impl_->link->CallOk(std::move(request));
  if (!response.ok()) return response.status();
  std::vector<RefCount> counts;
  counts.reserve(response->references().handles_size());
  for (const v1::HandleReferences& r : response->references().handles()) {
    counts.push_back(RefCount{r.handle(), r.references(), r.held()});
  }
  return counts;
}

Arena* ArenaOf(const Client& client) { return ClientInternals::ImplOf(client).arena.get(); }

absl::StatusOr<BufferRef> Client::Held(const void* ptr) const {
  Located located = Locate(*this, ptr);
  switch (located.kind) {
    case Located::Kind::kArenaBlock:
      // An arena block gets its handle here, on demand (one round trip, once).
      return impl_->arena->Handle(located.block);
    case Located::Kind::kBuffer:
      return located.buffer;
    case Located::Kind::kNotOurs:
      break;
  }
  return located.why;
}

std::vector<bool> Client::Returned(const std::vector<uint64_t>& handles) {
  std::vector<bool> back(handles.size(), false);
  size_t n = std::min<size_t>(handles.size(), limits::kMaxBatch);
  if (n == 0) return back;
  absl::StatusOr<std::vector<RefCount>> counts =
      QueryRefs(std::vector<uint64_t>(handles.begin(), handles.begin() + n));
  if (!counts.ok()) return back;  // the daemon is away: they stay lent
  for (size_t i = 0; i < n && i < counts->size(); ++i) {
    back[i] = (*counts)[i].references == (*counts)[i].held;
  }
  return back;
}

namespace {

v1::SessionRequest SendRequest(const std::string& channel, const std::vector<uint64_t>& handles,
                               std::string_view metadata, int64_t timeout_ms, uint32_t capacity,
                               SendMode mode) {
  v1::SessionRequest request;
  v1::ChannelSendRequest* send = request.mutable_send();
  send->set_channel(channel);
  for (uint64_t handle : handles) send->add_handles(handle);
  send->set_metadata(std::string(metadata));
  send->set_timeout_ms(static_cast<uint32_t>(std::clamp<int64_t>(timeout_ms, 0, limits::kMaxTimeoutMs)));
  send->set_capacity(capacity);
  send->set_share(mode == SendMode::kShare);
  return request;
}

// The outcome of a send's answer (the link's holdings dropped the references
// a successful moving send gave to the channel).
absl::Status SendOutcome(const absl::StatusOr<v1::SessionResponse>& response) {
  if (!response.ok()) return response.status();
  return SessionStream::StatusOf(*response);
}

}  // namespace

absl::Status Client::Impl::CollectLocked() {
  if (!pending) return absl::OkStatus();
  PendingSend send = std::move(*pending);
  pending.reset();
  absl::Status s = SendOutcome(link->Collect(send.posted));
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrFormat("posted send to channel '%s' failed: %s",
                                                send.channel, s.message()));
}

absl::Status Client::Send(const std::string& channel, const std::vector<uint64_t>& handles,
                          std::string_view metadata, int64_t timeout_ms, uint32_t capacity,
                          SendMode mode) {
  {
    // Only the collection is under the lock: sends of other threads (to
    // other channels) do not queue behind one that waits for room.
    MutexLock lock(&impl_->send_mu);
    if (absl::Status s = impl_->CollectLocked(); !s.ok()) return s;
  }
  // Refused here, not by the daemon: metadata past 64 KiB would not even fit
  // a session message (memd/shared/limits.h), and nothing is sent.
  if (absl::Status s = limits::CheckChannelMessage(channel, handles.size(), metadata.size());
      !s.ok()) {
    return s;
  }
  absl::Status sent = SendOutcome(
      impl_->link->Call(SendRequest(channel, handles, metadata, timeout_ms, capacity, mode)));
  if (sent.ok()) probes::Sent(channel, handles);
  return sent;
}

absl::Status SendRegistering(Client& client, const std::string& channel, const ArenaSend& send,
                             std::string_view metadata, int64_t timeout_ms) {
  auto& impl = ClientInternals::ImplOf(client);
  {
    MutexLock lock(&impl.send_mu);
    if (absl::Status s = impl.CollectLocked(); !s.ok()) return s;
  }
  if (absl::Status s = limits::CheckChannelMessage(channel, send.handles.size(), metadata.size());
      !s.ok()) {
    return s;
  }
  v1::SessionRequest request =
      SendRequest(channel, send.handles, metadata, timeout_ms, 0, SendMode::kMove);
  for (const v1::ArenaRegisterRequest& range : send.ranges) {
    *request.mutable_send()->add_register_first() = range;
  }
  absl::StatusOr<v1::SessionResponse> response = impl.link->Call(std::move(request));
  if (absl::Status s = SendOutcome(response); !s.ok()) return s;
  probes::Sent(channel, send.handles);
  impl.arena->TakeEvents();  // the blocks it registered are the channel's from now on
  return absl::OkStatus();
}

absl::Status Client::Post(const std::string& channel, const std::vector<uint64_t>& handles,
                          std::string_view metadata, int64_t timeout_ms, uint32_t capacity,
                          SendMode mode, PostWake wake) {
  MutexLock lock(&impl_->send_mu);
  if (absl::Status s = impl_->CollectLocked(); !s.ok()) return s;
  if (absl::Status s = limits::CheckChannelMessage(channel, handles.size(), metadata.size());
      !s.ok()) {
    return s;
  }
  impl_->pending = Impl::PendingSend{
      impl_->link->Post(SendRequest(channel, handles, metadata, timeout_ms, capacity, mode),
                        wake == PostWake::kNow),
      channel};
  probes::Sent(channel, handles);
  return absl::OkStatus();
}

absl::Status Client::CollectPosted() {
  MutexLock lock(&impl_->send_mu);
  return impl_->CollectLocked();
}

absl::StatusOr<ChannelMessage> Client::Receive(const std::string& channel, int64_t timeout_ms,
                                               uint32_t capacity) {
  v1::SessionRequest request;
  request.mutable_receive()->set_channel(channel);
  request.mutable_receive()->set_timeout_ms(
      static_cast<uint32_t>(std::clamp<int64_t>(timeout_ms, 0, limits::kMaxTimeoutMs)));
  request.mutable_receive()->set_capacity(capacity);
  absl::StatusOr<v1::SessionResponse> response = impl_->link->CallOk(std::move(request));
  if (!response.ok()) return response.status();
  ChannelMessage message;
  for (const v1::BufferInfo& b : response->message().buffers()) message.buffers.push_back(FromWire(b));
  message.metadata = response->message().metadata();
  probes::Received(channel, message.buffers.size(),
                   message.buffers.empty() ? 0 : message.buffers.front().handle);
  return message;
}

absl::StatusOr<Buffer> Client::Allocate(size_t size_bytes, bool zero) {
  absl::StatusOr<BufferRef> ref = AllocateRef(size_bytes, zero);
  if (!ref.ok()) return ref.status();
  return Buffer(this, *ref, Pointer(ref->offset_bytes));
}

absl::StatusOr<Buffer> Client::Retain(uint64_t handle) {
  absl::StatusOr<BufferRef> ref = RetainRef(handle);
  if (!ref.ok()) return ref.status();
  return Buffer(this, *ref, Pointer(ref->offset_bytes));
}

absl::Status Client::Realloc(Buffer& buffer, size_t size_bytes) {
  if (buffer.client_ != this) {
    return absl::InvalidArgumentError("realloc of an empty buffer or one of another client");
  }
  absl::StatusOr<BufferRef> ref = ReallocRef(buffer.handle(), size_bytes);
  if (!ref.ok()) return ref.status();
  buffer.ref_ = *ref;
  buffer.data_ = Pointer(ref->offset_bytes);
  return absl::OkStatus();
}

uint8_t* Client::base() const { return impl_->base; }
bool Client::read_only() const { return impl_->link->read_only(); }
const PoolInfo& Client::pool() const { return impl_->pool; }
uint64_t Client::session_id() const { return impl_->link->session_id(); }
bool Client::connected() const { return impl_->link->up(); }
uint64_t Client::reconnects() const { return impl_->link->reconnects(); }
const std::string& Client::address() const { return impl_->address; }

}  // namespace memd
