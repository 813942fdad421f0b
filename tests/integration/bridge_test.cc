// Bridges between two real daemons (issue 19, docs/multi-node.md): frames
// produced on node a arrive on node b exactly once and in order, across
// SIGKILL of either daemon and a link that goes down and up; the FFmpeg
// pipeline example split over the two nodes. Fixture: bridge_env.h.
#include "bridge_env.h"

namespace memd::testing {
namespace {

TEST_P(BridgeTest, FramesCrossTheLinkExactlyOnceInOrder) {
  a_.extra.insert(a_.extra.end(), {"--metrics-listen", "127.0.0.1:9464"});
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto consumer = Consumer(kFrames);
  auto producer = Producer(0, kFrames);
  ReadFrames(*consumer, kFrames);
  ExpectExactlyOnceInOrder(kFrames);
  EXPECT_EQ(producer->ReadAll(std::chrono::seconds(30)).find("done") != std::string::npos, true);
  // The last acknowledgement may trail the consumer's last receive.
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").messages() == kFrames; }));
  v1::BridgeStats out = a_.Bridge("out");
  EXPECT_EQ(out.name(), "video/frames");
  EXPECT_EQ(out.peer(), "b");
  EXPECT_EQ(out.link(), "up");
  EXPECT_EQ(out.transport(), GetParam());
  EXPECT_EQ(out.bytes(), uint64_t{kFrames} * kFrameBytes);
  EXPECT_EQ(out.in_flight(), 0u);
  v1::BridgeStats in = b_.Bridge("in");
  EXPECT_EQ(in.peer(), "a");
  EXPECT_EQ(in.messages(), static_cast<uint64_t>(kFrames));
  // The same counters on a's Prometheus endpoint (inside its namespace).
  std::string metrics = Metrics(ns_a_);
  ASSERT_FALSE(metrics.empty());
  EXPECT_NE(metrics.find("memd_bridge_messages_total{bridge=\"video/frames\",peer=\"b\","
                         "direction=\"out\",transport=\"" + GetParam() + "\"} 24"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("memd_bridge_link_up{bridge=\"video/frames\""), std::string::npos);
  // Encrypted by default (issue 24): grpc by TLS, ucx by AES-256-GCM.
  EXPECT_TRUE(out.encrypted());
  EXPECT_TRUE(in.encrypted());
  EXPECT_EQ(in.tag_failures(), 0u);
  EXPECT_NE(metrics.find("memd_bridge_link_encrypted{bridge=\"video/frames\",peer=\"b\","
                         "direction=\"out\",transport=\"" + GetParam() + "\"} 1"),
            std::string::npos) << metrics;
}

TEST_P(BridgeTest, SenderKilledMidStreamLosesAndRepeatsNothing) {
  std::unique_ptr<Subprocess> consumer, producer;
  ASSERT_NO_FATAL_FAILURE(StreamWithAFullWindow(&consumer, &producer));
  // Node b has the window queued: a's restart resends it, b drops the repeats.
  a_.Kill();
  ASSERT_TRUE(a_.Start());
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").in_flight() == kWindow; }))
      << "the restarted sender did not re-adopt its unacknowledged messages";
  // Up: b answered the hello with "delivered up to frame 5", so a resends all 8.
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").link() == "up"; }, std::chrono::seconds(30)));
  consumer->CloseStdin();
  ReadFrames(*consumer, kFrames);
  ExpectExactlyOnceInOrder(kFrames);
  EXPECT_GE(b_.Bridge("in").retries(), kWindow) << "b did not see the resent window";
}

TEST_P(BridgeTest, ReceiverKilledMidStreamLosesAndRepeatsNothing) {
  std::unique_ptr<Subprocess> consumer, producer;
  ASSERT_NO_FATAL_FAILURE(StreamWithAFullWindow(&consumer, &producer));
  // The window queued on b dies with it; a sends it again.
  b_.Kill();
  ASSERT_TRUE(b_.Start());
  consumer->CloseStdin();
  ReadFrames(*consumer, kFrames);
  ExpectExactlyOnceInOrder(kFrames);
}

TEST_P(BridgeTest, LinkDownAndUpLosesAndRepeatsNothing) {
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto consumer = Consumer(kFrames);
  auto producer = Producer(0, kFrames);
  ReadFrames(*consumer, 6);
  ASSERT_EQ(Shell({"ip", "-n", ns_a_, "link", "set", veth_a_, "down"}), 0);
  // The sender notices (keepalive) and retries; nothing is lost meanwhile.
  EXPECT_TRUE(WaitFor([&] { return a_.Bridge("out").link() != "up"; }, std::chrono::seconds(30)));
  ASSERT_EQ(Shell({"ip", "-n", ns_a_, "link", "set", veth_a_, "up"}), 0);
  ReadFrames(*consumer, kFrames);
  ExpectExactlyOnceInOrder(kFrames);
  EXPECT_GT(a_.Bridge("out").retries(), 0u);
}

// B08: a sender killed with a full window and restarted when no client is
// left to hand its pool's memory back: after --reclaim-grace the pool starts
// afresh, the journal's messages are logged as lost (naming each seq and the
// grace), and the bridge goes on with the next message.
TEST_P(BridgeTest, SenderRestartedWithoutItsMemoryLogsTheJournalsMessagesAsLost) {
  if (GetParam() != "grpc") GTEST_SKIP() << "the engine's recovery: the same for both transports";
  a_.reclaim_grace = "1s";
  ASSERT_TRUE(a_.Start());  // b is not up: the window fills and stays
  auto producer = Producer(0, kWindow);
  EXPECT_NE(producer->ReadAll(std::chrono::seconds(60)).find("done"), std::string::npos);
  ASSERT_EQ(a_.Bridge("out").in_flight(), kWindow);
  a_.Kill();  // the producer is gone too: nobody maps the pool's memory
  ASSERT_TRUE(a_.Start());
  std::string log = a_.LogUntil("message seq 8 is lost", std::chrono::seconds(30));
  for (int seq = 1; seq <= static_cast<int>(kWindow); ++seq) {
    EXPECT_NE(log.find("bridge 'video/frames': message seq " + std::to_string(seq) +
                       " is lost: its buffers were not re-adopted (no client handed pool "
                       "'video''s memory back within --reclaim-grace 1s)"),
              std::string::npos) << log;
  }
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").in_flight() == 0; }));
  // The daemon serves on and the bridge goes on: the next frame is seq 9.
  ASSERT_TRUE(b_.Start());
  auto consumer = Consumer(1);
  auto next = Producer(kWindow, 1);
  ReadFrames(*consumer, 1);
  EXPECT_EQ(got_, std::vector<std::string>{"got 8 ok"});
  EXPECT_EQ(a_.Bridge("out").last_seq(), kWindow + 1);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Transports, BridgeTest, BridgeTransports(), TransportName);

}  // namespace memd::testing

#if MEMD_TEST_PIPELINE
namespace memd::testing {
namespace {

// The FFmpeg pipeline example split over the two nodes: decode on a, its
// channel 'raw' bridged to b, filter and encode on b; every frame reaches
// the encoder with the decoder's checksum.
TEST_P(BridgeTest, FFmpegPipelineSplitOverTwoNodes) {
  a_.extra = {"--bridge", "video/raw=b"};
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  std::string in = dir_ + "/in.mkv";
  auto [made, why] = RunCommand({"/usr/bin/ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                                 "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "mpeg4",
                                 "-q:v", "3", "-pix_fmt", "yuv420p", in});
  ASSERT_EQ(made, 0) << why;
  auto path = [&](const std::string& name) { return dir_ + "/" + name; };
  Subprocess decode({MEMD_PIPELINE_DECODE, "--input", in, "--checksums", path("dec.txt"),
                     "--report", path("dec.json"), "--timeout-ms", "30000"},
                    a_.ClientEnv());
  Subprocess filter({MEMD_PIPELINE_FILTER, "--mode", "pass", "--checksums", path("filt.txt"),
                     "--report", path("filt.json"), "--width", "160", "--height", "120"},
                    b_.ClientEnv());
  Subprocess encode({MEMD_PIPELINE_ENCODE, "--output", path("out.mkv"), "--checksums",
                     path("enc.txt"), "--report", path("enc.json"), "--timeout-ms", "30000"},
                    b_.ClientEnv());
  EXPECT_EQ(ExitCode(decode.Wait(std::chrono::seconds(90))), 0);
  EXPECT_EQ(ExitCode(filter.Wait(std::chrono::seconds(90))), 0);
  EXPECT_EQ(ExitCode(encode.Wait(std::chrono::seconds(90))), 0);
  auto read = [](const std::string& p) {
    std::ifstream f(p);
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    return lines;
  };
  std::vector<std::string> decoded = read(path("dec.txt")), encoded = read(path("enc.txt"));
  EXPECT_EQ(decoded.size(), 50u);
  EXPECT_EQ(encoded, decoded) << "the encoder on b saw other frames than the decoder on a";
  EXPECT_EQ(a_.Bridge("out").messages(), 51u) << "50 frames and the end of stream";
}

}  // namespace
}  // namespace memd::testing
#endif
