// Output of `memctl pools`, `clients` and `buffers`: JSON with stable keys, or
// aligned tables with human sizes.
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "memctl/format.h"
#include "memd/shared/size.h"

namespace memd {

nlohmann::ordered_json PoolsDocument(const v1::GetStatsResponse& stats) {
  nlohmann::ordered_json pools = nlohmann::ordered_json::array();
  for (const v1::PoolStats& p : stats.pools()) {
    pools.push_back({{"name", p.name()},
                     {"shm_name", p.shm_name()},
                     {"size_bytes", p.size_bytes()},
                     {"alignment", p.alignment_bytes()},
                     {"max_alloc_bytes", p.max_alloc_bytes()}});
  }
  return nlohmann::ordered_json{{"pools", pools}};
}

std::string PoolsTable(const v1::GetStatsResponse& stats, bool /*wide: every column already*/) {
  constexpr const char* kRow = "%-16s %-32s %10s %9s %12s\n";
  std::string out = absl::StrFormat(kRow, "POOL", "SHM OBJECT", "SIZE", "ALIGN", "MAX ALLOC");
  for (const v1::PoolStats& p : stats.pools()) {
    out += absl::StrFormat(kRow, p.name(), p.shm_name(), FormatSize(p.size_bytes()),
                           absl::StrCat(p.alignment_bytes()), FormatSize(p.max_alloc_bytes()));
  }
  return out;
}

nlohmann::ordered_json SessionsDocument(const v1::ListSessionsResponse& sessions) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const v1::SessionInfo& s : sessions.sessions()) {
    list.push_back({{"session_id", s.session_id()},
                    {"pid", s.pid()},
                    {"uid", s.uid()},
                    {"gid", s.gid()},
                    {"process_name", s.process_name()},
                    {"client_name", s.client_name()},
                    {"pool", s.pool()},
                    {"held_bytes", s.held_bytes()},
                    {"held_buffers", s.held_buffers()},
                    {"connected_unix_ms", s.connected_unix_ms()},
                    {"session_quota_bytes", s.session_quota_bytes()},
                    {"session_quota_buffers", s.session_quota_buffers()},
                    {"uid_held_bytes", s.uid_held_bytes()},
                    {"uid_held_buffers", s.uid_held_buffers()},
                    {"uid_quota_bytes", s.uid_quota_bytes()},
                    {"uid_quota_buffers", s.uid_quota_buffers()},
                    {"lane", s.lane()},
                    {"access", s.read_only() ? "reader" : "writer"},
                    {"arena_reserved_bytes", s.arena_reserved_bytes()},
                    {"arena_in_use_bytes", s.arena_in_use_bytes()},
                    {"arena_local_allocs", s.arena_local_allocs()}});
  }
  return nlohmann::ordered_json{{"clients", list}};
}

std::string SessionsTable(const v1::ListSessionsResponse& sessions, bool wide) {
  // ACCESS: reader (a read-only mapping; allocations refused) or writer.
  // BYTES HELD and BUFFERS HELD read "used/quota" when the pool has a
  // per-session quota; REQUESTS VIA is the session's transport (its lane or
  // the gRPC stream); -o wide adds the gid, what the whole uid holds against
  // its quotas, and the session's arena (bytes in use / reserved, blocks
  // handed out without a round trip).
  constexpr const char* kRow = "%8s %8s %6s %-16s %-16s %-12s %-6s %20s %12s %-12s %-19s";
  constexpr const char* kWide = " %6s %20s %16s %21s %18s";
  std::string out = absl::StrFormat(kRow, "SESSION", "PID", "UID", "PROCESS", "NAME", "POOL",
                                    "ACCESS", "BYTES HELD", "BUFFERS HELD", "REQUESTS VIA",
                                    "CONNECTED SINCE");
  if (wide) {
    out += absl::StrFormat(kWide, "GID", "UID BYTES HELD", "UID BUFFERS HELD",
                           "ARENA USED/RESERVED", "ARENA LOCAL ALLOCS");
  }
  out += "\n";
  auto against = [](const std::string& used, uint64_t quota, const std::string& quota_text) {
    return quota == 0 ? used : used + "/" + quota_text;
  };
  for (const v1::SessionInfo& s : sessions.sessions()) {
    std::string since = absl::FormatTime("%Y-%m-%d %H:%M:%S",
                                         absl::FromUnixMillis(static_cast<int64_t>(s.connected_unix_ms())),
                                         absl::LocalTimeZone());
    out += absl::StrFormat(kRow, absl::StrCat(s.session_id()), absl::StrCat(s.pid()),
                           absl::StrCat(s.uid()), s.process_name(), s.client_name(), s.pool(),
                           s.read_only() ? "reader" : "writer",
                           against(FormatSize(s.held_bytes()), s.session_quota_bytes(),
                                   FormatSize(s.session_quota_bytes())),
                           against(absl::StrCat(s.held_buffers()), s.session_quota_buffers(),
                                   absl::StrCat(s.session_quota_buffers())),
                           s.lane() ? "lane" : "stream", since);
    if (wide) {
      out += absl::StrFormat(kWide, absl::StrCat(s.gid()),
                             against(FormatSize(s.uid_held_bytes()), s.uid_quota_bytes(),
                                     FormatSize(s.uid_quota_bytes())),
                             against(absl::StrCat(s.uid_held_buffers()), s.uid_quota_buffers(),
                                     absl::StrCat(s.uid_quota_buffers())),
                             FormatSize(s.arena_in_use_bytes()) + "/" +
                                 FormatSize(s.arena_reserved_bytes()),
                             absl::StrCat(s.arena_local_allocs()));
    }
    out += "\n";
  }
  return out;
}

nlohmann::ordered_json BuffersDocument(const v1::ListBuffersResponse& buffers) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const v1::BufferEntry& b : buffers.buffers()) {
    list.push_back({{"handle", absl::StrCat(b.handle())},
                    {"pool", b.pool()},
                    {"offset_bytes", b.offset_bytes()},
                    {"size_bytes", b.size_bytes()},
                    {"capacity_bytes", b.capacity_bytes()},
                    {"references", b.references()},
                    {"holders", std::vector<uint64_t>(b.holder_session_ids().begin(),
                                                      b.holder_session_ids().end())},
                    {"holder_sessions", b.holder_sessions()}});
  }
  return nlohmann::ordered_json{{"buffers", list}, {"truncated", buffers.truncated()}};
}

std::string BuffersTable(const v1::ListBuffersResponse& buffers, bool wide) {
  constexpr const char* kRow = "%-18s %-12s %12s %10s %5s  %s\n";
  // -o wide: the decimal handle (as the JSON has it) and the block's capacity.
  constexpr const char* kWideRow = "%-18s %-20s %-12s %12s %10s %10s %5s  %s\n";
  std::string out =
      wide ? absl::StrFormat(kWideRow, "HANDLE", "DECIMAL", "POOL", "OFFSET", "SIZE", "CAPACITY",
                             "REFS", "HOLDERS")
           : absl::StrFormat(kRow, "HANDLE", "POOL", "OFFSET", "SIZE", "REFS", "HOLDERS");
  for (const v1::BufferEntry& b : buffers.buffers()) {
    std::string holders = absl::StrJoin(b.holder_session_ids(), ",");
    if (b.holder_sessions() > static_cast<uint32_t>(b.holder_session_ids_size())) {
      absl::StrAppendFormat(&holders, " (+%u more)", b.holder_sessions() - b.holder_session_ids_size());
    }
    std::string hex = absl::StrFormat("0x%016x", b.handle());
    out += wide ? absl::StrFormat(kWideRow, hex, absl::StrCat(b.handle()), b.pool(),
                                  absl::StrCat(b.offset_bytes()), FormatSize(b.size_bytes()),
                                  FormatSize(b.capacity_bytes()), absl::StrCat(b.references()),
                                  holders)
                : absl::StrFormat(kRow, hex, b.pool(), absl::StrCat(b.offset_bytes()),
                                  FormatSize(b.size_bytes()), absl::StrCat(b.references()),
                                  holders);
  }
  if (buffers.truncated()) out += "(more buffers not shown; raise --limit, or --limit 0 for all)\n";
  return out;
}

nlohmann::ordered_json CheckDocument(const v1::CheckPoolsResponse& check) {
  nlohmann::ordered_json pools = nlohmann::ordered_json::array();
  bool ok = true;
  for (const v1::PoolCheck& p : check.pools()) {
    pools.push_back({{"name", p.name()}, {"ok", p.ok()}, {"error", p.error()}});
    ok = ok && p.ok();
  }
  return nlohmann::ordered_json{{"ok", ok}, {"pools", pools}};
}

std::string CheckTable(const v1::CheckPoolsResponse& check, bool /*wide: every column already*/) {
  constexpr const char* kRow = "%-16s %-6s %s\n";
  std::string out = absl::StrFormat(kRow, "POOL", "STATE", "FIRST BROKEN INVARIANT");
  for (const v1::PoolCheck& p : check.pools()) {
    out += absl::StrFormat(kRow, p.name(), p.ok() ? "ok" : "BROKEN", p.ok() ? "" : p.error());
  }
  return out;
}

}  // namespace memd
