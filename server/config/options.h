// DaemonOptions: everything memd is configured with, and the flag parser.
#ifndef MEMD_SERVER_CONFIG_OPTIONS_H_
#define MEMD_SERVER_CONFIG_OPTIONS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/bridge_config.h"
#include "config/identity.h"
#include "memd/shared/lane.h"
#include "pool/pool.h"

namespace memd {

struct DaemonOptions {
  std::vector<std::string> listen;  // addresses; default kDefaultAddress or $MEMD_LISTEN
  std::vector<PoolConfig> pools;    // default: one pool "default" of 256 MiB
  std::string instance = "memd";
  // Root of the daemon-private state (state tables, the instance lock);
  // empty: DefaultStateRoot() (startup/state_directory.h).
  std::string state_dir;
  std::string log_level = "info";
  std::string log_format = "text";  // or "json": one JSON object per line
  mode_t socket_mode = 0660;
  mode_t shm_mode = 0600;
  bool reserve = true;  // posix_fallocate pool pages at start
  // Discard pools a killed predecessor left instead of re-adopting them.
  bool fresh = false;
  // After re-adopting pools, how long clients have to reclaim their
  // references before the unclaimed ones are released.
  absl::Duration reclaim_grace = absl::Seconds(10);
  // --user/--group: privileges are dropped to these once pools and sockets exist.
  std::optional<UserIdentity> run_as;
  std::optional<gid_t> socket_gid;  // group of the Unix sockets
  std::optional<gid_t> admin_gid;   // members may run admin operations
  // TLS for TCP listeners (required for them); client certificates are
  // required when tls_client_ca is set. PEM file paths.
  std::string tls_cert, tls_key, tls_client_ca;
  // Sessions that may have a lane (a shared-memory transport and a daemon
  // thread each) at once; 0 turns lanes off.
  int max_lanes = 256;
  // Attached sessions one uid may have at once (0: no limit). Each costs the
  // daemon about 20 KiB (a stream, a holder, its buffers' records); issue 24
  // saw one uid attach 2,028 over one connection (22 -> 61 MiB). 1024 is
  // four times the connections a uid may open (ConnectionGate) with a
  // session each, far above a host's pipelines.
  int max_sessions_per_uid = 1024;
  // How long a lane thread polls for its session's next request before it
  // sleeps on the lane's futex (the most; shared/spin.h adapts below it).
  absl::Duration lane_spin = lane::kDefaultSpin;
  // host:port for Prometheus metrics over HTTP (/metrics); empty: off.
  std::string metrics_listen;
  // --node, --peer, --bridge, --bridge-transport (config/bridge_config.h).
  bridge::BridgeOptions bridge;
  // The command line it came from (a SIGHUP parses it, and the file, again).
  std::vector<std::string> args;
};

struct ParsedArgs {
  DaemonOptions options;
  std::string config_path;          // --config
  bool check_config = false;        // --check-config
  std::optional<std::string> help;  // --help, --version: print this and exit 0
};

// Parses a command line (args[0] is the program) and the --config file it
// names into options; INVALID_ARGUMENT naming the flag or key, the value and
// what is allowed. Does not print.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args);

// Validates names, sizes, alignments, addresses and duplicates.
absl::Status ValidateOptions(const DaemonOptions& options);

// Parses argv into `options`. Returns nullopt to go on, or the exit code to
// return now: 0 after --help, 2 after a usage error (message on stderr).
std::optional<int> ParseFlags(int argc, char** argv, DaemonOptions* options);

}  // namespace memd

#endif  // MEMD_SERVER_CONFIG_OPTIONS_H_
