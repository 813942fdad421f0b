// ChannelRegistry's timer thread: answers parked requests whose timeout
// passed and removes channels that stayed idle for idle_linger_.
#include "absl/strings/str_format.h"
#include "channel/channel_registry.h"

namespace memd {

void ChannelRegistry::NoteDeadline(absl::Time deadline) {
  if (deadline < timer_wakes_at_) timer_cv_.SignalAll();
}

absl::Time ChannelRegistry::ExpireParked(Channel& channel, absl::Time now) {
  absl::Time next = absl::InfiniteFuture();
  for (auto it = channel.senders.begin(); it != channel.senders.end();) {
    if (it->deadline <= now) {
      Withdraw(channel, *it);
      ++channel.send_timeouts;  // the sender may send it again: not dropped (see ChannelStats)
      it->done(absl::ResourceExhaustedError(absl::StrFormat(
          "channel '%s' stayed full (%u messages) until the send's timeout", channel.name,
          channel.capacity)));
      it = channel.senders.erase(it);
    } else {
      next = std::min(next, it->deadline);
      ++it;
    }
  }
  for (auto it = channel.receivers.begin(); it != channel.receivers.end();) {
    if (it->deadline <= now) {
      channel.pool->Unpark(it->receiver);
      it->done(absl::DeadlineExceededError(absl::StrFormat(
          "no message on channel '%s' before the receive's timeout", channel.name)));
      it = channel.receivers.erase(it);
    } else {
      next = std::min(next, it->deadline);
      ++it;
    }
  }
  NoteIdle(channel);
  return next;
}

void ChannelRegistry::TimerLoop() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    absl::Time now = absl::Now();
    absl::Time next = now + absl::Seconds(1);
    for (auto it = channels_.begin(); it != channels_.end();) {
      Channel& channel = *it->second;
      next = std::min(next, ExpireParked(channel, now));
      if (channel.idle_since + idle_linger_ <= now) {
        it = Remove(it);
        continue;
      }
      next = std::min(next, channel.idle_since + idle_linger_);
      ++it;
    }
    absl::Duration wait = std::max(next - now, absl::Milliseconds(1));
    timer_wakes_at_ = now + wait;
    timer_cv_.WaitFor(&mu_, absl::ToChronoNanoseconds(wait));
    timer_wakes_at_ = absl::InfinitePast();  // awake: it walks every deadline next
  }
}

}  // namespace memd
