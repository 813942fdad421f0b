// The UCX transport's two rules of issue 24, in one process (a transport
// connected to itself): a peer reads only what the read check allows it
// (the engine's ranges in flight to it) through the grant that names it, and
// a sealed grant's bytes cross the wire encrypted, their tag checked.
// With two real daemons and a hostile peer process: tests/integration/
// bridge_exposure_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <tuple>
#include <vector>

#include "absl/time/clock.h"
#include "bridge/ucx/ucx_transport.h"
#include "bridge/ucx/ucx_wire.h"
#include "memd/shared/mutex.h"

namespace memd::bridge::ucx {
namespace {

using ::testing::HasSubstr;

// What the fake engine lets each peer read: {peer, offset, length}, exactly.
struct Allowed {
  Mutex mu;
  std::set<std::tuple<std::string, uint64_t, uint64_t>> ranges ABSL_GUARDED_BY(mu);
  ReadCheck Check() {
    return [this](std::string_view peer, std::string_view pool, uint64_t offset,
                  uint64_t length) {
      MutexLock lock(&mu);
      if (ranges.contains({std::string(peer), offset, length})) return absl::OkStatus();
      return absl::PermissionDeniedError(absl::StrCat("[", offset, ", ", offset + length,
                                                      ") of pool '", std::string(pool),
                                                      "' is not in flight to node '",
                                                      std::string(peer), "'"));
    };
  }
};

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + 7);
  return bytes;
}

// B40: a range the check does not allow is refused by the exposing side, with
// the check's words and no byte; allowed for one peer is not allowed for
// another; a revoked grant reads nothing.
TEST(UcxExposureTest, OnlyWhatTheReadCheckAllowsThatPeerIsServed) {
  Allowed allowed;
  auto transport = MakeUcxTransport({.name = "self", .may_read = allowed.Check()});
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::vector<uint8_t> pool = Pattern(1 << 20);
  ASSERT_TRUE((*transport)->Expose("video", pool.data(), pool.size()).ok());
  absl::StatusOr<std::string> to_b = (*transport)->Grant("video", "b", true);
  absl::StatusOr<std::string> to_c = (*transport)->Grant("video", "c", true);
  ASSERT_TRUE(to_b.ok() && to_c.ok());
  auto connection = (*transport)->Connect("self", *(*transport)->LocalAddress());
  ASSERT_TRUE(connection.ok()) << connection.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::vector<uint8_t> dst(4096, 0);

  absl::Status never = (*connection)->Pull(*to_b, 8192, dst.data(), dst.size(), deadline);
  EXPECT_EQ(never.code(), absl::StatusCode::kPermissionDenied) << never;
  EXPECT_THAT(std::string(never.message()),
              HasSubstr("the peer refused: [8192, 12288) of pool 'video' is not in flight to "
                        "node 'b'"));
  EXPECT_EQ(dst, std::vector<uint8_t>(4096, 0));  // not a byte came

  {
    MutexLock lock(&allowed.mu);
    allowed.ranges.insert({"b", 8192, 4096});
  }
  ASSERT_TRUE((*connection)->Pull(*to_b, 8192, dst.data(), dst.size(), deadline).ok());
  EXPECT_TRUE(std::equal(dst.begin(), dst.end(), pool.begin() + 8192));
  // The same range through peer c's grant: c was offered nothing.
  EXPECT_EQ((*connection)->Pull(*to_c, 8192, dst.data(), dst.size(), deadline).code(),
            absl::StatusCode::kPermissionDenied);

  {  // the ack: the engine forgets the range
    MutexLock lock(&allowed.mu);
    allowed.ranges.clear();
  }
  EXPECT_EQ((*connection)->Pull(*to_b, 8192, dst.data(), dst.size(), deadline).code(),
            absl::StatusCode::kPermissionDenied);

  {
    MutexLock lock(&allowed.mu);
    allowed.ranges.insert({"b", 0, 4096});
  }
  (*transport)->Revoke(*to_b);  // the link ended
  absl::Status revoked = (*connection)->Pull(*to_b, 0, dst.data(), dst.size(), deadline);
  EXPECT_EQ(revoked.code(), absl::StatusCode::kPermissionDenied) << revoked;
  EXPECT_THAT(std::string(revoked.message()), HasSubstr("no such pool to a peer with that key"));
  EXPECT_FALSE(MakeUcxTransport({.name = "unchecked"}).ok());  // no read check, no transport
}

// A sealed grant: the puller gets the pool's bytes; what crossed the wire
// (what a puller that does not open the seal is left with: a descriptor
// forged without the seal key) is not them, and differs between two pulls of
// the same range (a nonce per answer). A wrong key fails the tag (B41).
TEST(UcxExposureTest, SealedAnswersAreCiphertextOnTheWireAndTheirTagIsChecked) {
  auto transport = MakeUcxTransport(
      {.name = "self", .may_read = [](auto...) { return absl::OkStatus(); }});
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::vector<uint8_t> pool = Pattern(4 << 20);
  ASSERT_TRUE((*transport)->Expose("video", pool.data(), pool.size()).ok());
  absl::StatusOr<std::string> sealed = (*transport)->Grant("video", "self", true);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  absl::StatusOr<Region> region = ParseRegion(*sealed);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->seal_key.size(), 32u);
  auto connection = (*transport)->Connect("self", *(*transport)->LocalAddress());
  ASSERT_TRUE(connection.ok()) << connection.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);

  // Small (eager) and large (rendezvous) answers alike.
  for (size_t length : {size_t{4096}, size_t{3} << 20}) {
    SCOPED_TRACE(length);
    std::vector<uint8_t> dst(length, 0);
    ASSERT_TRUE((*connection)->Pull(*sealed, 100, dst.data(), length, deadline).ok());
    EXPECT_TRUE(std::equal(dst.begin(), dst.end(), pool.begin() + 100));

    Region unopened = *region;
    unopened.seal_key.clear();
    std::vector<uint8_t> wire1(length, 0), wire2(length, 0);
    absl::Status s = (*connection)->Pull(EncodeRegion(unopened), 100, wire1.data(), length,
                                         deadline);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("the answer came sealed on a link whose "
                                                    "grant is clear"));
    ASSERT_EQ((*connection)->Pull(EncodeRegion(unopened), 100, wire2.data(), length, deadline)
                  .code(),
              absl::StatusCode::kDataLoss);
    size_t same_as_pool = 0, same_as_before = 0;
    for (size_t i = 0; i < length; ++i) {
      same_as_pool += wire1[i] == pool[100 + i];
      same_as_before += wire1[i] == wire2[i];
    }
    // Random bytes agree with any other in 1 of 256 places.
    EXPECT_LT(same_as_pool, length / 64) << "the wire carried the pool's bytes";
    EXPECT_LT(same_as_before, length / 64) << "two answers were sealed alike (nonce reuse)";

    Region wrong = *region;
    wrong.seal_key[0] ^= 1;
    s = (*connection)->Pull(EncodeRegion(wrong), 100, dst.data(), length, deadline);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(absl::StrCat("pull of ", length, " bytes at offset 100 from pool "
                                       "'video' of peer 'self': the ", length,
                                       " bytes failed their AES-256-GCM tag check")));
  }
  // The refusals left the connection pulling.
  std::vector<uint8_t> dst(16, 0);
  ASSERT_TRUE((*connection)->Pull(*sealed, 0, dst.data(), dst.size(), deadline).ok());
  EXPECT_TRUE(std::equal(dst.begin(), dst.end(), pool.begin()));
}

// A trusted link (a grant without a seal): the wire carries the pool's bytes
// as they are, and a puller that expects a seal refuses them.
TEST(UcxExposureTest, AClearGrantSendsThePoolsBytesAndASealedPullerRefusesThem) {
  auto transport = MakeUcxTransport(
      {.name = "self", .may_read = [](auto...) { return absl::OkStatus(); }});
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::vector<uint8_t> pool = Pattern(1 << 20);
  ASSERT_TRUE((*transport)->Expose("video", pool.data(), pool.size()).ok());
  absl::StatusOr<std::string> clear = (*transport)->Grant("video", "self", false);
  ASSERT_TRUE(clear.ok()) << clear.status();
  auto connection = (*transport)->Connect("self", *(*transport)->LocalAddress());
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::vector<uint8_t> dst(65536, 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  ASSERT_TRUE((*connection)->Pull(*clear, 7, dst.data(), dst.size(), deadline).ok());
  EXPECT_TRUE(std::equal(dst.begin(), dst.end(), pool.begin() + 7));
  absl::StatusOr<Region> region = ParseRegion(*clear);
  ASSERT_TRUE(region.ok());
  Region expects_seal = *region;
  expects_seal.seal_key.assign(32, 'k');
  absl::Status s = (*connection)->Pull(EncodeRegion(expects_seal), 7, dst.data(), dst.size(),
                                       deadline);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("the answer came in clear on a link whose "
                                                  "grant is sealed"));
}

}  // namespace
}  // namespace memd::bridge::ucx
