// ChannelRegistry: what an operator does to a channel (memctl channel drain
// and delete, through the Admin service): release a backlog nobody will
// receive, remove a channel at once. The registry's mutex, as everywhere.
#include <set>

#include "absl/strings/str_format.h"
#include "channel/channel_registry.h"
#include "trace/trace_points.h"

namespace memd {

absl::StatusOr<ChannelRegistry::Channel*> ChannelRegistry::FindExisting(Pool& pool,
                                                                        const std::string& name) {
  absl::StatusOr<Channel*> channel = Find(pool, name, 0);
  if (!channel.ok()) return channel.status();
  if (*channel == nullptr) {
    return absl::NotFoundError(absl::StrFormat("pool '%s' has no channel '%s' (memctl stats "
                                               "lists them)", pool.name(), name));
  }
  return *channel;
}

absl::StatusOr<DrainedChannel> ChannelRegistry::Drain(Pool& pool, const std::string& name) {
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = FindExisting(pool, name);
  if (!found.ok()) return found.status();
  Channel& channel = **found;
  DrainedChannel out;
  std::set<uint64_t> counted;  // a buffer in two messages counts once in `bytes`
  for (Message& message : channel.queue) {
    std::vector<Pool::References> sizes = pool.Query(message.holder, message.handles);
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (counted.insert(message.handles[i]).second) out.bytes += sizes[i].size_bytes;
    }
    out.references += pool.CloseHolder(message.holder);
    for (uint64_t handle : message.handles) trace::Released(pool.index(), 0, handle, channel.name);
    queued_message_bytes_ -= message.charge_bytes;
    // A bridged frame the operator released is taken: its sender must not
    // send it again (bridge/inbound.h).
    if (message.tag != 0 && delivery_hook_) delivery_hook_(pool, channel.name, message.tag);
    ++out.messages;
  }
  channel.queue.clear();
  channel.drained += out.messages;
  Settle(channel);  // parked sends go into the room
  NoteIdle(channel);
  return out;
}

absl::Status ChannelRegistry::Delete(Pool& pool, const std::string& name) {
  MutexLock lock(&mu_);
  absl::StatusOr<Channel*> found = FindExisting(pool, name);
  if (!found.ok()) return found.status();
  const Channel& channel = **found;
  if (!Idle(channel)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "channel '%s' of pool '%s' is not idle: %u messages queued, %u sends and %u receives "
        "waiting (memctl channel drain releases the messages; waiting clients end theirs)",
        name, pool.name(), channel.queue.size(), channel.senders.size(),
        channel.receivers.size()));
  }
  Remove(channel);
  return absl::OkStatus();
}

}  // namespace memd
