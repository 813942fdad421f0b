// Bridges refused and managed (issue 19): an untrusted peer, pools not
// marked for bridging, certificates of strangers, reads of what is not in
// flight (docs/errors.md B01-B16); memctl bridge add/list/remove; [[peer]]
// and [[bridge]] in memd.toml. Fixture: bridge_env.h.
#include "bridge_env.h"

namespace memd::testing {
namespace {

TEST_P(BridgeTest, UntrustedPeerIsRefused) {
  b_.cert = "rogue-b";  // signed by a CA node a does not trust
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto producer = Producer(0, 1);
  ASSERT_TRUE(WaitFor([&] { return !a_.Bridge("out").last_error().empty(); },
                      std::chrono::seconds(30)));
  v1::BridgeStats out = a_.Bridge("out");
  EXPECT_NE(out.link(), "up");
  EXPECT_EQ(out.messages(), 0u);
  EXPECT_EQ(b_.Bridges().bridges_size(), 0) << "node b accepted a stream from an untrusted link";
}

TEST_P(BridgeTest, ReceivingPoolNotMarkedForBridgingIsRefused) {
  b_.pool = "video=160MiB";
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  ASSERT_TRUE(WaitFor([&] { return !a_.Bridge("out").last_error().empty(); },
                      std::chrono::seconds(30)));
  EXPECT_NE(a_.Bridge("out").last_error().find(
                "pool 'video' on node 'b' is not marked for bridging"),
            std::string::npos)
      << a_.Bridge("out").last_error();
}

// B01: the sender's own pool must be marked; memd refuses to start otherwise.
TEST_P(BridgeTest, SendingPoolNotMarkedForBridgingStopsTheStart) {
  auto [code, out] = RunCommand(
      {"/bin/sh", "-c",
       MemdBinary() + " --instance bridge-x --state-dir " + dir_ + "/x --listen unix://" + dir_ +
           "/x.sock --listen 127.0.0.1:7449 --tls-cert " + dir_ + "/a.pem --tls-key " + dir_ +
           "/a.key --tls-client-ca " + dir_ + "/ca.pem --node a --peer b=127.0.0.1:7450 "
           "--pool video=16MiB --bridge video/frames=b 2>&1"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("bridge 'video/frames': pool 'video' is not marked for bridging"),
            std::string::npos)
      << out;
}


// memctl bridge add, list and remove while serving; frames cross a bridge
// added at run time; refusals name the value.
TEST_P(BridgeTest, MemctlAddsListsAndRemovesBridges) {
  a_.extra.clear();  // no configured bridge
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto memctl = [&](std::vector<std::string> args) { return Memctl(a_, std::move(args)); };
  auto [bad_code, bad] = memctl({"bridge", "add", "video", "frames", "nobody"});
  EXPECT_EQ(bad_code, 1);
  EXPECT_NE(bad.find("bridge 'video/frames': no peer named 'nobody' (configured: b)"),
            std::string::npos) << bad;
  auto [add_code, added] = memctl({"bridge", "add", "video", "frames", "b"});
  ASSERT_EQ(add_code, 0) << added;
  auto [again_code, again] = memctl({"bridge", "add", "video", "frames", "b"});
  EXPECT_EQ(again_code, 1);
  EXPECT_NE(again.find("bridge 'video/frames' exists"), std::string::npos) << again;

  auto consumer = Consumer(3);
  auto producer = Producer(0, 3);
  ReadFrames(*consumer, 3);
  ExpectExactlyOnceInOrder(3);
  ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").messages() == 3; }));
  auto [list_code, list] = memctl({"-o", "json", "bridge", "list"});
  EXPECT_EQ(list_code, 0);
  EXPECT_NE(list.find("\"name\": \"video/frames\""), std::string::npos) << list;
  EXPECT_NE(list.find("\"messages\": 3"), std::string::npos) << list;

  auto [remove_code, removed] = memctl({"bridge", "remove", "video/frames"});
  EXPECT_EQ(remove_code, 0) << removed;
  EXPECT_NE(removed.find("0 messages in flight were dropped"), std::string::npos) << removed;
  EXPECT_EQ(a_.Bridges().bridges_size(), 0);
  auto [gone_code, gone] = memctl({"bridge", "remove", "video/frames"});
  EXPECT_EQ(gone_code, 1);
  EXPECT_NE(gone.find("no bridge named 'video/frames' (this daemon has: none)"),
            std::string::npos) << gone;

  // Added again, it goes on from its last seq: b takes the next frames as new.
  ASSERT_EQ(memctl({"bridge", "add", "video", "frames", "b"}).first, 0);
  auto consumer2 = Consumer(3);
  auto producer2 = Producer(3, 3);
  got_.clear();
  ReadFrames(*consumer2, 3);
  EXPECT_EQ(got_, (std::vector<std::string>{"got 3 ok", "got 4 ok", "got 5 ok"}));
  EXPECT_EQ(b_.Bridge("in").retries(), 0u) << "b took a frame of the new bridge for a repeat";
}

// A bridge added with memctl is kept in a's state directory: it comes back
// after a kill -9 and after a clean stop, and frames cross it; removed, it
// stays gone. Added at run time and then configured under the same name:
// the configured one is kept and the added one forgotten.
TEST_P(BridgeTest, BridgesAddedAtRunTimeSurviveRestarts) {
  if (GetParam() != "grpc") GTEST_SKIP() << "the engine's runtime list: the same for both transports";
  a_.extra.clear();  // no configured bridge
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto restart = [&](int signal) {
    a_.process->Kill(signal);
    a_.process->Wait();
    return a_.Start();
  };
  auto names = [&] {
    std::vector<std::string> out;
    v1::ListBridgesResponse list = a_.Bridges();
    for (const v1::BridgeStats& b : list.bridges()) out.push_back(b.name() + ">" + b.peer());
    return out;
  };
  const std::vector<std::string> kOne = {"video/frames>b"};
  ASSERT_EQ(Memctl(a_, {"bridge", "add", "video", "frames", "b"}).first, 0);
  ASSERT_TRUE(restart(SIGKILL));
  EXPECT_EQ(names(), kOne) << "kill -9 lost the bridge added at run time";
  auto consumer = Consumer(2);
  auto producer = Producer(0, 2);
  ReadFrames(*consumer, 2);
  ExpectExactlyOnceInOrder(2);
  ASSERT_TRUE(restart(SIGTERM));
  EXPECT_EQ(names(), kOne) << "a clean stop lost the bridge added at run time";

  ASSERT_EQ(Memctl(a_, {"bridge", "remove", "video/frames"}).first, 0);
  ASSERT_TRUE(restart(SIGKILL));
  EXPECT_EQ(names(), std::vector<std::string>{}) << "a removed bridge came back";

  // The same name added at run time, then in the configuration.
  ASSERT_EQ(Memctl(a_, {"bridge", "add", "video", "frames", "b"}).first, 0);
  a_.extra = {"--bridge", "video/frames=b"};
  ASSERT_TRUE(restart(SIGTERM));
  EXPECT_EQ(names(), kOne);
  auto [removed, why] = Memctl(a_, {"bridge", "remove", "video/frames"});
  EXPECT_EQ(removed, 0) << why;
  a_.extra.clear();
  ASSERT_TRUE(restart(SIGTERM));
  EXPECT_EQ(names(), std::vector<std::string>{}) << "the added bridge outlived the configured one";
}

// [[peer]], [[bridge]], node, bridge_transport and a pool's bridge key in
// memd.toml read as the flags do, and --check-config prints them back.
TEST_P(BridgeTest, TheConfigFileTakesPeersAndBridges) {
  std::string config = dir_ + "/memd.toml";
  std::ofstream(config) << "listen = [\"unix://" << dir_ << "/c.sock\", \"127.0.0.1:7451\"]\n"
                        << "tls_cert = \"" << dir_ << "/a.pem\"\ntls_key = \"" << dir_
                        << "/a.key\"\ntls_client_ca = \"" << dir_ << "/ca.pem\"\n"
                        << "node = \"a\"\nbridge_transport = \"grpc\"\n"
                        << "[[pool]]\nname = \"video\"\nsize = \"16MiB\"\nbridge = true\n"
                        << "[[peer]]\nname = \"b\"\naddress = \"10.0.0.2:7441\"\n"
                        << "[[bridge]]\npool = \"video\"\nchannel = \"frames\"\npeer = \"b\"\n";
  auto [code, out] = RunCommand({"/bin/sh", "-c", "\"$0\" --config \"$1\" --check-config 2>&1",
                                 MemdBinary(), config});
  EXPECT_EQ(code, 0) << out;
  for (const char* part : {"node = \"a\"", "bridge_transport = \"grpc\"", "bridge = true",
                           "[[peer]]\nname = \"b\"\naddress = \"10.0.0.2:7441\"",
                           "[[bridge]]\npool = \"video\"\nchannel = \"frames\"\npeer = \"b\""}) {
    EXPECT_NE(out.find(part), std::string::npos) << part << " missing from:\n" << out;
  }
  std::ofstream(config, std::ios::app) << "[[bridge]]\npool = \"video\"\n";
  auto [bad, why] = RunCommand({"/bin/sh", "-c", "\"$0\" --config \"$1\" --check-config 2>&1",
                                MemdBinary(), config});
  EXPECT_EQ(bad, 2) << why;
  EXPECT_NE(why.find("every [[bridge]] needs pool, channel, peer"), std::string::npos) << why;
}

// B06, B07: a Bridge call needs a configured peer's certificate, and Read
// serves only ranges of messages in flight to the caller; B12, B15, B16: a
// peer's bad hellos and offers. One daemon on the loopback of the test's own
// namespace; the test calls as node b and node c.
TEST_P(BridgeTest, PeersAreCheckedByCertificateAndReadOnlyWhatIsInFlightToThem) {
  Node r = LoneNode();
  ASSERT_TRUE(r.Start() && Serving(r));
  auto call_as = [&](const std::string& node) {
    auto stub = StubAs(node, r);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::BridgeReadRequest request;
    request.set_region("video");
    request.set_offset_bytes(0);
    request.set_length_bytes(4096);
    auto reader = stub->Read(&context, request);
    v1::BridgeChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk)) << "node " << node << " read pool bytes";
    return reader->Finish();
  };
  grpc::Status stranger = call_as("c");
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stranger.error_message(),
            "node 'c' (the caller's certificate) is not a peer of node 'a' (peers: b)");
  grpc::Status peer = call_as("b");
  if (GetParam() == "grpc") {
    EXPECT_EQ(peer.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(peer.error_message(),
              "read of [0, 4096) in pool 'video' refused: it is not in flight to node 'b' (no "
              "message offered to it and not yet acknowledged holds it)");
  } else {
    EXPECT_EQ(peer.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << peer.error_message();
  }

  // B16, B12, B15: Deliver streams from node b (a peer) with a hello naming
  // another node, with the other transport, and offers over the limits. Each
  // ends its stream alone; the daemon serves on and holds nothing of them.
  auto deliver = [&](const v1::BridgeHello& hello, std::vector<v1::BridgeOffer> offers) {
    Delivery d = DeliverAs(r, hello, offers);
    if (!d.acks.empty()) {
      EXPECT_EQ(d.acks.front().delivered_seq(), 0u);
    }
    return d.status;
  };
  const std::string other = GetParam() == "grpc" ? "ucx" : "grpc";
  v1::BridgeHello hello;
  hello.set_node("x");
  hello.set_transport(GetParam());
  grpc::Status named = deliver(hello, {});
  EXPECT_EQ(named.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(named.error_message(), "hello names node 'x' but the certificate is node 'b'");
  hello.set_node("b");
  hello.set_transport(other);
  grpc::Status mismatch = deliver(hello, {});
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(mismatch.error_message(),
            "bridge 'video/inbound' from node 'b' uses transport '" + other + "'; node 'a' uses '" +
                GetParam() + "' (--bridge-transport must match)");
  // The limits are checked by the Inbound after the transport connected to
  // the sender's address: a UCX worker address the test does not have.
  if (GetParam() == "grpc") {
    hello.set_transport("grpc");
    v1::BridgeOffer many;
    many.set_seq(1);
    for (int i = 0; i < 65; ++i) many.add_buffers()->set_size_bytes(4096);
    grpc::Status buffers = deliver(hello, {many});
    EXPECT_EQ(buffers.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(buffers.error_message(),
              "offer seq 1 carries 65 buffers and 0 bytes of metadata; the limits are 64 and 4096");
    v1::BridgeOffer wordy;
    wordy.set_seq(1);
    wordy.add_buffers()->set_size_bytes(4096);
    wordy.set_metadata(std::string(4097, 'm'));
    grpc::Status metadata = deliver(hello, {wordy});
    EXPECT_EQ(metadata.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(metadata.error_message(),
              "offer seq 1 carries 1 buffers and 4097 bytes of metadata; the limits are 64 and 4096");
  }
  auto [stats_code, stats] =
      Memctl(r, {"stats", "--json"});
  EXPECT_EQ(stats_code, 0) << "the daemon stopped serving";
  EXPECT_NE(stats.find("\"allocs\": 0,"), std::string::npos) << "a refused offer allocated: " << stats;
  EXPECT_EQ(stats.find("\"inbound\""), std::string::npos) << "a refused offer made a channel";
}

}  // namespace
}  // namespace memd::testing
