// What keeps every Admin answer small and parseable whatever the daemon
// holds (issue 13, case 8's admin half, and case 4): the size budget an answer
// fills up to, the page limits, and the guard that makes each string valid
// UTF-8. Used by AdminService only; plain functions and a per-call value type,
// no shared state.
#ifndef MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_
#define MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include <google/protobuf/message.h>

#include "channel/channel_registry.h"

namespace memd {

// The most an Admin answer may serialize to: a quarter of gRPC's default
// 4 MiB receive limit, so no client (memctl, grpcurl, Prometheus exporters)
// needs a raised limit, and fields added later keep room.
inline constexpr size_t kMaxAnswerBytes = 1 << 20;
// Entries in one ListSessions / ListBuffers page, whatever the request asks
// (its limit 0 means this too). A SessionInfo is at most ~350 bytes and a
// BufferEntry ~770 (64 holders), so a full page fits in kMaxAnswerBytes; the
// AnswerBudget ends a page early if that ever stops being true.
inline constexpr uint32_t kMaxPageEntries = 1000;
// Channels GetStats lists per pool (the busiest); the rest are counted.
inline constexpr size_t kMaxChannelsListed = 64;
// Holder session ids a BufferEntry lists; holder_sessions counts them all.
inline constexpr size_t kMaxHoldersListed = 64;

// The entries a page holds: `requested`, or kMaxPageEntries when that is 0
// or more.
uint32_t PageLimit(uint32_t requested);

// The bytes one answer has left. Not thread-safe: one per call.
class AnswerBudget {
 public:
  // Takes room for `entry` as an element of a repeated field and returns
  // true, or returns false and takes nothing when it does not fit.
  bool Take(const google::protobuf::Message& entry);

 private:
  size_t left_ = kMaxAnswerBytes;
};

// Sorts the busiest kMaxChannelsListed of `channels` to the front, busiest
// first (queued messages plus waiting requests, then messages sent and
// received, then name), and drops the rest. Returns how many it dropped.
size_t KeepBusiest(std::vector<ChannelStats>* channels);

// The guard: every string field of `answer`, nested ones included, becomes
// valid UTF-8 (ValidUtf8 in memd/shared/text.h), so one bad byte anywhere
// cannot make the whole answer unparseable for the client.
void MakeStringsValid(google::protobuf::Message* answer);

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_
