#include "shm/state_table.h"

#include <unistd.h>

#include <cstring>

#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <gtest/gtest.h>

namespace memd {
namespace {

namespace bip = boost::interprocess;

constexpr uint64_t kHeaderBytes = 4096;  // layout, see state_table.cc
constexpr uint64_t kRecordBytes = 80;
constexpr uint64_t kCopyBytes = 40;

class StateTableTest : public testing::Test {
 protected:
  StateTableTest()
      : name_("/tmp/memd-unit-state-" + std::to_string(getpid()) + "-" +
              testing::UnitTest::GetInstance()->current_test_info()->name()) {
    StateTable::RemoveIfExists(name_);
  }
  ~StateTableTest() override { StateTable::RemoveIfExists(name_); }

  // The raw bytes of the object, as a second mapping (what survives a crash).
  uint8_t* Raw() {
    bip::file_mapping file(name_.c_str(), bip::read_write);
    raw_ = bip::mapped_region(file, bip::read_write);
    return static_cast<uint8_t*>(raw_.get_address());
  }

  std::string name_;
  bip::mapped_region raw_;
  StateIdentity id_{3, 1 << 20, 64, 0xabcdef};
};

SlotImage Live(uint64_t offset, uint32_t refs, uint32_t generation = 1) {
  return SlotImage{SlotImage::State::kLive, generation, refs, offset, 128, 100};
}

TEST_F(StateTableTest, WrittenSlotsReadBackAfterGrowingAndReopening) {
  auto table = StateTable::Create(name_, id_);
  ASSERT_TRUE(table.ok()) << table.status();
  (*table)->MarkReady();
  ASSERT_TRUE((*table)->Reserve(5001).ok());
  EXPECT_GE((*table)->capacity(), 5001u);
  (*table)->Write(0, Live(0, 1));
  (*table)->Write(7, Live(640, 2, 9));
  (*table)->Write(5000, SlotImage{SlotImage::State::kRetired, (1u << 24) - 1, 0, 0, 0, 0});
  (*table)->Write(7, Live(640, 3, 9));  // the newer copy wins
  table->reset();

  auto reopened = StateTable::Open(name_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->identity(), id_);
  std::vector<SlotImage> images = (*reopened)->Load();
  ASSERT_EQ(images.size(), 5001u);
  EXPECT_EQ(images[0], Live(0, 1));
  EXPECT_EQ(images[7], Live(640, 3, 9));
  EXPECT_EQ(images[1], SlotImage{}) << "never written: free, generation 1";
  EXPECT_EQ(images[5000].state, SlotImage::State::kRetired);
}

TEST_F(StateTableTest, AWriteCutShortAtAnyByteLeavesTheOldOrTheNewImage) {
  auto table = StateTable::Create(name_, id_);
  ASSERT_TRUE(table.ok());
  (*table)->MarkReady();
  const uint32_t slot = 5;
  // Three writes: copies hold C (older) and A (newer); writing B targets C's copy.
  SlotImage c = Live(64, 1), a = Live(64, 2), b = Live(1024, 7, 2);
  (*table)->Write(slot, c);
  (*table)->Write(slot, a);
  uint8_t* record = Raw() + kHeaderBytes + slot * kRecordBytes;
  uint8_t before[kRecordBytes];
  std::memcpy(before, record, kRecordBytes);
  (*table)->Write(slot, b);
  uint8_t after[kRecordBytes];
  std::memcpy(after, record, kRecordBytes);
  int target = std::memcmp(before, after, kCopyBytes) != 0 ? 0 : 1;
  ASSERT_EQ(std::memcmp(before + (1 - target) * kCopyBytes, after + (1 - target) * kCopyBytes,
                        kCopyBytes), 0) << "a write touches one copy only";
  // Every prefix of the target copy written, the rest still old: A or B only.
  for (uint64_t cut = 0; cut <= kCopyBytes; ++cut) {
    std::memcpy(record, before, kRecordBytes);
    std::memcpy(record + target * kCopyBytes, after + target * kCopyBytes, cut);
    auto reopened = StateTable::Open(name_);
    ASSERT_TRUE(reopened.ok());
    SlotImage got = (*reopened)->Load().at(slot);
    if (cut == kCopyBytes) {
      EXPECT_EQ(got, b) << "complete write";
    } else {
      EXPECT_EQ(got, a) << "write cut after " << cut << " bytes";
    }
  }
}

TEST_F(StateTableTest, IncompleteOrMissingTablesAreNotAdoptable) {
  EXPECT_TRUE(absl::IsNotFound(StateTable::Open(name_).status()));
  auto table = StateTable::Create(name_, id_);
  ASSERT_TRUE(table.ok());
  auto open = StateTable::Open(name_);  // creator died before MarkReady
  EXPECT_TRUE(absl::IsDataLoss(open.status())) << open.status();
  EXPECT_NE(open.status().message().find("incomplete"), std::string::npos);
  EXPECT_FALSE(StateTable::Create(name_, id_).ok()) << "never replaces an existing table";
  (*table)->MarkReady();
  Raw()[8] = 99;  // the header's version field
  auto other_version = StateTable::Open(name_);
  EXPECT_TRUE(absl::IsFailedPrecondition(other_version.status())) << other_version.status();
  EXPECT_NE(other_version.status().message().find("format version 99"), std::string::npos);
}

}  // namespace
}  // namespace memd
