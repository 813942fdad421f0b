// ChannelRegistry: sends, receives and the channels' lives. The timer thread
// (deadlines, idle channels) is in channel_timer.cc, operators' drain and
// delete in channel_admin.cc.
#include "channel/channel_registry.h"

#include "absl/strings/str_format.h"
#include "memd/shared/limits.h"
#include "memd/shared/names.h"
#include "trace/trace_points.h"

namespace memd {
namespace {

constexpr absl::Duration kMaxTimeout = absl::Milliseconds(limits::kMaxTimeoutMs);

std::string SendOp(const std::string& name) {
  return absl::StrFormat("send to channel '%s'", name);
}
std::string WaitOp(const std::string& name) {
  return absl::StrFormat("waiting on channel '%s'", name);
}

}  // namespace

ChannelRegistry::ChannelRegistry(absl::Duration idle_linger)
    : idle_linger_(idle_linger), timer_([this] { TimerLoop(); }) {}

ChannelRegistry::~ChannelRegistry() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  timer_cv_.SignalAll();
  timer_.join();
  MutexLock lock(&mu_);
  for (auto& [key, channel] : channels_) {
    for (const Message& m : channel->queue) channel->pool->CloseHolder(m.holder);
    for (const ParkedSend& s : channel->senders) channel->pool->CloseHolder(s.message.holder);
    channel->pool->CloseHolder(channel->holder);
  }
}

absl::StatusOr<ChannelRegistry::Channel*> ChannelRegistry::Find(Pool& pool,
                                                                const std::string& name,
                                                                uint32_t capacity) {
  if (absl::Status s = ValidateName("channel name", name); !s.ok()) return s;
  if (capacity > limits::kMaxChannelCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "channel '%s' capacity %u is above the limit %u", name, capacity, limits::kMaxChannelCapacity));
  }
  auto it = channels_.find(Key{pool.index(), name});
  return it == channels_.end() ? nullptr : it->second.get();
}

absl::StatusOr<ChannelRegistry::Channel*> ChannelRegistry::Create(Pool& pool, HolderId creator,
                                                                  const std::string& name,
                                                                  uint32_t capacity) {
  std::string op = absl::StrFormat("creating channel '%s'", name);
  absl::StatusOr<HolderId> holder = pool.OpenChannel(creator, op);
  if (absl::IsResourceExhausted(holder.status()) && RemoveIdle(pool, pool.causer(creator)) > 0) {
    holder = pool.OpenChannel(creator, op);
  }
  if (!holder.ok()) return holder.status();
  auto channel = std::make_unique<Channel>();
  channel->name = name;
  channel->pool = &pool;
  channel->capacity = capacity == 0 ? kDefaultCapacity : capacity;
  channel->holder = *holder;
  channel->creator = pool.causer(creator);
  channel->relay = relays_.contains(Key{pool.index(), name});
  Channel* out = channel.get();
  channels_[Key{pool.index(), name}] = std::move(channel);
  return out;
}

ChannelRegistry::Channels::iterator ChannelRegistry::Remove(Channels::iterator it) {
  it->second->pool->CloseHolder(it->second->holder);
  return channels_.erase(it);
}

void ChannelRegistry::Remove(const Channel& channel) {
  Remove(channels_.find(Key{channel.pool->index(), channel.name}));
}

int ChannelRegistry::RemoveIdle(const Pool& pool, const Causer& creator) {
  int removed = 0;
  for (auto it = channels_.begin(); it != channels_.end();) {
    const Channel& c = *it->second;
    bool mine = creator.uid ? c.creator.uid == creator.uid
                            : c.creator.session_id == creator.session_id;
    if (c.pool == &pool && mine && c.idle_since != absl::InfiniteFuture()) {
      it = Remove(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

void ChannelRegistry::NoteIdle(Channel& channel) {
  if (!Idle(channel)) {
    channel.idle_since = absl::InfiniteFuture();
  } else if (channel.idle_since == absl::InfiniteFuture()) {
    channel.idle_since = absl::Now();  // the timer thread, awake within a second, removes it later
  }
}

absl::StatusOr<ReceivedMessage> ChannelRegistry::Deliver(Channel& channel, HolderId receiver,
                                                         uint64_t session_id) {
  Message& message = channel.queue.front();
  absl::StatusOr<std::vector<BufferInfo>> moved = channel.pool->Deliver(
      message.holder, receiver, message.handles,
      absl::StrFormat("receive from channel '%s'", channel.name));
  if (!moved.ok()) return moved.status();
  queued_message_bytes_ -= message.charge_bytes;
  if (message.tag != 0 && delivery_hook_) delivery_hook_(*channel.pool, channel.name, message.tag);
  ReceivedMessage out{std::move(*moved), std::move(message.metadata), message.hops};
  channel.queue.pop_front();
  ++channel.received;
  TraceMessage(channel, session_id, out.buffers);
  return out;
}

size_t ChannelRegistry::Room(const Channel& channel) const {
  return channel.relay ? channel.receivers.size() : channel.capacity;
}

void ChannelRegistry::Settle(Channel& channel) {
  bool changed = true;
  while (changed) {
    changed = false;
    while (!channel.queue.empty() && !channel.receivers.empty()) {
      ParkedReceive waiter = std::move(channel.receivers.front());
      channel.receivers.pop_front();
      channel.pool->Unpark(waiter.receiver);
      // A receiver over its quota gets the error; the message waits for the next.
      waiter.done(Deliver(channel, waiter.receiver, waiter.session_id));
      changed = true;
    }
    while (channel.queue.size() < Room(channel) && !channel.senders.empty()) {
      if (channel.relay && channel.queue.empty()) {
        // A relay's receiver (a bridge, which journals the message in its
        // callback) takes a parked send's message before the sender hears
        // OK: an OK is durable. If it cannot take it (its error goes to
        // it), the send stays parked for the next receiver.
        ParkedReceive waiter = std::move(channel.receivers.front());
        channel.receivers.pop_front();
        channel.pool->Unpark(waiter.receiver);
        channel.queue.push_back(std::move(channel.senders.front().message));
        TraceMessage(channel, channel.senders.front().session_id, channel.senders.front().mode);
        absl::StatusOr<ReceivedMessage> got =
            Deliver(channel, waiter.receiver, waiter.session_id);
        const bool taken = got.ok();
        if (!taken) {
          channel.senders.front().message = std::move(channel.queue.back());
          channel.queue.pop_back();
        }
        waiter.done(std::move(got));
        changed = true;
        if (!taken) continue;
        ParkedSend send = std::move(channel.senders.front());
        channel.senders.pop_front();
        channel.pool->Unpark(send.sender);
        ++channel.sent;
        send.done(absl::OkStatus());
        continue;
      }
      // The parked send's message has held its references since it parked.
      ParkedSend send = std::move(channel.senders.front());
      channel.senders.pop_front();
      channel.pool->Unpark(send.sender);
      channel.queue.push_back(std::move(send.message));
      ++channel.sent;
      TraceMessage(channel, send.session_id, send.mode);
      changed = true;
      send.done(absl::OkStatus());
    }
  }
  NoteIdle(channel);
}

absl::Status ChannelRegistry::CheckHandleCount(const std::string& name, size_t handles) {
  return limits::CheckChannelMessage(name, handles, /*metadata_bytes=*/0);
}

std::optional<absl::Status> ChannelRegistry::Send(Pool& pool, HolderId sender,
                                                  uint64_t session_id, const std::string& name,
                                                  std::vector<uint64_t> handles,
                                                  std::string metadata, uint32_t capacity,
                                                  absl::Duration timeout, Pool::TransferMode mode,
                                                  SendDone done, uint64_t tag,
                                                  uint32_t hops) {
  if (absl::Status s = limits::CheckChannelMessage(name, handles.size(), metadata.size());
      !s.ok()) {
    return s;
  }
  const uint64_t charge = metadata.size() + kMessageOverheadBytes;
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = Find(pool, name, capacity);
  if (!found.ok()) return found.status();
  if (queued_message_bytes_ + charge > kMaxQueuedMessageBytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "send to channel '%s' of a %s message would exceed the daemon's limit of %s of queued "
        "channel messages (metadata + %u bytes each): %s are queued", name, BytesText(charge),
        BytesText(kMaxQueuedMessageBytes), kMessageOverheadBytes,
        BytesText(queued_message_bytes_)));
  }
  Channel* channel = *found;
  const bool created = channel == nullptr;
  if (created) {
    absl::StatusOr<Channel*> made = Create(pool, sender, name, capacity);
    if (!made.ok()) return made.status();
    channel = *made;
  }
  // A failed send leaves no channel it created.
  auto refuse = [&](absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (created) Remove(*channel);
    return status;
  };
  const bool room = channel->queue.size() < Room(*channel) && channel->senders.empty();
  if (!room && timeout <= absl::ZeroDuration()) {
    // A send that cannot wait still has its handles checked, so a bad send
    // is refused as such rather than as "full".
    if (absl::Status s = pool.CheckHeld(sender, handles, SendOp(name).c_str()); !s.ok()) return s;
    ++channel->dropped;
    return absl::ResourceExhaustedError(absl::StrFormat(
        "channel '%s' is full (%u messages); send again later or with a timeout", name,
        channel->capacity));
  }
  if (!room) {
    if (absl::Status s = pool.Park(sender, WaitOp(name)); !s.ok()) return refuse(s);
  }
  // The message holds its references from now on, parked or queued (see the
  // header); OpenMessage refuses what the sender does not hold, so a bad
  // send does not wait.
  absl::StatusOr<HolderId> holder = pool.OpenMessage(sender, handles, mode, charge, SendOp(name));
  if (!holder.ok()) {
    if (!room) pool.Unpark(sender);
    return refuse(holder.status());
  }
  queued_message_bytes_ += charge;
  Message message{std::move(handles), std::move(metadata), *holder, charge, tag, hops};
  if (room) {
    channel->queue.push_back(std::move(message));
    ++channel->sent;
    TraceMessage(*channel, session_id, mode);
    Settle(*channel);
    return absl::OkStatus();
  }
  ++channel->send_waits;
  absl::Time deadline = absl::Now() + std::min(timeout, kMaxTimeout);
  channel->senders.push_back(
      ParkedSend{session_id, sender, std::move(message), mode, deadline, std::move(done)});
  NoteIdle(*channel);
  NoteDeadline(deadline);
  return std::nullopt;
}

std::optional<absl::StatusOr<ReceivedMessage>> ChannelRegistry::Receive(
    Pool& pool, HolderId receiver, uint64_t session_id, const std::string& name,
    uint32_t capacity, absl::Duration timeout, ReceiveDone done) {
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = Find(pool, name, capacity);
  if (!found.ok()) return absl::StatusOr<ReceivedMessage>(found.status());
  Channel* channel = *found;
  if (channel != nullptr && !channel->queue.empty() && channel->receivers.empty()) {
    absl::StatusOr<ReceivedMessage> message = Deliver(*channel, receiver, session_id);
    Settle(*channel);  // room for a parked sender
    return message;
  }
  // A receive that cannot wait creates nothing.
  if (timeout <= absl::ZeroDuration()) {
    return absl::StatusOr<ReceivedMessage>(absl::DeadlineExceededError(
        absl::StrFormat("channel '%s' has no message", name)));
  }
  if (absl::Status s = pool.Park(receiver, WaitOp(name)); !s.ok()) {
    return absl::StatusOr<ReceivedMessage>(s);
  }
  if (channel == nullptr) {
    absl::StatusOr<Channel*> made = Create(pool, receiver, name, capacity);
    if (!made.ok()) {
      pool.Unpark(receiver);
      return absl::StatusOr<ReceivedMessage>(made.status());
    }
    channel = *made;
  }
  absl::Time deadline = absl::Now() + std::min(timeout, kMaxTimeout);
  channel->receivers.push_back(ParkedReceive{session_id, receiver, deadline, std::move(done)});
  NoteDeadline(deadline);
  // A relay's parked senders wait for a receiver, not for room: this one
  // takes the first of them now (`done` runs before this returns).
  if (channel->relay) {
    Settle(*channel);
  } else {
    NoteIdle(*channel);
  }
  return std::nullopt;
}

void ChannelRegistry::TraceMessage(const Channel& channel, uint64_t sender,
                                   Pool::TransferMode mode) {
  const Message& sent = channel.queue.back();
  const uint32_t depth = static_cast<uint32_t>(channel.queue.size());
  const bool moved = mode == Pool::TransferMode::kMove;
  if (sent.handles.empty()) trace::Sent(channel.pool->index(), sender, channel.name, 0, depth, moved);
  for (uint64_t handle : sent.handles) {
    trace::Sent(channel.pool->index(), sender, channel.name, handle, depth, moved);
  }
}

void ChannelRegistry::TraceMessage(const Channel& channel, uint64_t receiver,
                                   const std::vector<BufferInfo>& received) {
  const uint32_t depth = static_cast<uint32_t>(channel.queue.size());
  if (received.empty()) trace::Received(channel.pool->index(), receiver, channel.name, 0, 0, depth);
  for (const BufferInfo& info : received) {
    trace::Received(channel.pool->index(), receiver, channel.name, info.handle, info.size_bytes,
                    depth);
  }
}

void ChannelRegistry::Withdraw(Channel& channel, const ParkedSend& send) {
  if (send.mode == Pool::TransferMode::kMove) {
    channel.pool
        ->Deliver(send.message.holder, send.sender, send.message.handles, "channel send timeout",
                  /*give_back=*/true)
        .IgnoreError();  // cannot fail: the message holds them
  } else {
    channel.pool->CloseHolder(send.message.holder);
  }
  queued_message_bytes_ -= send.message.charge_bytes;
  channel.pool->Unpark(send.sender);
}

void ChannelRegistry::SetDeliveryHook(DeliveryHook hook) {
  MutexLock lock(&mu_);
  delivery_hook_ = std::move(hook);
}

void ChannelRegistry::SetRelay(const Pool& pool, const std::string& name, bool relay) {
  MutexLock lock(&mu_);
  if (relay) {
    relays_.insert(Key{pool.index(), name});
  } else {
    relays_.erase(Key{pool.index(), name});
  }
  if (auto it = channels_.find(Key{pool.index(), name}); it != channels_.end()) {
    it->second->relay = relay;
    Settle(*it->second);  // parked senders go into the queue's room now
  }
}

void ChannelRegistry::CancelSession(uint64_t session_id) {
  MutexLock lock(&mu_);
  for (auto& [key, channel] : channels_) {
    // A moved send's references go back to the session, which releases them
    // with the rest of what it holds.
    Channel& parked_in = *channel;
    std::erase_if(channel->senders, [&](const ParkedSend& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (s.session_id != session_id) return false;
      Withdraw(parked_in, s);
      ++parked_in.dropped;
      return true;
    });
    std::erase_if(channel->receivers, [&](const ParkedReceive& r) {
      if (r.session_id != session_id) return false;
      parked_in.pool->Unpark(r.receiver);
      return true;
    });
    Settle(*channel);
  }
}

std::vector<ChannelStats> ChannelRegistry::Stats(const Pool& pool) const {
  MutexLock lock(&mu_);
  std::vector<ChannelStats> out;
  for (const auto& [key, c] : channels_) {
    if (c->pool != &pool) continue;
    out.push_back(ChannelStats{c->name, c->queue.size(), c->capacity, c->sent, c->received,
                               c->senders.size(), c->receivers.size(), c->send_waits,
                               c->dropped, c->send_timeouts, c->drained});
  }
  return out;
}

uint64_t ChannelRegistry::queued_message_bytes() const {
  MutexLock lock(&mu_);
  return queued_message_bytes_;
}

}  // namespace memd
