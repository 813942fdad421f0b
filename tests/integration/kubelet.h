// Kubelet: runs containers of a pod spec (tests/deploy/daemonset_spec.py's
// JSON, read from the shipped manifests) the way a kubelet and a container
// runtime would, without either: each container in its own mount, IPC, PID,
// UTS and network namespaces (unshare), with its own /dev/shm and /run, its
// volumes bound at their mount paths (hostPath from this node's host
// directories, configMap as read-only files), the rest of the file system
// read-only when readOnlyRootFilesystem says so, and its securityContext's
// uid, gid, groups, capabilities and no_new_privs (setpriv). The network
// namespace has only `lo`, up: the pod's address is 127.0.0.1.
//
// The node's host directories live under a temporary directory removed at
// destruction. Owned by one test; not thread-safe. REQUIRES: root.
#ifndef MEMD_TESTS_INTEGRATION_KUBELET_H_
#define MEMD_TESTS_INTEGRATION_KUBELET_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "subprocess.h"

namespace memd::testing {

class Kubelet {
 public:
  Kubelet();
  ~Kubelet();
  Kubelet(const Kubelet&) = delete;
  Kubelet& operator=(const Kubelet&) = delete;

  // Where the node's `path` (a hostPath) is on this machine.
  std::string HostPath(const std::string& path) const { return root_ + "/host" + path; }
  // Creates the hostPath volumes of `pod`'s containers that do not exist yet,
  // as the kubelet does for DirectoryOrCreate: owner root, mode 0755.
  void CreateHostPaths(const nlohmann::json& pod) const;

  // The command that runs `container`: its argv, or `argv` in its place (a
  // test program standing in for the image's), with the image's binaries
  // `memd` and `memctl` replaced by the build's.
  std::vector<std::string> Run(const nlohmann::json& container, std::vector<std::string> argv = {});
  // `container`'s env, for the Subprocess that runs it.
  static std::map<std::string, std::string> Env(const nlohmann::json& container);
  // `kubectl exec`: `argv` in the namespaces of the container whose first
  // process (PID 1 inside) is `pid` on this machine, as that container's user.
  std::vector<std::string> Exec(pid_t pid, const nlohmann::json& container,
                                std::vector<std::string> argv) const;

 private:
  std::string root_;
  int next_ = 0;  // configMap directories and overlay scratch, one per Run
};

}  // namespace memd::testing

#endif  // MEMD_TESTS_INTEGRATION_KUBELET_H_
