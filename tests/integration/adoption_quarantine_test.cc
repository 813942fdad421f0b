// Quarantine on adoption (issue 24, E86; docs/reliability.md) seen from
// outside: a daemon killed with SIGKILL whose state table holds a record the
// allocator cannot back is succeeded by one that quarantines that record,
// adopts the rest, and says so in GetStats and `memctl stats --json`.
//
// No client can register such a record any more (that was the bug issue 24
// fixed), so the test writes one into the dead daemon's state table, as a
// build before the fix could have left it: a range that starts inside a live
// buffer and runs past its block. Real daemons, a real client that keeps its
// buffers across the kill, the real memctl.
#include <signal.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "memd/client.h"
#include "memd/shared/handle.h"
#include "shm/state_table.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

// `pool`'s quarantined_slots as `memctl stats --json` prints it (-1 when
// memctl failed or did not list the pool).
int64_t QuarantinedSlotsPrinted(const DaemonEnv& daemon, const std::string& pool = "default") {
  auto [code, out] = RunCommand({MemctlBinary(), "--address", daemon.address(), "stats", "--json"});
  if (code != 0) {
    ADD_FAILURE() << "memctl stats --json: exit " << code << ": " << out;
    return -1;
  }
  const nlohmann::json stats = nlohmann::json::parse(out);  // the loop reads it: not a temporary
  for (const auto& p : stats["pools"]) {
    if (p["name"] == pool) return p["quarantined_slots"].get<int64_t>();
  }
  ADD_FAILURE() << "memctl stats --json lists no pool '" << pool << "': " << out;
  return -1;
}

// Appends to the dead daemon's state table of `pool` a live record that
// starts one alignment unit into the lowest live block and is as long as it
// (so it runs past it). Returns its handle, 0 on failure.
uint64_t WriteOverlappingRecord(const std::string& instance, const std::string& pool,
                                uint64_t alignment_bytes) {
  auto state = StateTable::Open(StateFilePath(instance, pool));
  if (!state.ok()) {
    ADD_FAILURE() << state.status();
    return 0;
  }
  std::vector<SlotImage> images = (*state)->Load();
  const SlotImage* lowest = nullptr;
  for (const SlotImage& image : images) {
    if (image.state == SlotImage::State::kLive &&
        (lowest == nullptr || image.offset_bytes < lowest->offset_bytes)) {
      lowest = &image;
    }
  }
  if (lowest == nullptr) {
    ADD_FAILURE() << "the state table has no live record";
    return 0;
  }
  const SlotImage overlapping{SlotImage::State::kLive, /*generation=*/1, /*refs=*/1,
                              lowest->offset_bytes + alignment_bytes, lowest->capacity_bytes,
                              lowest->capacity_bytes};
  const uint32_t slot = static_cast<uint32_t>(images.size());
  absl::Status reserved = (*state)->Reserve(slot + 1);
  if (!reserved.ok()) {
    ADD_FAILURE() << reserved;
    return 0;
  }
  (*state)->Write(slot, overlapping);
  return EncodeHandle({(*state)->identity().pool_index, 1, slot});
}

TEST(AdoptionQuarantineTest, ARestartQuarantinesWhatItCannotBackAndStatsAndMemctlSayHowMany) {
  DaemonEnv daemon({.pools = {"default=8MiB"}, .extra_args = {"--reclaim-grace", "30s"}});
  ASSERT_TRUE(daemon.ok());
  EXPECT_EQ(daemon.PoolStats().quarantined_slots(), 0u) << "a fresh daemon quarantines nothing";
  EXPECT_EQ(QuarantinedSlotsPrinted(daemon), 0);

  auto client = Client::Connect({.address = daemon.address(), .outage_wait_ms = 30000});
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<Buffer> held;
  for (uint8_t byte : {0x11, 0x22}) {
    absl::StatusOr<Buffer> buffer = (*client)->Allocate(64 << 10);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    std::memset(buffer->data(), byte, buffer->size());
    held.push_back(std::move(*buffer));
  }
  const uint64_t used_bytes = daemon.PoolStats().used_bytes();

  ASSERT_TRUE(daemon.Stop(SIGKILL).has_value());
  const uint64_t quarantined = WriteOverlappingRecord(daemon.instance(), "default",
                                                      (*client)->pool().alignment_bytes);
  ASSERT_NE(quarantined, 0u);
  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(daemon.PoolStats().quarantined_slots(), 1u) << daemon.PoolStats().DebugString();
  EXPECT_EQ(QuarantinedSlotsPrinted(daemon), 1);
  // The client reclaims both of its buffers: nothing consistent was dropped.
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::PoolStats now = daemon.PoolStats();
        return now.sessions() == 1 && now.unclaimed_references() == 0;
      },
      std::chrono::seconds(20)))
      << daemon.PoolStats().DebugString();
  v1::PoolStats adopted = daemon.PoolStats();
  EXPECT_EQ(adopted.live_buffers(), 2u);
  EXPECT_EQ(adopted.used_bytes(), used_bytes) << "the quarantined record took no memory";
  EXPECT_EQ(held[0].data()[0], 0x11);
  EXPECT_EQ(held[1].data()[held[1].size() - 1], 0x22);
  absl::StatusOr<Buffer> gone = (*client)->Retain(quarantined);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound)
      << "a quarantined handle is never seen again: " << gone.status();
  absl::StatusOr<Buffer> fresh = (*client)->Allocate(100);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->handle(), quarantined);
  ASSERT_TRUE(fresh->Release().ok());
  EXPECT_EQ(daemon.CheckPools(), "");

  int exit_code = 0;
  std::string log = daemon.StopAndReadOutput(SIGKILL, &exit_code);
  EXPECT_TRUE(Has(log, "pool 'default': quarantined 1 inconsistent buffer record(s)")) << log;
  EXPECT_TRUE(Has(log, "overlaps another range of, or runs past, the block at offset")) << log;
  // The quarantine was persisted: the next daemon finds nothing to quarantine.
  ASSERT_TRUE(daemon.Restart());
  EXPECT_EQ(daemon.PoolStats().quarantined_slots(), 0u);
  EXPECT_EQ(QuarantinedSlotsPrinted(daemon), 0);
  ASSERT_TRUE(WaitFor([&] { return daemon.PoolStats().unclaimed_references() == 0; },
                      std::chrono::seconds(20)));
  EXPECT_EQ(daemon.PoolStats().live_buffers(), 2u);
  EXPECT_EQ(daemon.CheckPools(), "");
  held.clear();
  EXPECT_TRUE(WaitFor([&] { return daemon.PoolStats().used_bytes() == 0; }));
}

}  // namespace
}  // namespace memd::testing
