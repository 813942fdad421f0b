// Daemon::Reload: SIGHUP re-reads the configuration. What is safe to change
// while clients hold buffers is applied; the rest is named in the log as
// needing a restart (pool sizes, alignments and access, addresses, users,
// TLS, metrics address). Main thread only, like every Daemon method.
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "daemon/daemon.h"
#include "logging/logging.h"
#include "memd/shared/size.h"
#include "startup/pool_startup.h"

namespace memd {
namespace {

bool SameQuotas(const PoolQuotas& a, const PoolQuotas& b) {
  return a.session_bytes == b.session_bytes && a.session_buffers == b.session_buffers &&
         a.uid_bytes == b.uid_bytes && a.uid_buffers == b.uid_buffers;
}

}  // namespace

void Daemon::Reload() {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(options_.args);
  if (!parsed.ok()) {
    spdlog::error("SIGHUP: configuration not reloaded, nothing changed: {}",
                  std::string(parsed.status().message()));
    return;
  }
  const DaemonOptions& next = parsed->options;
  std::vector<std::string> applied, restart;

  if (next.log_level != log_level_ || next.log_format != log_format_) {
    if (absl::Status s = ConfigureLogging(next.log_level, next.log_format); s.ok()) {
      applied.push_back(absl::StrFormat("log %s/%s", next.log_level, next.log_format));
      log_level_ = next.log_level;
      log_format_ = next.log_format;
    }
  }
  std::vector<PoolConfig> added;
  for (const PoolConfig& config : next.pools) {
    Pool* pool = pools_.Find(config.name);
    if (pool == nullptr) {
      added.push_back(config);
      continue;
    }
    if (config.size_bytes != pool->size_bytes() ||
        config.alignment_bytes != pool->alignment_bytes()) {
      restart.push_back(absl::StrFormat("pool '%s' size or alignment", config.name));
    }
    const PoolAccess& access = pool->access();
    if (config.access.owner_uid != access.owner_uid || config.access.group_gid != access.group_gid ||
        config.access.mode != access.mode) {
      restart.push_back(absl::StrFormat("pool '%s' owner, group or mode", config.name));
    }
    if (config.max_alloc_bytes != pool->max_alloc_bytes()) {
      pool->SetMaxAlloc(config.max_alloc_bytes);
      applied.push_back(absl::StrFormat("pool '%s' max_alloc %s", config.name,
                                        FormatSize(config.max_alloc_bytes)));
    }
    if (!SameQuotas(config.quotas, pool->quotas())) {
      pool->SetQuotas(config.quotas);
      applied.push_back(absl::StrFormat("pool '%s' quotas", config.name));
    }
  }
  for (Pool* pool : pools_.pools()) {
    bool kept = false;
    for (const PoolConfig& config : next.pools) kept |= config.name == pool->name();
    if (!kept) restart.push_back(absl::StrFormat("removing pool '%s'", pool->name()));
  }
  if (!added.empty()) {
    absl::StatusOr<std::vector<OpenedPool>> opened = OpenPools(
        added, PoolStartupOptions{.instance = options_.instance,
                                  .state_dir = state_dir_,
                                  .reserve = options_.reserve,
                                  .first_index = static_cast<uint32_t>(pools_.size()),
                                  .sweep_unconfigured = false});
    if (!opened.ok()) {
      restart.push_back(absl::StrFormat("new pools (%s)", std::string(opened.status().message())));
    } else {
      for (OpenedPool& p : *opened) {
        applied.push_back(absl::StrFormat("new pool '%s' of %s", p.pool->name(),
                                          FormatSize(p.pool->size_bytes())));
        if (options_.run_as) {
          if (absl::Status s = p.pool->ChownState(options_.run_as->uid, options_.run_as->gid);
              !s.ok()) {
            spdlog::warn("{}", std::string(s.message()));
          }
        }
        adopted_.push_back(p.adopted);
        bool reserve = p.pool->prefaulted();
        pools_.Add(std::move(p.pool));
        memory_.Add(pools_.pools().back(), std::move(p.segment), reserve);
      }
    }
  }
  if (next.listen != options_.listen) restart.push_back("listen addresses");
  if (next.instance != options_.instance) restart.push_back("instance");
  if (next.socket_mode != options_.socket_mode || next.socket_gid != options_.socket_gid) {
    restart.push_back("socket mode or group");
  }
  if (next.admin_gid != options_.admin_gid) restart.push_back("admin group");
  if (next.run_as.has_value() != options_.run_as.has_value() ||
      (next.run_as && (next.run_as->uid != options_.run_as->uid ||
                       next.run_as->gid != options_.run_as->gid))) {
    restart.push_back("user or group");
  }
  if (next.tls_cert != options_.tls_cert || next.tls_key != options_.tls_key ||
      next.tls_client_ca != options_.tls_client_ca) {
    restart.push_back("TLS files");
  }
  if (next.metrics_listen != options_.metrics_listen) restart.push_back("metrics address");
  if (next.reclaim_grace != options_.reclaim_grace) restart.push_back("reclaim grace");
  auto bridges = [](const DaemonOptions& o) {
    std::vector<std::string> all = {o.bridge.node, o.bridge.transport, o.bridge.link};
    for (const auto& p : o.bridge.peers) all.push_back(p.name + "=" + p.address);
    for (const auto& b : o.bridge.bridges) all.push_back(b.name() + "=" + b.peer);
    for (const auto& p : o.pools) all.push_back(p.name + (p.bridge ? "+" : "-"));
    return all;
  };
  if (bridges(next) != bridges(options_)) {
    restart.push_back("node, peers, bridges or bridge marks (memctl bridge add/remove change "
                      "bridges while serving)");
  }

  std::string summary = absl::StrFormat(
      "SIGHUP: configuration reloaded; applied: %s; needs a restart, not applied: %s",
      applied.empty() ? "nothing" : absl::StrJoin(applied, ", "),
      restart.empty() ? "nothing" : absl::StrJoin(restart, ", "));
  if (restart.empty()) {
    spdlog::info("{}", summary);
  } else {
    spdlog::warn("{}", summary);
  }
}

}  // namespace memd
