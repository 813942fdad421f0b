#!/usr/bin/env python3
"""How the kubelet would run memd's DaemonSet and the example pipeline pod,
read from the shipped manifests, as JSON for DaemonSetTest
(tests/integration/daemonset_test.cc).

    daemonset_spec.py POD_IP

What it reads: `kubectl kustomize deploy/kubernetes` when kubectl is
installed, else the base's resources (check_manifests.kustomization_docs);
deploy/kubernetes/pipeline-pod.yaml; each image's ENTRYPOINT, CMD and ENV from
deploy/container/Dockerfile (image `memd` is the target `memd`, `memd-X` the
target `X`). Owner of nothing: the manifests and the Dockerfile are.

What it prints, per container (init containers of the DaemonSet, its memd
container, the pipeline pod's containers):
  argv       the image's ENTRYPOINT + (args, or its CMD), or command + args,
             with $(VAR) expanded from the container's env as the kubelet does
  env        the image's ENV, then the container's; fieldRef status.podIP is
             POD_IP (the address the test gives the pod's network namespace)
  uid, gid, groups   the effective securityContext (the container's over the
             pod's; fsGroup is a supplementary group)
  read_only_root, no_new_privs
  caps       the capabilities kept: `add` when `drop` is ALL, else null
             (the runtime's default set)
  mounts     [{path, kind, host_path | files, read_only}], kind hostPath,
             configMap (files: name -> content) or emptyDir
  startup_probe  the exec command of the startupProbe, if any
and the pod's terminationGracePeriodSeconds (default 30) and where it read
the manifests from (`source`).
"""
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_manifests  # noqa: E402  (the kustomization reader)

REPO = check_manifests.REPO
DOCKERFILE = os.path.join(REPO, "deploy/container/Dockerfile")
# A Debian image's PATH (what `$PATH` in an ENV line of a stage FROM debian means).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def rendered_docs():
    kustomization = os.path.join(REPO, "deploy/kubernetes")
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", kustomization], check=True,
                             capture_output=True, text=True).stdout
        return [d for d in yaml.safe_load_all(out) if d], "kubectl kustomize deploy/kubernetes"
    docs = check_manifests.kustomization_docs(kustomization)
    if check_manifests.errors:
        sys.exit("\n".join(check_manifests.errors))
    return docs, "deploy/kubernetes (base resources; kubectl not installed)"


def dockerfile_stages():
    """stage -> {entrypoint, cmd, env, user}, each inherited along FROM."""
    stages, current = {}, None
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            base = dict(stages.get(m.group(1), {"entrypoint": [], "cmd": [], "env": {
                "PATH": DEFAULT_PATH}}))
            base["env"] = dict(base["env"])
            current = base
            stages[m.group(2) or m.group(1)] = current
            stages["last"] = current
            continue
        m = re.match(r"(ENTRYPOINT|CMD)\s+(\[.*\])\s*$", line)
        if m and current is not None:
            current[m.group(1).lower()] = json.loads(m.group(2))
            if m.group(1) == "ENTRYPOINT":
                current["cmd"] = []  # a new ENTRYPOINT resets the inherited CMD
        m = re.match(r"ENV\s+(.*)$", line)
        if m and current is not None:
            for key, value in re.findall(r"(\w+)=(\S+)", m.group(1)):
                value = value.replace("$PATH", current["env"]["PATH"])
                current["env"][key] = value
    return stages


def image_stage(image, stages):
    name = image.split(":")[0]
    target = "last" if name == "memd" else name[len("memd-"):]
    if target not in stages:
        sys.exit(f"daemonset_spec.py: image {image} is no stage of {DOCKERFILE}")
    return stages[target]


def expand(text, env):
    """The kubelet's $(VAR) expansion; $$ escapes, unknown names stay."""
    return re.sub(r"\$\$|\$\((\w+)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def container_spec(pod, container, stages, config_maps, pod_ip):
    image = image_stage(container["image"], stages)
    env = dict(image["env"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(e["value"], env)
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
            env[e["name"]] = pod_ip
        else:
            sys.exit(f"daemonset_spec.py: {container['name']}: env {e['name']} has a source "
                     "this test does not reproduce")
    if "command" in container:
        argv = container["command"] + container.get("args", [])
    else:
        argv = image["entrypoint"] + container.get("args", image["cmd"])
    pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
    caps = sc.get("capabilities", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = []
    for m in container.get("volumeMounts", []):
        v = volumes[m["name"]]
        out = {"path": m["mountPath"], "read_only": bool(m.get("readOnly", False))}
        if "hostPath" in v:
            out.update(kind="hostPath", host_path=v["hostPath"]["path"])
        elif "configMap" in v:
            out.update(kind="configMap", files=config_maps[v["configMap"]["name"]],
                       read_only=True)
        elif "emptyDir" in v:
            out.update(kind="emptyDir")
        else:
            sys.exit(f"daemonset_spec.py: volume {m['name']} is of a kind this test does not "
                     "reproduce")
        mounts.append(out)
    probe = container.get("startupProbe", {}).get("exec", {}).get("command")
    return {
        "name": container["name"],
        "argv": [expand(a, env) for a in argv],
        "env": env,
        "uid": sc.get("runAsUser", pod_sc.get("runAsUser", 0)),
        "gid": sc.get("runAsGroup", pod_sc.get("runAsGroup", 0)),
        "groups": [pod_sc["fsGroup"]] if "fsGroup" in pod_sc else [],
        "read_only_root": bool(sc.get("readOnlyRootFilesystem", False)),
        "no_new_privs": sc.get("allowPrivilegeEscalation") is False,
        "caps": [c.lower() for c in caps.get("add", [])] if "ALL" in caps.get("drop", []) else None,
        "mounts": mounts,
        "startup_probe": probe,
    }


def pod_spec(pod, stages, config_maps, pod_ip):
    return {
        "init": [container_spec(pod, c, stages, config_maps, pod_ip)
                 for c in pod.get("initContainers", [])],
        "containers": [container_spec(pod, c, stages, config_maps, pod_ip)
                       for c in pod["containers"]],
        "termination_grace_seconds": pod.get("terminationGracePeriodSeconds", 30),
    }


def main(pod_ip):
    docs, source = rendered_docs()
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                   if d.get("kind") == "ConfigMap"}
    daemonsets = [d for d in docs if d.get("kind") == "DaemonSet"
                  and d["metadata"]["name"] == "memd"]
    if len(daemonsets) != 1:
        sys.exit(f"daemonset_spec.py: {source} has {len(daemonsets)} DaemonSets named memd")
    stages = dockerfile_stages()
    pipeline = yaml.safe_load(open(os.path.join(REPO, "deploy/kubernetes/pipeline-pod.yaml")))
    print(json.dumps({
        "source": source,
        "daemonset": pod_spec(daemonsets[0]["spec"]["template"]["spec"], stages, config_maps,
                              pod_ip),
        "pipeline": pod_spec(pipeline["spec"], stages, config_maps, pod_ip),
    }, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
