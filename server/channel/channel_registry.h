// ChannelRegistry: named channels, bounded queues of buffer references that
// hand buffers from one process to another (issue 6). A channel belongs to a
// pool and is created by its first user with the capacity it asks for.
//
// References move, they are never copied: a send moves one reference per
// handle from the sender's session into the channel (a sharing send gives the
// channel new references and the sender keeps its own), a receive moves them
// on to the receiver's session, both under the pool's mutex, so a buffer in
// flight always has a holder. A message may carry only metadata. A sender that dies leaves its messages
// deliverable; a receiver that dies releases what it received (its session
// holds it) and nothing queued is lost.
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
// Ownership: one per Daemon, outliving the sessions. Thread-safe: one mutex
// for everything (lock order: this mutex, then a pool's mutex; callbacks take
// their reactor's mutex).
#ifndef MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_
#define MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
};

struct ChannelStats {
  std::string name;
  uint64_t depth = 0, capacity = 0;              // messages queued, and the bound
  uint64_t sent = 0, received = 0;               // messages since the channel was made
  uint64_t waiting_senders = 0, waiting_receivers = 0;
  uint64_t send_waits = 0;                       // sends that had to wait for room
};

class ChannelRegistry {
 public:
  static constexpr size_t kMaxMetadataBytes = 4096;
  static constexpr size_t kMaxHandles = 64;
  static constexpr uint32_t kMaxCapacity = 4096;
  static constexpr uint32_t kDefaultCapacity = 16;

  using SendDone = std::function<void(absl::Status)>;
  using ReceiveDone = std::function<void(absl::StatusOr<ReceivedMessage>)>;

  ChannelRegistry();
  ~ChannelRegistry();  // releases every queued reference
  ChannelRegistry(const ChannelRegistry&) = delete;
  ChannelRegistry& operator=(const ChannelRegistry&) = delete;

  // Returns the outcome now, or nullopt when parked (then `done` runs later).
  std::optional<absl::Status> Send(Pool& pool, SessionRefs& sender, uint64_t session_id,
                                   const std::string& channel, std::vector<uint64_t> handles,
                                   std::string metadata, uint32_t capacity,
                                   absl::Duration timeout, Pool::TransferMode mode,
                                   SendDone done);
  std::optional<absl::StatusOr<ReceivedMessage>> Receive(Pool& pool, SessionRefs& receiver,
                                                         uint64_t session_id,
                                                         const std::string& channel,
                                                         uint32_t capacity, absl::Duration timeout,
                                                         ReceiveDone done);

  // Drops the parked operations of a closing session; their callbacks never run.
  void CancelSession(uint64_t session_id);

  std::vector<ChannelStats> Stats(const Pool& pool) const;

 private:
  struct Message {
    std::vector<uint64_t> handles;
    std::string metadata;
  };
  struct ParkedSend {
    uint64_t session_id;
    SessionRefs* sender;
    Message message;
    Pool::TransferMode mode;
    absl::Time deadline;
    SendDone done;
  };
  struct ParkedReceive {
    uint64_t session_id;
    SessionRefs* receiver;
    absl::Time deadline;
    ReceiveDone done;
  };
  struct Channel {
    std::string name;
    Pool* pool;
    uint32_t capacity;
    SessionRefs refs;         // the references of the queued messages
    SessionRefs parked_refs;  // those of the parked sends' messages
    std::deque<Message> queue;
    std::deque<ParkedSend> senders;
    std::deque<ParkedReceive> receivers;
    uint64_t sent = 0, received = 0, send_waits = 0;
  };

  absl::StatusOr<Channel*> FindOrCreate(Pool& pool, const std::string& name, uint32_t capacity)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves queued messages to parked receivers and parked sends into room.
  void Settle(Channel& channel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ReceivedMessage> Deliver(Channel& channel, SessionRefs& receiver)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Undoes what parking `send` took: a moved send's references go back to
  // its sender, a sharing send's own are dropped.
  void Unpark(Channel& channel, const ParkedSend& send) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop();
  // Wakes the timer thread when `deadline` is before the time it sleeps
  // until; otherwise it would find the new deadline on its own (a parked
  // receive with the usual long timeout costs no thread wake-up).
  void NoteDeadline(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  CondVar timer_cv_;
  std::map<std::pair<uint32_t, std::string>, std::unique_ptr<Channel>> channels_
      ABSL_GUARDED_BY(mu_);  // by (pool index, name)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // When the timer thread wakes next on its own (set by it before it sleeps).
  absl::Time timer_wakes_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::thread timer_;
};

}  // namespace memd

#endif  // MEMD_SERVER_CHANNEL_CHANNEL_REGISTRY_H_
