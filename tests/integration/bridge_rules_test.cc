// The rules a bridge keeps against its peer and its configuration (issue 24,
// docs/multi-node.md "Rules"): seqs only in order (B19, B22: a peer that is
// not memd, the test itself speaking bridge.proto), a frame the receiver can
// never take lost for good and counted instead of wedging the bridge (B20),
// and no bridge loop (B21). Fixture: bridge_env.h.
#include <limits>

#include "bridge_env.h"

namespace memd::testing {
namespace {

v1::BridgeOffer Offer(uint64_t seq, const std::string& metadata, uint64_t skipped_before = 0) {
  v1::BridgeOffer o;
  o.set_seq(seq);
  o.set_metadata(metadata);  // no buffers: nothing to pull from the test
  o.set_skipped_before(skipped_before);
  return o;
}

// Issue 24 defect 8: an offer with seq 2^64-1 was taken and every later one
// dropped as a repeat; 5 then 3 dropped 3 silently; a second hello was
// ignored. Now only the next seq (or a repeat, or a declared skip of at most
// 8) is taken; anything else ends the stream naming both seqs.
TEST_P(BridgeTest, APeersOffersAreTakenOnlyInSeqOrder) {
  if (GetParam() != "grpc") {
    GTEST_SKIP() << "the Inbound first connects to the sender's UCX worker, which the test lacks";
  }
  Node r = LoneNode();
  ASSERT_TRUE(r.Start() && Serving(r));
  v1::BridgeHello hello;
  hello.set_node("b");
  hello.set_transport("grpc");
  const std::string prefix = "bridge 'video/inbound' from node 'b': ";

  Delivery top = DeliverAs(r, hello, {Offer(std::numeric_limits<uint64_t>::max(), "top")});
  EXPECT_EQ(top.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(top.status.error_message(),
            prefix + "offer seq 18446744073709551615 refused: expected seq 1 (or a repeat of a "
                     "seq up to 0); the sender declared 0 seqs skipped before it, at most 8 may be");

  // Not silenced: seq 1 is taken; 5 is refused naming 2; 3 never arrives.
  Delivery jump = DeliverAs(r, hello, {Offer(1, "one"), Offer(5, "five"), Offer(3, "three")});
  EXPECT_EQ(jump.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(jump.status.error_message(),
            prefix + "offer seq 5 refused: expected seq 2 (or a repeat of a seq up to 1); the "
                     "sender declared 0 seqs skipped before it, at most 8 may be");
  v1::BridgeStats in = r.Bridge("in");
  EXPECT_EQ(in.messages(), 1u);
  EXPECT_EQ(in.last_seq(), 1u);

  // A repeat is dropped, a skip the sender declares (lost messages) is
  // taken, a second hello ends the stream.
  v1::BridgeOffer again_hello;
  *again_hello.mutable_hello() = hello;
  again_hello.set_seq(5);
  Delivery skip = DeliverAs(r, hello, {Offer(1, "one again"), Offer(4, "four", 2), again_hello});
  EXPECT_EQ(skip.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(skip.status.error_message(),
            prefix + "a second hello on one Deliver stream (with offer seq 5); a hello comes "
                     "once, first");
  in = r.Bridge("in");
  EXPECT_EQ(in.messages(), 2u);
  EXPECT_EQ(in.last_seq(), 4u);
  EXPECT_EQ(in.retries(), 1u) << "the repeat of seq 1";

  // A skip wider than a sender's window (8) is no honest gap.
  Delivery wide = DeliverAs(r, hello, {Offer(14, "far", 9)});
  EXPECT_EQ(wide.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wide.status.error_message(),
            prefix + "offer seq 14 refused: expected seq 5 (or a repeat of a seq up to 4); the "
                     "sender declared 9 seqs skipped before it, at most 8 may be");

  // B20 at the receiver: an offer its 16 MiB pool can never hold is refused
  // in an ack, the stream goes on and takes the next seq.
  v1::BridgeOffer huge = Offer(5, "huge");
  huge.add_buffers()->set_size_bytes(uint64_t{1} << 30);
  Delivery refused = DeliverAs(r, hello, {huge, Offer(6, "six")});
  EXPECT_TRUE(refused.status.ok()) << refused.status.error_message();
  std::string reason;
  for (const v1::BridgeAck& a : refused.acks) {
    if (a.refused_seq() == 5) reason = a.refused_reason();
  }
  EXPECT_EQ(reason,
            "offer seq 5 needs more than the 16.0 MiB (16777216 bytes) of pool 'video' in its 1 "
            "buffers");
  in = r.Bridge("in");
  EXPECT_EQ(in.messages(), 3u);
  EXPECT_EQ(in.last_seq(), 6u);
  auto [code, stats] = Memctl(r, {"stats", "--json"});
  EXPECT_EQ(code, 0) << "the daemon stopped serving";
  EXPECT_NE(stats.find("\"allocs\": 0,"), std::string::npos) << "a refused offer allocated: " << stats;
}

// Issue 24 defect 6: a frame larger than the receiver's pool was refused,
// offered again every 300 ms, and every later frame waited behind it. Now
// the sender drops it (logged and counted as lost with its seq, B20) and
// the frames after it arrive.
TEST_P(BridgeTest, AFrameLargerThanTheReceiversPoolIsLostCountedAndTheBridgeGoesOn) {
  b_.pool = "video=16MiB,bridge=true";
  a_.extra.insert(a_.extra.end(), {"--metrics-listen", "127.0.0.1:9464"});
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto consumer = Consumer(3);
  auto produce = [&](int first, int count, size_t bytes) {
    Subprocess p({BridgeClientBinary(), "produce", "frames", std::to_string(first),
                  std::to_string(count), std::to_string(bytes)},
                 a_.ClientEnv());
    return p.ReadAll(std::chrono::seconds(60));
  };
  EXPECT_NE(produce(0, 1, 20 << 20).find("done"), std::string::npos);
  EXPECT_NE(produce(1, 3, 1 << 20).find("done"), std::string::npos);
  ReadFrames(*consumer, 3);
  EXPECT_EQ(got_, (std::vector<std::string>{"got 1 ok", "got 2 ok", "got 3 ok"}));
  std::string log = a_.LogUntil("message seq 1 is lost", std::chrono::seconds(30));
  EXPECT_NE(log.find("bridge 'video/frames' to peer 'b': message seq 1 is lost: the peer refused "
                     "it for good: offer seq 1 needs more than the 16.0 MiB (16777216 bytes) of "
                     "pool 'video' in its 1 buffers"),
            std::string::npos) << log;
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").in_flight() == 0; }));
  v1::BridgeStats out = a_.Bridge("out");
  EXPECT_EQ(out.lost(), 1u);
  EXPECT_EQ(out.messages(), 3u);
  auto [code, list] = Memctl(a_, {"bridge", "list", "-o", "json"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(list.find("\"lost\": 1"), std::string::npos) << list;
  std::string metrics = Metrics(ns_a_);
  EXPECT_NE(metrics.find("memd_bridge_lost_total{bridge=\"video/frames\",peer=\"b\","
                         "direction=\"out\",transport=\"" + GetParam() + "\"} 1"),
            std::string::npos) << metrics;
}

// Issue 24 defect 7: a bridging video/frames to b and b bridging it back
// made three messages bounce ~900 times a second. A loop is refused when
// added (memctl) and, when configured on both sides, at each hello (B21).
TEST_P(BridgeTest, ABridgeLoopIsRefusedWhenAddedAndWhenConfigured) {
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").link() == "up"; }, std::chrono::seconds(30)));
  auto [code, added] = Memctl(b_, {"bridge", "add", "video", "frames", "a"});
  EXPECT_NE(code, 0);
  EXPECT_NE(added.find("bridge 'video/frames' to peer 'a' is refused: peer 'a' bridges into it "
                       "(its bridge 'video/frames'): a loop; a channel is bridged one way"),
            std::string::npos) << added;

  b_.Kill();
  b_.extra = {"--bridge", "video/frames=a"};
  ASSERT_TRUE(b_.Start());
  for (auto [sender, receiver] : {std::pair{&a_, &b_}, std::pair{&b_, &a_}}) {
    const std::string loop = "bridge 'video/frames' from node '" + sender->name +
                             "' is refused: it delivers into channel 'frames' of pool 'video', "
                             "which node '" + receiver->name + "' bridges back to node '" +
                             sender->name + "' (bridge 'video/frames'): a loop";
    EXPECT_TRUE(WaitFor([&] { return sender->Bridge("out").last_error().find(loop) !=
                                     std::string::npos; },
                        std::chrono::seconds(30)))
        << sender->name << ": " << sender->Bridge("out").last_error();
    EXPECT_NE(sender->Bridge("out").link(), "up");
  }
}

}  // namespace
}  // namespace memd::testing
