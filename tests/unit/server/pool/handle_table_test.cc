#include "pool/handle_table.h"

#include <set>

#include <gtest/gtest.h>

#include "memd/shared/handle.h"

namespace memd {
namespace {

TEST(HandleTableTest, HandlesAreNeverReissued) {
  HandleTable table(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    uint64_t h = table.Insert(1, 10);
    ASSERT_TRUE(seen.insert(h).second) << "handle reissued: " << h;
    ASSERT_NE(h, 0u);
    EXPECT_EQ(DecodeHandle(h).pool_index, 7u);
    table.Erase(h);
    EXPECT_EQ(table.Find(h), nullptr);
  }
  EXPECT_EQ(table.live(), 0u);
}

TEST(HandleTableTest, StaleAndNeverIssuedAreDistinguished) {
  HandleTable table(0);
  uint64_t h = table.Insert(1, 10);
  table.Erase(h);
  EXPECT_NE(table.DescribeMissing(h).find("freed"), std::string::npos);
  EXPECT_NE(table.DescribeMissing(EncodeHandle({0, 1, 999})).find("never issued"), std::string::npos);
  EXPECT_NE(table.DescribeMissing(EncodeHandle({3, 1, 0})).find("pool index 3"), std::string::npos);
  EXPECT_EQ(table.Find(0), nullptr);
}

TEST(HandleTableTest, SlotIsRetiredWhenGenerationIsExhausted) {
  HandleTable table(0);
  uint64_t h = table.Insert(1, 1);
  // Burn the slot's generations quickly by reusing slot 0.
  for (uint32_t g = 1; g < kMaxGeneration; ++g) {
    table.Erase(h);
    h = table.Insert(1, 1);
    ASSERT_EQ(DecodeHandle(h).slot, 0u);
  }
  ASSERT_EQ(DecodeHandle(h).generation, kMaxGeneration);
  table.Erase(h);
  EXPECT_EQ(table.retired_slots(), 1u);
  uint64_t next = table.Insert(1, 1);
  EXPECT_NE(DecodeHandle(next).slot, 0u);  // slot 0 is never used again
}

}  // namespace
}  // namespace memd
