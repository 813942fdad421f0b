#include "bridge/outbound.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "bridge/exit_point.h"
#include "memd/v1/bridge.grpc.pb.h"

namespace memd::bridge {
namespace {

constexpr absl::Duration kReceiveWait = absl::Milliseconds(500);
constexpr auto kReconnectPause = std::chrono::milliseconds(300);

}  // namespace

Outbound::Outbound(BridgeSpec spec, Env env)
    : spec_(std::move(spec)), env_(std::move(env)),
      stats_(spec_.name(), spec_.peer, "out", std::string(env_.transport->name()),
             env_.transport->Encrypted(env_.seal)) {}

Outbound::~Outbound() { Stop(); }

void Outbound::Start() {
  // A relay from the start: while the bridge recovers, sends wait for it
  // rather than queue where a kill would lose them.
  env_.channels->SetRelay(*env_.pool, spec_.channel);
  taker_ = std::thread([this] { TakeLoop(); });
  link_ = std::thread([this] { LinkLoop(); });
}

void Outbound::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (link_context_ != nullptr) link_context_->TryCancel();
    cv_.SignalAll();
  }
  env_.channels->CancelSession(env_.session_id);  // a parked receive's callback never runs
  {
    MutexLock lock(&mu_);
    receiving_ = false;
    cv_.SignalAll();
  }
  if (taker_.joinable()) taker_.join();
  if (link_.joinable()) link_.join();
  // What the bridge holds stays held: the holdings file keeps it for the
  // next start, which re-adopts it with the journal.
}

uint64_t Outbound::Drop() {
  Stop();
  env_.channels->SetRelay(*env_.pool, spec_.channel, false);
  MutexLock lock(&mu_);
  uint64_t dropped = in_flight_.size();
  if (holder_ != HolderId::kNone) env_.pool->CloseHolder(holder_);
  in_flight_.clear();
  if (journal_ != nullptr) {
    // The journal stays, everything in it acknowledged: a bridge added again
    // continues its seqs, which the peer's delivered mark expects to grow.
    journal_->Ack(journal_->last_seq());
    journal_->SetTickets({});
  }
  stats_.SetInFlight(0);
  if (dropped > 0) {
    spdlog::warn("bridge '{}' removed: {} messages in flight were released undelivered",
                 spec_.name(), dropped);
  }
  return dropped;
}

std::string Outbound::JournalPath() const {
  return absl::StrFormat("%s/bridge.%s.%s.out", env_.state_dir, spec_.pool, spec_.channel);
}

bool Outbound::Covers(uint64_t offset, uint64_t length) const {
  MutexLock lock(&mu_);
  for (const InFlight& f : in_flight_) {
    if (f.seq > sent_max_) break;  // taken, not offered yet (seq ascending)
    for (const BufferInfo& b : f.buffers) {
      if (offset >= b.offset_bytes && length <= b.size_bytes &&
          offset - b.offset_bytes <= b.size_bytes - length) {
        return true;
      }
    }
  }
  return false;
}

void Outbound::TakeLoop() {
  if (absl::Status s = Recover(); !s.ok()) {
    if (!absl::IsCancelled(s)) {
      spdlog::error("bridge '{}' cannot start: {}", spec_.name(), std::string(s.message()));
      stats_.SetLink("down", std::string(s.message()));
    }
    return;
  }
  while (true) {
    {
      MutexLock lock(&mu_);
      while (!stopping_ && (receiving_ || in_flight_.size() >= OutboundJournal::kSlots ||
                            journal_->full())) {
        cv_.Wait(&mu_);
      }
      if (stopping_) return;
      receiving_ = true;
    }
    std::optional<absl::StatusOr<ReceivedMessage>> now = env_.channels->Receive(
        *env_.pool, holder_, env_.session_id, spec_.channel, /*capacity=*/0, kReceiveWait,
        [this](absl::StatusOr<ReceivedMessage> m) { Taken(std::move(m)); });
    if (now.has_value()) Taken(std::move(*now));
  }
}

void Outbound::Taken(absl::StatusOr<ReceivedMessage> message) {
  MutexLock lock(&mu_);
  receiving_ = false;
  cv_.SignalAll();
  if (!message.ok()) {
    if (!absl::IsDeadlineExceeded(message.status())) {
      spdlog::warn("bridge '{}': receive from its channel failed: {}", spec_.name(),
                   std::string(message.status().message()));
    }
    return;
  }
  std::vector<uint64_t> handles;
  for (const BufferInfo& b : message->buffers) handles.push_back(b.handle);
  ExitPoint("out-taken");
  uint64_t seq = journal_->Append(handles, message->metadata, message->hops);
  ExitPoint("out-journaled");
  in_flight_.push_back(
      InFlight{seq, std::move(message->buffers), std::move(message->metadata), message->hops});
  stats_.SetInFlight(in_flight_.size());
}

void Outbound::Release(uint64_t seq) {
  MutexLock lock(&mu_);
  seq = std::min(seq, journal_->last_seq());
  if (seq <= journal_->acked_seq()) return;
  ExitPoint("out-acked");
  journal_->Ack(seq);  // first: a kill after it leaves references the grace releases
  while (!in_flight_.empty() && in_flight_.front().seq <= seq) {
    InFlight& f = in_flight_.front();
    std::vector<uint64_t> handles;
    uint64_t bytes = 0;
    for (const BufferInfo& b : f.buffers) {
      handles.push_back(b.handle);
      bytes += b.size_bytes;
    }
    if (absl::Status s = env_.pool->ReleaseMany(holder_, handles).status(); !s.ok()) {
      spdlog::error("bridge '{}': releasing message seq {}: {}", spec_.name(), f.seq,
                    std::string(s.message()));
    }
    stats_.Moved(bytes, f.seq);
    in_flight_.pop_front();
  }
  AckLost();
  stats_.SetInFlight(in_flight_.size());
  cv_.SignalAll();
}

void Outbound::Refused(uint64_t seq, const std::string& why) {
  MutexLock lock(&mu_);
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [&](const InFlight& f) { return f.seq == seq; });
  if (it == in_flight_.end()) return;  // told again, or already acknowledged
  std::vector<uint64_t> handles;
  for (const BufferInfo& b : it->buffers) handles.push_back(b.handle);
  if (absl::Status s = env_.pool->ReleaseMany(holder_, handles).status(); !s.ok()) {
    spdlog::error("bridge '{}': releasing message seq {}: {}", spec_.name(), seq,
                  std::string(s.message()));
  }
  spdlog::error("bridge '{}' to peer '{}': message seq {} is lost: the peer refused it for good: "
                "{}", spec_.name(), spec_.peer, seq, why);
  stats_.Lost();
  in_flight_.erase(it);
  AckLost();
  stats_.SetInFlight(in_flight_.size());
  cv_.SignalAll();
}

void Outbound::AckLost() {
  uint64_t below = in_flight_.empty() ? journal_->last_seq() : in_flight_.front().seq - 1;
  if (below > journal_->acked_seq()) journal_->Ack(below);
}

void Outbound::LinkLoop() {
  {
    MutexLock lock(&mu_);
    while (!stopping_ && !ready_) cv_.Wait(&mu_);
  }
  while (true) {
    absl::Status s = RunLink();
    MutexLock lock(&mu_);
    if (stopping_) return;
    std::string why(s.message());
    spdlog::warn("bridge '{}' to peer '{}': link down: {}", spec_.name(), spec_.peer, why);
    stats_.SetLink("down", why);
    stats_.Retry();
    cv_.WaitFor(&mu_, kReconnectPause);
    if (stopping_) return;
    stats_.SetLink("connecting");
  }
}

absl::Status Outbound::RunLink() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = env_.open_channel(spec_.peer);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::Bridge::Stub> stub = v1::Bridge::NewStub(*channel);
  grpc::ClientContext context;
  {
    MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    link_context_ = &context;
    link_broken_ = false;
  }
  auto stream = stub->Deliver(&context);
  // This link's grant of the pool to the peer (a fresh key, and a fresh seal
  // key unless trusted), revoked when the link ends: pulls showing it are
  // refused from then on.
  std::string region;
  // `why` unless the peer ended the stream with an error of its own.
  // `cancel`: the stream may still be open (not after a failed Read).
  auto finish = [&](absl::Status why, bool cancel = true) {
    if (!region.empty()) env_.transport->Revoke(region);
    if (cancel) context.TryCancel();
    grpc::Status status = stream->Finish();
    MutexLock lock(&mu_);
    link_context_ = nullptr;
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      return absl::UnavailableError(
          absl::StrFormat("peer '%s' answered %s", spec_.peer, status.error_message()));
    }
    return why;
  };
  absl::StatusOr<std::string> address = env_.transport->LocalAddress();
  if (!address.ok()) return finish(address.status());
  absl::StatusOr<std::string> granted = env_.transport->Grant(spec_.pool, spec_.peer, env_.seal);
  if (!granted.ok()) return finish(granted.status());
  region = *std::move(granted);
  v1::BridgeOffer hello;
  v1::BridgeHello* h = hello.mutable_hello();
  h->set_node(env_.node);
  h->set_bridge(spec_.name());
  h->set_pool(spec_.pool);
  h->set_channel(spec_.channel);
  h->set_transport(std::string(env_.transport->name()));
  h->set_transport_address(*address);
  h->set_region(region);
  h->set_link_clear(!env_.transport->Encrypted(env_.seal));
  v1::BridgeAck ack;
  if (!stream->Write(hello) || !stream->Read(&ack)) {
    return finish(absl::UnavailableError(absl::StrFormat(
                      "peer '%s' did not answer the bridge's hello", spec_.peer)),
                  /*cancel=*/false);
  }
  Release(ack.delivered_seq());
  stats_.SetLink("up");
  spdlog::info("bridge '{}' to peer '{}': link up (peer delivered up to seq {})", spec_.name(),
               spec_.peer, ack.delivered_seq());
  std::thread reader([&] {
    v1::BridgeAck a;
    while (stream->Read(&a)) {
      if (a.refused_seq() != 0) Refused(a.refused_seq(), a.refused_reason());
      Release(a.delivered_seq());
    }
    MutexLock lock(&mu_);
    link_broken_ = true;
    cv_.SignalAll();
  });
  uint64_t sent = ack.delivered_seq();
  absl::Status why = absl::UnavailableError("the stream ended");
  while (true) {
    std::vector<v1::BridgeOffer> offers;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && !link_broken_ &&
             (in_flight_.empty() || in_flight_.back().seq <= sent)) {
        cv_.Wait(&mu_);
      }
      if (stopping_) {
        why = absl::CancelledError("stopping");
        break;
      }
      if (link_broken_) break;
      uint64_t previous = sent;  // the seq the peer saw before the next offer
      for (const InFlight& f : in_flight_) {
        if (f.seq <= sent) continue;
        v1::BridgeOffer& o = offers.emplace_back();
        o.set_seq(f.seq);
        // Seqs between that this bridge will never offer (B08, B20, a
        // remove): the peer takes only the seq it expects next (B19).
        o.set_skipped_before(f.seq - 1 - previous);
        previous = f.seq;
        o.set_metadata(f.metadata);
        o.set_hops(f.hops + 1);  // this bridge is one more (B23)
        for (const BufferInfo& b : f.buffers) {
          v1::BridgeBuffer* out = o.add_buffers();
          out->set_offset_bytes(b.offset_bytes);
          out->set_size_bytes(b.size_bytes);
        }
        if (f.seq <= sent_max_) stats_.Retry();  // offered before, on an earlier link
        sent_max_ = std::max(sent_max_, f.seq);
      }
    }
    bool ok = true;
    for (const v1::BridgeOffer& o : offers) {
      if (!(ok = stream->Write(o))) break;
      sent = o.seq();
    }
    if (!ok) break;
  }
  context.TryCancel();
  reader.join();
  return finish(why);
}

}  // namespace memd::bridge
