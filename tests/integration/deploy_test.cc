// Deployment: the systemd unit verifies and keeps every buffer across a stop
// and a start inside its own sandbox, the manifests hold what
// docs/deployment.md says, and the container layout works. No systemd and no
// container engine run on the test machines, so the unit's sandbox and the
// containers are made of Linux namespaces (unshare): the containers share
// only the socket directory, each has a /dev/shm of its own, and memd's
// state is on a volume no client mounts, as the Dockerfile, compose.yaml and
// the DaemonSet lay them out. Needs root for namespaces; skips otherwise.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "daemon_env.h"
#include "unit_file.h"
#include "status_text.h"

namespace memd::testing {
namespace {

using ::memd::testing_support::Has;

namespace fs = std::filesystem;

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(MEMD_SOURCE_DIR) + "/" + relative);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// `text` as one single-quoted shell word.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `setup` (shell commands) in a new mount namespace, then execs `argv`.
// `container`: also new PID, IPC and network namespaces, as a container has.
std::vector<std::string> InNamespaces(const std::string& setup,
                                      const std::vector<std::string>& argv, bool container) {
  std::string command = setup + " && exec";
  for (const std::string& arg : argv) command += " " + Quote(arg);
  std::vector<std::string> out = {"/usr/bin/unshare", "--mount"};
  if (container) out.insert(out.end(), {"--pid", "--fork", "--ipc", "--net", "--mount-proc"});
  out.insert(out.end(), {"/bin/sh", "-c", command});
  return out;
}

// A unit file's settings in order; comments and [Section] lines skipped.
using UnitSettings = std::vector<std::pair<std::string, std::string>>;
UnitSettings ParseUnit(const std::string& text) {
  UnitSettings settings;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || line[0] == '[' || eq == std::string::npos) continue;
    settings.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return settings;
}

std::string Setting(const UnitSettings& settings, const std::string& key) {
  std::string value;
  for (const auto& [k, v] : settings) {
    if (k == key) value = v;
  }
  return value;
}

// The value after `flag` in `args`; empty when absent.
std::string FlagValue(const std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  return "";
}

// A temporary directory, removed with everything in it at scope end.
struct RemovedAtEnd {
  std::string path;
  ~RemovedAtEnd() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// `daemon` once it serves on `socket`; null, with a failure that shows what it
// printed, when it does not within 10 s.
std::unique_ptr<Subprocess> ServingOrNull(std::unique_ptr<Subprocess> daemon,
                                          const std::string& socket) {
  if (WaitFor([&] { return SocketAccepts(socket); }, std::chrono::seconds(10))) return daemon;
  ADD_FAILURE() << "memd does not serve on " << socket << ": "
                << daemon->ReadAll(std::chrono::seconds(1));
  return nullptr;
}

// memd.service as CMake configured it for the install prefix.
std::string ConfiguredService() {
  return ReadText(std::string(MEMD_BINARY_DIR) + "/deploy/systemd/memd.service");
}

// SystemdTest verifies the units with systemd-analyze; this checks what the
// sandbox below relies on.
TEST(DeployTest, SystemdUnitKeepsItsStateAndNeedsNoSharedMemoryDirectory) {
  UnitSettings settings = ParseUnit(ConfiguredService());
  ASSERT_FALSE(settings.empty());
  for (const auto& [key, value] :
       UnitSettings{{"RuntimeDirectory", "memd"}, {"RuntimeDirectoryPreserve", "yes"},
                    {"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"},
                    {"PrivateTmp", "yes"}}) {
    EXPECT_EQ(Setting(settings, key), value) << key;
  }
  // Clients need only the socket: nothing of memd's is in /dev/shm.
  for (const auto& [key, value] : settings) EXPECT_FALSE(Has(value, "/dev/shm")) << key;
}

// The settings of memd.service that UnitSandbox reproduces (User= and
// CapabilityBoundingSet= as a plain uid with no capability, as setpriv gives).
const std::set<std::string>& SimulatedUnitKeys() {
  static const std::set<std::string> keys = {
      "Description", "Documentation", "After", "Type", "ExecStart", "RuntimeDirectory",
      "RuntimeDirectoryMode", "RuntimeDirectoryPreserve", "Restart", "NoNewPrivileges",
      "ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "WantedBy", "User",
      "Group", "CapabilityBoundingSet", "AmbientCapabilities"};
  return keys;
}

// Settings other tests cover: SystemdTest (notify, socket, reload, the
// descriptor store) and HardeningTest (the rest of the hardening).
const std::set<std::string>& UnitKeysTestedElsewhere() {
  static const std::set<std::string> keys = {
      "Requires", "NotifyAccess", "ExecReload", "FileDescriptorStoreMax", "PrivateDevices",
      "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
      "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictAddressFamilies",
      "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
      "MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter",
      "SystemCallErrorNumber", "Environment" /* HardeningTest runs memd with it */};
  return keys;
}

constexpr int kUnitUid = 10001;  // stands in for User=memd

// Shell commands that give a new mount namespace the unit's file system:
// ProtectSystem=strict (everything read-only but /dev, /proc, /sys, the
// runtime directory and ReadWritePaths), ProtectHome, PrivateTmp, and
// RuntimeDirectory bound from `host_runtime` at /run/<name> (in a /run of its
// own), with $RUNTIME_DIRECTORY set, as systemd starts the service.
std::string UnitSandbox(const UnitSettings& unit, const std::string& host_runtime) {
  std::string runtime = "/run/" + Setting(unit, "RuntimeDirectory");
  std::string writable = "/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|" + Quote(runtime);
  for (const std::string& path : Words(Setting(unit, "ReadWritePaths"))) writable += "|" + Quote(path);
  std::string setup = "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p " + Quote(runtime) +
                      " && mount --bind " + Quote(host_runtime) + " " + Quote(runtime);
  if (Setting(unit, "ProtectSystem") == "strict") {
    setup += " && while read -r _ m _; do case \"$m\" in " + writable +
             ") ;; *) mount -o remount,bind,ro \"$m\" 2>/dev/null || true ;; esac; done < /proc/self/mounts";
  }
  if (Setting(unit, "ProtectHome") == "yes") {
    setup += " && for d in /home /root; do if [ -d $d ]; then mount -t tmpfs -o ro,mode=0755 tmpfs $d;"
             " fi; done";
  }
  if (Setting(unit, "PrivateTmp") == "yes") {
    setup += " && mount -t tmpfs -o mode=1777 tmpfs /tmp && mount -t tmpfs -o mode=1777 tmpfs /var/tmp";
  }
  // The sandbox must really be read-only, or this test proves nothing.
  setup += " && if touch /usr/.memd-sandbox-probe 2>/dev/null; then echo 'sandbox is writable' >&2;"
           " exit 97; fi && export RUNTIME_DIRECTORY=" + Quote(runtime);
  return setup;
}

// `systemctl stop memd; systemctl start memd` (an upgrade that stops the old
// daemon first) while a client holds a buffer: under the unit's own sandbox,
// memd keeps its state in the runtime directory, the unit keeps that
// directory, and the buffer survives with its bytes.
TEST(DeployTest, TheUnitKeepsEveryBufferAcrossAStopAndAStartInItsSandbox) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for namespaces and mounts";
  UnitSettings unit = ParseUnit(ConfiguredService());
  for (const auto& [key, value] : unit) {
    EXPECT_TRUE(SimulatedUnitKeys().count(key) || UnitKeysTestedElsewhere().count(key))
        << key << " is not reproduced by UnitSandbox nor tested elsewhere";
  }
  std::vector<std::string> exec = Words(Setting(unit, "ExecStart"));
  ASSERT_FALSE(exec.empty());
  exec[0] = MemdBinary();
  if (!Setting(unit, "User").empty()) {  // as that user, with no capability
    exec.insert(exec.begin(), {"/usr/bin/setpriv", "--reuid", std::to_string(kUnitUid), "--regid",
                               std::to_string(kUnitUid), "--clear-groups", "--bounding-set",
                               "-all", "--inh-caps", "-all", "--no-new-privs"});
  }
  std::string runtime = "/run/" + Setting(unit, "RuntimeDirectory") + "/";
  std::string listen = FlagValue(exec, "--listen");
  ASSERT_EQ(listen.rfind("unix://" + runtime, 0), 0u) << listen << ": the socket is in " << runtime;
  std::string pool = FlagValue(exec, "--pool");
  pool = pool.substr(0, pool.find('='));
  ASSERT_FALSE(pool.empty());

  char tmpl[] = "/tmp/memd-unit-XXXXXX";
  RemovedAtEnd root{mkdtemp(tmpl)};
  std::string host_runtime = root.path + "/runtime";
  std::string mode_text = Setting(unit, "RuntimeDirectoryMode");
  mode_t mode = mode_text.empty() ? 0755 : std::stoi(mode_text, nullptr, 8);
  auto create_runtime = [&] {  // what systemd does before each start
    fs::create_directories(host_runtime);
    ::chmod(host_runtime.c_str(), mode);
    if (!Setting(unit, "User").empty()) {
      ASSERT_EQ(::chown(host_runtime.c_str(), kUnitUid, kUnitUid), 0);
    }
  };
  create_runtime();
  std::string socket = host_runtime + "/" + listen.substr(7 + runtime.size());
  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", "unix://" + socket},
                                            {"MEMD_POOL", pool}};
  auto start = [&] {
    return ServingOrNull(std::make_unique<Subprocess>(
                             InNamespaces(UnitSandbox(unit, host_runtime), exec, /*container=*/false)),
                         socket);
  };

  std::unique_ptr<Subprocess> daemon = start();
  ASSERT_TRUE(daemon);
  Subprocess holder({TestClientBinary(), "hold", "1", "65536", "91"}, env);
  std::vector<uint64_t> handles = ReadHandles(holder);
  ASSERT_EQ(handles.size(), 1u);
  bool state_in_runtime = false;  // <runtime>/<instance>/<pool>.state
  for (const auto& entry : fs::directory_iterator(host_runtime)) {
    state_in_runtime |= fs::exists(entry.path() / (pool + ".state"));
  }
  EXPECT_TRUE(state_in_runtime) << "memd keeps its state in $RUNTIME_DIRECTORY";

  daemon->Kill(SIGTERM);
  EXPECT_EQ(ExitCode(daemon->Wait()), 0);
  // systemd removes the runtime directory at a stop unless it is preserved
  // (RuntimeDirectoryPreserve=restart keeps it only across a restart).
  if (Setting(unit, "RuntimeDirectoryPreserve") != "yes") fs::remove_all(host_runtime);
  create_runtime();
  daemon = start();
  ASSERT_TRUE(daemon);
  auto [code, out] = RunCommand({TestClientBinary(), "check", std::to_string(handles[0]), "65536",
                                 "91", "92"}, env);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, "ok")) << "the buffer survived the stop and the start: " << out;
  holder.CloseStdin();
  EXPECT_EQ(ExitCode(holder.Wait()), 0);
  daemon->Kill(SIGTERM);
  EXPECT_EQ(ExitCode(daemon->Wait()), 0);
}

TEST(DeployTest, ManifestsAreConsistent) {
  std::string src = MEMD_SOURCE_DIR;
  std::string check = src + "/tests/deploy/check_manifests.py";
  // Without arguments: the DaemonSet, the example pod, compose.yaml and every
  // kustomization (base and overlays) under deploy/kubernetes.
  auto [code, out] = RunCommand({"/usr/bin/python3", check});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "ok\n");
  // The checker can fail, naming the problem: a mount of an undeclared
  // volume, a /dev/shm mount, IPC sharing, a memory limit below the pools
  // and lanes that memd is charged for.
  std::string limit = "limits: {memory: \"1200Mi\"}";
  std::string small = ReadSource("deploy/kubernetes/base/memd-daemonset.yaml");
  ASSERT_TRUE(Has(small, limit));
  small.replace(small.find(limit), limit.size(), "limits: {memory: \"1024Mi\"}");
  struct Broken {
    std::string name, text, expected;
  };
  std::vector<Broken> cases = {
      {"undeclared.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
                          "    - name: c\n      volumeMounts: [{name: nope, mountPath: /x}]\n",
       "undeclared volume nope"},
      {"shm.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  volumes: [{name: s, emptyDir: {}}]\n"
                   "  containers:\n    - name: c\n      volumeMounts: [{name: s, mountPath: /dev/shm}]\n",
       "mounts /dev/shm"},
      {"compose.yaml", "services:\n  c: {image: x, ipc: host}\n", "c sets ipc"},
      {"small.yaml", small, "memory limit is 1024Mi"},
      {"unscheduled.yaml", "kind: PriorityClass\nmetadata: {name: p}\n---\nkind: DaemonSet\n"
                           "metadata: {name: d}\nspec:\n  template:\n    spec:\n"
                           "      containers: [{name: c, image: x}]\n",
       "priorityClassName None is not a PriorityClass"},
  };
  for (const Broken& c : cases) {
    std::string path = "/tmp/memd-broken-" + std::to_string(getpid()) + "-" + c.name;
    std::ofstream(path) << c.text;
    auto [bad, why] = RunCommand({"/usr/bin/python3", check, path});
    EXPECT_EQ(bad, 1) << c.name << ": " << why;
    EXPECT_TRUE(Has(why, c.expected)) << c.name << ": " << why;
    std::remove(path.c_str());
  }
}

// What `kubectl apply -k` would apply, for the base and each overlay, passes
// the same checks. kubectl is not a Debian 12 package: without it the
// kustomizations are still checked structurally (ManifestsAreConsistent).
TEST(DeployTest, KustomizeRendersTheBaseAndOverlaysConsistently) {
  if (RunCommand({"/bin/sh", "-c", "command -v kubectl"}).first != 0) {
    GTEST_SKIP() << "kubectl is not installed (not a Debian 12 package)";
  }
  std::string src = MEMD_SOURCE_DIR;
  for (const std::string dir : {"deploy/kubernetes", "deploy/kubernetes/overlays/local",
                                "deploy/kubernetes/overlays/registry"}) {
    std::string rendered = "/tmp/memd-kustomize-" + std::to_string(getpid()) + ".yaml";
    // kubectl's complaints go to the test's stderr.
    auto [code, out] = RunCommand({"/bin/sh", "-c", "kubectl kustomize \"$0\" > \"$1\"",
                                   src + "/" + dir, rendered});
    EXPECT_EQ(code, 0) << dir;
    auto [check, why] = RunCommand({"/usr/bin/python3", src + "/tests/deploy/check_manifests.py",
                                    rendered, src + "/deploy/kubernetes/pipeline-pod.yaml"});
    EXPECT_EQ(check, 0) << dir << ": " << why;
    std::ifstream in(rendered);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(Has(text, "kind: Namespace")) << dir;
    EXPECT_TRUE(Has(text, "namespace: memd")) << dir;
    if (Has(dir, "local")) {
      EXPECT_TRUE(Has(text, "imagePullPolicy: Never")) << text;
    }
    std::remove(rendered.c_str());
  }
}

// A "container" of `image_args` (the Dockerfile's ENTRYPOINT, or a client):
// its own mount, PID, IPC and network namespaces and /dev/shm (`shm`), a /run
// of its own, and host directories bound at container paths (volumes).
std::vector<std::string> Container(const std::string& shm,
                                   const std::map<std::string, std::string>& volumes,
                                   const std::vector<std::string>& argv) {
  std::string setup = "mount --bind " + Quote(shm) + " /dev/shm && mount -t tmpfs -o mode=0755 tmpfs /run";
  for (const auto& [target, host] : volumes) {
    setup += " && mkdir -p " + Quote(target) + " && mount --bind " + Quote(host) + " " + Quote(target);
  }
  return InNamespaces(setup, argv, /*container=*/true);
}

// The ENTRYPOINT of the Dockerfile's `memd` stage, as arguments.
std::vector<std::string> MemdEntrypoint() {
  std::string text = ReadSource("deploy/container/Dockerfile");
  std::smatch stage;
  EXPECT_TRUE(std::regex_search(text, stage, std::regex("\nFROM \\S+ AS memd\n")));
  std::string rest = stage.suffix();
  std::smatch line;
  EXPECT_TRUE(std::regex_search(rest, line, std::regex("\nENTRYPOINT \\[(.*)\\]\n")));
  std::vector<std::string> args;
  std::string list = line[1];
  std::regex quoted("\"([^\"]*)\"");
  for (std::sregex_iterator it(list.begin(), list.end(), quoted), end; it != end; ++it) {
    args.push_back((*it)[1]);
  }
  return args;
}

// The Docker / Kubernetes layout: memd (the image's ENTRYPOINT), a producer
// and a consumer share only the socket directory; memd's state is on a
// volume of its own. A buffer passes from producer to consumer, and it
// survives memd's container being replaced (SIGTERM, then a new container
// with the same volumes: a rolling update). No /dev/shm holds anything.
TEST(DeployTest, ContainersSharingOnlyTheSocketDirectoryPassABufferThatSurvivesAnUpdate) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for namespaces and mounts";
  std::vector<std::string> entry = MemdEntrypoint();
  ASSERT_FALSE(entry.empty());
  entry[0] = MemdBinary();
  std::string listen = FlagValue(entry, "--listen"), state_dir = FlagValue(entry, "--state-dir");
  ASSERT_EQ(listen.rfind("unix:///", 0), 0u) << listen;
  ASSERT_FALSE(state_dir.empty()) << "the image names its state volume";
  std::string socket_dir = fs::path(listen.substr(7)).parent_path();
  ASSERT_NE((state_dir + "/").rfind(socket_dir + "/", 0), 0u) << "the state is not in the socket volume";

  char tmpl[] = "/tmp/memd-ns-XXXXXX";
  RemovedAtEnd root{mkdtemp(tmpl)};
  std::string run = root.path + "/run", state = root.path + "/state", shm = root.path + "/shm";
  for (const std::string& dir : {run, state, shm}) fs::create_directories(dir);
  ASSERT_EQ(mount("tmpfs", shm.c_str(), "tmpfs", 0, "size=64m,mode=1777"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{shm};
  std::vector<std::string> shms;  // each container's own /dev/shm
  for (const char* name : {"memd", "producer", "consumer"}) {
    shms.push_back(shm + "/" + name);
    fs::create_directories(shms.back());
  }
  std::string instance = UniqueInstanceName();
  std::vector<std::string> memd_args = entry;
  memd_args.insert(memd_args.end(), {"--instance", instance, "--pool", "default=16MiB",
                                     "--log-level", "warn"});
  std::map<std::string, std::string> memd_volumes = {{socket_dir, run}, {state_dir, state}};
  std::map<std::string, std::string> client_volumes = {{socket_dir, run}};
  std::string socket = run + "/" + fs::path(listen).filename().string();
  auto start_memd = [&] {
    return ServingOrNull(
        std::make_unique<Subprocess>(Container(shms[0], memd_volumes, memd_args)), socket);
  };
  auto stop_memd = [&](Subprocess& daemon) {
    // memd is PID 1 of its namespace: SIGTERM must still stop it cleanly.
    pid_t memd = ChildOf(daemon.pid());
    ASSERT_GT(memd, 0);
    ASSERT_EQ(kill(memd, SIGTERM), 0);
    EXPECT_EQ(ExitCode(daemon.Wait(std::chrono::seconds(10))), 0);
  };
  std::map<std::string, std::string> env = {{"MEMD_ADDRESS", listen}, {"MEMD_POOL", "default"}};
  auto consumer_checks = [&](uint64_t handle, int byte) {
    auto [code, out] = RunCommand(
        Container(shms[2], client_volumes, {TestClientBinary(), "check", std::to_string(handle),
                                            "65536", std::to_string(byte),
                                            std::to_string(byte + 1)}),
        env);
    EXPECT_EQ(code, 0) << out;
    EXPECT_TRUE(Has(out, "ok")) << "the consumer container read the producer's bytes: " << out;
  };

  std::unique_ptr<Subprocess> daemon = start_memd();
  ASSERT_TRUE(daemon);
  Subprocess producer(Container(shms[1], client_volumes,
                                {TestClientBinary(), "hold", "1", "65536", "171"}), env);
  std::vector<uint64_t> handles = ReadHandles(producer);
  ASSERT_EQ(handles.size(), 1u);
  consumer_checks(handles[0], 171);

  stop_memd(*daemon);
  EXPECT_TRUE(fs::exists(state + "/" + instance + "/default.state"))
      << "the stop keeps the pool's state in memd's own volume for the next container";
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename(), "memd.sock") << "the socket volume holds only the socket";
  }
  daemon = start_memd();  // the updated container, same volumes
  ASSERT_TRUE(daemon);
  consumer_checks(handles[0], 172);
  producer.CloseStdin();
  EXPECT_EQ(ExitCode(producer.Wait()), 0);
  stop_memd(*daemon);

  // The pool and its lanes have no name in any /dev/shm: their memfds travel
  // over the socket directory, the one thing the containers share.
  for (const std::string& dir : shms) EXPECT_TRUE(fs::is_empty(dir)) << dir;
  EXPECT_FALSE(fs::exists("/dev/shm/memd." + instance + ".default"));
}

}  // namespace
}  // namespace memd::testing
