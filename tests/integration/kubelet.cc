#include "kubelet.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon_env.h"

namespace memd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A container runtime's default capabilities (containerd, Docker), for a
// securityContext that does not drop ALL.
constexpr char kDefaultCaps[] =
    "+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,"
    "+net_bind_service,+sys_chroot,+kill,+audit_write";

// `text` as one single-quoted shell word.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool Under(const std::string& path, const std::string& dir) {
  return path == dir || path.rfind(dir + "/", 0) == 0;
}

// setpriv arguments for the container's securityContext.
std::vector<std::string> Identity(const json& c) {
  std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid",
                                  std::to_string(c["uid"].get<int>()), "--regid",
                                  std::to_string(c["gid"].get<int>())};
  std::string groups;
  for (const json& g : c["groups"])
    groups += (groups.empty() ? "" : ",") + std::to_string(g.get<int>());
  if (groups.empty()) {
    out.push_back("--clear-groups");
  } else {
    out.insert(out.end(), {"--groups", groups});
  }
  std::string caps = "-all";
  if (c["caps"].is_null()) {
    caps += std::string(",") + kDefaultCaps;
  } else {
    for (const json& cap : c["caps"]) caps += ",+" + cap.get<std::string>();
  }
  out.insert(out.end(), {"--bounding-set", caps, "--inh-caps", "-all"});
  if (c["no_new_privs"].get<bool>()) out.push_back("--no-new-privs");
  return out;
}

std::vector<std::string> WithBuildBinaries(std::vector<std::string> argv) {
  if (!argv.empty() && argv[0] == "memd") argv[0] = MemdBinary();
  if (!argv.empty() && argv[0] == "memctl") argv[0] = MemctlBinary();
  return argv;
}

}  // namespace

Kubelet::Kubelet() {
  char tmpl[] = "/tmp/memd-kubelet-XXXXXX";
  root_ = ::mkdtemp(tmpl);
  fs::create_directories(root_ + "/host");
  fs::create_directories(root_ + "/scratch");
}

Kubelet::~Kubelet() {
  std::error_code ignored;
  fs::remove_all(root_, ignored);
}

void Kubelet::CreateHostPaths(const json& pod) const {
  for (const char* list : {"init", "containers"}) {
    for (const json& c : pod[list]) {
      for (const json& m : c["mounts"]) {
        if (m["kind"] != "hostPath") continue;
        std::string dir = HostPath(m["host_path"]);
        if (fs::exists(dir)) continue;
        fs::create_directories(dir);
        ::chmod(dir.c_str(), 0755);
      }
    }
  }
}

std::map<std::string, std::string> Kubelet::Env(const json& container) {
  return container["env"].get<std::map<std::string, std::string>>();
}

std::vector<std::string> Kubelet::Run(const json& c, std::vector<std::string> argv) {
  if (argv.empty()) argv = c["argv"].get<std::vector<std::string>>();
  std::string scratch = root_ + "/scratch/" + std::to_string(next_++);
  fs::create_directories(scratch);
  // A container's own /dev/shm and /run (the image's, where the socket and
  // state directories are mount points); scratch space for overlays, in this
  // mount namespace only.
  std::string setup =
      "set -e; ip link set lo up; mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm;"
      " mount -t tmpfs -o mode=0755 tmpfs /run; mount -t tmpfs tmpfs " +
      Quote(scratch) + ";";
  std::string writable = "/proc|/proc/*|/sys|/sys/*|/dev|/dev/*";
  int overlays = 0, config_maps = 0;
  for (const json& m : c["mounts"]) {
    std::string target = m["path"], source;
    if (m["kind"] == "hostPath") {
      source = HostPath(m["host_path"]);
    } else if (m["kind"] == "configMap") {  // files of root, 0644, as the kubelet writes them
      source = scratch + ".config" + std::to_string(config_maps++);
      fs::create_directories(source);
      for (const auto& [name, text] : m["files"].items()) {
        std::ofstream(source + "/" + name) << text.get<std::string>();
      }
    } else {
      continue;  // emptyDir: the test passes what a pod would put there
    }
    std::string parent = fs::path(target).parent_path();
    if (!Under(target, "/run") && !fs::exists(target)) {
      // A mount point the image has and this machine does not (/etc/memd):
      // its parent becomes an overlay with a writable layer in this namespace.
      std::string layer = scratch + "/" + std::to_string(overlays++);
      setup += " mkdir -p " + Quote(layer + "/u") + " " + Quote(layer + "/w") +
               "; mount -t overlay overlay -o " +
               Quote("lowerdir=" + parent + ",upperdir=" + layer + "/u,workdir=" + layer + "/w") +
               " " + Quote(parent) + ";";
    }
    setup += " mkdir -p " + Quote(target) + "; mount --bind " + Quote(source) + " " +
             Quote(target) + ";";
    if (m["read_only"].get<bool>()) {
      setup += " mount -o remount,bind,ro " + Quote(target) + ";";
    } else {
      writable += "|" + Quote(target);
    }
  }
  if (c["read_only_root"].get<bool>()) {
    setup += " while read -r _ m _; do case \"$m\" in " + writable +
             ") ;; *) mount -o remount,bind,ro \"$m\" 2>/dev/null || true ;; esac; done < "
             "/proc/self/mounts;"
             // The root must really be read-only, or the test proves nothing.
             " if touch /usr/.memd-kubelet-probe 2>/dev/null; then echo 'root is writable' >&2; "
             "exit 97; fi;";
  }
  std::string command = setup + " exec";
  for (const std::string& arg : Identity(c)) command += " " + Quote(arg);
  for (const std::string& arg : WithBuildBinaries(argv)) command += " " + Quote(arg);
  // --kill-child: the container goes with the process the test holds.
  return {"/usr/bin/unshare", "--kill-child", "--mount", "--ipc", "--uts", "--net", "--pid",
          "--fork",           "--mount-proc", "/bin/sh", "-c",    command};
}

std::vector<std::string> Kubelet::Exec(pid_t pid, const json& container,
                                       std::vector<std::string> argv) const {
  std::vector<std::string> out = {"/usr/bin/nsenter",
                                  "--target",
                                  std::to_string(pid),
                                  "--mount",
                                  "--ipc",
                                  "--uts",
                                  "--net",
                                  "--pid",
                                  "--"};
  for (std::string& arg : Identity(container)) out.push_back(std::move(arg));
  for (std::string& arg : WithBuildBinaries(std::move(argv))) out.push_back(std::move(arg));
  return out;
}

}  // namespace memd::testing
