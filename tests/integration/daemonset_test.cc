// DaemonSetTest: memd's DaemonSet run as a kubelet would run it, beside a
// pipeline pod, with no cluster and no container engine (Kubelet: unshare,
// setpriv, bind mounts). Everything about how the containers run comes from
// the shipped manifests (tests/deploy/daemonset_spec.py: `kubectl kustomize
// deploy/kubernetes` when kubectl is installed, else the base's files, and
// the Dockerfile's ENTRYPOINT): memd's argv, env, uid, groups, capabilities,
// read-only root, its volumes and ConfigMap, the init container that gives
// the root-owned host directories to memd, the startup probe, the
// termination grace, and the pipeline pod's uid and env. What the test
// supplies: the build's binaries for the image's, memd_test_client for the
// pipeline's programs, and 127.0.0.1 as the pod's address.
//
// Label `daemonset` (its own executable). Needs root; skips otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "daemon_env.h"
#include "kubelet.h"

namespace memd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kChannel[] = "frames";
constexpr int kFrames = 4;
constexpr int kFrameBytes = 1 << 20;
constexpr int kByte = 61;

json Spec() {
  auto [code, out] =
      RunCommand({"/usr/bin/python3",
                  std::string(MEMD_SOURCE_DIR) + "/tests/deploy/daemonset_spec.py", "127.0.0.1"});
  EXPECT_EQ(code, 0) << out;
  return json::parse(out, nullptr, /*allow_exceptions=*/false);
}

const json& Named(const json& containers, const std::string& name) {
  for (const json& c : containers) {
    if (c["name"] == name) return c;
  }
  static const json kNone;
  ADD_FAILURE() << "no container " << name << " in " << containers.dump();
  return kNone;
}

// The value after `flag` in `argv`; empty when absent.
std::string Flag(const json& argv, const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return "";
}

// One memd pod of the DaemonSet: its init containers run to completion, then
// memd, serving once the manifest's startup probe passes.
class MemdPod {
 public:
  MemdPod(Kubelet& kubelet, const json& pod)
      : kubelet_(kubelet), memd_(Named(pod["containers"], "memd")) {
    kubelet.CreateHostPaths(pod);
    for (const json& init : pod["init"]) {
      auto [code, out] = RunCommand(kubelet.Run(init), Kubelet::Env(init));
      EXPECT_EQ(code, 0) << "init container " << init["name"] << ": " << out;
    }
    process_ = std::make_unique<Subprocess>(kubelet.Run(memd_), Kubelet::Env(memd_));
    // The startup probe, as the kubelet runs it: in the container, as its user.
    std::vector<std::string> probe = memd_["startup_probe"].get<std::vector<std::string>>();
    ok_ = !probe.empty() && WaitFor(
                                [&] {
                                  pid_ = ChildOf(process_->pid());
                                  return pid_ > 0 &&
                                         RunCommand(Exec(probe), Kubelet::Env(memd_)).first == 0;
                                },
                                std::chrono::seconds(60));
  }

  ~MemdPod() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);  // a pod the test left running (a failure)
  }

  bool ok() const { return ok_; }
  const json& container() const { return memd_; }
  std::vector<std::string> Exec(std::vector<std::string> argv) const {
    return kubelet_.Exec(pid_, memd_, std::move(argv));
  }
  // `memctl -o json ARGS` in memd's container.
  json Memctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {"memctl", "-o", "json"});
    auto [code, out] = RunCommand(Exec(args), Kubelet::Env(memd_));
    EXPECT_EQ(code, 0) << out;
    return json::parse(out, nullptr, false);
  }
  // What the kubelet does at a rolling update: SIGTERM to the container's
  // PID 1, then waits up to the grace period. Returns memd's exit code.
  int Terminate(int grace_seconds) {
    if (pid_ <= 0 || ::kill(pid_, SIGTERM) != 0) return -1;
    int code = ExitCode(process_->Wait(std::chrono::seconds(grace_seconds)));
    pid_ = 0;
    return code;
  }

 private:
  Kubelet& kubelet_;
  const json& memd_;
  std::unique_ptr<Subprocess> process_;
  pid_t pid_ = 0;
  bool ok_ = false;
};

const json* PoolOf(const json& stats, const std::string& name) {
  for (const json& p : stats["pools"]) {
    if (p["name"] == name) return &p;
  }
  return nullptr;
}

// The DaemonSet's memd, as the manifests run it, and a pipeline pod's
// producer and consumer in pods of their own (another uid, sharing only the
// socket's host directory): frames go through a channel, the consumer holds
// them; memd's pod is replaced (SIGTERM, a new pod in new namespaces, the
// same host directories) and the consumer's frames keep every byte, the
// daemon counting them as before.
TEST(DaemonSetTest, ThePodAsShippedServesAPipelinePodAndARollingUpdateKeepsItsFrames) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for namespaces, mounts and other uids";
  json spec = Spec();
  ASSERT_FALSE(spec.is_discarded());
  std::cout << "manifests from " << spec["source"] << std::endl;
  const json& daemonset = spec["daemonset"];
  const json& memd = Named(daemonset["containers"], "memd");
  const json& consumer = Named(spec["pipeline"]["containers"], "consumer");
  const json& producer = Named(spec["pipeline"]["containers"], "producer");
  ASSERT_FALSE(memd.is_null() || consumer.is_null() || producer.is_null());
  // What makes this test worth running: memd as a non-root user, read-only
  // root, no capability; the pipeline as yet another user.
  ASSERT_NE(memd["uid"], 0);
  EXPECT_TRUE(memd["read_only_root"].get<bool>());
  EXPECT_EQ(memd["caps"], json::array());
  ASSERT_NE(consumer["uid"], memd["uid"]);

  std::string listen = Flag(memd["argv"], "--listen");
  ASSERT_EQ(listen.rfind("unix:///", 0), 0u) << listen;
  std::string socket_dir = fs::path(listen.substr(7)).parent_path();
  std::string pool = Kubelet::Env(consumer)["MEMD_POOL"];
  ASSERT_FALSE(pool.empty()) << "the pipeline names its pool";
  EXPECT_EQ(Kubelet::Env(consumer)["MEMD_ADDRESS"], listen) << "the pipeline finds memd's socket";

  Kubelet kubelet;
  std::string host_socket_dir;
  for (const json& m : memd["mounts"]) {
    if (m["path"] == socket_dir) host_socket_dir = kubelet.HostPath(m["host_path"]);
  }
  ASSERT_FALSE(host_socket_dir.empty()) << "memd's socket directory is a hostPath";
  auto memd_pod = std::make_unique<MemdPod>(kubelet, daemonset);
  ASSERT_TRUE(memd_pod->ok()) << "the startup probe never passed";
  struct stat st {};
  ASSERT_EQ(::stat(host_socket_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, memd["uid"].get<uid_t>())
      << "the init container gave memd the host directory";

  // The pipeline pod: the consumer waits on the channel, the producer sends.
  Subprocess receiving(
      kubelet.Run(consumer, {TestClientBinary(), "receive", kChannel, std::to_string(kFrames)}),
      Kubelet::Env(consumer));
  Subprocess sending(
      kubelet.Run(producer, {TestClientBinary(), "send", kChannel, std::to_string(kFrames),
                             std::to_string(kFrameBytes), std::to_string(kByte)}),
      Kubelet::Env(producer));
  ASSERT_EQ(sending.ReadLine(std::chrono::seconds(30)), "sent");
  ASSERT_EQ(receiving.ReadLine(std::chrono::seconds(30)), "received");

  json stats = memd_pod->Memctl({"stats"});
  const json* p = PoolOf(stats, pool);
  ASSERT_NE(p, nullptr) << stats.dump();
  EXPECT_EQ((*p)["live_buffers"], kFrames);
  ASSERT_EQ((*p)["channels"].size(), 1u) << stats.dump();
  EXPECT_EQ((*p)["channels"][0]["sent"], kFrames);
  EXPECT_EQ((*p)["channels"][0]["received"], kFrames);
  EXPECT_EQ((*p)["channels"][0]["depth"], 0);
  uint64_t used_bytes = (*p)["used_bytes"];
  std::vector<std::string> handles;
  json listing = memd_pod->Memctl({"buffers"});
  for (const json& b : listing["buffers"]) handles.push_back(b["handle"]);
  ASSERT_EQ(handles.size(), static_cast<size_t>(kFrames)) << listing.dump();
  // Another pipeline process reads a frame the consumer holds (and marks it).
  auto check = [&](const std::string& handle, int byte, int mark) {
    auto [code, out] = RunCommand(
        kubelet.Run(consumer, {TestClientBinary(), "check", handle, std::to_string(kFrameBytes),
                               std::to_string(byte), std::to_string(mark)}),
        Kubelet::Env(consumer));
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(out, "ok\n") << handle;
  };
  check(handles[0], kByte, kByte + 1);

  // The rolling update: the kubelet stops memd's pod within its grace period
  // and starts the new pod in new namespaces on the same host directories.
  EXPECT_EQ(memd_pod->Terminate(daemonset["termination_grace_seconds"]), 0);
  memd_pod = std::make_unique<MemdPod>(kubelet, daemonset);
  ASSERT_TRUE(memd_pod->ok()) << "the new pod's startup probe never passed";
  // The consumer reconnects by itself and hands the pool's memory back (no
  // descriptor store under Kubernetes), then reclaims its frames.
  ASSERT_TRUE(WaitFor(
      [&] {
        const json* now = PoolOf(stats = memd_pod->Memctl({"stats"}), pool);
        return now != nullptr && (*now)["unclaimed_references"] == 0 && (*now)["sessions"] >= 2;
      },
      std::chrono::seconds(30)))
      << stats.dump();
  p = PoolOf(stats, pool);
  EXPECT_EQ((*p)["live_buffers"], kFrames) << "every frame the consumer holds survived";
  EXPECT_EQ((*p)["used_bytes"], used_bytes);
  check(handles[0], kByte + 1, kByte + 2);
  for (size_t i = 1; i < handles.size(); ++i) check(handles[i], kByte, kByte);

  receiving.CloseStdin();
  sending.CloseStdin();
  EXPECT_EQ(ExitCode(receiving.Wait()), 0);
  EXPECT_EQ(ExitCode(sending.Wait()), 0);
  ASSERT_TRUE(WaitFor([&] {
    const json* now = PoolOf(stats = memd_pod->Memctl({"stats"}), pool);
    return now != nullptr && (*now)["live_buffers"] == 0;
  })) << "the pipeline's end releases its frames: "
      << stats.dump();
  EXPECT_TRUE(memd_pod->Memctl({"check"})["ok"].get<bool>());
  EXPECT_EQ(memd_pod->Terminate(daemonset["termination_grace_seconds"]), 0);
}

}  // namespace
}  // namespace memd::testing
