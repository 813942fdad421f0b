#include "pool/holder_ledger.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"

namespace memd {
namespace {

// Adds a signed change to an unsigned count (modular: `delta` may be negative).
void Add(uint64_t& count, int64_t delta) { count += static_cast<uint64_t>(delta); }

bool IsZero(const SessionUsage& u) {
  return u.held_bytes == 0 && u.held_buffers == 0 && u.message_bytes == 0 && u.channels == 0 &&
         u.parked == 0;
}

}  // namespace

HolderLedger::HolderLedger(std::string pool_name, PoolQuotas quotas, LedgerLimits limits)
    : pool_name_(std::move(pool_name)), quotas_(quotas), limits_(limits) {}

HolderId HolderLedger::Open(HolderKind kind, Causer causer, std::string key) {
  HolderId id{next_id_++};
  holders_.emplace(id, Holder{.kind = kind, .causer = causer, .key = std::move(key),
                              .index = NewIndex(id)});
  if (kind == HolderKind::kSession) ++sessions_;
  return id;
}

void HolderLedger::Close(HolderId id) {
  auto it = holders_.find(id);
  if (it == holders_.end()) return;
  Holder& h = it->second;
  // References go by TakeAll first; what is left are charges.
  Account(h, Delta{.message_bytes = -static_cast<int64_t>(h.usage.message_bytes),
                   .channels = -static_cast<int64_t>(h.usage.channels),
                   .parked = -static_cast<int64_t>(h.usage.parked)});
  if (h.kind == HolderKind::kSession) --sessions_;
  // No slot record names it (it holds nothing): its index may be reused.
  holder_by_index_[h.index] = HolderId::kNone;
  free_indices_.push_back(h.index);
  holders_.erase(it);
}

const HolderLedger::Holder& HolderLedger::At(HolderId id) const { return holders_.at(id); }

HolderKind HolderLedger::kind(HolderId id) const { return At(id).kind; }

const Causer& HolderLedger::causer(HolderId id) const { return At(id).causer; }

const std::string& HolderLedger::key(HolderId id) const { return At(id).key; }

void HolderLedger::NoteKeyed(const Holder& holder, uint64_t handle, uint32_t refs) const {
  if (!holder.key.empty() && on_keyed_change_) on_keyed_change_(holder.key, handle, refs);
}

uint32_t HolderLedger::Held(HolderId id, uint64_t handle) const {
  auto h = holders_.find(id);
  return h == holders_.end() ? 0 : CountOf(h->second, handle);
}

uint64_t HolderLedger::References(HolderId id) const {
  auto h = holders_.find(id);
  return h == holders_.end() ? 0 : h->second.references;
}

SessionUsage HolderLedger::Usage(HolderId id) const {
  auto h = holders_.find(id);
  return h == holders_.end() ? SessionUsage{} : h->second.usage;
}

SessionUsage HolderLedger::UidUsage(uid_t uid) const {
  auto it = uid_totals_.find(uid);
  return it == uid_totals_.end() ? SessionUsage{} : it->second;
}

SessionUsage HolderLedger::SessionTotal(uint64_t session_id) const {
  auto it = session_totals_.find(session_id);
  return it == session_totals_.end() ? SessionUsage{} : it->second;
}

void HolderLedger::Account(Holder& holder, const Delta& d) {
  auto add = [&](SessionUsage& u) {
    Add(u.held_bytes, d.held_bytes);
    Add(u.held_buffers, d.held_buffers);
    Add(u.message_bytes, d.message_bytes);
    Add(u.channels, d.channels);
    Add(u.parked, d.parked);
  };
  add(holder.usage);
  if (holder.causer.session_id != 0) {
    SessionUsage& s = session_totals_[holder.causer.session_id];
    add(s);
    if (IsZero(s)) session_totals_.erase(holder.causer.session_id);
  }
  if (holder.causer.uid) {
    SessionUsage& u = uid_totals_[*holder.causer.uid];
    add(u);
    if (IsZero(u)) uid_totals_.erase(*holder.causer.uid);
  }
}

HolderLedger::Deltas HolderLedger::DeltasOf(absl::Span<const Change> changes) const {
  struct Net {
    int64_t refs = 0;
    uint64_t capacity_bytes = 0;
  };
  absl::flat_hash_map<std::pair<HolderId, uint64_t>, Net> net;
  for (const Change& c : changes) {
    Net& n = net[{c.holder, c.handle}];
    n.refs += c.refs;
    n.capacity_bytes = c.capacity_bytes;
  }
  Deltas out;
  for (const auto& [key, n] : net) {
    int64_t held = Held(key.first, key.second);
    Delta& d = out[key.first];
    if (held == 0 && held + n.refs > 0) {
      d.held_bytes += static_cast<int64_t>(n.capacity_bytes);
      ++d.held_buffers;
    } else if (held > 0 && held + n.refs == 0) {
      d.held_bytes -= static_cast<int64_t>(n.capacity_bytes);
      --d.held_buffers;
    }
  }
  return out;
}

absl::Status HolderLedger::Check(absl::Span<const Change> changes, const char* op) const {
  if (changes.size() == 1 && changes[0].refs > 0) {  // a retain: no map on this path
    const Change& c = changes[0];
    if (Held(c.holder, c.handle) > 0) return absl::OkStatus();
    return CheckOne(c.holder, Delta{.held_bytes = static_cast<int64_t>(c.capacity_bytes),
                                    .held_buffers = 1}, op);
  }
  return CheckDeltas(DeltasOf(changes), op);
}

void HolderLedger::Apply(absl::Span<const Change> changes) {
  for (const Change& c : changes) {
    Holder& h = holders_.at(c.holder);
    uint32_t before = CountOf(h, c.handle);
    auto now = static_cast<uint32_t>(before + c.refs);
    if (now == before) continue;
    StoreCount(h, c.handle, before, now);
    auto capacity = static_cast<int64_t>(c.capacity_bytes);
    if (before == 0) Account(h, Delta{.held_bytes = capacity, .held_buffers = 1});
    if (now == 0) Account(h, Delta{.held_bytes = -capacity, .held_buffers = -1});
    NoteKeyed(h, c.handle, now);
  }
}

absl::Status HolderLedger::CheckGrowth(HolderId id, int64_t bytes, int64_t buffers,
                                       const char* op) const {
  return CheckOne(id, Delta{.held_bytes = bytes, .held_buffers = buffers}, op);
}

void HolderLedger::Resize(HolderId id, int64_t delta_bytes) {
  Account(holders_.at(id), Delta{.held_bytes = delta_bytes});
}

absl::Status HolderLedger::Charge(HolderId id, const SessionUsage& charge, const char* op) {
  Delta d{.message_bytes = static_cast<int64_t>(charge.message_bytes),
          .channels = static_cast<int64_t>(charge.channels),
          .parked = static_cast<int64_t>(charge.parked)};
  if (absl::Status s = CheckOne(id, d, op); !s.ok()) return s;
  Account(holders_.at(id), d);
  return absl::OkStatus();
}

void HolderLedger::Uncharge(HolderId id, const SessionUsage& charge) {
  Account(holders_.at(id), Delta{.message_bytes = -static_cast<int64_t>(charge.message_bytes),
                                 .channels = -static_cast<int64_t>(charge.channels),
                                 .parked = -static_cast<int64_t>(charge.parked)});
}

absl::Status HolderLedger::CheckOne(HolderId id, const Delta& d, const char* op) const {
  const Holder& h = At(id);
  if (absl::Status s = CheckHolder(h, d, op); !s.ok()) return s;
  if (h.causer.session_id != 0) {
    if (absl::Status s = CheckSession(h.causer.session_id, d, op); !s.ok()) return s;
  }
  return h.causer.uid ? CheckUid(*h.causer.uid, d, op) : absl::OkStatus();
}

absl::Status HolderLedger::CheckDeltas(const Deltas& deltas, const char* op) const {
  if (deltas.size() == 1) return CheckOne(deltas.begin()->first, deltas.begin()->second, op);
  // In holder order, so the same request always names the same quota.
  std::vector<HolderId> ids;
  for (const auto& [id, d] : deltas) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  absl::flat_hash_map<uint64_t, Delta> by_session;
  absl::flat_hash_map<uid_t, Delta> by_uid;
  std::vector<uint64_t> session_order;
  std::vector<uid_t> uid_order;
  auto sum = [](Delta& into, const Delta& d) {
    into.held_bytes += d.held_bytes;
    into.held_buffers += d.held_buffers;
    into.message_bytes += d.message_bytes;
    into.channels += d.channels;
    into.parked += d.parked;
  };
  for (HolderId id : ids) {
    const Holder& h = At(id);
    const Delta& d = deltas.at(id);
    if (absl::Status s = CheckHolder(h, d, op); !s.ok()) return s;
    if (h.causer.session_id != 0) {
      if (!by_session.contains(h.causer.session_id)) session_order.push_back(h.causer.session_id);
      sum(by_session[h.causer.session_id], d);
    }
    if (h.causer.uid) {
      if (!by_uid.contains(*h.causer.uid)) uid_order.push_back(*h.causer.uid);
      sum(by_uid[*h.causer.uid], d);
    }
  }
  for (uint64_t session : session_order) {
    if (absl::Status s = CheckSession(session, by_session[session], op); !s.ok()) return s;
  }
  for (uid_t uid : uid_order) {
    if (absl::Status s = CheckUid(uid, by_uid[uid], op); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status HolderLedger::CheckHolder(const Holder& holder, const Delta& d, const char* op) const {
  if (holder.kind != HolderKind::kSession) return absl::OkStatus();
  const PoolQuotas& q = quotas_;
  const SessionUsage& u = holder.usage;
  if (d.held_bytes > 0 && q.session_bytes != 0 && u.held_bytes + d.held_bytes > q.session_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s of %s in pool '%s' would exceed the per-session quota of %s: the session holds %s "
        "in %u buffers", op, BytesText(d.held_bytes), pool_name_, BytesText(q.session_bytes),
        BytesText(u.held_bytes), u.held_buffers));
  }
  if (d.held_buffers > 0 && q.session_buffers != 0 &&
      u.held_buffers + d.held_buffers > q.session_buffers) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s in pool '%s' would exceed the per-session quota of %u buffers: the session "
        "references %u", op, pool_name_, q.session_buffers, u.held_buffers));
  }
  return absl::OkStatus();
}

absl::Status HolderLedger::OverLimit(const char* op, uint64_t limit, const char* what,
                                     const std::string& usage) const {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s in pool '%s' would exceed the limit of %u %s: %s", op, pool_name_, limit, what, usage));
}

absl::Status HolderLedger::CheckSession(uint64_t session_id, const Delta& d, const char* op) const {
  SessionUsage u = SessionTotal(session_id);
  if (d.channels > 0 && u.channels + d.channels > limits_.session_channels) {
    return OverLimit(op, limits_.session_channels, "channels per session",
                     absl::StrFormat("session %u created %u that still exist", session_id,
                                     u.channels));
  }
  if (d.parked > 0 && u.parked + d.parked > limits_.session_parked) {
    return OverLimit(op, limits_.session_parked, "parked sends and receives per session",
                     absl::StrFormat("session %u has %u parked", session_id, u.parked));
  }
  return absl::OkStatus();
}

absl::Status HolderLedger::CheckUid(uid_t uid, const Delta& d, const char* op) const {
  const PoolQuotas& q = quotas_;
  SessionUsage u = UidUsage(uid);
  if (d.held_bytes > 0 && q.uid_bytes != 0 && u.held_bytes + d.held_bytes > q.uid_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s of %s in pool '%s' would exceed the per-uid quota of %s for uid %u: its sessions and "
        "channel messages hold %s in %u buffers", op, BytesText(d.held_bytes), pool_name_,
        BytesText(q.uid_bytes), uid, BytesText(u.held_bytes), u.held_buffers));
  }
  if (d.held_buffers > 0 && q.uid_buffers != 0 && u.held_buffers + d.held_buffers > q.uid_buffers) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s in pool '%s' would exceed the per-uid quota of %u buffers for uid %u: its sessions "
        "and channel messages reference %u", op, pool_name_, q.uid_buffers, uid, u.held_buffers));
  }
  if (d.channels > 0 && u.channels + d.channels > limits_.uid_channels) {
    return OverLimit(op, limits_.uid_channels, "channels per uid",
                     absl::StrFormat("uid %u created %u that still exist", uid, u.channels));
  }
  if (d.message_bytes > 0 && u.message_bytes + d.message_bytes > limits_.uid_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s of %s in pool '%s' would exceed the limit of %s of queued channel messages per uid: "
        "uid %u has %s queued", op, BytesText(d.message_bytes), pool_name_,
        BytesText(limits_.uid_message_bytes), uid, BytesText(u.message_bytes)));
  }
  return absl::OkStatus();
}

}  // namespace memd
