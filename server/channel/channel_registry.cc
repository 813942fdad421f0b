#include "channel/channel_registry.h"

#include "absl/strings/str_format.h"
#include "memd/shared/names.h"

namespace memd {
namespace {

constexpr absl::Duration kMaxTimeout = absl::Hours(1);

}  // namespace

ChannelRegistry::ChannelRegistry() : timer_([this] { TimerLoop(); }) {}

ChannelRegistry::~ChannelRegistry() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  timer_cv_.SignalAll();
  timer_.join();
  MutexLock lock(&mu_);
  for (auto& [key, channel] : channels_) {
    channel->pool->ReleaseAll(channel->refs);
    channel->pool->ReleaseAll(channel->parked_refs);
  }
}

absl::StatusOr<ChannelRegistry::Channel*> ChannelRegistry::FindOrCreate(Pool& pool,
                                                                        const std::string& name,
                                                                        uint32_t capacity) {
  if (absl::Status s = ValidateName("channel name", name); !s.ok()) return s;
  if (capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "channel '%s' capacity %u is above the limit %u", name, capacity, kMaxCapacity));
  }
  auto& slot = channels_[{pool.index(), name}];
  if (!slot) {
    slot = std::make_unique<Channel>();
    slot->name = name;
    slot->pool = &pool;
    slot->capacity = capacity == 0 ? kDefaultCapacity : capacity;
  }
  return slot.get();
}

absl::StatusOr<ReceivedMessage> ChannelRegistry::Deliver(Channel& channel, SessionRefs& receiver) {
  Message message = std::move(channel.queue.front());
  channel.queue.pop_front();
  absl::StatusOr<std::vector<BufferInfo>> moved =
      channel.pool->Transfer(channel.refs, receiver, message.handles, "channel receive");
  if (!moved.ok()) return moved.status();  // cannot happen: the channel holds them
  ++channel.received;
  return ReceivedMessage{std::move(*moved), std::move(message.metadata)};
}

void ChannelRegistry::Settle(Channel& channel) {
  bool changed = true;
  while (changed) {
    changed = false;
    while (!channel.queue.empty() && !channel.receivers.empty()) {
      ParkedReceive waiter = std::move(channel.receivers.front());
      channel.receivers.pop_front();
      waiter.done(Deliver(channel, *waiter.receiver));
      changed = true;
    }
    while (channel.queue.size() < channel.capacity && !channel.senders.empty()) {
      ParkedSend send = std::move(channel.senders.front());
      channel.senders.pop_front();
      // Cannot fail: the parked send has held these since it parked.
      absl::StatusOr<std::vector<BufferInfo>> moved = channel.pool->Transfer(
          channel.parked_refs, channel.refs, send.message.handles, "channel send");
      if (moved.ok()) {
        channel.queue.push_back(std::move(send.message));
        ++channel.sent;
        changed = true;
      }
      send.done(moved.status());
    }
  }
}

std::optional<absl::Status> ChannelRegistry::Send(Pool& pool, SessionRefs& sender,
                                                  uint64_t session_id, const std::string& name,
                                                  std::vector<uint64_t> handles,
                                                  std::string metadata, uint32_t capacity,
                                                  absl::Duration timeout, Pool::TransferMode mode,
                                                  SendDone done) {
  if (handles.size() > kMaxHandles) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "send to channel '%s' carries %u handles; the limit is %u", name, handles.size(),
        kMaxHandles));
  }
  if (metadata.size() > kMaxMetadataBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "send to channel '%s' carries %u bytes of metadata; the limit is %u", name,
        metadata.size(), kMaxMetadataBytes));
  }
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = FindOrCreate(pool, name, capacity);
  if (!found.ok()) return found.status();
  Channel& channel = **found;
  if (channel.queue.size() < channel.capacity && channel.senders.empty()) {
    absl::StatusOr<std::vector<BufferInfo>> moved =
        pool.Transfer(sender, channel.refs, handles, "channel send", mode);
    if (!moved.ok()) return moved.status();
    channel.queue.push_back(Message{std::move(handles), std::move(metadata)});
    ++channel.sent;
    Settle(channel);
    return absl::OkStatus();
  }
  // Full. A send that cannot wait still has its handles checked, so a bad
  // send is refused as such rather than as "full".
  if (timeout <= absl::ZeroDuration()) {
    if (absl::Status s = pool.CheckHeld(sender, handles, "channel send"); !s.ok()) return s;
    return absl::ResourceExhaustedError(absl::StrFormat(
        "channel '%s' is full (%u messages); send again later or with a timeout", name,
        channel.capacity));
  }
  // The parked send holds its references from now on (see the header); the
  // transfer refuses what the sender does not hold, so a bad send does not wait.
  if (absl::StatusOr<std::vector<BufferInfo>> taken =
          pool.Transfer(sender, channel.parked_refs, handles, "channel send", mode);
      !taken.ok()) {
    return taken.status();
  }
  ++channel.send_waits;
  absl::Time deadline = absl::Now() + std::min(timeout, kMaxTimeout);
  channel.senders.push_back(ParkedSend{session_id, &sender,
                                       Message{std::move(handles), std::move(metadata)}, mode,
                                       deadline, std::move(done)});
  NoteDeadline(deadline);
  return std::nullopt;
}

std::optional<absl::StatusOr<ReceivedMessage>> ChannelRegistry::Receive(
    Pool& pool, SessionRefs& receiver, uint64_t session_id, const std::string& name,
    uint32_t capacity, absl::Duration timeout, ReceiveDone done) {
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = FindOrCreate(pool, name, capacity);
  if (!found.ok()) return absl::StatusOr<ReceivedMessage>(found.status());
  Channel& channel = **found;
  if (!channel.queue.empty() && channel.receivers.empty()) {
    absl::StatusOr<ReceivedMessage> message = Deliver(channel, receiver);
    Settle(channel);  // room for a parked sender
    return message;
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::StatusOr<ReceivedMessage>(absl::DeadlineExceededError(
        absl::StrFormat("channel '%s' has no message", name)));
  }
  absl::Time deadline = absl::Now() + std::min(timeout, kMaxTimeout);
  channel.receivers.push_back(ParkedReceive{session_id, &receiver, deadline, std::move(done)});
  NoteDeadline(deadline);
  return std::nullopt;
}

void ChannelRegistry::NoteDeadline(absl::Time deadline) {
  if (deadline < timer_wakes_at_) timer_cv_.SignalAll();
}

void ChannelRegistry::Unpark(Channel& channel, const ParkedSend& send) {
  if (send.mode == Pool::TransferMode::kMove) {
    channel.pool->Transfer(channel.parked_refs, *send.sender, send.message.handles,
                           "channel send timeout")
        .IgnoreError();  // cannot fail: parked_refs holds them
    return;
  }
  channel.pool->ReleaseMany(channel.parked_refs, send.message.handles)
      .IgnoreError();  // cannot fail: parked_refs holds them
}

void ChannelRegistry::CancelSession(uint64_t session_id) {
  MutexLock lock(&mu_);
  for (auto& [key, channel] : channels_) {
    // A moved send's references go back to the session, which releases them
    // with the rest of what it holds.
    Channel& parked_in = *channel;
    std::erase_if(channel->senders, [&](const ParkedSend& s) {
      if (s.session_id != session_id) return false;
      Unpark(parked_in, s);
      return true;
    });
    std::erase_if(channel->receivers,
                  [&](const ParkedReceive& r) { return r.session_id == session_id; });
    Settle(*channel);
  }
}

std::vector<ChannelStats> ChannelRegistry::Stats(const Pool& pool) const {
  MutexLock lock(&mu_);
  std::vector<ChannelStats> out;
  for (const auto& [key, c] : channels_) {
    if (c->pool != &pool) continue;
    out.push_back(ChannelStats{c->name, c->queue.size(), c->capacity, c->sent, c->received,
                               c->senders.size(), c->receivers.size(), c->send_waits});
  }
  return out;
}

void ChannelRegistry::TimerLoop() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    absl::Time now = absl::Now();
    absl::Time next = now + absl::Seconds(1);
    for (auto& [key, channel] : channels_) {
      for (auto it = channel->senders.begin(); it != channel->senders.end();) {
        if (it->deadline <= now) {
          Unpark(*channel, *it);
          it->done(absl::ResourceExhaustedError(absl::StrFormat(
              "channel '%s' stayed full (%u messages) until the send's timeout", channel->name,
              channel->capacity)));
          it = channel->senders.erase(it);
        } else {
          next = std::min(next, it->deadline);
          ++it;
        }
      }
      for (auto it = channel->receivers.begin(); it != channel->receivers.end();) {
        if (it->deadline <= now) {
          it->done(absl::DeadlineExceededError(absl::StrFormat(
              "no message on channel '%s' before the receive's timeout", channel->name)));
          it = channel->receivers.erase(it);
        } else {
          next = std::min(next, it->deadline);
          ++it;
        }
      }
    }
    absl::Duration wait = std::max(next - now, absl::Milliseconds(1));
    timer_wakes_at_ = now + wait;
    timer_cv_.WaitFor(&mu_, absl::ToChronoNanoseconds(wait));
    timer_wakes_at_ = absl::InfinitePast();  // awake: it walks every deadline next
  }
}

}  // namespace memd
