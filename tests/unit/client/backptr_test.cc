// memd_memcpy_backptr must produce byte-identical output to libavutil's
// av_memcpy_backptr for every back and count.
#include <vector>

#include <gtest/gtest.h>

extern "C" {
#include <libavutil/mem.h>
}
#include "memd/memd.h"

namespace {

void ExpectSameAsLibavutil(int back, int cnt) {
  constexpr int kPrefix = 256;
  std::vector<uint8_t> ours(kPrefix + cnt + 16), theirs;
  for (int i = 0; i < kPrefix; ++i) ours[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t i = kPrefix; i < ours.size(); ++i) ours[i] = 0xEE;
  theirs = ours;
  memd_memcpy_backptr(ours.data() + kPrefix, back, cnt);
  av_memcpy_backptr(theirs.data() + kPrefix, back, cnt);
  ASSERT_EQ(ours, theirs) << "back " << back << " cnt " << cnt;
}

TEST(BackptrTest, MatchesLibavutilForSmallBacksAndCounts) {
  for (int back = 0; back <= 70; ++back) {
    for (int cnt = 0; cnt <= 300; ++cnt) ExpectSameAsLibavutil(back, cnt);
  }
}

TEST(BackptrTest, MatchesLibavutilForLargeCounts) {
  for (int back : {1, 2, 3, 4, 5, 7, 16, 17, 64, 255}) {
    for (int cnt : {4096, 65536, 65537, 1 << 20}) ExpectSameAsLibavutil(back, cnt);
  }
}

}  // namespace
