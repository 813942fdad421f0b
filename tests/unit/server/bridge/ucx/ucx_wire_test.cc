// The UCX transport's wire envelopes (bridge/ucx/ucx_wire.h) against hostile
// bytes. The transport in one process: ucx_transport_test.cc; two-process
// pulls: tests/integration/ucx/.
#include "bridge/ucx/ucx_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>


namespace memd::bridge::ucx {
namespace {

using ::testing::HasSubstr;

Region SampleRegion() {
  return Region{"video", 64 << 20, std::string(kRegionKeyBytes, 'k'), std::string(32, 's')};
}

void ExpectInvalid(std::string_view bytes, std::string_view needle) {
  absl::StatusOr<Region> region = ParseRegion(bytes);
  ASSERT_FALSE(region.ok());
  EXPECT_EQ(region.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(region.status().message()), HasSubstr(std::string(needle)));
}

TEST(UcxWireTest, ARegionRoundTrips) {
  absl::StatusOr<Region> region = ParseRegion(EncodeRegion(SampleRegion()));
  ASSERT_TRUE(region.ok()) << region.status();
  EXPECT_EQ(region->pool, "video");
  EXPECT_EQ(region->size_bytes, 64u << 20);
  EXPECT_EQ(region->key, std::string(kRegionKeyBytes, 'k'));
  EXPECT_EQ(region->seal_key, std::string(32, 's'));
  Region clear = SampleRegion();
  clear.seal_key.clear();
  region = ParseRegion(EncodeRegion(clear));
  ASSERT_TRUE(region.ok()) << region.status();
  EXPECT_EQ(region->seal_key, "");
}

TEST(UcxWireTest, TruncatedOrOversizedRegionsNameTheSizes) {
  const std::string good = EncodeRegion(SampleRegion());
  ExpectInvalid("", "truncated: 0 bytes; its header alone is 32");
  ExpectInvalid(good.substr(0, 31), "truncated: 31 bytes");
  ExpectInvalid(good.substr(0, good.size() - 1),
                "is 84 bytes; its header announces 85 (32 header + 5 pool name + 16 key + 32 "
                "seal key)");
  ExpectInvalid(good.substr(0, good.size() - 1), "truncated");
  ExpectInvalid(good + "x", "trailing bytes");
}

TEST(UcxWireTest, WrongMagicOrVersionIsRefused) {
  std::string bytes = EncodeRegion(SampleRegion());
  bytes[0] = 'X';
  ExpectInvalid(bytes, "does not start with 'MDRG'");
  bytes = EncodeRegion(SampleRegion());
  bytes[4] = 1;
  ExpectInvalid(bytes, "has version 1; this daemon reads version 2");
  bytes = EncodeRegion(SampleRegion());
  bytes[28] = 1;
  ExpectInvalid(bytes, "carries a seal key of 1 bytes; version 2 seal keys are 0 (a trusted "
                       "link, in clear) or 32 (AES-256-GCM)");
  bytes = EncodeRegion(SampleRegion());
  bytes[8] = 7;
  ExpectInvalid(bytes, "reserved field 7");
}

TEST(UcxWireTest, BadLengthsAndNamesAreRefusedNamingTheLimit) {
  Region r = SampleRegion();
  r.key = std::string(kRegionKeyBytes + 1, 'k');
  ExpectInvalid(EncodeRegion(r), "key of 17 bytes; version 2 keys are 16");
  r.key.clear();
  ExpectInvalid(EncodeRegion(r), "key of 0 bytes");
  r = SampleRegion();
  r.size_bytes = 0;
  ExpectInvalid(EncodeRegion(r), "region of 0 bytes");
  r = SampleRegion();
  r.pool = std::string(65, 'p');
  ExpectInvalid(EncodeRegion(r), "pool of 65 bytes; the limit is 64");
  r.pool = "bad name";
  ExpectInvalid(EncodeRegion(r), "pool name");
}

TEST(UcxWireTest, WorkerAddressEnvelopeChecksItsLength) {
  const std::string good = EncodeWorkerAddress("ucx-address-bytes");
  absl::StatusOr<std::string_view> address = ParseWorkerAddress(good);
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(*address, "ucx-address-bytes");
  for (auto [bytes, needle] : std::vector<std::pair<std::string, std::string>>{
           {good.substr(0, 5), "truncated: 5 bytes; its header alone is 12"},
           {good.substr(0, good.size() - 1), "truncated"},
           {good + "!", "trailing bytes"},
           {EncodeWorkerAddress(""), "announces 0 bytes; from 1 to 65536"},
           {"MDRG" + good.substr(4), "does not start with 'MDUA'"}}) {
    absl::StatusOr<std::string_view> parsed = ParseWorkerAddress(bytes);
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(needle));
  }
}

TEST(UcxWireTest, PullRequestsAndRepliesRoundTripAndRefuseOtherSizes) {
  const PullRequest request{7, 4096, 12441600, "video", std::string(kRegionKeyBytes, 'q')};
  const std::string bytes = EncodePullRequest(request);
  ASSERT_EQ(bytes.size(), kPullRequestBytes);
  absl::StatusOr<PullRequest> parsed = ParsePullRequest(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->request_id, 7u);
  EXPECT_EQ(parsed->offset, 4096u);
  EXPECT_EQ(parsed->length, 12441600u);
  EXPECT_EQ(parsed->pool, "video");
  EXPECT_EQ(parsed->key, request.key);
  EXPECT_FALSE(ParsePullRequest(bytes.substr(1)).ok());
  EXPECT_FALSE(ParsePullRequest(bytes + "x").ok());
  std::string no_name = bytes;
  no_name[4] = 0;
  EXPECT_FALSE(ParsePullRequest(no_name).ok());

  const std::string reply = EncodePullReply(PullReply{9, 7, "no"});
  absl::StatusOr<PullReply> answer = ParsePullReply(reply);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->request_id, 9u);
  EXPECT_EQ(answer->code, 7u);
  EXPECT_EQ(answer->message, "no");
  EXPECT_FALSE(ParsePullReply(reply.substr(0, reply.size() - 1)).ok());
  EXPECT_FALSE(ParsePullReply(reply.substr(0, 15)).ok());
  EXPECT_EQ(EncodePullReply(PullReply{1, 2, std::string(10000, 'm')}).size(),
            kPullReplyHeaderBytes + kMaxReplyMessageBytes);
  const std::string sealed = EncodePullReply(PullReply{9, 0, "", std::string(28, 't')});
  answer = ParsePullReply(sealed);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->seal, std::string(28, 't'));
  std::string odd_seal = sealed;
  odd_seal[14] = 27;  // a seal is 0 or 28 bytes
  EXPECT_FALSE(ParsePullReply(odd_seal).ok());
}

// Random damage to good envelopes (flipped bytes, cuts, additions): the
// parsers never read outside the bytes, and whatever they accept encodes
// back to the same bytes. The seed is printed so that a failure replays.
TEST(UcxWireTest, RandomlyDamagedEnvelopesParseOrFailCleanly) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  const std::string region = EncodeRegion(SampleRegion());
  const std::string address = EncodeWorkerAddress(std::string(300, 'a'));
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = (round % 2 == 0) ? region : address;
    const int damage = 1 + static_cast<int>(random() % 4);
    for (int d = 0; d < damage; ++d) {
      switch (random() % 3) {
        case 0:  // flip one of the header bytes, where the lengths live
          bytes[random() % std::min<size_t>(bytes.size(), 40)] ^= static_cast<char>(1 + random() % 255);
          break;
        case 1:
          bytes.resize(random() % (bytes.size() + 1));
          break;
        default:
          bytes.append(random() % 8, static_cast<char>(random()));
      }
      if (bytes.empty()) break;
    }
    // A copy of exactly the damaged size: AddressSanitizer sees any overread.
    const std::unique_ptr<char[]> exact(new char[bytes.size()]);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    const std::string_view view(exact.get(), bytes.size());
    if (round % 2 == 0) {
      if (absl::StatusOr<Region> parsed = ParseRegion(view); parsed.ok()) {
        EXPECT_EQ(EncodeRegion(*parsed), bytes);
        ++accepted;
      }
    } else if (absl::StatusOr<std::string_view> parsed = ParseWorkerAddress(view); parsed.ok()) {
      EXPECT_EQ(EncodeWorkerAddress(*parsed), bytes);
      ++accepted;
    }
  }
  // Most damage is refused; some (a flipped pool-name letter, an address byte) is harmless.
  EXPECT_LT(accepted, 20000);
}

}  // namespace
}  // namespace memd::bridge::ucx
