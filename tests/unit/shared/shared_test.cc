#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memd/shared/address.h"
#include "memd/shared/client_env.h"
#include "memd/shared/duration.h"
#include "memd/shared/handle.h"
#include "memd/shared/lane.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

TEST(SizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2g"), 2ull << 30);
  EXPECT_EQ(*ParseSize(" 10 KB "), 10240u);
  EXPECT_EQ(*ParseSize("0"), 0u);
}

TEST(SizeTest, RejectsGarbageAndOverflowNamingTheText) {
  for (const char* bad : {"", "MiB", "12XB", "-5", "99999999999999999999", "17179869184GiB"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), absl::string_view::npos) << r.status();
  }
}

TEST(SizeTest, FormatsForPeople) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(64ull << 20), "64.0 MiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.5 GiB");
}

TEST(DurationTest, PlainNumbersAreSecondsAndUnitsAreAbsls) {
  EXPECT_EQ(*ParseDuration("t", "30", absl::Hours(1)), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("t", " 2.5 ", absl::Hours(1)), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseDuration("t", "500ms", absl::Hours(1)), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("t", "1m30s", absl::Hours(1)), absl::Seconds(90));
  EXPECT_EQ(*ParseDuration("t", "0", absl::Hours(1)), absl::ZeroDuration());
}

TEST(DurationTest, RejectsGarbageNegativeAndTooLongNamingSettingTextAndLimit) {
  for (const char* bad : {"", "soon", "-1", "-2s", "nan", "inf", "2h", "10 parsecs"}) {
    auto r = ParseDuration("MEMD_CONNECT_TIMEOUT", bad, absl::Hours(1));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find("MEMD_CONNECT_TIMEOUT"), std::string::npos);
    EXPECT_NE(r.status().message().find("1h"), std::string::npos) << r.status();
  }
}

TEST(AddressTest, ParsesUnixAndTcp) {
  auto u = ParseAddress("unix:///run/memd/memd.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->unix_path, "/run/memd/memd.sock");
  EXPECT_EQ(ParseAddress("unix:rel.sock")->unix_path, "rel.sock");
  auto t = ParseAddress("localhost:5000");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, Address::Kind::kTcp);
  EXPECT_FALSE(ParseAddress("nonsense").ok());
  EXPECT_FALSE(ParseAddress("host:0").ok());
  EXPECT_FALSE(ParseAddress("unix://").ok());
  EXPECT_FALSE(ParseAddress("unix:///" + std::string(200, 'x')).ok());
}

TEST(NamesTest, ValidatesAndNamespaces) {
  EXPECT_TRUE(ValidateName("pool name", "video_4k-1").ok());
  EXPECT_FALSE(ValidateName("pool name", "").ok());
  EXPECT_FALSE(ValidateName("pool name", "a.b").ok());
  EXPECT_FALSE(ValidateName("pool name", "a/b").ok());
  EXPECT_FALSE(ValidateName("pool name", std::string(65, 'a')).ok());
  EXPECT_EQ(PoolObjectName("memd", "default"), "/memd.memd.default");
}

TEST(HandleTest, RoundTrips) {
  HandleParts p = DecodeHandle(EncodeHandle({255, kMaxGeneration, 0xffffffff}));
  EXPECT_EQ(p.pool_index, 255u);
  EXPECT_EQ(p.generation, kMaxGeneration);
  EXPECT_EQ(p.slot, 0xffffffffu);
}

TEST(LaneRingTest, EntriesRoundToEightBytesWithTheirLength) {
  EXPECT_EQ(lane::EntryBytes(0), 8u);
  EXPECT_EQ(lane::EntryBytes(4), 8u);
  EXPECT_EQ(lane::EntryBytes(5), 16u);
  EXPECT_EQ(lane::EntryBytes(lane::kMaxPayloadBytes), lane::kMaxPayloadBytes + 8);
}

TEST(LaneRingTest, CopiesWrapAroundTheRingsEndAndPositionsWrapAt2To32) {
  std::vector<uint8_t> ring(lane::kRingBytes, 0);
  std::vector<uint8_t> data(100);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i + 1);
  // 40 bytes before the end, 60 after the start.
  uint32_t pos = 7 * lane::kRingBytes - 40;
  lane::RingWrite(ring.data(), pos, data.data(), 100);
  EXPECT_EQ(ring[lane::kRingBytes - 40], 1);
  EXPECT_EQ(ring[lane::kRingBytes - 1], 40);
  EXPECT_EQ(ring[0], 41);
  EXPECT_EQ(ring[59], 100);
  EXPECT_EQ(ring[60], 0) << "nothing written past the data";
  std::vector<uint8_t> back(100);
  lane::RingRead(ring.data(), pos, back.data(), 100);
  EXPECT_EQ(back, data);
  // A position near 2^32 wraps like the ring (2^32 is a multiple of its size).
  uint32_t high = 0xffffffffu - 9;  // 10 bytes before 2^32
  lane::RingWrite(ring.data(), high, data.data(), 20);
  lane::RingRead(ring.data(), high, back.data(), 20);
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 20, data.begin()));
  EXPECT_EQ(ring[0], 11) << "byte 10 landed at position 2^32, the ring's start";
}

TEST(LaneRingTest, ReadEntryReturnsWhatWriteEntryWroteAndRefusesWhatCannotBeRight) {
  std::vector<uint8_t> ring(lane::kRingBytes, 0);
  uint32_t head = lane::kRingBytes - 6;  // the entry wraps
  uint32_t tail = lane::WriteEntry(ring.data(), head, "hello lane");
  EXPECT_EQ(tail, head + lane::EntryBytes(10));
  std::string payload, why;
  std::optional<uint32_t> next = lane::ReadEntry(ring.data(), head, tail, &payload, &why);
  ASSERT_TRUE(next.has_value()) << why;
  EXPECT_EQ(*next, tail);
  EXPECT_EQ(payload, "hello lane");

  EXPECT_FALSE(lane::ReadEntry(ring.data(), 0, lane::kRingBytes + 8, &payload, &why));
  EXPECT_EQ(why, "the tail 524296 is 524296 bytes past the head 0; the ring holds 524288");
  EXPECT_FALSE(lane::ReadEntry(ring.data(), 0, 3, &payload, &why));
  EXPECT_EQ(why, "3 published bytes: not even a length");
  uint32_t too_long = lane::kMaxPayloadBytes + 1;
  lane::RingWrite(ring.data(), 0, &too_long, 4);
  EXPECT_FALSE(lane::ReadEntry(ring.data(), 0, 8, &payload, &why));
  EXPECT_EQ(why, "an entry of 65537 bytes; the limit is 65536");
  uint32_t length = 100;
  lane::RingWrite(ring.data(), 0, &length, 4);
  EXPECT_FALSE(lane::ReadEntry(ring.data(), 0, 8, &payload, &why));
  EXPECT_EQ(why, "an entry of 100 bytes, but only 8 bytes were published");
}

TEST(LaneRingTest, ObjectNamesBelongToTheirInstance) {
  EXPECT_EQ(lane::LaneObjectName("memd", 42), "/memd.memd.lane.42");
  EXPECT_EQ(lane::LaneObjectPrefix("a-b"), "memd.a-b.lane.");
}

// The one reader of the clients' environment (issue 26): every variable,
// its default when unset or empty.
TEST(ClientEnvironmentTest, ReadsEveryVariableWithItsDefault) {
  const char* names[] = {"MEMD_ADDRESS", "MEMD_POOL", "MEMD_OUTAGE_WAIT_MS",
                         "MEMD_CONNECT_TIMEOUT", "MEMD_LANE_SPIN", "MEMD_ARENA_THRESHOLD",
                         "MEMD_LANE", "MEMD_POPULATE"};
  for (const char* name : names) ::unsetenv(name);
  ::setenv("MEMD_POOL", "", 1);  // empty is unset
  ClientEnvironment defaults = ReadClientEnvironment();
  EXPECT_EQ(defaults.address, kDefaultAddress);
  EXPECT_EQ(defaults.pool, kDefaultPool);
  EXPECT_FALSE(defaults.outage_wait_ms || defaults.connect_timeout || defaults.lane_spin ||
               defaults.arena_threshold);
  EXPECT_TRUE(defaults.lane);
  EXPECT_FALSE(defaults.populate);
  EXPECT_EQ(ClientDefaultAddress(), kDefaultAddress);

  const char* values[] = {"unix:///tmp/x.sock", "video", "250", "3s", "10us", "32KiB", "0", "1"};
  for (size_t i = 0; i < std::size(names); ++i) ::setenv(names[i], values[i], 1);
  ClientEnvironment set = ReadClientEnvironment();
  EXPECT_EQ(set.address, "unix:///tmp/x.sock");
  EXPECT_EQ(ClientDefaultAddress(), "unix:///tmp/x.sock");
  EXPECT_EQ(set.pool, "video");
  EXPECT_EQ(set.outage_wait_ms, "250");
  EXPECT_EQ(set.connect_timeout, "3s");
  EXPECT_EQ(set.lane_spin, "10us");
  EXPECT_EQ(set.arena_threshold, "32KiB");
  EXPECT_FALSE(set.lane);
  EXPECT_TRUE(set.populate);
  for (const char* name : names) ::unsetenv(name);
}

}  // namespace
}  // namespace memd
