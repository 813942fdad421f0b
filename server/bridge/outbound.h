// Outbound: the sending half of one bridge (issue 19; docs/multi-node.md).
// It is the receiver of its channel (a relay: ChannelRegistry::SetRelay, so a
// producer's send completes only once the bridge took the message), holds the
// message's references under a keyed holder of the pool (persisted in the
// holdings file, re-adopted after a kill -9), records each message in its
// OutboundJournal under the channel registry's mutex before the send is
// answered, gives it the next seq, offers it to the peer on a Deliver stream
// and releases it when the peer acknowledges it (or drops it, counted as lost,
// when the peer refuses it for good: B20). At most
// OutboundJournal::kSlots messages are in flight; then it stops taking, the
// channel's senders wait (backpressure).
//
// Threads: a taker (receives from the channel), a link thread (connects,
// streams offers, reconnects) and per connection an ack reader. Ownership:
// one per configured bridge, owned by the Engine. Thread-safe; mu_ is taken
// under the channel registry's mutex (the receive callback) and before a
// pool's mutex (releases).
#ifndef MEMD_SERVER_BRIDGE_OUTBOUND_H_
#define MEMD_SERVER_BRIDGE_OUTBOUND_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/time/time.h"
#include "bridge/journal.h"
#include "bridge/link_stats.h"
#include "bridge/transport.h"
#include "channel/channel_registry.h"
#include "config/bridge_config.h"
#include "pool/pool.h"

namespace memd::bridge {

using OpenChannelFn =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(std::string_view peer)>;

class Outbound {
 public:
  struct Env {
    Pool* pool;
    ChannelRegistry* channels;
    PullTransport* transport;
    std::string node;       // this daemon's
    std::string state_dir;  // the instance's private directory
    uint64_t session_id;    // for the channel registry and the ledger's causer
    OpenChannelFn open_channel;
    // Exposes the pool to the transport (Engine::Expose: once per pool,
    // shared by its bridges). REQUIRES: the pool's memory is ready.
    std::function<absl::Status(Pool&)> expose;
    absl::Duration reclaim_grace;  // --reclaim-grace, named by B08
    bool seal;  // each link's Grant seals its bytes: not with --bridge-link trusted
  };
  Outbound(BridgeSpec spec, Env env);
  ~Outbound();  // Stop()
  Outbound(const Outbound&) = delete;
  Outbound& operator=(const Outbound&) = delete;

  void Start();
  // Stops; what it holds stays for the next start (a daemon shutdown).
  void Stop();
  // Stops for good (memctl bridge remove): releases what is in flight,
  // marks it acknowledged in the journal (seqs go on if the bridge is added
  // again), and makes the channel an ordinary one again.
  // Returns how many messages were dropped.
  uint64_t Drop();

  const BridgeSpec& spec() const { return spec_; }
  // Whether [offset, offset + length) lies within a buffer of a message
  // offered to the peer and not yet acknowledged, refused or dropped: what
  // the transport may serve to this bridge's peer (Engine::MayRead, issue
  // 24). This Outbound's in_flight_ is the one record of it: a message
  // leaves it at the ack (Release), the refusal (Refused) or the drop.
  bool Covers(uint64_t offset, uint64_t length) const;
  v1::BridgeStats Stats() { return stats_.Snapshot(); }

 private:
  struct InFlight {
    uint64_t seq;
    std::vector<BufferInfo> buffers;
    std::string metadata;
    uint32_t hops;  // bridges it crossed to reach this node; its offer says hops + 1
  };
  std::string JournalPath() const;
  // Waits for the pool's memory, opens the journal and takes back the
  // references of the messages it lists. (outbound_recover.cc)
  absl::Status Recover();
  void TakeLoop();
  void LinkLoop();
  // One connection: until it breaks or Stop. Returns why it ended.
  absl::Status RunLink();
  // The receive callback: journals the message. Under the registry's mutex.
  void Taken(absl::StatusOr<ReceivedMessage> message);
  // The peer acknowledged everything up to `seq`.
  void Release(uint64_t seq);
  // The peer can never take message `seq` (B20): released, counted and
  // logged as lost; the journal acknowledges it with those around it.
  void Refused(uint64_t seq, const std::string& why);
  // Acknowledges in the journal the entries below the first message in
  // flight (all of them when none is): those are B08's lost messages, which
  // would otherwise hold journal slots for good.
  void AckLost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BridgeSpec spec_;
  const Env env_;
  LinkStats stats_;
  HolderId holder_ = HolderId::kNone;  // set by Recover, then constant

  mutable Mutex mu_;
  CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;           // Recover done
  bool receiving_ ABSL_GUARDED_BY(mu_) = false;       // a parked receive is outstanding
  bool link_broken_ ABSL_GUARDED_BY(mu_) = false;     // the ack reader ended
  grpc::ClientContext* link_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<OutboundJournal> journal_ ABSL_GUARDED_BY(mu_);
  std::deque<InFlight> in_flight_ ABSL_GUARDED_BY(mu_);  // seq ascending
  uint64_t sent_max_ ABSL_GUARDED_BY(mu_) = 0;           // highest seq ever offered
  std::thread taker_, link_;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_OUTBOUND_H_
