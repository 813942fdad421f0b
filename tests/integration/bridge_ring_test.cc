// A loop of bridges over three daemons (issue 24, B23): a bridges
// video/frames to b, b to c, c back to a. No daemon sees the loop in its
// configuration (B21 covers two), so each message carries its hop count and a
// receiver refuses one that crossed more than limits::kMaxBridgeHops (8)
// bridges: every frame is moved exactly 8 times, then lost, counted and
// logged naming the hop count and the limit, and the ring goes quiet.
// Fixture: bridge_env.h (its certificates; the nodes here are on loopback).
#include <array>
#include <thread>

#include "bridge_env.h"

namespace memd::testing {
namespace {

constexpr uint64_t kMaxHops = 8;  // limits::kMaxBridgeHops, as the log states it

TEST_P(BridgeTest, ARingOfThreeBridgesMovesAFrameAtMostTheHopLimitThenLosesIt) {
  if (GetParam() != "grpc") GTEST_SKIP() << "hops are the engine's: the same for both transports";
  constexpr int kRingFrames = 3;
  const int base = 7000 + ::getpid() % 300 * 3;
  const std::array<std::string, 3> names = {"a", "b", "c"};
  std::array<Node, 3> ring;
  for (int i = 0; i < 3; ++i) {
    const int next = (i + 1) % 3, prev = (i + 2) % 3;
    ring[i] = Node{"", names[i], dir_, "127.0.0.1", names[next], "127.0.0.1",
                   {"--bridge", "video/frames=" + names[next], "--peer",
                    names[prev] + "=127.0.0.1:" + std::to_string(base + prev)}};
    ring[i].port = std::to_string(base + i);
    ring[i].peer_port = std::to_string(base + next);
    ring[i].pool = "video=32MiB,bridge=true";
  }
  for (Node& n : ring) ASSERT_TRUE(n.Start() && Serving(n)) << "node " << n.name;
  Node &a = ring[0], &c = ring[2];

  Subprocess producer({BridgeClientBinary(), "produce", "frames", "0",
                       std::to_string(kRingFrames), "4096"},
                      a.ClientEnv());
  EXPECT_NE(producer.ReadAll(std::chrono::seconds(60)).find("done"), std::string::npos);
  auto moved = [&] {
    uint64_t total = 0;
    for (const Node& n : ring) total += n.Bridge("in").messages();
    return total;
  };
  auto quiet = [&] {
    for (const Node& n : ring) {
      if (n.Bridge("out").in_flight() != 0) return false;
    }
    return c.Bridge("out").lost() == kRingFrames;
  };
  ASSERT_TRUE(WaitFor(quiet, std::chrono::seconds(60)))
      << "moved " << moved() << " times, lost " << c.Bridge("out").lost();
  // Frame hops 1..8 went in at b, c, a, b, c, a, b, c; the ninth, into a, was refused.
  EXPECT_EQ(moved(), kRingFrames * kMaxHops);
  EXPECT_EQ(ring[1].Bridge("in").messages(), kRingFrames * 3u);
  EXPECT_EQ(ring[2].Bridge("in").messages(), kRingFrames * 3u);
  EXPECT_EQ(a.Bridge("in").messages(), kRingFrames * 2u);
  EXPECT_EQ(a.Bridge("in").lost(), static_cast<uint64_t>(kRingFrames));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // pacing: did anything move since?
  EXPECT_EQ(moved(), kRingFrames * kMaxHops) << "the ring went on after the refusals";

  const std::string refused = "crossed 9 bridges, more than the limit of 8 (kMaxBridgeHops)";
  std::string log = a.LogUntil(refused, std::chrono::seconds(10));
  EXPECT_NE(log.find("bridge 'video/frames' from node 'c': message seq "), std::string::npos)
      << log;
  EXPECT_NE(log.find(refused), std::string::npos) << log;
  log = c.LogUntil("the peer refused it for good", std::chrono::seconds(10));
  EXPECT_NE(log.find("is lost: the peer refused it for good: offer seq"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace memd::testing
