// The runtime bridge list (bridge/added_bridges.h): what a restarted daemon
// reads back, a stale ".new" file of a killed save, and B18's refusals of a
// file that does not parse or is not the daemon's own.
#include "bridge/added_bridges.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace memd::bridge {
namespace {

class AddedBridgesTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/memd-added-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Names(const std::vector<BridgeSpec>& specs) {
    std::string out;
    for (const BridgeSpec& b : specs) out += b.name() + ">" + b.peer + ";";
    return out;
  }
  std::string dir_;
};

TEST_F(AddedBridgesTest, NoFileIsAnEmptyListAndSavesReadBackInOrder) {
  absl::StatusOr<std::vector<BridgeSpec>> none = LoadAddedBridges(dir_);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  // A save killed before its rename leaves a ".new" file: the next save
  // replaces it.
  std::ofstream(AddedBridgesPath(dir_) + ".new") << "half a line";
  ASSERT_TRUE(SaveAddedBridges(dir_, {{"video", "frames", "b"}, {"audio", "pcm", "c"}}).ok());
  absl::StatusOr<std::vector<BridgeSpec>> two = LoadAddedBridges(dir_);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(Names(*two), "video/frames>b;audio/pcm>c;");
  EXPECT_FALSE(std::filesystem::exists(AddedBridgesPath(dir_) + ".new"));
  ASSERT_TRUE(SaveAddedBridges(dir_, {}).ok());
  EXPECT_TRUE(LoadAddedBridges(dir_)->empty());
}

TEST_F(AddedBridgesTest, AFileThatDoesNotParseIsRefusedNamingTheLine) {
  const std::string path = AddedBridgesPath(dir_);
  std::ofstream(path) << "video frames b\nvideo frames\n";
  absl::StatusOr<std::vector<BridgeSpec>> short_line = LoadAddedBridges(dir_);
  EXPECT_EQ(short_line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_line.status().message(),
            "runtime bridge list '" + path + "', line 2 'video frames': not POOL CHANNEL PEER "
            "(remove the file to start without the bridges added at run time)");
  std::ofstream(path) << "video fr/ames b\n";
  absl::StatusOr<std::vector<BridgeSpec>> bad_name = LoadAddedBridges(dir_);
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_name.status().message().find("line 1 'video fr/ames b': "), std::string::npos)
      << bad_name.status();
}

TEST_F(AddedBridgesTest, ALinkInItsPlaceIsRefused) {
  std::ofstream(dir_ + "/elsewhere") << "video frames b\n";
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), AddedBridgesPath(dir_).c_str()), 0);
  absl::StatusOr<std::vector<BridgeSpec>> linked = LoadAddedBridges(dir_);
  EXPECT_FALSE(linked.ok());
  EXPECT_NE(linked.status().message().find(AddedBridgesPath(dir_)), std::string::npos)
      << linked.status();
}

}  // namespace
}  // namespace memd::bridge
