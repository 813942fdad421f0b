// ChannelRegistry: named channels, bounded queues of buffer references that
// hand buffers from one process to another (issue 6). A channel belongs to a
// pool and is created by the first send, or the first receive that waits,
// with the capacity it asks for; an operation that fails creates nothing.
//
// References move, they are never copied: a send moves one reference per
// handle from the sender's session into a message (a sharing send gives the
// message new references and the sender keeps its own), a receive moves them
// on to the receiver's session, both under the pool's mutex, so a buffer in
// flight always has a holder. Each message is a holder of its own in the
// pool's ledger (pool/holder_ledger.h), charged to its sender's uid until a
// receiver takes it: what a client leaves in channels counts against its
// quotas. A message may carry only metadata. A sender that dies leaves its
// messages deliverable; a receiver that dies releases what it received (its
// session holds it) and nothing queued is lost.
//
// Bounds (each refusal is RESOURCE_EXHAUSTED naming the limit): channels per
// session and per uid, parked requests per session, queued message bytes per
// uid (LedgerLimits, enforced by the pool's ledger) and for the whole daemon
// (kMaxQueuedMessageBytes, here). A message is charged its metadata plus
// kMessageOverheadBytes. A channel with no message and no parked request is
// idle; it goes when it stayed idle for `idle_linger` (its capacity and
// counters with it), or at once when its creator needs room under a channel
// limit.
//
// Waiting: a send to a full channel or a receive from an empty one is parked
// until room or a message comes, or its timeout passes; `done` then runs
// (once, from whichever thread made the change, or the timer thread). A
// parked send holds its references from the moment it parks (moved, or new
// ones when sharing), so what the sender does meanwhile (release its own,
// send again) cannot take them from it; when it times out a moved send gives
// them back to the sender and a sharing one drops its own. CancelSession
// drops a closing session's parked operations without calling them, before
// its references go.
//
// Ownership: one per Daemon, outliving the sessions and dying before the
// pools. Thread-safe: one mutex for everything (lock order: this mutex, then
// a pool's mutex; callbacks take their reactor's mutex).
#ifndef MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_
#define MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "memd/shared/mutex.h"
#include "pool/pool.h"

namespace memd {

struct ReceivedMessage {
  std::vector<BufferInfo> buffers;
  std::string metadata;
  uint32_t hops = 0;  // bridges the message crossed to get here (0: a local client sent it)
};

struct ChannelStats {
  std::string name;
  uint64_t depth = 0, capacity = 0;              // messages queued, and the bound
  uint64_t sent = 0, received = 0;               // messages since the channel was made
  uint64_t waiting_senders = 0, waiting_receivers = 0;
  uint64_t send_waits = 0;                       // sends that had to wait for room
  // Sends that never went in because it was full and whose sender cannot
  // have sent them again: refused at once (a sender that does not wait, such
  // as a leaky memdsink), or parked when the sender's session ended. A queued
  // message is never dropped: it stays until a receiver takes it (a daemon
  // restart leaves it unclaimed).
  uint64_t dropped = 0;
  // Waits for room that ended at the send's timeout (the sender got
  // RESOURCE_EXHAUSTED). Backpressure, not loss: a sender that waits in
  // slices (memdsink: 100 ms) sends the same frame again, so one frame may
  // count many times; one that gives up lost it. Not in `dropped`.
  uint64_t send_timeouts = 0;
  uint64_t drained = 0;  // messages an operator released (Drain)
};

// What Drain released.
struct DrainedChannel {
  uint64_t messages = 0;
  uint64_t references = 0;
  uint64_t bytes = 0;  // sizes of the distinct buffers the messages referenced
};

class ChannelRegistry {
 public:
  static constexpr uint32_t kDefaultCapacity = 16;
  // What a queued message costs besides its metadata (its queue entry, its
  // holder in the ledger), charged with it, so that messages without
  // metadata are bounded too.
  static constexpr uint64_t kMessageOverheadBytes = 256;
  // Queued and parked messages of all pools and clients together (charges as
  // above): 32 MiB is 7,700 full 4 KiB messages, far above what pipelines
  // keep queued, and a small part of the daemon's memory.
  static constexpr uint64_t kMaxQueuedMessageBytes = uint64_t{32} << 20;
  // How long an idle channel stays (keeping its capacity and counters) for
  // the next send or receive of a pipeline that pauses.
  static constexpr absl::Duration kIdleLinger = absl::Seconds(5);

  using SendDone = std::function<void(absl::Status)>;
  using ReceiveDone = std::function<void(absl::StatusOr<ReceivedMessage>)>;
  // Runs when a receiver takes a message sent with a nonzero `tag` (a
  // bridge's inbound messages: bridge/inbound.h), under this registry's
  // mutex, before the receive is answered. It must not call the registry.
  using DeliveryHook =
      std::function<void(const Pool& pool, const std::string& channel, uint64_t tag)>;

  explicit ChannelRegistry(absl::Duration idle_linger = kIdleLinger);
  ~ChannelRegistry();  // releases every queued reference
  ChannelRegistry(const ChannelRegistry&) = delete;
  ChannelRegistry& operator=(const ChannelRegistry&) = delete;

  // INVALID_ARGUMENT when a send to `name` carries more handles than a
  // message may (limits::kMaxChannelHandles); Send checks it, and so does a
  // send's arena registration before it registers anything.
  static absl::Status CheckHandleCount(const std::string& name, size_t handles);

  // `sender` / `receiver` is the session's holder in `pool` (Pool::OpenSession).
  // Returns the outcome now, or nullopt when parked (then `done` runs later).
  // `tag` and `hops` are a bridge's (bridge/inbound.h): `hops` goes to the
  // receiver with the message (ReceivedMessage::hops).
  std::optional<absl::Status> Send(Pool& pool, HolderId sender, uint64_t session_id,
                                   const std::string& channel, std::vector<uint64_t> handles,
                                   std::string metadata, uint32_t capacity,
                                   absl::Duration timeout, Pool::TransferMode mode,
                                   SendDone done, uint64_t tag = 0, uint32_t hops = 0);
  std::optional<absl::StatusOr<ReceivedMessage>> Receive(Pool& pool, HolderId receiver,
                                                         uint64_t session_id,
                                                         const std::string& channel,
                                                         uint32_t capacity, absl::Duration timeout,
                                                         ReceiveDone done);

  // Set once, before any tagged send (bridge/engine.h).
  void SetDeliveryHook(DeliveryHook hook);
  // Makes channel `name` of `pool` (now and whenever it is created again) a
  // relay: a send completes only by handing its message to a waiting
  // receiver, never into the queue (a bridged channel: its outbound bridge
  // journals a message before the send is answered, bridge/outbound.h).
  // `relay` false: an ordinary channel again (the bridge was removed).
  void SetRelay(const Pool& pool, const std::string& name, bool relay = true);

  // Drops the parked operations of a closing session; their callbacks never run.
  void CancelSession(uint64_t session_id);

  // Operator actions (memctl channel drain|delete; channel_admin.cc).
  // Drain releases every queued message of channel `name` of `pool` (a
  // tagged one counts as delivered: the delivery hook runs), then lets
  // parked sends into the room. Delete removes the channel when it is idle;
  // FAILED_PRECONDITION naming its messages and waiting requests otherwise.
  // Both: NOT_FOUND when there is no such channel, INVALID_ARGUMENT for a
  // bad name.
  absl::StatusOr<DrainedChannel> Drain(Pool& pool, const std::string& name);
  absl::Status Delete(Pool& pool, const std::string& name);

  std::vector<ChannelStats> Stats(const Pool& pool) const;
  // Queued and parked messages' charges, all pools together (bytes).
  uint64_t queued_message_bytes() const;

 private:
  struct Message {
    std::vector<uint64_t> handles;
    std::string metadata;
    HolderId holder;        // holds its references, charged to its sender (in the channel's pool)
    uint64_t charge_bytes;  // metadata + kMessageOverheadBytes
    uint64_t tag = 0;       // reported to delivery_hook_ when received (0: none)
    uint32_t hops = 0;      // bridges it crossed (ReceivedMessage::hops)
  };
  struct ParkedSend {
    uint64_t session_id;
    HolderId sender;
    Message message;
    Pool::TransferMode mode;
    absl::Time deadline;
    SendDone done;
  };
  struct ParkedReceive {
    uint64_t session_id;
    HolderId receiver;
    absl::Time deadline;
    ReceiveDone done;
  };
  struct Channel {
    std::string name;
    Pool* pool;
    uint32_t capacity;
    HolderId holder;  // counts it against its creator's channel limits
    Causer creator;
    std::deque<Message> queue;
    std::deque<ParkedSend> senders;
    std::deque<ParkedReceive> receivers;
    uint64_t sent = 0, received = 0, send_waits = 0, dropped = 0,  // see ChannelStats
        send_timeouts = 0, drained = 0;
    bool relay = false;  // see SetRelay
    // When it last became idle (no message, no parked request);
    // InfiniteFuture while it is not idle.
    absl::Time idle_since = absl::InfiniteFuture();
  };
  using Key = std::pair<uint32_t, std::string>;  // (pool index, name)
  using Channels = std::map<Key, std::unique_ptr<Channel>>;

  // The channel, or NOT_FOUND naming it (Drain, Delete).
  absl::StatusOr<Channel*> FindExisting(Pool& pool, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The channel, or nullptr. INVALID_ARGUMENT for a bad name or capacity.
  absl::StatusOr<Channel*> Find(Pool& pool, const std::string& name, uint32_t capacity)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new, empty channel created by `creator` (a session's holder), counted
  // against its channel limits; at a limit, the creator's idle channels go first.
  absl::StatusOr<Channel*> Create(Pool& pool, HolderId creator, const std::string& name,
                                  uint32_t capacity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a channel and returns the next. REQUIRES: no message and no
  // parked request.
  Channels::iterator Remove(Channels::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(const Channel& channel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the idle channels of `pool` that `creator`'s uid (or, without a
  // uid, its session) created. Returns how many.
  int RemoveIdle(const Pool& pool, const Causer& creator) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // No message and no parked request (what NoteIdle records, Delete requires).
  static bool Idle(const Channel& channel) {
    return channel.queue.empty() && channel.senders.empty() && channel.receivers.empty();
  }
  // Records whether the channel is idle now (see Channel::idle_since).
  void NoteIdle(Channel& channel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Messages the queue may hold now: the capacity, or for a relay the
  // waiting receivers.
  size_t Room(const Channel& channel) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves queued messages to parked receivers and parked sends into room.
  void Settle(Channel& channel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The front message to `receiver` (of session `session_id`); on failure
  // (the receiver's quota) it stays queued.
  absl::StatusOr<ReceivedMessage> Deliver(Channel& channel, HolderId receiver, uint64_t session_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The trace points (trace/trace_points.h) of the message just queued by
  // session `sender`, and of the one session `receiver` just took.
  void TraceMessage(const Channel& channel, uint64_t sender, Pool::TransferMode mode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TraceMessage(const Channel& channel, uint64_t receiver,
                    const std::vector<BufferInfo>& received) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Undoes what parking `send` took: a moved send's references go back to
  // its sender, a sharing send's own are dropped; its charges go.
  void Withdraw(Channel& channel, const ParkedSend& send) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop();
  // Answers the parked requests of `channel` whose deadline passed; returns
  // the earliest deadline left (InfiniteFuture when none).
  absl::Time ExpireParked(Channel& channel, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the timer thread when `deadline` is before the time it sleeps
  // until; otherwise it would find the new deadline on its own (a parked
  // receive with the usual long timeout costs no thread wake-up).
  void NoteDeadline(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration idle_linger_;
  mutable Mutex mu_;
  CondVar timer_cv_;
  Channels channels_ ABSL_GUARDED_BY(mu_);
  DeliveryHook delivery_hook_ ABSL_GUARDED_BY(mu_);
  std::set<Key> relays_ ABSL_GUARDED_BY(mu_);  // see SetRelay
  uint64_t queued_message_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // see queued_message_bytes()
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // When the timer thread wakes next on its own (set by it before it sleeps).
  absl::Time timer_wakes_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::thread timer_;
};

}  // namespace memd

#endif  // MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_
