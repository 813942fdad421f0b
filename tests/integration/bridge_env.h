// BridgeTest: two real daemons in two network namespaces joined by a veth
// pair that the test makes (issue 19), certificates made with openssl, and
// real producer and consumer processes (memd_bridge_client). Shared by
// bridge_test.cc (delivery) and bridge_admin_test.cc (refusals, memctl,
// configuration). Needs root, `ip` and `openssl` (skipped otherwise).
#ifndef MEMD_TESTS_INTEGRATION_BRIDGE_ENV_H_
#define MEMD_TESTS_INTEGRATION_BRIDGE_ENV_H_

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

inline constexpr size_t kFrameBytes = 3840 * 2160 * 3 / 2;  // 4K NV12
inline constexpr int kFrames = 24;
inline constexpr uint64_t kWindow = 8;  // OutboundJournal::kSlots

inline std::string BridgeClientBinary() { return MEMD_BRIDGE_CLIENT_BINARY; }

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs a command found on PATH (Subprocess takes paths).
inline int Shell(std::vector<std::string> argv) {
  if (argv[0].find('/') == std::string::npos) argv.insert(argv.begin(), "/usr/bin/env");
  return RunCommand(argv).first;
}

// Writes a CA, node certificates (CN and DNS name = node) and a rogue CA's
// certificate for node b into `dir` (node c: signed by the CA, a peer of nobody).
inline bool MakeCertificates(const std::string& dir) {
  auto sh = [&](const std::string& script) {
    return Shell({"/bin/sh", "-c", "cd " + dir + " && " + script + " >/dev/null 2>&1"}) == 0;
  };
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  bool ok = sh("openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 30 -subj /CN=memd-ca") &&
            sh("openssl req -x509 " + key + " -keyout rogue-ca.key -out rogue-ca.pem -days 30 "
               "-subj /CN=rogue-ca");
  for (const auto& [name, ca] : {std::pair{"a", "ca"}, std::pair{"b", "ca"},
                                 std::pair{"c", "ca"}, std::pair{"rogue-b", "rogue-ca"}}) {
    std::string cn = std::string(name) == "rogue-b" ? "b" : name;
    ok = ok && sh(std::string("printf 'subjectAltName=DNS:") + cn + "' > " + name + ".ext") &&
         sh("openssl req " + key + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" +
            cn) &&
         sh(std::string("openssl x509 -req -in ") + name + ".csr -CA " + ca + ".pem -CAkey " +
            ca + ".key -CAcreateserial -out " + name + ".pem -days 30 -extfile " + name + ".ext");
  }
  return ok;
}

// MakeCertificates' files, made once per build and copied into `dir`: every
// test of the suite is its own process, and openssl's 14 runs took about
// 0.7 s of each. The set lives next to the test binary and is made afresh
// when a week old (the certificates are valid for 30 days); it is made in a
// directory of its own and renamed into place, so a concurrent run sees a
// whole set or none.
inline bool CopyCertificates(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path cache = fs::read_symlink("/proc/self/exe", ec).parent_path() / "bridge-certs";
  auto fresh = [&] {
    std::error_code e;
    auto made = fs::last_write_time(cache / "ca.pem", e);
    return !e && fs::file_time_type::clock::now() - made < std::chrono::hours(24 * 7);
  };
  if (ec || !fresh()) {
    fs::path next = cache.string() + ".new." + std::to_string(::getpid());
    fs::create_directories(next, ec);
    if (ec || !MakeCertificates(next.string())) return MakeCertificates(dir);
    fs::remove_all(cache, ec);
    fs::rename(next, cache, ec);
    if (ec) fs::remove_all(next, ec);
  }
  fs::copy(cache, dir, fs::copy_options::overwrite_existing | fs::copy_options::recursive, ec);
  return !ec || MakeCertificates(dir);
}

// One memd in a network namespace (`ns` empty: in the test's own).
struct Node {
  std::string ns, name, dir, ip, peer_name, peer_ip;
  std::vector<std::string> extra;
  std::string port = "7441", peer_port = "7441";  // TLS listeners
  // NAME=VALUE for the daemon's environment, e.g. MEMD_TEST_EXIT_AT.
  std::vector<std::string> env;
  std::string pool = "video=160MiB,bridge=true";
  std::string cert;  // default: <name>
  std::string transport = "grpc";
  std::string reclaim_grace = "60s";
  std::unique_ptr<Subprocess> process;

  std::string socket() const { return dir + "/" + name + ".sock"; }
  std::map<std::string, std::string> ClientEnv() const {
    return {{"MEMD_ADDRESS", "unix://" + socket()}, {"MEMD_POOL", "video"}};
  }
  bool Start() {
    std::string c = cert.empty() ? name : cert;
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    if (!ns.empty()) argv.insert(argv.end(), {"ip", "netns", "exec", ns});
    argv.insert(argv.end(), {
        MemdBinary(), "--instance", "bridge-" + name,
        "--state-dir", dir + "/state-" + name, "--listen", "unix://" + socket(),
        "--listen", ip + ":" + port, "--tls-cert", dir + "/" + c + ".pem",
        "--tls-key", dir + "/" + c + ".key", "--tls-client-ca", dir + "/ca.pem",
        "--node", name, "--peer", peer_name + "=" + peer_ip + ":" + peer_port,
        "--pool", pool, "--bridge-transport", transport, "--reclaim-grace", reclaim_grace,
        "--log-level", "warn"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    process = std::make_unique<Subprocess>(argv);
    return WaitFor([&] { return SocketAccepts(socket()); }, std::chrono::seconds(20));
  }
  // The daemon's log (spdlog writes to stdout) up to the first line holding
  // `text`, or all of it that came within `timeout`.
  std::string LogUntil(const std::string& text, std::chrono::seconds timeout) {
    std::string log;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (log.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      std::optional<std::string> line = process->ReadLine(std::chrono::seconds(1));
      if (line) log += *line + "\n";
    }
    return log;
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
    ASSERT_TRUE(CopyCertificates(dir_)) << "openssl could not make the test certificates";
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
  // memctl against `node`'s socket: exit code and stdout with stderr.
  static std::pair<int, std::string> Memctl(const Node& node, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "\"$0\" \"$@\" 2>&1", MemctlBinary(),
                                     "--address", "unix://" + node.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  // Node a alone on loopback in the test's namespace (a port of its own),
  // bridging video/frames to a peer b that never answers, with a 16 MiB
  // pool: for tests that speak bridge.proto to it as node b themselves.
  Node LoneNode() {
    Node r{"", "a", dir_, "127.0.0.1", "b", "127.0.0.1", {"--bridge", "video/frames=b"}};
    r.port = std::to_string(7400 + ::getpid() % 500);
    r.peer_port = "1";
    r.pool = "video=16MiB,bridge=true";
    r.transport = GetParam();
    return r;
  }
  // The Prometheus text of a daemon started with --metrics-listen
  // 127.0.0.1:9464 in namespace `ns`; empty when it cannot be fetched.
  static std::string Metrics(const std::string& ns) {
    auto [code, text] = RunCommand(
        {"/usr/bin/env", "ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
         "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics')"
         ".read().decode())"});
    return code == 0 ? text : std::string();
  }
  // Whether `node` serves gRPC (its TCP listener too) within 20 s: its Unix
  // socket accepts a little before.
  static bool Serving(const Node& node) {
    return WaitFor([&] { return Memctl(node, {"health"}).first == 0; }, std::chrono::seconds(20));
  }
  // A Bridge stub to `to` with `node`'s certificate.
  std::unique_ptr<v1::Bridge::Stub> StubAs(const std::string& node, const Node& to) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadText(dir_ + "/ca.pem");
    ssl.pem_cert_chain = ReadText(dir_ + "/" + node + ".pem");
    ssl.pem_private_key = ReadText(dir_ + "/" + node + ".key");
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(to.name);
    return v1::Bridge::NewStub(
        grpc::CreateCustomChannel(to.ip + ":" + to.port, grpc::SslCredentials(ssl), args));
  }
  struct Delivery {
    grpc::Status status;
    std::vector<v1::BridgeAck> acks;  // the hello's answer first
  };
  // One Deliver stream to `to` as node b: `hello` (bridge video/inbound into
  // channel 'inbound' unless it names them), then `offers` once the hello
  // is answered, then the end of the writes; every ack until the stream ends.
  Delivery DeliverAs(const Node& to, v1::BridgeHello hello,
                     const std::vector<v1::BridgeOffer>& offers) {
    if (hello.bridge().empty()) hello.set_bridge("video/inbound");
    if (hello.pool().empty()) hello.set_pool("video");
    if (hello.channel().empty()) hello.set_channel("inbound");
    if (hello.region().empty()) hello.set_region("video");
    auto stub = StubAs("b", to);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Deliver(&context);
    v1::BridgeOffer first;
    *first.mutable_hello() = hello;
    stream->Write(first);
    Delivery out;
    v1::BridgeAck ack;
    if (stream->Read(&ack)) {
      out.acks.push_back(ack);
      for (const v1::BridgeOffer& o : offers) stream->Write(o);
    }
    stream->WritesDone();
    while (stream->Read(&ack)) out.acks.push_back(ack);
    out.status = stream->Finish();
    return out;
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

// The transports a bridge suite runs over (ucx only where it is built), and
// the test name each gives: the one list every Transports/ instantiation uses.
inline auto BridgeTransports() {
#if MEMD_TEST_UCX
  return ::testing::Values(std::string("grpc"), std::string("ucx"));
#else
  return ::testing::Values(std::string("grpc"));
#endif
}
inline std::string TransportName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace memd::testing

#endif  // MEMD_TESTS_INTEGRATION_BRIDGE_ENV_H_
