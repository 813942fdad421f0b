#include "startup/pool_startup.h"

#include <sys/mman.h>

#include <filesystem>
#include <random>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "memd/shared/lane.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

constexpr char kStateSuffix[] = ".state";
constexpr size_t kStateSuffixBytes = sizeof(kStateSuffix) - 1;

uint64_t NewSegmentId() {
  std::random_device device;
  uint64_t id = (static_cast<uint64_t>(device()) << 32) | device();
  return id == 0 ? 1 : id;
}

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

void RemoveObjects(const std::string& instance, const std::string& pool) {
  Segment::RemoveIfExists(PoolObjectName(instance, pool));
  StateTable::RemoveIfExists(PoolStateObjectName(instance, pool));
}

// Objects of this instance in shm_dir for pools that are not configured any more.
absl::Status SweepUnconfigured(const std::vector<PoolConfig>& configs,
                               const PoolStartupOptions& options) {
  absl::flat_hash_set<std::string> configured;
  for (const PoolConfig& c : configs) configured.insert(c.name);
  std::string prefix = InstanceObjectPrefix(options.instance);
  absl::flat_hash_set<std::string> leftovers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options.shm_dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!absl::StartsWith(file, prefix)) continue;
    std::string rest = file.substr(prefix.size());
    if (absl::EndsWith(rest, kStateSuffix)) rest.resize(rest.size() - kStateSuffixBytes);
    if (rest.find('.') != std::string::npos || configured.contains(rest)) continue;  // daemon.lock
    leftovers.insert(rest);
  }
  for (const std::string& pool : leftovers) {
    if (!options.fresh) {
      absl::StatusOr<std::unique_ptr<StateTable>> state =
          StateTable::Open(PoolStateObjectName(options.instance, pool));
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
    spdlog::warn("removing the objects of pool '{}', left by a previous daemon and not configured now",
                 pool);
    RemoveObjects(options.instance, pool);
  }
  return absl::OkStatus();
}

// Lane objects (memd/shared/lane.h) a killed predecessor left: each lived
// for one session of that daemon, and its client unlinks it once mapped, so
// only a daemon killed between creating one and the client's unlink leaves it.
void RemoveStaleLanes(const PoolStartupOptions& options) {
  std::string prefix = lane::LaneObjectPrefix(options.instance);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options.shm_dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!absl::StartsWith(file, prefix)) continue;
    if (::shm_unlink(("/" + file).c_str()) == 0) {
      spdlog::warn("removed stale lane object /{} left by a previous daemon", file);
    }
  }
}

// Tries to re-adopt one pool. nullopt (with leftovers removed) when there is
// nothing to adopt and the pool must be created.
absl::StatusOr<std::optional<OpenedPool>> TryAdopt(const PoolConfig& config, uint32_t index,
                                                   const PoolStartupOptions& options) {
  std::string segment_name = PoolObjectName(options.instance, config.name);
  std::string state_name = PoolStateObjectName(options.instance, config.name);
  if (options.fresh) {
    if (Segment::RemoveIfExists(segment_name) | StateTable::RemoveIfExists(state_name)) {
      spdlog::warn("--fresh: discarded pool '{}' left by a previous daemon", config.name);
    }
    return std::nullopt;
  }
  absl::StatusOr<std::unique_ptr<StateTable>> state = StateTable::Open(state_name);
  if (absl::IsFailedPrecondition(state.status())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pool '%s' was left by a daemon of another version: %s. Start that version to keep its "
        "buffers, or start with --fresh to discard them",
        config.name, state.status().message()));
  }
  if (!state.ok()) {
    if (!absl::IsNotFound(state.status())) {
      spdlog::warn("replacing pool '{}': {}", config.name, std::string(state.status().message()));
    }
    if (Segment::RemoveIfExists(segment_name)) {
      spdlog::warn("removed stale shared-memory object {} left by a previous daemon", segment_name);
    }
    StateTable::RemoveIfExists(state_name);
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
  absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Open(
      SegmentOptions{.object_name = segment_name,
                     .size_bytes = (*state)->identity().size_bytes,
                     .mode = config.access.mode,
                     .owner_uid = config.access.owner_uid,
                     .group_gid = config.access.group_gid});
  if (!segment.ok()) {
    if (!absl::IsNotFound(segment.status())) return segment.status();
    spdlog::warn("pool '{}': its state table survived but its segment did not; creating it anew",
                 config.name);
    StateTable::RemoveIfExists(state_name);
    return std::nullopt;
  }
  absl::StatusOr<std::unique_ptr<Pool>> pool =
      Pool::Adopt(config, index, (*segment)->base(), segment_name, std::move(*state));
  if (!pool.ok()) {
    return absl::Status(pool.status().code(),
                        absl::StrFormat("cannot re-adopt pool '%s': %s. Start with --fresh to "
                                        "discard it", config.name, pool.status().message()));
  }
  return OpenedPool{std::move(*segment), std::move(*pool), true};
}

absl::StatusOr<OpenedPool> Create(const PoolConfig& config, uint32_t index,
                                  const PoolStartupOptions& options) {
  std::string segment_name = PoolObjectName(options.instance, config.name);
  std::string state_name = PoolStateObjectName(options.instance, config.name);
  // The state table first and marked ready last: a crash in between leaves an
  // incomplete table, which the next start replaces.
  absl::StatusOr<std::unique_ptr<StateTable>> state = StateTable::Create(
      state_name, StateIdentity{index, config.size_bytes, config.alignment_bytes, NewSegmentId()});
  if (!state.ok()) return state.status();
  absl::StatusOr<std::unique_ptr<Segment>> segment = Segment::Create(
      SegmentOptions{.object_name = segment_name,
                     .size_bytes = config.size_bytes,
                     .mode = config.access.mode,
                     .owner_uid = config.access.owner_uid,
                     .group_gid = config.access.group_gid,
                     .reserve = config.prefault.value_or(options.reserve)});
  if (!segment.ok()) {
    (*state)->Remove();
    return segment.status();
  }
  (*state)->MarkReady();
  auto pool = std::make_unique<Pool>(config, index, (*segment)->base(), segment_name,
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
    RemoveStaleLanes(options);
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
    if (absl::Status s = CheckShmCapacity(needed, options.shm_dir); !s.ok()) return s;
  }
  std::vector<OpenedPool> result;
  for (uint32_t i = 0; i < configs.size(); ++i) {
    if (!opened[i].has_value()) {
      absl::StatusOr<OpenedPool> created = Create(configs[i], options.first_index + i, options);
      if (!created.ok()) {
        for (OpenedPool& p : result) {
          if (p.adopted) continue;
          p.pool->RemoveState();
          p.segment->Remove();
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
