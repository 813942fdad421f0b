#include "memd/shared/spin.h"

#include <gtest/gtest.h>

namespace memd {
namespace {

TEST(AdaptiveSpinTest, AWordThatIsReadyEndsThePollAtOnce) {
  Spinners spinners(1);
  AdaptiveSpin spin(50, &spinners);
  int calls = 0;
  EXPECT_TRUE(spin.Poll([&] { return ++calls == 3; }));
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(spin.budget_ns(), 50'000);  // a hit keeps the budget
}

TEST(AdaptiveSpinTest, MissesHalveTheBudgetAndThenStopPolling) {
  Spinners spinners(1);
  AdaptiveSpin spin(40, &spinners);
  EXPECT_FALSE(spin.Poll([] { return false; }));
  EXPECT_EQ(spin.budget_ns(), 20'000);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(spin.Poll([] { return false; }));
  // Four misses in a row: the side sleeps at once, without looking.
  int calls = 0;
  EXPECT_FALSE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 0);
  // A sleep that a longer poll would have caught brings polling back.
  spin.Slept(1'000);
  EXPECT_TRUE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_GT(spin.budget_ns(), 2'500);
}

TEST(AdaptiveSpinTest, ALongSleepDoesNotBringPollingBack) {
  Spinners spinners(1);
  AdaptiveSpin spin(10, &spinners);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(spin.Poll([] { return false; }));
  spin.Slept(500'000'000);  // an idle half second
  int calls = 0;
  EXPECT_FALSE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 0);
}

TEST(AdaptiveSpinTest, ZeroNeverPolls) {
  Spinners spinners(1);
  AdaptiveSpin spin(0, &spinners);
  int calls = 0;
  EXPECT_FALSE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 0);
  spin.Slept(1);
  EXPECT_FALSE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 0);
}

TEST(AdaptiveSpinTest, NoMoreThreadsPollThanTheLimit) {
  Spinners spinners(1);
  ASSERT_TRUE(spinners.TryEnter());  // another thread polls
  EXPECT_FALSE(spinners.TryEnter());
  AdaptiveSpin spin(1000, &spinners);
  int calls = 0;
  EXPECT_FALSE(spin.Poll([&] { return ++calls > 0; }));  // the one place is taken
  EXPECT_EQ(calls, 0);
  spinners.Leave();
  EXPECT_TRUE(spin.Poll([&] { return ++calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_GE(Spinners::Process().limit(), 1);
}

}  // namespace
}  // namespace memd
