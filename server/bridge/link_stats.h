// LinkStats: what memctl bridge list and the metrics show of one bridge
// (issue 19): messages and bytes moved, in flight, retries, lost, link state, the
// throughput of the last interval, whether the link is encrypted and how
// many pulled answers failed their tag (issue 24). Owned by its Outbound or Inbound;
// thread-safe (one mutex, a leaf).
#ifndef MEMD_SERVER_BRIDGE_LINK_STATS_H_
#define MEMD_SERVER_BRIDGE_LINK_STATS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "memd/shared/mutex.h"
#include "memd/v1/bridge.pb.h"

namespace memd::bridge {

class LinkStats {
 public:
  // The throughput shown is over the last interval of at least this long.
  static constexpr absl::Duration kInterval = absl::Seconds(5);

  LinkStats(std::string name, std::string peer, std::string direction, std::string transport,
            bool encrypted)
      : name_(std::move(name)), peer_(std::move(peer)), direction_(std::move(direction)),
        transport_(std::move(transport)), encrypted_(encrypted) {}

  void Moved(uint64_t bytes, uint64_t seq) {
    MutexLock lock(&mu_);
    ++messages_;
    bytes_ += bytes;
    last_seq_ = seq;
  }
  void SetInFlight(uint64_t n) { MutexLock lock(&mu_); in_flight_ = n; }
  void Retry(uint64_t n = 1) { MutexLock lock(&mu_); retries_ += n; }
  void Lost() { MutexLock lock(&mu_); ++lost_; }
  void TagFailed() { MutexLock lock(&mu_); ++tag_failures_; }
  // in: what the sender's hello said of this link (its link_clear).
  void SetEncrypted(bool encrypted) { MutexLock lock(&mu_); encrypted_ = encrypted; }
  void SetLink(const std::string& state, const std::string& error = {}) {
    MutexLock lock(&mu_);
    link_ = state;
    if (!error.empty()) last_error_ = error;
  }

  v1::BridgeStats Snapshot() {
    MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    if (now - sample_at_ >= kInterval) {
      rate_ = static_cast<double>(bytes_ - sample_bytes_) / absl::ToDoubleSeconds(now - sample_at_);
      sample_at_ = now;
      sample_bytes_ = bytes_;
    }
    v1::BridgeStats s;
    s.set_name(name_);
    s.set_peer(peer_);
    s.set_direction(direction_);
    s.set_transport(transport_);
    s.set_link(link_);
    s.set_messages(messages_);
    s.set_bytes(bytes_);
    s.set_in_flight(in_flight_);
    s.set_retries(retries_);
    s.set_last_seq(last_seq_);
    s.set_bytes_per_second(rate_);
    s.set_last_error(last_error_);
    s.set_lost(lost_);
    s.set_encrypted(encrypted_);
    s.set_tag_failures(tag_failures_);
    return s;
  }

 private:
  const std::string name_, peer_, direction_, transport_;
  Mutex mu_;
  std::string link_ ABSL_GUARDED_BY(mu_) = "connecting";
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  uint64_t messages_ ABSL_GUARDED_BY(mu_) = 0, bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0, retries_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lost_ ABSL_GUARDED_BY(mu_) = 0;  // out: refused by the peer for good (B20)
  bool encrypted_ ABSL_GUARDED_BY(mu_);
  uint64_t tag_failures_ ABSL_GUARDED_BY(mu_) = 0;  // in: answers whose seal failed (B41)
  absl::Time sample_at_ ABSL_GUARDED_BY(mu_) = absl::Now();
  uint64_t sample_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  double rate_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_LINK_STATS_H_
