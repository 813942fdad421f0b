// The bridge's crash-safe records (bridge/journal.h): what a restarted
// daemon reads back, and a torn write (a kill -9 mid-record) leaving the
// previous value.
#include "bridge/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "config/bridge_config.h"

namespace memd::bridge {
namespace {

class JournalTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/memd-journal-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(JournalTest, EntriesTicketsAndAcksSurviveAReopen) {
  std::string path = dir_ + "/bridge.video.raw.out";
  {
    auto journal = OutboundJournal::Open(path);
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_EQ((*journal)->last_seq(), 0u);
    (*journal)->SetTickets({std::string(16, 'a'), std::string(16, 'b')});
    EXPECT_EQ((*journal)->Append({7, 8}, "frame 0", 0), 1u);
    EXPECT_EQ((*journal)->Append({9}, "frame 1", 3), 2u);
    EXPECT_EQ((*journal)->Append({}, std::string(4096, 'm'), 0), 3u);
    (*journal)->Ack(1);
  }
  auto journal = OutboundJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ((*journal)->tickets(), (std::vector<std::string>{std::string(16, 'a'),
                                                             std::string(16, 'b')}));
  EXPECT_EQ((*journal)->acked_seq(), 1u);
  EXPECT_EQ((*journal)->last_seq(), 3u);
  std::vector<OutboundJournal::Entry> entries = (*journal)->Load();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].seq, 2u);
  EXPECT_EQ(entries[0].handles, std::vector<uint64_t>{9});
  EXPECT_EQ(entries[0].metadata, "frame 1");
  EXPECT_EQ(entries[0].hops, 3u) << "a relayed message's hops survive (B23)";
  EXPECT_EQ(entries[1].hops, 0u);
  EXPECT_EQ(entries[1].metadata, std::string(4096, 'm'));
  // Acknowledged slots are reused; seqs never are.
  (*journal)->Ack(3);
  EXPECT_TRUE((*journal)->Load().empty());
  for (uint32_t i = 0; i < OutboundJournal::kSlots; ++i) (*journal)->Append({1}, "", 0);
  EXPECT_TRUE((*journal)->full());
  EXPECT_EQ((*journal)->last_seq(), 3u + OutboundJournal::kSlots);
}

TEST_F(JournalTest, DeliveredMarkKeepsItsLastValueAcrossATornWrite) {
  std::string path = dir_ + "/bridge.a.video.raw.in";
  {
    auto mark = DeliveredMark::Open(path);
    ASSERT_TRUE(mark.ok()) << mark.status();
    EXPECT_EQ((*mark)->delivered(), 0u);
    (*mark)->Set(41);
    (*mark)->Set(42);
  }
  // A kill -9 in the middle of the next write: the copy being written has
  // its check value cleared first (dual_copy.h); simulate it torn.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    char copy[24];
    for (int i = 0; i < 2; ++i) {
      f.seekg(i * 24);
      f.read(copy, 24);
      uint64_t seq;
      std::memcpy(&seq, copy + 16, 8);
      if (seq == 41) {  // the older copy: the one the next write fills
        std::memset(copy + 4, 0, 4);  // check cleared
        seq = 43;                     // half-written value
        std::memcpy(copy + 16, &seq, 8);
        f.seekp(i * 24);
        f.write(copy, 24);
      }
    }
  }
  auto mark = DeliveredMark::Open(path);
  ASSERT_TRUE(mark.ok()) << mark.status();
  EXPECT_EQ((*mark)->delivered(), 42u);
}

TEST_F(JournalTest, AFileOfAnotherSizeIsRefusedNamingIt) {
  std::string path = dir_ + "/bridge.video.raw.out";
  { std::ofstream(path) << "not a journal"; }
  ::chmod(path.c_str(), 0600);
  auto journal = OutboundJournal::Open(path);
  ASSERT_FALSE(journal.ok());
  EXPECT_TRUE(absl::IsDataLoss(journal.status())) << journal.status();
  EXPECT_NE(journal.status().message().find(path), std::string::npos) << journal.status();
}

TEST(BridgeConfigTest, FlagsParseAndBadOnesAreNamed) {
  auto peer = ParsePeerFlag("b=10.0.0.2:7441");
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->name, "b");
  EXPECT_EQ(peer->address, "10.0.0.2:7441");
  EXPECT_EQ(ParsePeerFlag("b").status().message(),
            "--peer 'b' must be NAME=HOST:PORT (the peer's node name and TLS listener)");
  auto bridge = ParseBridgeFlag("video/raw=b");
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  EXPECT_EQ(bridge->name(), "video/raw");
  EXPECT_EQ(bridge->peer, "b");
  EXPECT_EQ(ParseBridgeFlag("video=b").status().message(),
            "--bridge 'video=b' must be POOL/CHANNEL=PEER");

  BridgeOptions options{.node = "a", .peers = {*peer}, .bridges = {*bridge}};
  std::vector<PoolConfig> pools(1);
  pools[0].name = "video";
  EXPECT_EQ(ValidateBridgeOptions(options, pools, true).message(),
            "bridge 'video/raw': pool 'video' is not marked for bridging (peers may read only "
            "such pools); add bridge=true to its --pool or [[pool]]");
  pools[0].bridge = true;
  EXPECT_TRUE(ValidateBridgeOptions(options, pools, true).ok());
  EXPECT_NE(ValidateBridgeOptions(options, pools, false).message().find("--peer needs mutual TLS"),
            std::string::npos);
  options.transport = "carrier-pigeon";
  EXPECT_EQ(ValidateBridgeOptions(options, pools, true).message(),
            "--bridge-transport 'carrier-pigeon' is unknown; known: ucx, grpc");
  options.transport = "ucx";
  for (const char* link : {"", "encrypted", "trusted"}) {
    options.link = link;
    EXPECT_TRUE(ValidateBridgeOptions(options, pools, true).ok()) << link;
  }
  options.link = "open";
  EXPECT_EQ(ValidateBridgeOptions(options, pools, true).message(),
            "--bridge-link 'open' is unknown; known: encrypted (the default), trusted");
}

}  // namespace
}  // namespace memd::bridge
