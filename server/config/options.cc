#include "config/options.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "memd/shared/address.h"
#include "memd/shared/handle.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

constexpr uint64_t kDefaultPoolBytes = 256ull << 20;

absl::StatusOr<mode_t> ParseMode(const std::string& text, const char* what) {
  char* end = nullptr;
  unsigned long mode = text.empty() ? 01000 : std::strtoul(text.c_str(), &end, 8);
  if (text.empty() || *end != '\0' || mode > 0777) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '%s' must be an octal mode from 0 to 0777", what, text));
  }
  return static_cast<mode_t>(mode);
}

// "NAME=SIZE" -> PoolConfig (alignment and max_alloc filled by the caller).
absl::StatusOr<PoolConfig> ParsePoolFlag(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--pool '%s' must be NAME=SIZE, e.g. video=1GiB", text));
  }
  PoolConfig pool;
  pool.name = text.substr(0, eq);
  absl::StatusOr<uint64_t> size = ParseSize(text.substr(eq + 1));
  if (!size.ok()) return size.status();
  pool.size_bytes = *size;
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
    if (absl::StatusOr<Address> parsed = ParseAddress(address); !parsed.ok()) return parsed.status();
  }
  return absl::OkStatus();
}

std::optional<int> ParseFlags(int argc, char** argv, DaemonOptions* options) {
  CLI::App app{"memd: shared-memory buffer pools for multi-process media pipelines"};
  std::vector<std::string> pool_flags;
  std::string alignment_text = "64", max_alloc_text = std::to_string(INT_MAX);
  std::string socket_mode_text = "0660", shm_mode_text = "0600";
  bool no_reserve = false;
  std::string grace_text = "10s";
  app.add_option("--listen", options->listen,
                 "Address to serve on, repeatable: unix:///path or host:port "
                 "(default $MEMD_LISTEN, else unix:///run/memd/memd.sock)");
  app.add_option("--pool", pool_flags,
                 "Pool as NAME=SIZE, repeatable; sizes like 64MiB, 1GiB or bytes "
                 "(default: default=256MiB)");
  app.add_option("--instance", options->instance,
                 "Instance name; namespaces shared-memory objects so several daemons coexist")
      ->capture_default_str();
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
  app.add_option("--socket-mode", socket_mode_text, "Octal mode of Unix sockets")->capture_default_str();
  app.add_option("--shm-mode", shm_mode_text, "Octal mode of the pools' shared-memory objects")
      ->capture_default_str();
  app.add_flag("--no-reserve", no_reserve,
               "Do not allocate pool pages at start (faster start; a full /dev/shm then shows "
               "up later as failed allocations' pages, so keep reserve on in production)");
  app.add_flag("--fresh", options->fresh,
               "Discard the pools a killed predecessor of this instance left (and every buffer "
               "in them) instead of re-adopting them");
  app.add_option("--reclaim-grace", grace_text,
                 "After re-adopting pools, how long clients have to reclaim their references "
                 "before the rest are released (e.g. 10s, 500ms, 2m)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "memd: " << e.what() << "\nRun 'memd --help' for the flags.\n";
    return 2;
  }

  auto usage_error = [](const absl::Status& status) {
    std::cerr << "memd: " << status.message() << "\n";
    return 2;
  };
  absl::StatusOr<uint64_t> alignment = ParseSize(alignment_text);
  if (!alignment.ok()) return usage_error(alignment.status());
  absl::StatusOr<uint64_t> max_alloc = ParseSize(max_alloc_text);
  if (!max_alloc.ok()) return usage_error(max_alloc.status());
  absl::StatusOr<mode_t> socket_mode = ParseMode(socket_mode_text, "--socket-mode");
  if (!socket_mode.ok()) return usage_error(socket_mode.status());
  absl::StatusOr<mode_t> shm_mode = ParseMode(shm_mode_text, "--shm-mode");
  if (!shm_mode.ok()) return usage_error(shm_mode.status());
  options->socket_mode = *socket_mode;
  options->shm_mode = *shm_mode;
  options->reserve = !no_reserve;
  if (!absl::ParseDuration(grace_text, &options->reclaim_grace) ||
      options->reclaim_grace < absl::ZeroDuration() || options->reclaim_grace > absl::Hours(24)) {
    return usage_error(absl::InvalidArgumentError(absl::StrFormat(
        "--reclaim-grace '%s' must be a duration from 0s to 24h, e.g. 10s or 500ms", grace_text)));
  }

  if (pool_flags.empty()) pool_flags.push_back(absl::StrFormat("%s=%u", kDefaultPool, kDefaultPoolBytes));
  for (const std::string& flag : pool_flags) {
    absl::StatusOr<PoolConfig> pool = ParsePoolFlag(flag);
    if (!pool.ok()) return usage_error(pool.status());
    pool->alignment_bytes = *alignment;
    pool->max_alloc_bytes = *max_alloc;
    options->pools.push_back(*pool);
  }
  if (options->listen.empty()) {
    const char* env = std::getenv("MEMD_LISTEN");
    options->listen.push_back(env != nullptr && *env != '\0' ? env : std::string(kDefaultAddress));
  }
  if (absl::Status s = ValidateOptions(*options); !s.ok()) return usage_error(s);
  return std::nullopt;
}

}  // namespace memd
