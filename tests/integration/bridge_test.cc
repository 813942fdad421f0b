// Bridges between two real daemons in two network namespaces joined by a
// veth pair, made by the test (issue 19): frames produced on node a arrive
// on node b exactly once and in order, across SIGKILL of either daemon, a
// link that goes down and up; an untrusted peer and a pool not marked for
// bridging are refused with clear errors. Needs root and `ip`, `openssl`.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "memd/v1/bridge.grpc.pb.h"
#include "daemon_env.h"
#include "subprocess.h"

namespace memd::testing {
namespace {

constexpr size_t kFrameBytes = 3840 * 2160 * 3 / 2;  // 4K NV12
constexpr int kFrames = 24;
constexpr uint64_t kWindow = 8;  // OutboundJournal::kSlots

std::string BridgeClientBinary() { return MEMD_BRIDGE_CLIENT_BINARY; }

// Runs a command found on PATH (Subprocess takes paths).
int Shell(std::vector<std::string> argv) {
  if (argv[0].find('/') == std::string::npos) argv.insert(argv.begin(), "/usr/bin/env");
  return RunCommand(argv).first;
}

// Writes a CA, node certificates (CN and DNS name = node) and a rogue CA's
// certificate for node b into `dir` (node c: signed by the CA, a peer of nobody).
bool MakeCertificates(const std::string& dir) {
  auto sh = [&](const std::string& script) {
    return Shell({"/bin/sh", "-c", "cd " + dir + " && " + script + " >/dev/null 2>&1"}) == 0;
  };
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  bool ok = sh("openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=memd-ca") &&
            sh("openssl req -x509 " + key + " -keyout rogue-ca.key -out rogue-ca.pem -days 2 "
               "-subj /CN=rogue-ca");
  for (const auto& [name, ca] : {std::pair{"a", "ca"}, std::pair{"b", "ca"},
                                 std::pair{"c", "ca"}, std::pair{"rogue-b", "rogue-ca"}}) {
    std::string cn = std::string(name) == "rogue-b" ? "b" : name;
    ok = ok && sh(std::string("printf 'subjectAltName=DNS:") + cn + "' > " + name + ".ext") &&
         sh("openssl req " + key + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" +
            cn) &&
         sh(std::string("openssl x509 -req -in ") + name + ".csr -CA " + ca + ".pem -CAkey " +
            ca + ".key -CAcreateserial -out " + name + ".pem -days 2 -extfile " + name + ".ext");
  }
  return ok;
}

// One memd in a network namespace.
struct Node {
  std::string ns, name, dir, ip, peer_name, peer_ip;
  std::vector<std::string> extra;
  std::string pool = "video=160MiB,bridge=true";
  std::string cert;  // default: <name>
  std::string transport = "grpc";
  std::unique_ptr<Subprocess> process;

  std::string socket() const { return dir + "/" + name + ".sock"; }
  std::map<std::string, std::string> ClientEnv() const {
    return {{"MEMD_ADDRESS", "unix://" + socket()}, {"MEMD_POOL", "video"}};
  }
  bool Start() {
    std::string c = cert.empty() ? name : cert;
    std::vector<std::string> argv = {
        "/usr/bin/env", "ip", "netns", "exec", ns, MemdBinary(), "--instance", "bridge-" + name,
        "--state-dir", dir + "/state-" + name, "--listen", "unix://" + socket(),
        "--listen", ip + ":7441", "--tls-cert", dir + "/" + c + ".pem",
        "--tls-key", dir + "/" + c + ".key", "--tls-client-ca", dir + "/ca.pem",
        "--node", name, "--peer", peer_name + "=" + peer_ip + ":7441",
        "--pool", pool, "--bridge-transport", transport, "--reclaim-grace", "60s",
        "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process = std::make_unique<Subprocess>(argv);
    return WaitFor([&] { return SocketAccepts(socket()); }, std::chrono::seconds(20));
  }
  void Kill() {
    process->Kill(SIGKILL);
    process->Wait();
  }
  v1::ListBridgesResponse Bridges() const {
    auto stub = v1::BridgeAdmin::NewStub(
        grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListBridgesResponse out;
    stub->ListBridges(&context, {}, &out);
    return out;
  }
  // The first bridge's stats in `direction`; empty when none.
  v1::BridgeStats Bridge(const std::string& direction) const {
    v1::ListBridgesResponse all = Bridges();
    for (const v1::BridgeStats& b : all.bridges()) {
      if (b.direction() == direction) return b;
    }
    return {};
  }
};

// The transport is the test's parameter: grpc always, ucx when memd is built
// with it (MEMD_TEST_UCX).
class BridgeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "bridge tests make network namespaces: run as root";
    if (Shell({"/bin/sh", "-c", "command -v ip && command -v openssl"}) != 0) {
      GTEST_SKIP() << "bridge tests need `ip` (iproute2) and `openssl`";
    }
    char tmpl[] = "/tmp/memd-bridge-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(MakeCertificates(dir_)) << "openssl could not make the test certificates";
    int id = ::getpid() % 200 + 20;
    std::string net = "10.77." + std::to_string(id) + ".";
    ns_a_ = "memd-br-a-" + std::to_string(::getpid());
    ns_b_ = "memd-br-b-" + std::to_string(::getpid());
    veth_a_ = "mbra" + std::to_string(::getpid() % 100000);
    std::string veth_b = "mbrb" + std::to_string(::getpid() % 100000);
    made_ns_ = true;
    for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
             {"ip", "netns", "add", ns_a_},
             {"ip", "netns", "add", ns_b_},
             {"ip", "link", "add", veth_a_, "type", "veth", "peer", "name", veth_b},
             {"ip", "link", "set", veth_a_, "netns", ns_a_},
             {"ip", "link", "set", veth_b, "netns", ns_b_},
             {"ip", "-n", ns_a_, "addr", "add", net + "1/24", "dev", veth_a_},
             {"ip", "-n", ns_b_, "addr", "add", net + "2/24", "dev", veth_b},
             {"ip", "-n", ns_a_, "link", "set", veth_a_, "up"},
             {"ip", "-n", ns_b_, "link", "set", veth_b, "up"},
             {"ip", "-n", ns_a_, "link", "set", "lo", "up"},
             {"ip", "-n", ns_b_, "link", "set", "lo", "up"}}) {
      ASSERT_EQ(Shell(cmd), 0) << "failed: " << cmd[0] << " " << cmd[1] << " " << cmd[2];
    }
    a_ = Node{ns_a_, "a", dir_, net + "1", "b", net + "2", {"--bridge", "video/frames=b"}};
    b_ = Node{ns_b_, "b", dir_, net + "2", "a", net + "1", {}};
    a_.transport = b_.transport = GetParam();
  }

  void TearDown() override {
    for (Node* n : {&a_, &b_}) {
      if (n->process) n->Kill();
    }
    if (made_ns_) {
      Shell({"ip", "netns", "del", ns_a_});  // takes the veth pair with it
      Shell({"ip", "netns", "del", ns_b_});
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Subprocess> Producer(int first, int count) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{BridgeClientBinary(), "produce", "frames", std::to_string(first),
                                 std::to_string(count), std::to_string(kFrameBytes)},
        a_.ClientEnv());
  }
  // With `pause`, it stops after that many frames until ResumeAfterPause.
  std::unique_ptr<Subprocess> Consumer(int count, int pause = -1) {
    std::vector<std::string> argv = {BridgeClientBinary(), "consume", "frames",
                                     std::to_string(count)};
    if (pause >= 0) argv.push_back(std::to_string(pause));
    return std::make_unique<Subprocess>(argv, b_.ClientEnv());
  }
  // Consumes `pause` frames, then waits until the sender has a full window
  // of messages in flight (pulled by b, queued there, not yet received).
  void FillTheWindow(Subprocess& consumer, int pause) {
    ReadFrames(consumer, pause);
    ASSERT_EQ(consumer.ReadLine(std::chrono::seconds(60)), "paused");
    ASSERT_TRUE(WaitFor([&] { return a_.Bridge("out").in_flight() == kWindow; },
                        std::chrono::seconds(60)))
        << "in flight: " << a_.Bridge("out").in_flight();
    ASSERT_TRUE(WaitFor([&] { return b_.Bridge("in").messages() == pause + kWindow; },
                        std::chrono::seconds(60)))
        << "queued on b: " << b_.Bridge("in").messages() - pause;
  }
  // Reads the consumer's lines until `n` frames arrived (or it stops).
  void ReadFrames(Subprocess& consumer, int n) {
    while (static_cast<int>(got_.size()) < n) {
      std::optional<std::string> line = consumer.ReadLine(std::chrono::seconds(90));
      if (!line) break;
      got_.push_back(*line);
    }
  }
  // Both daemons up, kFrames on their way, the consumer paused after 6 with
  // a full window in flight (FillTheWindow).
  void StreamWithAFullWindow(std::unique_ptr<Subprocess>* consumer,
                             std::unique_ptr<Subprocess>* producer) {
    ASSERT_TRUE(b_.Start());
    ASSERT_TRUE(a_.Start());
    *consumer = Consumer(kFrames, 6);
    *producer = Producer(0, kFrames);
    FillTheWindow(**consumer, 6);
  }
  // Every frame 0..n-1 exactly once, in order, with the right bytes.
  void ExpectExactlyOnceInOrder(int n) {
    ASSERT_EQ(static_cast<int>(got_.size()), n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(got_[i], "got " + std::to_string(i) + " ok");
  }

  std::string dir_, ns_a_, ns_b_, veth_a_;
  bool made_ns_ = false;
  Node a_, b_;
  std::vector<std::string> got_;
};

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
  auto [code, metrics] = RunCommand(
      {"/usr/bin/env", "ip", "netns", "exec", ns_a_, "/usr/bin/python3", "-c",
       "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics')"
       ".read().decode())"});
  ASSERT_EQ(code, 0);
  EXPECT_NE(metrics.find("memd_bridge_messages_total{bridge=\"video/frames\",peer=\"b\","
                         "direction=\"out\",transport=\"" + GetParam() + "\"} 24"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("memd_bridge_link_up{bridge=\"video/frames\""), std::string::npos);
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

}  // namespace
}  // namespace memd::testing

namespace memd::testing {
namespace {

// memctl bridge add, list and remove while serving; frames cross a bridge
// added at run time; refusals name the value.
TEST_P(BridgeTest, MemctlAddsListsAndRemovesBridges) {
  a_.extra.clear();  // no configured bridge
  ASSERT_TRUE(b_.Start());
  ASSERT_TRUE(a_.Start());
  auto memctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {MemctlBinary(), "--address", "unix://" + a_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.begin(), {"/bin/sh", "-c", "\"$0\" \"$@\" 2>&1"});
    return RunCommand(argv);
  };
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

}  // namespace
}  // namespace memd::testing

namespace memd::testing {
namespace {

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

}  // namespace
}  // namespace memd::testing

namespace memd::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Transports, BridgeTest,
#if MEMD_TEST_UCX
                         ::testing::Values("grpc", "ucx"),
#else
                         ::testing::Values("grpc"),
#endif
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
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

namespace memd::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// B06, B07: a Bridge call needs a configured peer's certificate, and Read
// serves only ranges of messages in flight to the caller. One daemon on the
// loopback of the test's own namespace; the test calls as node b and node c.
TEST_P(BridgeTest, PeersAreCheckedByCertificateAndReadOnlyWhatIsInFlightToThem) {
  std::string port = std::to_string(7400 + ::getpid() % 500);
  Subprocess memd({MemdBinary(), "--instance", "bridge-r", "--state-dir", dir_ + "/state-r",
                   "--listen", "unix://" + dir_ + "/r.sock", "--listen", "127.0.0.1:" + port,
                   "--tls-cert", dir_ + "/a.pem", "--tls-key", dir_ + "/a.key",
                   "--tls-client-ca", dir_ + "/ca.pem", "--node", "a", "--peer",
                   "b=127.0.0.1:1", "--pool", "video=16MiB,bridge=true", "--bridge-transport",
                   GetParam(), "--bridge", "video/frames=b", "--log-level", "error"});
  // Serving (the TCP port too): health answers over gRPC.
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({MemctlBinary(), "--address", "unix://" + dir_ + "/r.sock", "health"})
                   .first == 0;
      },
      std::chrono::seconds(20)));
  auto call_as = [&](const std::string& node) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadText(dir_ + "/ca.pem");
    ssl.pem_cert_chain = ReadText(dir_ + "/" + node + ".pem");
    ssl.pem_private_key = ReadText(dir_ + "/" + node + ".key");
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("a");
    auto stub = v1::Bridge::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + port, grpc::SslCredentials(ssl), args));
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
              "read of [0, 4096) in region 'video' refused: no message in flight to node 'b' "
              "holds it");
  } else {
    EXPECT_EQ(peer.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << peer.error_message();
  }
  memd.Kill(SIGTERM);
  memd.Wait();
}

}  // namespace
}  // namespace memd::testing
