// Kills at every step of a frame's way over a bridge (issue 24): memd ends
// itself (MEMD_TEST_EXIT_AT, server/bridge/exit_point.h: _exit, as a kill -9
// there) at each step in turn, on the same stream, and is started again
// each time; the consumer on node b counts every frame. Fixture: bridge_env.h.
#include <deque>
#include <map>

#include "bridge_env.h"

namespace memd::testing {
namespace {

// Sender: taken before the journal write (the producer not answered: it
// sends again), journaled before the answer, the ack before the journal
// records it. Receiver: mid-pull, and with the message in its channel
// before a consumer took it (no ack yet). Every answered frame arrives once, in
// order; the one send that was journaled but never answered arrives twice
// (the journal's copy, then the producer's repeat: an unanswered send is
// the producer's to repeat, docs/multi-node.md).
TEST_P(BridgeTest, ExitsAtEveryStepOfAFramesWayLoseNoAnsweredFrame) {
  std::map<Node*, std::deque<std::string>> steps = {
      {&a_, {"out-taken:4", "out-journaled:4", "out-acked:4"}}, {&b_, {"in-pulled:4", "in-enqueued:4"}}};
  auto start_next = [&](Node& n) {
    n.env.clear();
    std::deque<std::string>& left = steps[&n];
    if (!left.empty()) {
      n.env = {"MEMD_TEST_EXIT_AT=" + left.front()};
      left.pop_front();
    }
    return n.Start();
  };
  ASSERT_TRUE(start_next(b_));
  ASSERT_TRUE(start_next(a_));
  const int expected = kFrames + 1;  // one frame twice, see above
  auto consumer = Consumer(expected);
  auto producer = Producer(0, kFrames);
  int exits = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(160);
  while (static_cast<int>(got_.size()) < expected && std::chrono::steady_clock::now() < deadline) {
    for (Node* n : {&a_, &b_}) {
      std::optional<int> status = n->process->Wait(std::chrono::milliseconds(0));
      if (!status) continue;
      EXPECT_EQ(ExitCode(status), 86) << "node " << n->name << " ended otherwise";
      ++exits;
      ASSERT_TRUE(start_next(*n)) << "node " << n->name << " did not start again";
    }
    if (auto line = consumer->ReadLine(std::chrono::milliseconds(200))) got_.push_back(*line);
  }
  EXPECT_EQ(exits, 5) << "a step was never reached";
  std::vector<std::string> once;
  int repeats = 0;
  for (const std::string& line : got_) {
    if (!once.empty() && once.back() == line) {
      ++repeats;
    } else {
      once.push_back(line);
    }
  }
  EXPECT_EQ(repeats, 1) << "the journaled, unanswered send arrives twice; nothing else does";
  got_ = once;
  ExpectExactlyOnceInOrder(kFrames);
}

}  // namespace
}  // namespace memd::testing
