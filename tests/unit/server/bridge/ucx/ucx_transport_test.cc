// The UCX transport inside one process (a transport connected to itself):
// its refusals, forged descriptors, and pulls from several threads at once.
// Two-process pulls: tests/integration/ucx/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "bridge/ucx/ucx_connection.h"
#include "bridge/ucx/ucx_transport.h"
#include "bridge/ucx/ucx_wire.h"

namespace memd::bridge::ucx {
namespace {

using ::testing::HasSubstr;

// A transport whose read check allows every range: these tests are about the
// transport's own checks (the engine's per-offer rule has tests below and in
// the bridge tests).
absl::StatusOr<std::unique_ptr<PullTransport>> Open(std::string name = "self") {
  return MakeUcxTransport(
      {.name = std::move(name), .may_read = [](auto...) { return absl::OkStatus(); }});
}

// Exposes `pool` as 'video' and grants it to peer 'self'.
absl::StatusOr<std::string> ExposeAndGrant(PullTransport& transport, std::vector<uint8_t>& pool,
                                           bool seal = true) {
  if (absl::Status s = transport.Expose("video", pool.data(), pool.size()); !s.ok()) return s;
  return transport.Grant("video", "self", seal);
}

// A transport connected to itself: refusals that need a live UCX but no peer.
TEST(UcxTransportTest, BadExposeConnectAndPullAreRefusedAndChangeNothing) {
  absl::StatusOr<std::unique_ptr<PullTransport>> transport = Open();
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::vector<uint8_t> pool(1 << 20, 7);
  absl::StatusOr<std::string> region = ExposeAndGrant(**transport, pool);
  ASSERT_TRUE(region.ok()) << region.status();
  EXPECT_EQ((*transport)->Expose("video", pool.data(), pool.size()).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ((*transport)->Expose("empty", pool.data(), 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*transport)->Expose("bad name", pool.data(), 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*transport)->Grant("audio", "self", true).status().code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<std::string> address = (*transport)->LocalAddress();
  ASSERT_TRUE(address.ok()) << address.status();
  auto truncated = (*transport)->Connect("peer", address->substr(0, address->size() - 1));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("peer 'peer': worker address"));

  auto connection = (*transport)->Connect("self", *address);
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::vector<uint8_t> dst(16, 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  ASSERT_TRUE((*connection)->Pull(*region, pool.size() - 16, dst.data(), 16, deadline).ok());
  EXPECT_EQ(dst, std::vector<uint8_t>(16, 7));

  absl::Status past = (*connection)->Pull(*region, pool.size() - 15, dst.data(), 16, deadline);
  EXPECT_EQ(past.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(past.message()),
              HasSubstr("pull of 16 bytes at offset 1048561 from pool 'video' of peer 'self' "
                        "ends past the region's 1048576 bytes"));
  EXPECT_EQ((*connection)->Pull(*region, ~uint64_t{0}, dst.data(), 2, deadline).code(),
            absl::StatusCode::kOutOfRange);
  absl::Status hostile = (*connection)->Pull(region->substr(0, 40), 0, dst.data(), 1, deadline);
  EXPECT_EQ(hostile.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(hostile.message()), HasSubstr("peer 'self': region descriptor"));
  // The refusals changed nothing: the connection still pulls.
  EXPECT_TRUE((*connection)->Pull(*region, 0, dst.data(), 16, deadline).ok());
}

// A peer that forges a descriptor (another key, a larger size, another pool)
// gets the exposing side's refusal and not a byte: the exposing side checks
// every request against what it exposed (the reason the transport does not
// use UCX gets; docs/ucx-transport.md).
TEST(UcxTransportTest, ForgedDescriptorsAreRefusedByTheExposingSide) {
  absl::StatusOr<std::unique_ptr<PullTransport>> transport = Open();
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::vector<uint8_t> pool(4096, 5);
  absl::StatusOr<std::string> good = ExposeAndGrant(**transport, pool);
  ASSERT_TRUE(good.ok()) << good.status();
  auto connection = (*transport)->Connect("self", *(*transport)->LocalAddress());
  ASSERT_TRUE(connection.ok()) << connection.status();
  absl::StatusOr<Region> region = ParseRegion(*good);
  ASSERT_TRUE(region.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::vector<uint8_t> dst(16, 0);

  Region wrong_key = *region;
  wrong_key.key[0] ^= 1;
  absl::Status refused =
      (*connection)->Pull(EncodeRegion(wrong_key), 0, dst.data(), dst.size(), deadline);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("the peer refused: pull from pool 'video' refused: this daemon exposes "
                        "no such pool to a peer with that key"));

  Region larger = *region;
  larger.size_bytes = 1 << 30;
  refused = (*connection)->Pull(EncodeRegion(larger), 8192, dst.data(), dst.size(), deadline);
  EXPECT_EQ(refused.code(), absl::StatusCode::kOutOfRange) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("pull of 16 bytes at offset 8192 from pool 'video' ends past the "
                        "region's 4096 bytes"));

  Region other_pool = *region;
  other_pool.pool = "audio";
  refused = (*connection)->Pull(EncodeRegion(other_pool), 0, dst.data(), dst.size(), deadline);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;

  EXPECT_EQ(dst, std::vector<uint8_t>(16, 0));  // not a byte came
  ASSERT_TRUE((*connection)->Pull(*good, 0, dst.data(), dst.size(), deadline).ok());
  EXPECT_EQ(dst, std::vector<uint8_t>(16, 5));
}

// The engine pulls from many threads on one connection (transport.h: any
// thread, concurrently); every pull gets its own bytes.
TEST(UcxTransportTest, PullsFromSeveralThreadsAtOnceEachGetTheirBytes) {
  absl::StatusOr<std::unique_ptr<PullTransport>> transport = Open();
  ASSERT_TRUE(transport.ok()) << transport.status();
  constexpr size_t kChunk = 256 * 1024;
  constexpr int kThreads = 4;
  std::vector<uint8_t> pool(kChunk * kThreads);
  for (size_t i = 0; i < pool.size(); ++i) pool[i] = static_cast<uint8_t>(i / kChunk + i);
  absl::StatusOr<std::string> region = ExposeAndGrant(**transport, pool);
  ASSERT_TRUE(region.ok()) << region.status();
  auto connection = (*transport)->Connect("self", *(*transport)->LocalAddress());
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> dst(kChunk);
      for (int round = 0; round < 50; ++round) {
        std::fill(dst.begin(), dst.end(), 0);
        absl::Status s = (*connection)->Pull(*region, t * kChunk, dst.data(), kChunk,
                                             absl::Now() + absl::Seconds(30));
        if (!s.ok() || !std::equal(dst.begin(), dst.end(), pool.begin() + t * kChunk)) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace memd::bridge::ucx
