// Inbound: the receiving half of one bridge (issue 19; docs/multi-node.md):
// one per (sending node, its bridge), made at that bridge's first hello and
// kept for the daemon's life. Serves one Deliver stream at a time (a new
// stream from the same bridge cancels the old one): for each offer with a
// seq above what it enqueued already (the next expected one: B19), allocates
// in its own pool, pulls the
// bytes through the transport, and sends the buffers into the local channel
// tagged with the seq (waiting while the channel is full: backpressure). The
// channel registry's delivery hook calls Delivered when a local consumer
// receives a tagged message: the DeliveredMark is written before that
// receive is answered, and an ack goes back to the sender. An offer its pool
// can never hold (B20) is refused for good in an ack (refused_seq) and
// counts as taken; the sender drops it and goes on.
//
// Threads: the gRPC thread of the stream, plus an ack writer per stream.
// Thread-safe; mu_ is a leaf taken under the channel registry's mutex.
#ifndef MEMD_SERVER_BRIDGE_INBOUND_H_
#define MEMD_SERVER_BRIDGE_INBOUND_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include "bridge/journal.h"
#include "bridge/link_stats.h"
#include "bridge/transport.h"
#include "channel/channel_registry.h"
#include "memd/v1/bridge.grpc.pb.h"
#include "pool/pool.h"

namespace memd::bridge {

class Inbound {
 public:
  using Stream = grpc::ServerReaderWriter<v1::BridgeAck, v1::BridgeOffer>;

  // `id` (>= 1) tags this bridge's messages in the channel registry.
  Inbound(uint32_t id, std::string peer, std::string bridge, Pool* pool, std::string channel,
          ChannelRegistry* channels, PullTransport* transport, std::unique_ptr<DeliveredMark> mark,
          uint64_t session_id);

  // Serves one Deliver stream after its hello; returns how it ended.
  absl::Status Serve(grpc::ServerContext* context, Stream* stream, const v1::BridgeHello& hello);
  // The channel registry's delivery hook for this bridge's tag (under the
  // registry's mutex).
  void Delivered(uint64_t seq);

  static uint64_t Tag(uint32_t id, uint64_t seq) { return (uint64_t{id} << 48) | seq; }
  static uint32_t IdOf(uint64_t tag) { return static_cast<uint32_t>(tag >> 48); }
  static uint64_t SeqOf(uint64_t tag) { return tag & kMaxSeq; }
  // The highest seq a tag carries; a peer's offer above it is refused (B19).
  static constexpr uint64_t kMaxSeq = (uint64_t{1} << 48) - 1;

  const std::string& peer() const { return peer_; }
  const std::string& bridge() const { return bridge_; }
  const Pool& pool() const { return *pool_; }
  const std::string& channel() const { return channel_; }
  // Whether a Deliver stream is being served now.
  bool serving() {
    MutexLock lock(&mu_);
    return active_ != nullptr;
  }
  v1::BridgeStats Stats() { return stats_.Snapshot(); }

 private:
  // Enqueues one offer: allocate, pull, send. OK also for a duplicate and
  // for an offer refused for good (B20). An error ends the stream: an offer
  // out of sequence (B19), a second hello (B22), over the limits (B15).
  absl::Status Take(grpc::ServerContext* context, const v1::BridgeOffer& offer,
                    const std::string& region);
  // B19: OK for the seq expected next (enqueued_ + 1, or after at most
  // OutboundJournal::kSlots seqs the sender declares skipped) and for a
  // repeat of one taken; otherwise the error names both seqs.
  absl::Status CheckSeq(const v1::BridgeOffer& offer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(serve_mu_);
  // B20: the reason this pool can never hold `offer` (a buffer over its
  // max_alloc or its size, or all of them together over its size); empty
  // when it can.
  std::string NeverFits(const v1::BridgeOffer& offer);
  // Counts `seq` as taken and has the ack writer tell the sender (again).
  void Refuse(uint64_t seq, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(serve_mu_);
  // Sends the message into the channel, waiting while it is full; `hops`:
  // the bridges it crossed, this one included (a relay's offer adds one).
  absl::Status Enqueue(grpc::ServerContext* context, std::vector<uint64_t> handles,
                       const std::string& metadata, uint64_t seq, uint32_t hops);

  const uint32_t id_;
  const std::string peer_, bridge_;
  Pool* const pool_;
  const std::string channel_;
  ChannelRegistry* const channels_;
  PullTransport* const transport_;
  const uint64_t session_id_;
  LinkStats stats_;

  Mutex serve_mu_;  // one stream at a time; taken before mu_
  std::unique_ptr<PullConnection> connection_ ABSL_GUARDED_BY(serve_mu_);
  std::string connected_to_ ABSL_GUARDED_BY(serve_mu_);  // the address connection_ reached
  HolderId holder_ ABSL_GUARDED_BY(serve_mu_) = HolderId::kNone;
  uint64_t enqueued_ ABSL_GUARDED_BY(serve_mu_) = 0;  // highest seq sent into the channel
  // Seqs refused for good (B20) and why, told again when offered again (the
  // refusal's ack may have been lost with a link); the last kMaxRefused.
  std::map<uint64_t, std::string> refused_ ABSL_GUARDED_BY(serve_mu_);
  static constexpr size_t kMaxRefused = 64;

  Mutex mu_;
  CondVar cv_;
  std::unique_ptr<DeliveredMark> mark_ ABSL_GUARDED_BY(mu_);
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ServerContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;  // the stream being served
  // Refusals (B20) the ack writer sends next: seq and why.
  std::deque<std::pair<uint64_t, std::string>> refusals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_INBOUND_H_
