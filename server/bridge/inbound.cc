#include "bridge/inbound.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "bridge/exit_point.h"
#include "memd/shared/limits.h"

namespace memd::bridge {
namespace {

constexpr absl::Duration kSendWait = absl::Milliseconds(500);
constexpr absl::Duration kPullTimeout = absl::Seconds(30);
constexpr auto kRetryPause = std::chrono::milliseconds(20);

}  // namespace

Inbound::Inbound(uint32_t id, std::string peer, std::string bridge, Pool* pool,
                 std::string channel, ChannelRegistry* channels, PullTransport* transport,
                 std::unique_ptr<DeliveredMark> mark, uint64_t session_id)
    : id_(id), peer_(std::move(peer)), bridge_(std::move(bridge)), pool_(pool),
      channel_(std::move(channel)), channels_(channels), transport_(transport),
      session_id_(session_id),
      stats_(bridge_, peer_, "in", std::string(transport->name()), transport->Encrypted(true)) {
  delivered_ = mark->delivered();
  mark_ = std::move(mark);
}

void Inbound::Delivered(uint64_t seq) {
  MutexLock lock(&mu_);
  if (seq <= delivered_) return;
  mark_->Set(seq);  // before the consumer's receive is answered
  delivered_ = seq;
  cv_.SignalAll();
}

absl::Status Inbound::Serve(grpc::ServerContext* context, Stream* stream,
                            const v1::BridgeHello& hello) {
  {
    MutexLock lock(&mu_);
    if (active_ != nullptr) active_->TryCancel();  // the sender reconnected
  }
  MutexLock serve(&serve_mu_);
  {
    MutexLock lock(&mu_);
    active_ = context;
  }
  auto leave = [&](absl::Status s) {
    MutexLock lock(&mu_);
    active_ = nullptr;
    stats_.SetLink("down", s.ok() ? std::string() : std::string(s.message()));
    return s;
  };
  while (!pool_->memory_ready()) {  // a restarted daemon waits for a client's hand-back
    if (context->IsCancelled()) return leave(absl::CancelledError("the sender went away"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A new connection after a failed pull or when the sender's address
  // changed (a restarted sender's UCX worker has a new one).
  if (connection_ == nullptr || connected_to_ != hello.transport_address()) {
    connection_.reset();
    absl::StatusOr<std::unique_ptr<PullConnection>> c =
        transport_->Connect(peer_, hello.transport_address());
    if (!c.ok()) return leave(c.status());
    connection_ = std::move(*c);
    connected_to_ = hello.transport_address();
  }
  if (holder_ == HolderId::kNone) holder_ = pool_->OpenSession(session_id_, std::nullopt);
  uint64_t delivered;
  {
    MutexLock lock(&mu_);
    delivered = delivered_;
  }
  // Messages above `delivered` that were in the channel before a restart are
  // gone with it; those still queued (no restart) are not taken twice.
  enqueued_ = std::max(enqueued_, delivered);
  {
    MutexLock lock(&mu_);
    refusals_.clear();  // a repeat of a refused seq on this stream is told again
  }
  v1::BridgeAck first;
  first.set_delivered_seq(delivered);
  if (!stream->Write(first)) return leave(absl::UnavailableError("the sender went away"));
  stats_.SetEncrypted(!hello.link_clear());
  stats_.SetLink("up");

  bool done = false;  // under mu_
  std::thread acker([&] {
    uint64_t acked = delivered;
    MutexLock lock(&mu_);
    while (true) {
      while (!done && delivered_ == acked && refusals_.empty()) {
        cv_.WaitFor(&mu_, std::chrono::milliseconds(500));
      }
      if (done && refusals_.empty()) return;  // refusals go out even after the last offer
      v1::BridgeAck ack;
      ack.set_delivered_seq(acked = delivered_);
      if (!refusals_.empty()) {
        ack.set_refused_seq(refusals_.front().first);
        ack.set_refused_reason(refusals_.front().second);
        refusals_.pop_front();
      }
      mu_.unlock();
      bool ok = stream->Write(ack);
      mu_.lock();
      if (!ok) return;
    }
  });
  absl::Status status = absl::OkStatus();
  v1::BridgeOffer offer;
  while (stream->Read(&offer)) {
    if (status = Take(context, offer, hello.region()); !status.ok()) break;
  }
  {
    MutexLock lock(&mu_);
    done = true;
    cv_.SignalAll();
  }
  acker.join();
  if (status.ok() && context->IsCancelled()) status = absl::CancelledError("stream cancelled");
  return leave(status);
}

absl::Status Inbound::CheckSeq(const v1::BridgeOffer& offer) {
  const uint64_t expected = enqueued_ + 1;
  const uint64_t seq = offer.seq(), skipped = offer.skipped_before();
  if (seq != 0 && seq <= enqueued_) return absl::OkStatus();  // a repeat
  if (seq == expected) return absl::OkStatus();
  // Seqs the sender gave and will never offer (lost, refused, dropped) are
  // at most a journal's window: an honest sender's gap is never wider.
  if (seq > expected && seq <= kMaxSeq && skipped <= OutboundJournal::kSlots &&
      seq - skipped <= expected) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "bridge '%s' from node '%s': offer seq %u refused: expected seq %u (or a repeat of a seq "
      "up to %u); the sender declared %u seqs skipped before it, at most %u may be",
      bridge_, peer_, seq, expected, enqueued_, skipped, OutboundJournal::kSlots));
}

std::string Inbound::NeverFits(const v1::BridgeOffer& offer) {
  uint64_t total = 0;
  for (const v1::BridgeBuffer& b : offer.buffers()) {
    if (b.size_bytes() > pool_->size_bytes() - total) {
      return absl::StrFormat("offer seq %u needs more than the %s of pool '%s' in its %u buffers",
                             offer.seq(), BytesText(pool_->size_bytes()), pool_->name(),
                             offer.buffers_size());
    }
    total += b.size_bytes();
  }
  return {};
}

void Inbound::Refuse(uint64_t seq, const std::string& why) {
  spdlog::error("bridge '{}' from node '{}': message seq {} refused for good: {}", bridge_, peer_,
                seq, why);
  enqueued_ = seq;  // taken, as far as seqs go: the next one follows it
  stats_.Lost();
  refused_[seq] = why;
  if (refused_.size() > kMaxRefused) refused_.erase(refused_.begin());
  MutexLock lock(&mu_);
  refusals_.emplace_back(seq, why);
  cv_.SignalAll();
}

absl::Status Inbound::Take(grpc::ServerContext* context, const v1::BridgeOffer& offer,
                           const std::string& region) {
  if (offer.has_hello()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bridge '%s' from node '%s': a second hello on one Deliver stream (with offer seq %u); "
        "a hello comes once, first", bridge_, peer_, offer.seq()));
  }
  if (absl::Status s = CheckSeq(offer); !s.ok()) return s;
  if (offer.seq() <= enqueued_) {
    if (auto it = refused_.find(offer.seq()); it != refused_.end()) {
      MutexLock lock(&mu_);
      refusals_.emplace_back(it->first, it->second);
      cv_.SignalAll();
    }
    stats_.Retry();  // a resend of what the channel has or a consumer took
    return absl::OkStatus();
  }
  if (static_cast<size_t>(offer.buffers_size()) > limits::kMaxChannelHandles ||
      offer.metadata().size() > limits::kMaxChannelMetadataBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "offer seq %u carries %u buffers and %u bytes of metadata; the limits are %u and %u",
        offer.seq(), offer.buffers_size(), offer.metadata().size(), limits::kMaxChannelHandles,
        limits::kMaxChannelMetadataBytes));
  }
  if (offer.hops() > limits::kMaxBridgeHops) {  // B23: a loop of bridges, never forwarded
    Refuse(offer.seq(), absl::StrFormat(
        "offer seq %u crossed %u bridges, more than the limit of %u (kMaxBridgeHops): a loop "
        "of bridges over several nodes? (memctl bridge list on each; remove one of them)",
        offer.seq(), offer.hops(), limits::kMaxBridgeHops));
    return absl::OkStatus();
  }
  if (std::string why = NeverFits(offer); !why.empty()) {
    Refuse(offer.seq(), why);
    return absl::OkStatus();
  }
  std::vector<uint64_t> handles;
  auto drop = [&](absl::Status s) {
    pool_->ReleaseMany(holder_, handles).IgnoreError();
    return s;
  };
  uint64_t bytes = 0;
  for (const v1::BridgeBuffer& b : offer.buffers()) {
    absl::StatusOr<BufferInfo> info = pool_->Allocate(holder_, b.size_bytes(), false);
    // A full pool is backpressure: wait for consumers to release.
    while (absl::IsResourceExhausted(info.status()) && !context->IsCancelled()) {
      std::this_thread::sleep_for(kRetryPause);
      info = pool_->Allocate(holder_, b.size_bytes(), false);
    }
    if (absl::IsInvalidArgument(info.status())) {  // over max_alloc or the pool's size: never
      drop(absl::OkStatus()).IgnoreError();
      Refuse(offer.seq(), absl::StrFormat("offer seq %u: %s", offer.seq(), info.status().message()));
      return absl::OkStatus();
    }
    if (!info.ok()) return drop(info.status());
    handles.push_back(info->handle);
    if (absl::Status s = connection_->Pull(region, b.offset_bytes(),
                                           pool_->memory_base() + info->offset_bytes,
                                           b.size_bytes(), absl::Now() + kPullTimeout);
        !s.ok()) {
      if (absl::IsDataLoss(s)) stats_.TagFailed();  // B41: refused, the sender offers it again
      connection_.reset();  // the next stream connects again
      return drop(s);
    }
    ExitPoint("in-pulled");
    bytes += b.size_bytes();
  }
  const uint32_t hops = std::max<uint32_t>(offer.hops(), 1);  // 0: an older sender
  if (absl::Status s = Enqueue(context, handles, offer.metadata(), offer.seq(), hops); !s.ok()) {
    return drop(s);
  }
  enqueued_ = offer.seq();
  ExitPoint("in-enqueued");
  stats_.Moved(bytes, offer.seq());
  return absl::OkStatus();
}

absl::Status Inbound::Enqueue(grpc::ServerContext* context, std::vector<uint64_t> handles,
                              const std::string& metadata, uint64_t seq, uint32_t hops) {
  while (true) {
    struct Outcome {
      Mutex mu;
      CondVar cv;
      std::optional<absl::Status> status;
    };
    auto outcome = std::make_shared<Outcome>();
    std::optional<absl::Status> now = channels_->Send(
        *pool_, holder_, session_id_, channel_, handles, metadata, /*capacity=*/0, kSendWait,
        Pool::TransferMode::kMove,
        [outcome](absl::Status s) {
          MutexLock lock(&outcome->mu);
          outcome->status = s;
          outcome->cv.SignalAll();
        },
        Tag(id_, seq), hops);
    if (!now.has_value()) {
      MutexLock lock(&outcome->mu);
      while (!outcome->status.has_value()) outcome->cv.Wait(&outcome->mu);
      now = outcome->status;
    }
    if (now->ok()) return absl::OkStatus();
    // Full: the parked send timed out and its references came back.
    if (!absl::IsResourceExhausted(*now) && !absl::IsDeadlineExceeded(*now)) return *now;
    if (context->IsCancelled()) return absl::CancelledError("the sender went away");
  }
}

}  // namespace memd::bridge
