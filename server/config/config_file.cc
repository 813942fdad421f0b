#include "config/config_file.h"

#include <toml++/toml.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

const absl::flat_hash_set<std::string>& TopKeys() {
  static const auto* keys = new absl::flat_hash_set<std::string>{
      "instance",   "listen",        "log_level",   "log_format",  "metrics_listen",
      "socket_mode", "socket_group", "shm_mode",    "admin_group", "user",
      "group",      "alignment",     "max_alloc",   "prefault",    "reclaim_grace",
      "tls_cert",   "tls_key",       "tls_client_ca", "pool",      "max_lanes",
      "state_dir",  "lane_spin",     "node",          "bridge_transport", "bridge_link", "peer", "bridge",
      "max_sessions_per_uid"};
  return *keys;
}

// Pool keys and the --pool spec key each becomes.
const std::map<std::string, std::string>& PoolKeys() {
  static const auto* keys = new std::map<std::string, std::string>{
      {"alignment", "alignment"},       {"max_alloc", "max-alloc"},
      {"mode", "mode"},                 {"owner", "owner"},
      {"group", "group"},               {"session_bytes", "session-bytes"},
      {"session_buffers", "session-buffers"}, {"uid_bytes", "uid-bytes"},
      {"uid_buffers", "uid-buffers"},   {"prefault", "prefault"},
      {"bridge", "bridge"}};
  return *keys;
}

bool IsModeKey(const std::string& key) {
  return key == "socket_mode" || key == "shm_mode" || key == "mode";
}

// A scalar as flag text; an error naming `where` for other types.
absl::StatusOr<std::string> ScalarText(const toml::node& node, const std::string& where,
                                       const std::string& key) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: key '%s' is %d; it cannot be negative", where, key, i->get()));
    }
    // Modes are octal: mode = 0o660 and mode = "0660" mean the same.
    return IsModeKey(key) ? absl::StrFormat("%o", i->get()) : absl::StrFormat("%d", i->get());
  }
  if (const auto* b = node.as_boolean()) {
    if (key != "prefault" && key != "bridge") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: key '%s' is a boolean; expected a string or a number", where, key));
    }
    return std::string(b->get() ? "true" : "false");
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: key '%s' must be a string or a number (prefault, bridge: true or false)", where, key));
}

std::string Known(const std::vector<std::string>& keys) { return absl::StrJoin(keys, ", "); }

}  // namespace

absl::StatusOr<FileSettings> LoadConfigFile(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "config file '%s', line %d column %d: %s", path, e.source().begin.line,
        e.source().begin.column, std::string(e.description())));
  }
  FileSettings settings;
  std::vector<std::string> top_known(TopKeys().begin(), TopKeys().end());
  std::sort(top_known.begin(), top_known.end());
  for (const auto& [key_view, node] : root) {
    std::string key(key_view.str());
    if (!TopKeys().contains(key)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "config file '%s': unknown key '%s' (known: %s)", path, key, Known(top_known)));
    }
    if (key == "listen") {
      const toml::array* list = node.as_array();
      if (list == nullptr) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "config file '%s': key 'listen' must be an array of addresses, e.g. "
            "[\"unix:///run/memd/memd.sock\"]", path));
      }
      settings.listen.emplace();
      for (const toml::node& item : *list) {
        const auto* s = item.as_string();
        if (s == nullptr) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "config file '%s': every 'listen' entry must be a string address", path));
        }
        settings.listen->push_back(s->get());
      }
      continue;
    }
    if (key == "peer" || key == "bridge") {
      // [[peer]] name, address -> "NAME=ADDRESS"; [[bridge]] pool, channel,
      // peer -> "POOL/CHANNEL=PEER" (what --peer and --bridge take).
      const bool peer = key == "peer";
      const toml::array* tables = node.as_array();
      std::vector<const char*> keys = peer ? std::vector<const char*>{"name", "address"}
                                           : std::vector<const char*>{"pool", "channel", "peer"};
      std::string usage = peer ? "[[peer]] name = \"b\" address = \"10.0.0.2:7441\""
                               : "[[bridge]] pool = \"video\" channel = \"raw\" peer = \"b\"";
      if (tables == nullptr || !tables->is_array_of_tables()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("config file '%s': '%s' must be tables: %s", path, key, usage));
      }
      auto& out = peer ? settings.peers : settings.bridges;
      out.emplace();
      for (const toml::node& item : *tables) {
        const toml::table& table = *item.as_table();
        std::vector<std::string> values;
        for (const char* k : keys) {
          const toml::node* v = table.get(k);
          if (v == nullptr || !v->is_string()) {
            return absl::InvalidArgumentError(absl::StrFormat(
                "config file '%s': every [[%s]] needs %s (%s)", path, key,
                absl::StrJoin(keys, ", "), usage));
          }
          values.push_back(v->as_string()->get());
        }
        if (table.size() != keys.size()) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "config file '%s': [[%s]] takes only %s", path, key, absl::StrJoin(keys, ", ")));
        }
        out->push_back(peer ? values[0] + "=" + values[1]
                            : values[0] + "/" + values[1] + "=" + values[2]);
      }
      continue;
    }
    if (key == "pool") {
      const toml::array* pools = node.as_array();
      if (pools == nullptr || !pools->is_array_of_tables()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "config file '%s': 'pool' must be tables: [[pool]] name = \"video\" size = \"1GiB\"",
            path));
      }
      settings.pools.emplace();
      int number = 0;
      for (const toml::node& item : *pools) {
        ++number;
        const toml::table& table = *item.as_table();
        std::string where = absl::StrFormat("config file '%s', pool %d", path, number);
        const toml::node* name = table.get("name");
        const toml::node* size = table.get("size");
        if (name == nullptr || !name->is_string() || size == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: needs name = \"...\" and size = \"64MiB\"", where));
        }
        absl::StatusOr<std::string> size_text = ScalarText(*size, where, "size");
        if (!size_text.ok()) return size_text.status();
        std::string spec = name->as_string()->get() + "=" + *size_text;
        std::vector<std::string> pool_known = {"name", "size"};
        for (const auto& [k, v] : PoolKeys()) pool_known.push_back(k);
        for (const auto& [pkey_view, pnode] : table) {
          std::string pkey(pkey_view.str());
          if (pkey == "name" || pkey == "size") continue;
          auto spec_key = PoolKeys().find(pkey);
          if (spec_key == PoolKeys().end()) {
            return absl::InvalidArgumentError(absl::StrFormat(
                "%s: unknown key '%s' (known: %s)", where, pkey, Known(pool_known)));
          }
          absl::StatusOr<std::string> value = ScalarText(pnode, where, pkey);
          if (!value.ok()) return value.status();
          spec += "," + spec_key->second + "=" + *value;
        }
        settings.pools->push_back(spec);
      }
      continue;
    }
    absl::StatusOr<std::string> value = ScalarText(node, "config file '" + path + "'", key);
    if (!value.ok()) return value.status();
    settings.scalars[key] = *value;
  }
  return settings;
}

std::string FormatConfig(const DaemonOptions& o) {
  auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  std::string out = "# effective memd configuration\n";
  out += absl::StrFormat("instance = %s\n", quoted(o.instance));
  if (!o.state_dir.empty()) out += absl::StrFormat("state_dir = %s\n", quoted(o.state_dir));
  std::vector<std::string> listen;
  for (const std::string& a : o.listen) listen.push_back(quoted(a));
  out += absl::StrFormat("listen = [%s]\n", absl::StrJoin(listen, ", "));
  out += absl::StrFormat("log_level = %s\nlog_format = %s\n", quoted(o.log_level),
                         quoted(o.log_format));
  out += absl::StrFormat("metrics_listen = %s\n", quoted(o.metrics_listen));
  out += absl::StrFormat("socket_mode = \"%04o\"\nshm_mode = \"%04o\"\n", o.socket_mode, o.shm_mode);
  if (o.socket_gid) out += absl::StrFormat("socket_group = \"%u\"\n", *o.socket_gid);
  if (o.admin_gid) out += absl::StrFormat("admin_group = \"%u\"\n", *o.admin_gid);
  if (o.run_as) out += absl::StrFormat("user = \"%u\"\ngroup = \"%u\"\n", o.run_as->uid, o.run_as->gid);
  out += absl::StrFormat("prefault = %s\n", o.reserve ? "true" : "false");
  out += absl::StrFormat("reclaim_grace = %s\n", quoted(absl::FormatDuration(o.reclaim_grace)));
  out += absl::StrFormat("max_lanes = %d\n", o.max_lanes);
  out += absl::StrFormat("max_sessions_per_uid = %d\n", o.max_sessions_per_uid);
  out += absl::StrFormat("lane_spin = %s\n", quoted(absl::FormatDuration(o.lane_spin)));
  if (!o.tls_cert.empty()) {
    out += absl::StrFormat("tls_cert = %s\ntls_key = %s\n", quoted(o.tls_cert), quoted(o.tls_key));
  }
  if (!o.tls_client_ca.empty()) out += absl::StrFormat("tls_client_ca = %s\n", quoted(o.tls_client_ca));
  if (!o.bridge.node.empty()) out += absl::StrFormat("node = %s\n", quoted(o.bridge.node));
  if (!o.bridge.transport.empty()) {
    out += absl::StrFormat("bridge_transport = %s\n", quoted(o.bridge.transport));
  }
  if (!o.bridge.link.empty()) out += absl::StrFormat("bridge_link = %s\n", quoted(o.bridge.link));
  for (const PoolConfig& p : o.pools) {
    out += "\n[[pool]]\n";
    out += absl::StrFormat("name = %s\nsize = %u  # %s\n", quoted(p.name), p.size_bytes,
                           FormatSize(p.size_bytes));
    out += absl::StrFormat("alignment = %u\nmax_alloc = %u\n", p.alignment_bytes, p.max_alloc_bytes);
    out += absl::StrFormat("owner = \"%u\"\ngroup = \"%u\"\nmode = \"%04o\"\n", p.access.owner_uid,
                           p.access.group_gid, p.access.mode);
    out += absl::StrFormat("session_bytes = %u\nsession_buffers = %u\nuid_bytes = %u\nuid_buffers = %u\n",
                           p.quotas.session_bytes, p.quotas.session_buffers, p.quotas.uid_bytes,
                           p.quotas.uid_buffers);
    out += absl::StrFormat("prefault = %s\n", p.prefault.value_or(o.reserve) ? "true" : "false");
    if (p.bridge) out += "bridge = true\n";
  }
  for (const bridge::PeerSpec& peer : o.bridge.peers) {
    out += absl::StrFormat("\n[[peer]]\nname = %s\naddress = %s\n", quoted(peer.name),
                           quoted(peer.address));
  }
  for (const bridge::BridgeSpec& b : o.bridge.bridges) {
    out += absl::StrFormat("\n[[bridge]]\npool = %s\nchannel = %s\npeer = %s\n", quoted(b.pool),
                           quoted(b.channel), quoted(b.peer));
  }
  return out;
}

}  // namespace memd
