// Deployment: the systemd unit verifies, and the container layout works.
// No container engine runs on the test machines, so the containers are made
// of Linux namespaces (unshare): the daemon and two clients each get their own
// mount, PID, IPC and network namespaces and share only a tmpfs mounted as
// their /dev/shm and the socket directory, as docs/deployment.md describes
// for Docker and Kubernetes. Needs root; skips otherwise.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "daemon_env.h"

namespace memd::testing {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DeployTest, SystemdUnitPassesSystemdAnalyzeVerify) {
  // The unit as installed, pointing at this build's binary.
  std::ifstream in(std::string(MEMD_SOURCE_DIR) + "/deploy/systemd/memd.service");
  std::string unit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(Has(unit, "/usr/local/bin/memd"));
  unit.replace(unit.find("/usr/local/bin/memd"), 19, MemdBinary());
  std::string dir = "/tmp/memd-unit-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/memd.service") << unit;
  auto [code, out] = RunCommand({"/bin/sh", "-c", "systemd-analyze verify " + dir + "/memd.service 2>&1"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "no warnings either";
  for (const char* key : {"RuntimeDirectory=memd", "NoNewPrivileges=yes", "ProtectSystem=strict",
                          "PrivateTmp=yes", "ReadWritePaths=/dev/shm"}) {
    EXPECT_TRUE(Has(unit, key)) << key;
  }
  // The check can fail: an unknown key is reported.
  std::ofstream(dir + "/broken.service") << unit << "NoSuchKey=1\n";
  auto [bcode, bout] = RunCommand({"/bin/sh", "-c", "systemd-analyze verify " + dir + "/broken.service 2>&1"});
  EXPECT_TRUE(Has(bout, "NoSuchKey")) << bout;
  std::filesystem::remove_all(dir);
}

TEST(DeployTest, ManifestsAreConsistent) {
  std::string src = MEMD_SOURCE_DIR;
  std::string check = src + "/tests/deploy/check_manifests.py";
  auto [code, out] = RunCommand({"/usr/bin/python3", check,
                                 src + "/deploy/kubernetes/memd-daemonset.yaml",
                                 src + "/deploy/kubernetes/pipeline-pod.yaml",
                                 src + "/deploy/container/compose.yaml"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "ok\n");
  // The checker finds a mount of an undeclared volume.
  std::string broken = "/tmp/memd-broken-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(broken) << "kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
                           "    - name: c\n      volumeMounts: [{name: nope, mountPath: /x}]\n";
  auto [bad, why] = RunCommand({"/usr/bin/python3", check, broken});
  EXPECT_EQ(bad, 1) << why;
  std::remove(broken.c_str());
}

// A "container": its own mount, PID, IPC and network namespaces; the shared
// tmpfs is bound to /dev/shm and the socket directory to /run/memd.
std::vector<std::string> Container(const std::string& shm, const std::string& run,
                                   const std::vector<std::string>& argv) {
  std::string command = "mount --bind " + shm + " /dev/shm && mount --bind " + run +
                        " /run/memd && exec";
  for (const std::string& arg : argv) command += " '" + arg + "'";
  return {"/usr/bin/unshare", "--mount", "--pid", "--fork", "--ipc", "--net", "--mount-proc",
          "/bin/sh", "-c", command};
}

// The host pid of the process unshare forked (PID 1 of the new namespace).
pid_t ChildOf(pid_t unshare_pid) {
  std::ifstream children("/proc/" + std::to_string(unshare_pid) + "/task/" +
                         std::to_string(unshare_pid) + "/children");
  pid_t child = 0;
  children >> child;
  return child;
}

TEST(DeployTest, ContainersSharingOnlyShmAndTheSocketDirectoryPassABuffer) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for namespaces and mounts";
  char tmpl[] = "/tmp/memd-ns-XXXXXX";
  std::string root = mkdtemp(tmpl);
  std::string shm = root + "/shm", run = root + "/run";
  std::filesystem::create_directories(shm);
  std::filesystem::create_directories(run);
  std::filesystem::create_directories("/run/memd");  // the mount point inside the containers
  ASSERT_EQ(mount("tmpfs", shm.c_str(), "tmpfs", 0, "size=64m,mode=1777"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{shm};
  std::string instance = UniqueInstanceName();

  Subprocess daemon(Container(shm, run, {MemdBinary(), "--listen", "unix:///run/memd/memd.sock",
                                         "--instance", instance, "--pool", "default=16MiB",
                                         "--socket-mode", "0666", "--log-level", "warn"}));
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(run + "/memd.sock"); }, std::chrono::seconds(10)));
  // The pool has no name in any /dev/shm: its memfd travels over the socket
  // directory, the one thing the containers must share.
  EXPECT_FALSE(std::filesystem::exists(shm + "/memd." + instance + ".default"));
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/memd." + instance + ".default"));

  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", "unix:///run/memd/memd.sock"},
                                            {"MEMD_POOL", "default"}};
  Subprocess producer(Container(shm, run, {TestClientBinary(), "hold", "1", "65536", "171"}), env);
  std::vector<uint64_t> handles = ReadHandles(producer);
  ASSERT_EQ(handles.size(), 1u);
  auto [code, out] = RunCommand(Container(shm, run, {TestClientBinary(), "check",
                                                     std::to_string(handles[0]), "65536", "171",
                                                     "172"}),
                                env);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "ok")) << "the consumer container read the producer's bytes: " << out;
  producer.CloseStdin();
  EXPECT_EQ(ExitCode(producer.Wait()), 0);

  // memd is PID 1 of its namespace: SIGTERM must still stop it cleanly.
  pid_t memd = ChildOf(daemon.pid());
  ASSERT_GT(memd, 0);
  ASSERT_EQ(kill(memd, SIGTERM), 0);
  EXPECT_EQ(ExitCode(daemon.Wait(std::chrono::seconds(10))), 0);
  EXPECT_TRUE(std::filesystem::exists(run + "/state/" + instance + "/default.state"))
      << "the stop keeps the pool's state in the private directory for the next start";
  std::filesystem::remove_all(run);
}

}  // namespace
}  // namespace memd::testing
