#include "startup/pool_startup.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"
#include "shm/memory_capacity.h"
#include "startup/pool_memory.h"
#include "startup/state_directory.h"

namespace memd {
namespace {

constexpr char kStateSuffix[] = ".state";

uint64_t LiveBuffers(const StateTable& state) {
  uint64_t live = 0;
  for (const SlotImage& image : state.Load()) live += image.state == SlotImage::State::kLive;
  return live;
}

// What differs between a predecessor's pool and its configuration now; empty
// when it may be adopted.
std::vector<std::string> Differences(const StateIdentity& was, const PoolConfig& config,
                                     uint32_t index) {
  std::vector<std::string> diffs;
  if (was.size_bytes != config.size_bytes) {
    diffs.push_back(absl::StrFormat("size was %s (%u bytes), now %s (%u bytes)",
                                    FormatSize(was.size_bytes), was.size_bytes,
                                    FormatSize(config.size_bytes), config.size_bytes));
  }
  if (was.alignment_bytes != config.alignment_bytes) {
    diffs.push_back(absl::StrFormat("alignment was %u, now %u", was.alignment_bytes,
                                    config.alignment_bytes));
  }
  if (was.pool_index != index) {
    diffs.push_back(absl::StrFormat(
        "it was pool number %u, now %u (handles carry the pool number: keep the --pool order)",
        was.pool_index, index));
  }
  return diffs;
}

// State tables of this instance for pools that are not configured any more.
absl::Status SweepUnconfigured(const std::vector<PoolConfig>& configs,
                               const PoolStartupOptions& options) {
  absl::flat_hash_set<std::string> configured;
  for (const PoolConfig& c : configs) configured.insert(c.name);
  std::vector<std::string> leftovers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options.state_dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, kStateSuffix)) continue;
    std::string pool = file.substr(0, file.size() - (sizeof(kStateSuffix) - 1));
    if (!configured.contains(pool)) leftovers.push_back(pool);
  }
  for (const std::string& pool : leftovers) {
    std::string path = StateFilePath(options.state_dir, pool);
    if (!options.fresh) {
      absl::StatusOr<std::unique_ptr<StateTable>> state = StateTable::Open(path);
      if (state.ok()) {
        if (uint64_t live = LiveBuffers(**state); live > 0) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "pool '%s' of the previous daemon of instance '%s' still holds %u live buffers but "
              "is not configured now; configure it again (--pool %s=%s) or start with --fresh "
              "to discard them",
              pool, options.instance, live, pool, FormatSize((*state)->identity().size_bytes)));
        }
      }
    }
    spdlog::warn("removing the state of pool '{}', left by a previous daemon and not configured "
                 "now", pool);
    StateTable::RemoveIfExists(path);
  }
  return absl::OkStatus();
}

std::string Label(const PoolStartupOptions& options, const PoolConfig& config) {
  return PoolObjectName(options.instance, config.name).substr(1);  // "memd.<instance>.<pool>"
}

// Tries to re-adopt one pool from its state table. nullopt (with leftovers
// removed) when there is nothing to adopt and the pool must be created. An
// adopted pool with live buffers comes back pending (segment null): its
// memory is with the clients (startup/pool_memory.h).
absl::StatusOr<std::optional<OpenedPool>> TryAdopt(const PoolConfig& config, uint32_t index,
                                                   const PoolStartupOptions& options) {
  std::string state_path = StateFilePath(options.state_dir, config.name);
  if (options.fresh) {
    if (StateTable::RemoveIfExists(state_path)) {
      spdlog::warn("--fresh: discarded pool '{}' left by a previous daemon", config.name);
    }
    return std::nullopt;
  }
  absl::StatusOr<std::unique_ptr<StateTable>> state = StateTable::Open(state_path);
  if (absl::IsFailedPrecondition(state.status()) || absl::IsPermissionDenied(state.status())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' cannot be re-adopted: %s. Start the version that left it to keep its "
        "buffers, or start with --fresh to discard them",
        config.name, state.status().message()));
  }
  if (!state.ok()) {
    if (!absl::IsNotFound(state.status())) {
      spdlog::warn("replacing pool '{}': {}", config.name, std::string(state.status().message()));
    }
    StateTable::RemoveIfExists(state_path);
    return std::nullopt;
  }
  std::vector<std::string> diffs = Differences((*state)->identity(), config, index);
  if (!diffs.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' left by the previous daemon of instance '%s' (%u live buffers) does not match "
        "its configuration: %s. Start with the previous configuration to keep its buffers, or "
        "with --fresh to discard them",
        config.name, options.instance, LiveBuffers(**state), absl::StrJoin(diffs, "; ")));
  }
  if (LiveBuffers(**state) == 0) {
    // Nothing to keep: new memory at once rather than waiting for a client.
    StateTable::RemoveIfExists(state_path);
    return std::nullopt;
  }
  absl::StatusOr<std::unique_ptr<Pool>> pool =
      Pool::Adopt(config, index, nullptr, Label(options, config), std::move(*state));
  if (!pool.ok()) {
    return absl::Status(pool.status().code(),
                        absl::StrFormat("cannot re-adopt pool '%s': %s. Start with --fresh to "
                                        "discard it", config.name, pool.status().message()));
  }
  return OpenedPool{nullptr, std::move(*pool), true};
}

absl::StatusOr<OpenedPool> Create(const PoolConfig& config, uint32_t index,
                                  const PoolStartupOptions& options) {
  std::string state_path = StateFilePath(options.state_dir, config.name);
  absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Create(
      SegmentOptions{.label = Label(options, config),
                     .size_bytes = config.size_bytes,
                     .reserve = config.prefault.value_or(options.reserve)});
  if (!segment.ok()) return segment.status();
  // The state table is marked ready last: a crash in between leaves an
  // incomplete table, which the next start replaces.
  absl::StatusOr<std::unique_ptr<StateTable>> state = StateTable::Create(
      state_path, StateIdentity{index, config.size_bytes, config.alignment_bytes, NewSegmentId(),
                                (*segment)->identity()});
  if (!state.ok()) return state.status();
  (*state)->MarkReady();
  auto pool = std::make_unique<Pool>(config, index, (*segment)->base(), Label(options, config),
                                     std::move(*state));
  return OpenedPool{std::move(*segment), std::move(pool), false};
}

}  // namespace

absl::StatusOr<std::vector<OpenedPool>> OpenPools(const std::vector<PoolConfig>& given,
                                                  const PoolStartupOptions& options) {
  std::vector<PoolConfig> configs = given;  // with prefault decided
  for (PoolConfig& c : configs) c.prefault = c.prefault.value_or(options.reserve);
  if (options.sweep_unconfigured) {
    if (absl::Status s = SweepUnconfigured(configs, options); !s.ok()) return s;
  }
  std::vector<std::optional<OpenedPool>> opened;
  uint64_t needed = 0;
  for (uint32_t i = 0; i < configs.size(); ++i) {
    absl::StatusOr<std::optional<OpenedPool>> adopted =
        TryAdopt(configs[i], options.first_index + i, options);
    if (!adopted.ok()) return adopted.status();  // adopted ones stay as they were
    if (!adopted->has_value() && configs[i].prefault.value_or(options.reserve)) {
      needed += configs[i].size_bytes;
    }
    opened.push_back(std::move(*adopted));
  }
  if (needed > 0) {
    if (absl::Status s = CheckMemoryCapacity(needed); !s.ok()) return s;
  }
  std::vector<OpenedPool> result;
  for (uint32_t i = 0; i < configs.size(); ++i) {
    if (!opened[i].has_value()) {
      absl::StatusOr<OpenedPool> created = Create(configs[i], options.first_index + i, options);
      if (!created.ok()) {
        for (OpenedPool& p : result) {
          if (!p.adopted) p.pool->RemoveState();
        }
        return created.status();
      }
      opened[i] = std::move(*created);
    }
    result.push_back(std::move(*opened[i]));
  }
  return result;
}

}  // namespace memd
