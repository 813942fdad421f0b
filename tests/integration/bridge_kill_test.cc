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

// An operator drains a bridged channel, then the sending daemon is killed
// (SIGKILL) and started again. At the sending side a relay queues nothing (a
// send waits until the bridge journaled it), so the drain there releases
// nothing and the journal keeps its window. At the receiving side the drain
// takes the window queued there (frames 6..13): those count as delivered,
// so the restarted sender, which re-offers what it has not seen acknowledged,
// is not believed, and none of them reaches the consumer; every other frame
// arrives once, in order.
TEST_P(BridgeTest, DrainedFramesAreNotDeliveredAgainAfterTheSenderRestarts) {
  if (GetParam() != "grpc") GTEST_SKIP() << "the drain and the journal: the same for both";
  std::unique_ptr<Subprocess> consumer, producer;
  ASSERT_NO_FATAL_FAILURE(StreamWithAFullWindow(&consumer, &producer));
  auto [code, out] = Memctl(a_, {"channel", "drain", "video/frames"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("channel video/frames drained: 0 messages"), std::string::npos) << out;
  EXPECT_EQ(a_.Bridge("out").in_flight(), kWindow) << "the sender's journal keeps its window";
  std::tie(code, out) = Memctl(b_, {"channel", "drain", "video/frames"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("channel video/frames drained: 8 messages"), std::string::npos) << out;

  a_.Kill();  // maybe before b's acknowledgements of the drained frames reached it
  ASSERT_TRUE(a_.Start());
  consumer->CloseStdin();
  ReadFrames(*consumer, kFrames - static_cast<int>(kWindow));
  std::vector<std::string> expected;
  for (int i = 0; i < kFrames; ++i) {
    const bool drained = i >= 6 && i < 6 + static_cast<int>(kWindow);
    if (!drained) expected.push_back("got " + std::to_string(i) + " ok");
  }
  EXPECT_EQ(got_, expected) << "drained frames stay drained; the rest arrive once, in order";
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").in_flight() == 0; },
                      std::chrono::seconds(30)))
      << "in flight: " << a_.Bridge("out").in_flight();
  v1::BridgeStats in = b_.Bridge("in");
  EXPECT_EQ(in.messages(), static_cast<uint64_t>(kFrames)) << "each frame enqueued on b once";
  EXPECT_EQ(a_.Bridge("out").lost(), 0u);
  std::optional<std::string> extra = consumer->ReadLine(std::chrono::seconds(1));
  EXPECT_FALSE(extra.has_value() && extra->rfind("got ", 0) == 0) << "a frame twice: " << *extra;
}

}  // namespace
}  // namespace memd::testing
