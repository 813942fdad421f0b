#include "config/options.h"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "config/config_file.h"
#include "config/identity.h"
#include "memd/shared/address.h"
#include "memd/shared/handle.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"
#include "memd/version.h"

namespace memd {
namespace {

constexpr uint64_t kDefaultPoolBytes = 256ull << 20;
constexpr int kMaxLanesLimit = 4096;  // a thread each
constexpr int kMaxSessionsPerUidLimit = 1 << 20;  // what a count flag accepts

absl::StatusOr<mode_t> ParseMode(const std::string& text, const char* what) {
  char* end = nullptr;
  unsigned long mode = text.empty() ? 01000 : std::strtoul(text.c_str(), &end, 8);
  if (text.empty() || *end != '\0' || mode > 0777) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '%s' must be an octal mode from 0 to 0777", what, text));
  }
  return static_cast<mode_t>(mode);
}

// "NAME=SIZE[,key=value...]" -> PoolConfig. Alignment, max_alloc and the
// access defaults are filled by the caller; keys given here override them.
absl::StatusOr<PoolConfig> ParsePoolFlag(const std::string& text, const PoolConfig& defaults) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  size_t eq = parts[0].find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--pool '%s' must be NAME=SIZE[,key=value...], e.g. video=1GiB,mode=0660,group=video",
        text));
  }
  PoolConfig pool = defaults;
  pool.name = parts[0].substr(0, eq);
  absl::StatusOr<uint64_t> size = ParseSize(parts[0].substr(eq + 1));
  if (!size.ok()) return size.status();
  pool.size_bytes = *size;
  for (size_t i = 1; i < parts.size(); ++i) {
    size_t kv = parts[i].find('=');
    std::string key = parts[i].substr(0, kv);
    std::string value = kv == std::string::npos ? "" : parts[i].substr(kv + 1);
    std::string flag = absl::StrFormat("--pool %s %s", pool.name, key);
    auto size_value = [&](uint64_t* out) -> absl::Status {
      absl::StatusOr<uint64_t> v = ParseSize(value);
      if (!v.ok()) return v.status();
      *out = *v;
      return absl::OkStatus();
    };
    absl::Status status;
    if (key == "mode") {
      absl::StatusOr<mode_t> mode = ParseMode(value, flag.c_str());
      status = mode.status();
      if (mode.ok()) pool.access.mode = *mode;
    } else if (key == "owner") {
      absl::StatusOr<UserIdentity> user = ResolveUser(flag, value);
      status = user.status();
      if (user.ok()) pool.access.owner_uid = user->uid;
    } else if (key == "group") {
      absl::StatusOr<gid_t> group = ResolveGroup(flag, value);
      status = group.status();
      if (group.ok()) pool.access.group_gid = *group;
    } else if (key == "alignment") {
      status = size_value(&pool.alignment_bytes);
    } else if (key == "max-alloc") {
      status = size_value(&pool.max_alloc_bytes);
    } else if (key == "prefault") {
      if (value != "true" && value != "false") {
        status = absl::InvalidArgumentError(
            absl::StrFormat("%s '%s' must be true or false", flag, value));
      }
      pool.prefault = value == "true";
    } else if (key == "bridge") {
      if (value != "true" && value != "false") {
        status = absl::InvalidArgumentError(
            absl::StrFormat("%s '%s' must be true or false", flag, value));
      }
      pool.bridge = value == "true";
    } else if (key == "session-bytes") {
      status = size_value(&pool.quotas.session_bytes);
    } else if (key == "session-buffers") {
      status = size_value(&pool.quotas.session_buffers);
    } else if (key == "uid-bytes") {
      status = size_value(&pool.quotas.uid_bytes);
    } else if (key == "uid-buffers") {
      status = size_value(&pool.quotas.uid_buffers);
    } else {
      status = absl::InvalidArgumentError(absl::StrFormat(
          "--pool '%s': unknown key '%s'; known: alignment, max-alloc, mode, owner, group, "
          "session-bytes, session-buffers, uid-bytes, uid-buffers, prefault, bridge", text, key));
    }
    if (!status.ok()) return status;
  }
  return pool;
}

}  // namespace

absl::Status ValidateOptions(const DaemonOptions& options) {
  if (absl::Status s = ValidateName("instance name", options.instance); !s.ok()) return s;
  if (options.pools.empty()) return absl::InvalidArgumentError("at least one --pool is needed");
  if (options.pools.size() > kMaxPools) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%u pools configured; the limit is %u", options.pools.size(), kMaxPools));
  }
  absl::flat_hash_set<std::string> names;
  for (const PoolConfig& pool : options.pools) {
    if (absl::Status s = ValidatePoolConfig(pool); !s.ok()) return s;
    if (!names.insert(pool.name).second) {
      return absl::InvalidArgumentError(absl::StrFormat("pool '%s' is configured twice", pool.name));
    }
  }
  if (options.listen.empty()) return absl::InvalidArgumentError("at least one --listen is needed");
  for (const std::string& address : options.listen) {
    absl::StatusOr<Address> parsed = ParseAddress(address);
    if (!parsed.ok()) return parsed.status();
    if (parsed->kind != Address::Kind::kUnix && (options.tls_cert.empty() || options.tls_key.empty())) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--listen %s is a TCP address: TCP requires TLS (--tls-cert and --tls-key)", address));
    }
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!options.tls_client_ca.empty() && options.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  bool tcp = std::any_of(options.listen.begin(), options.listen.end(), [](const std::string& a) {
    absl::StatusOr<Address> parsed = ParseAddress(a);
    return parsed.ok() && parsed->kind != Address::Kind::kUnix;
  });
  return bridge::ValidateBridgeOptions(options.bridge, options.pools,
                                       tcp && !options.tls_client_ca.empty());
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  DaemonOptions* options = &parsed.options;
  CLI::App app{"memd: shared-memory buffer pools for multi-process media pipelines"};
  std::vector<std::string> pool_flags, peer_flags, bridge_flags;
  std::string alignment_text = "64", max_alloc_text = std::to_string(INT_MAX);
  std::string socket_mode_text = "0660", shm_mode_text = "0600";
  bool no_reserve = false;
  std::string grace_text = "10s";
  std::string max_lanes_text = std::to_string(options->max_lanes);
  std::string max_sessions_text = std::to_string(options->max_sessions_per_uid);
  std::string lane_spin_text = absl::FormatDuration(options->lane_spin);
  std::string user_text, group_text, socket_group_text, admin_group_text;
  app.set_version_flag("--version", std::string("memd ") + MEMD_VERSION_STRING,
                       "Print memd's version and exit");
  app.add_option("--listen", options->listen,
                 "Address to serve on, repeatable: unix:///path or host:port "
                 "(default $MEMD_LISTEN, else unix:///run/memd/memd.sock)");
  app.add_option("--pool", pool_flags,
                 "Pool as NAME=SIZE[,key=value...], repeatable; sizes like 64MiB, 1GiB or "
                 "bytes (default: default=256MiB). Keys: mode=0660, owner=USER, group=GROUP "
                 "(the segment's access, enforced for attaching clients too), session-bytes, "
                 "session-buffers, uid-bytes, uid-buffers (quotas; 0 = none; session-buffers "
                 "and uid-buffers default to " + std::to_string(kDefaultSessionBuffers) + " and " +
                 std::to_string(kDefaultUidBuffers) + ")");
  app.add_option("--instance", options->instance,
                 "Instance name; namespaces the private state so several daemons coexist")
      ->capture_default_str();
  app.add_option("--state-dir", options->state_dir,
                 "Directory of the daemon's private state (state tables, instance lock), one "
                 "subdirectory per instance; default $RUNTIME_DIRECTORY, /run/memd/state as "
                 "root, else $XDG_RUNTIME_DIR/memd, else /tmp/memd-state-<uid>");
  app.add_option("--alignment", alignment_text,
                 "Alignment in bytes of every block of every pool (power of two, 8..1MiB)")
      ->capture_default_str();
  app.add_option("--max-alloc", max_alloc_text,
                 "Largest single allocation in bytes (default INT_MAX, as libavutil)")
      ->capture_default_str();
  app.add_option("--log-level", options->log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", options->log_format, "text, or json (one object per line)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--socket-mode", socket_mode_text, "Octal mode of Unix sockets")->capture_default_str();
  app.add_option("--shm-mode", shm_mode_text, "Octal mode of the pools (who may attach: owner, group, others)")
      ->capture_default_str();
  app.add_flag("--no-reserve", no_reserve,
               "Do not allocate pool pages at start (faster start; memory the machine lacks then "
               "shows up later, so keep reserve on in production)");
  app.add_option("--user", user_text,
                 "Drop to this user (name or uid) once the pools and sockets exist; pools, state "
                 "tables and sockets are given to it");
  app.add_option("--group", group_text,
                 "Drop to this group (name or gid); default: the --user's primary group");
  app.add_option("--socket-group", socket_group_text,
                 "Group of the Unix sockets (name or gid); default: the daemon's group");
  app.add_option("--admin-group", admin_group_text,
                 "Members of this group (name or gid) may run admin operations, besides root "
                 "and the daemon's own uid");
  app.add_option("--node", options->bridge.node,
                 "This daemon's node name for bridges (default: the host name); peers' "
                 "certificates must carry their node name as common name");
  app.add_option("--peer", peer_flags,
                 "A peer daemon as NAME=HOST:PORT (its TLS listener), repeatable; needs mutual "
                 "TLS (--tls-client-ca)");
  app.add_option("--bridge", bridge_flags,
                 "Bridge channel CHANNEL of POOL to the same channel on a peer, as "
                 "POOL/CHANNEL=PEER, repeatable; the pool needs bridge=true");
  app.add_option("--bridge-transport", options->bridge.transport,
                 "How bridged bytes move: ucx (the default when built with UCX) or grpc");
  app.add_option("--bridge-link", options->bridge.link,
                 "encrypted (the default: UCX bytes sealed with AES-256-GCM) or trusted (UCX "
                 "bytes in clear, for a network only the peers reach; both daemons must say "
                 "so); grpc is always TLS");
  app.add_option("--tls-cert", options->tls_cert, "PEM certificate chain for TCP listeners");
  app.add_option("--tls-key", options->tls_key, "PEM private key for TCP listeners");
  app.add_option("--tls-client-ca", options->tls_client_ca,
                 "PEM CA bundle: TCP clients must present a certificate it signed");
  app.add_option("--metrics-listen", options->metrics_listen,
                 "host:port to serve Prometheus metrics on (HTTP, /metrics); off by default");
  app.add_flag("--fresh", options->fresh,
               "Discard the pools a killed predecessor of this instance left (and every buffer "
               "in them) instead of re-adopting them");
  app.add_option("--reclaim-grace", grace_text,
                 "After re-adopting pools, how long clients have to reclaim their references "
                 "before the rest are released (e.g. 10s, 500ms, 2m)")
      ->capture_default_str();
  app.add_option("--max-lanes", max_lanes_text,
                 "Sessions that may have a lane at once (a shared-memory transport that spares "
                 "a gRPC message per request, and a daemon thread each); 0 turns lanes off")
      ->capture_default_str();
  app.add_option("--max-sessions-per-uid", max_sessions_text,
                 "Attached sessions one uid may have at once (a stream and its records each); "
                 "0: no limit")
      ->capture_default_str();
  app.add_option("--lane-spin", lane_spin_text,
                 "How long a lane thread polls for a session's next request before it sleeps "
                 "(adaptive, at most this; 0 never polls; e.g. 50us)")
      ->capture_default_str();
  app.add_option("--config", parsed.config_path,
                 "TOML configuration file (every key: deploy/memd.toml); flags override it");
  app.add_flag("--check-config", parsed.check_config,
               "Validate the configuration, print the effective settings and exit");

  // The file first, into the same variables, so that flags given override it.
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) parsed.config_path = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) parsed.config_path = args[i].substr(9);
  }
  if (!parsed.config_path.empty()) {
    absl::StatusOr<FileSettings> file = LoadConfigFile(parsed.config_path);
    if (!file.ok()) return file.status();
    std::map<std::string, std::string*> targets = {
        {"instance", &options->instance},       {"log_level", &options->log_level},
        {"state_dir", &options->state_dir},
        {"log_format", &options->log_format},   {"metrics_listen", &options->metrics_listen},
        {"socket_mode", &socket_mode_text},     {"shm_mode", &shm_mode_text},
        {"socket_group", &socket_group_text},   {"admin_group", &admin_group_text},
        {"user", &user_text},                   {"group", &group_text},
        {"alignment", &alignment_text},         {"max_alloc", &max_alloc_text},
        {"reclaim_grace", &grace_text},         {"tls_cert", &options->tls_cert},
        {"max_lanes", &max_lanes_text},         {"lane_spin", &lane_spin_text},
        {"max_sessions_per_uid", &max_sessions_text},
        {"tls_key", &options->tls_key},         {"tls_client_ca", &options->tls_client_ca},
        {"node", &options->bridge.node},        {"bridge_transport", &options->bridge.transport},
        {"bridge_link", &options->bridge.link}};
    for (const auto& [key, value] : file->scalars) {
      if (key == "prefault") {
        if (value != "true" && value != "false") {
          return absl::InvalidArgumentError(absl::StrFormat(
              "config file '%s': prefault must be true or false", parsed.config_path));
        }
        no_reserve = value == "false";
      } else {
        *targets.at(key) = value;
      }
    }
    if (file->listen) options->listen = *file->listen;
    if (file->pools) pool_flags = *file->pools;
    if (file->peers) peer_flags = *file->peers;
    if (file->bridges) bridge_flags = *file->bridges;
  }
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    parsed.help = app.help();
    return parsed;
  } catch (const CLI::CallForVersion& e) {
    parsed.help = std::string("memd ") + MEMD_VERSION_STRING + "\n";
    return parsed;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s\nRun 'memd --help' for the flags.", e.what()));
  }

  absl::StatusOr<uint64_t> alignment = ParseSize(alignment_text);
  if (!alignment.ok()) return alignment.status();
  absl::StatusOr<uint64_t> max_alloc = ParseSize(max_alloc_text);
  if (!max_alloc.ok()) return max_alloc.status();
  absl::StatusOr<mode_t> socket_mode = ParseMode(socket_mode_text, "--socket-mode");
  if (!socket_mode.ok()) return socket_mode.status();
  absl::StatusOr<mode_t> shm_mode = ParseMode(shm_mode_text, "--shm-mode");
  if (!shm_mode.ok()) return shm_mode.status();
  options->socket_mode = *socket_mode;
  options->shm_mode = *shm_mode;
  options->reserve = !no_reserve;
  if (!absl::ParseDuration(grace_text, &options->reclaim_grace) ||
      options->reclaim_grace < absl::ZeroDuration() || options->reclaim_grace > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--reclaim-grace '%s' must be a duration from 0s to 24h, e.g. 10s or 500ms", grace_text));
  }
  if (!absl::SimpleAtoi(max_lanes_text, &options->max_lanes) || options->max_lanes < 0 ||
      options->max_lanes > kMaxLanesLimit) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--max-lanes '%s' must be a count from 0 to %d", max_lanes_text, kMaxLanesLimit));
  }
  if (!absl::SimpleAtoi(max_sessions_text, &options->max_sessions_per_uid) ||
      options->max_sessions_per_uid < 0 || options->max_sessions_per_uid > kMaxSessionsPerUidLimit) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--max-sessions-per-uid '%s' must be a count from 0 to %d", max_sessions_text,
        kMaxSessionsPerUidLimit));
  }
  if (!absl::ParseDuration(lane_spin_text, &options->lane_spin) ||
      options->lane_spin < absl::ZeroDuration() || options->lane_spin > lane::kMaxSpin) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--lane-spin '%s' must be a duration from 0s to %s, e.g. 50us", lane_spin_text,
        absl::FormatDuration(lane::kMaxSpin)));
  }

  if (!user_text.empty()) {
    absl::StatusOr<UserIdentity> user = ResolveUser("--user", user_text);
    if (!user.ok()) return user.status();
    options->run_as = *user;
  }
  if (!group_text.empty()) {
    absl::StatusOr<gid_t> group = ResolveGroup("--group", group_text);
    if (!group.ok()) return group.status();
    if (!options->run_as) options->run_as = UserIdentity{::geteuid(), *group};
    options->run_as->gid = *group;
  }
  if (!socket_group_text.empty()) {
    absl::StatusOr<gid_t> group = ResolveGroup("--socket-group", socket_group_text);
    if (!group.ok()) return group.status();
    options->socket_gid = *group;
  }
  if (!admin_group_text.empty()) {
    absl::StatusOr<gid_t> group = ResolveGroup("--admin-group", admin_group_text);
    if (!group.ok()) return group.status();
    options->admin_gid = *group;
  }
  // Pools belong to the user the daemon runs as, in its group, --shm-mode,
  // with the daemon-wide alignment and max_alloc unless a pool sets its own.
  PoolConfig pool_defaults;
  pool_defaults.alignment_bytes = *alignment;
  pool_defaults.max_alloc_bytes = *max_alloc;
  pool_defaults.quotas.session_buffers = kDefaultSessionBuffers;
  pool_defaults.quotas.uid_buffers = kDefaultUidBuffers;
  pool_defaults.access = PoolAccess{options->run_as ? options->run_as->uid : ::geteuid(),
                                    options->run_as ? options->run_as->gid : ::getegid(),
                                    options->shm_mode};

  if (pool_flags.empty()) pool_flags.push_back(absl::StrFormat("%s=%u", kDefaultPool, kDefaultPoolBytes));
  for (const std::string& flag : pool_flags) {
    absl::StatusOr<PoolConfig> pool = ParsePoolFlag(flag, pool_defaults);
    if (!pool.ok()) return pool.status();
    options->pools.push_back(*pool);
  }
  for (const std::string& flag : peer_flags) {
    absl::StatusOr<bridge::PeerSpec> peer = bridge::ParsePeerFlag(flag);
    if (!peer.ok()) return peer.status();
    options->bridge.peers.push_back(*peer);
  }
  for (const std::string& flag : bridge_flags) {
    absl::StatusOr<bridge::BridgeSpec> spec = bridge::ParseBridgeFlag(flag);
    if (!spec.ok()) return spec.status();
    options->bridge.bridges.push_back(*spec);
  }
  if (options->listen.empty()) {
    const char* env = std::getenv("MEMD_LISTEN");
    options->listen.push_back(env != nullptr && *env != '\0' ? env : std::string(kDefaultAddress));
  }
  if (absl::Status s = ValidateOptions(*options); !s.ok()) return s;
  return parsed;
}

std::optional<int> ParseFlags(int argc, char** argv, DaemonOptions* options) {
  std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args);
  if (!parsed.ok()) {
    std::cerr << "memd: " << parsed.status().message() << "\n";
    return 2;
  }
  if (parsed->help) {
    std::cout << *parsed->help;
    return 0;
  }
  if (parsed->check_config) {
    std::cout << FormatConfig(parsed->options);
    return 0;
  }
  *options = std::move(parsed->options);
  options->args = std::move(args);
  return std::nullopt;
}

}  // namespace memd
