#!/usr/bin/env python3
"""Checks memd's deployment manifests without a cluster or container engine.

    check_manifests.py [FILE...]

Default FILEs: the repository's DaemonSet, example pipeline pod and
deploy/container/compose.yaml, and every kustomization under deploy/kubernetes.
A FILE may be a kustomization directory, or a `kubectl kustomize` rendering.
DeployTest.ManifestsAreConsistent runs it.

What must hold (docs/deployment.md):
- every file parses as YAML; every volumeMount names a declared volume;
  compose services use declared volumes;
- nothing mounts or sizes /dev/shm, shares an IPC namespace or runs
  privileged: pool memory is a sealed memfd memd passes over the socket;
- memd's state directory (state_dir, --state-dir) is on a volume of its own,
  not the socket directory's; other pods and services mount nothing of memd's
  but the socket directory;
- memd's memory request and limit (compose: mem_limit) cover its pools and
  max_lanes lanes (each memd::lane::kObjectBytes, read from
  shared/include/memd/shared/lane.h): their pages are charged to memd.
- memd's DaemonSet runs as a node daemon: a PriorityClass the manifests
  define, tolerations, an imagePullPolicy, probes with timeouts, a named
  metrics port;
- kustomizations (checked structurally: kubectl is not a Debian 12 package;
  DeployTest also renders them when kubectl is installed): every resource
  exists, images name an image a container uses, patches name a resource the
  kustomization builds.

Prints what is wrong and exits 1, or prints "ok".
"""
import json
import os
import posixpath
import re
import sys

import yaml

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_FILES = [
    "deploy/kubernetes/base/memd-daemonset.yaml",
    "deploy/kubernetes/pipeline-pod.yaml",
    "deploy/container/compose.yaml",
]
MIB = 1024 * 1024
errors = []


def lane_bytes():
    """memd::lane::kObjectBytes, evaluated from lane.h's constants."""
    text = open(os.path.join(REPO, "shared/include/memd/shared/lane.h")).read()
    values = {}
    for name, expr in re.findall(r"constexpr\s+\w+\s+(k\w+)\s*=\s*([^;]+);", text):
        expr = re.sub(r"\b(\d+)(?:ull|ul|u|ll|l)\b", r"\1", expr)
        if re.fullmatch(r"[\w\s+*]+", expr):
            try:
                values[name] = eval(expr, {"__builtins__": {}}, dict(values))  # ints, + and *
            except NameError:
                pass
    if "kObjectBytes" not in values:
        sys.exit("check_manifests.py: cannot read kObjectBytes from lane.h")
    return values["kObjectBytes"]


def size_bytes(text, kubernetes=False):
    """memd's '1GiB' and Docker's '1g' (binary), Kubernetes' '1200Mi' (binary)
    and '1G' (decimal), or bytes."""
    m = re.fullmatch(r"(\d+)\s*([KMGT]?)(i?)(B?)", str(text).strip(), re.IGNORECASE)
    if not m:
        return None
    base = 1000 if kubernetes and m.group(2) and not m.group(3) else 1024
    return int(m.group(1)) * base ** " KMGT".index(m.group(2).upper() or " ")


def under(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_shm_free(where, mounts):
    for target in mounts:
        if under(target, "/dev/shm"):
            errors.append(f"{where} mounts {target}: memd needs no /dev/shm (pools are memfds "
                          "passed over the socket)")


def check_memory(where, what, value, pools, lanes, lane_size, kubernetes=False):
    """`value` (a limit or request) against the pools and lanes of memd."""
    if lanes is None:
        errors.append(f"{where}: memd's configuration does not set max_lanes; its memory {what} "
                      f"must count {lane_size} bytes per lane")
        return
    need = pools + lanes * lane_size
    have = size_bytes(value, kubernetes) if value is not None else None
    if have is None or have < need:
        errors.append(f"{where}: memd's memory {what} is {value}; its pools and {lanes} lanes "
                      f"need {need // MIB} MiB ({need} bytes)")


# --- Kubernetes -----------------------------------------------------------

def pod_specs(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        yield doc["metadata"]["name"], doc["spec"]
    elif kind in ("DaemonSet", "Deployment", "StatefulSet"):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def memd_toml(docs):
    """Pools (bytes), max_lanes, state_dir and the socket path from memd's ConfigMap."""
    for doc in docs:
        if doc.get("kind") != "ConfigMap":
            continue
        for text in doc["data"].values():
            pools = sum(size_bytes(s) or 0
                        for s in re.findall(r'^\s*size\s*=\s*"([^"]+)"', text, re.M))
            lanes = re.search(r"^\s*max_lanes\s*=\s*(\d+)", text, re.M)
            state = re.search(r'^\s*state_dir\s*=\s*"([^"]+)"', text, re.M)
            socket = re.search(r'unix://(/[^"]+)', text)
            return {"pools": pools, "lanes": int(lanes.group(1)) if lanes else None,
                    "state_dir": state.group(1) if state else None,
                    "socket_dir": posixpath.dirname(socket.group(1)) if socket else None}
    return None


def host_path_of(spec, container, directory):
    """The hostPath behind the mount that holds `directory` in `container`."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    holding = [m for m in container.get("volumeMounts", [])
               if under(directory, m["mountPath"]) and m["name"] in volumes]
    if not holding:
        return None, None
    m = max(holding, key=lambda m: len(m["mountPath"]))
    host = volumes[m["name"]].get("hostPath", {}).get("path")
    return m["name"], host and posixpath.normpath(
        posixpath.join(host, posixpath.relpath(directory, m["mountPath"])))


def check_kubernetes(path, memd_dirs, lane_size):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    if any(d.get("kind") == "PriorityClass" for d in docs):  # a whole rendering
        check_node_daemon(path, docs)
    config = memd_toml(docs)
    pods = []
    for name, spec in (p for d in docs for p in pod_specs(d)):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            host = v.get("hostPath", {}).get("path", "")
            if under(host, "/dev/shm"):
                errors.append(f"{path}: {name} uses the host's {host}")
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{path}: {name}/{c['name']}"
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    errors.append(f"{where} mounts undeclared volume {m['name']}")
            check_shm_free(where, [m["mountPath"] for m in c.get("volumeMounts", [])])
            if c.get("securityContext", {}).get("privileged"):
                errors.append(f"{where} is privileged; memd needs no privileged container")
            if c["name"] == "memd" and config:
                check_memd_pod(where, spec, c, config, memd_dirs, lane_size)
        pods.append((name, spec))
    return pods


def check_memd_pod(where, spec, container, config, memd_dirs, lane_size):
    resources = container.get("resources", {})
    for what in ("requests", "limits"):
        check_memory(where, what[:-1], resources.get(what, {}).get("memory"), config["pools"],
                     config["lanes"], lane_size, kubernetes=True)
    if not config["state_dir"] or not config["socket_dir"]:
        errors.append(f"{where}: memd's configuration sets no state_dir or no unix:// listen "
                      "address")
        return
    socket_volume, socket_host = host_path_of(spec, container, config["socket_dir"])
    state_volume, state_host = host_path_of(spec, container, config["state_dir"])
    if state_volume is None or state_host is None:
        errors.append(f"{where}: state_dir {config['state_dir']} is not on a hostPath volume: "
                      "the state must outlive the pod for a restart to keep the buffers")
    elif state_volume == socket_volume or (socket_host and (under(state_host, socket_host) or
                                                            under(socket_host, state_host))):
        errors.append(f"{where}: state_dir {config['state_dir']} shares a volume with the socket "
                      "directory; the pipelines must see only the socket")
    memd_dirs.update(socket=socket_host, state=state_host)


def check_clients(path, pods, memd_dirs):
    """Pipeline pods mount nothing of memd's host paths but the socket directory."""
    for name, spec in pods:
        if any(c["name"] == "memd" for c in spec["containers"]):
            continue
        for v in spec.get("volumes", []):
            host = v.get("hostPath", {}).get("path")
            if host and host != memd_dirs.get("socket"):
                errors.append(f"{path}: {name} mounts host path {host}; a pipeline shares only "
                              f"memd's socket directory {memd_dirs.get('socket')}")


def check_node_daemon(path, docs):
    """memd's DaemonSet: scheduled and probed like a node daemon."""
    classes = {d["metadata"]["name"] for d in docs if d.get("kind") == "PriorityClass"}
    for d in docs:
        if d.get("kind") != "DaemonSet":
            continue
        spec, where = d["spec"]["template"]["spec"], f"{path}: {d['metadata']['name']}"
        if spec.get("priorityClassName") not in classes:
            errors.append(f"{where}: priorityClassName {spec.get('priorityClassName')} is not a "
                          "PriorityClass of these manifests")
        if not spec.get("tolerations"):
            errors.append(f"{where}: no tolerations; a node daemon must run on tainted nodes too")
        for c in spec.get("initContainers", []) + spec["containers"]:
            if "imagePullPolicy" not in c:
                errors.append(f"{where}/{c['name']}: no imagePullPolicy")
        for c in spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "timeoutSeconds" not in c.get(probe, {}):
                    errors.append(f"{where}/{c['name']}: {probe} has no timeoutSeconds")
            if not any(p.get("name") == "metrics" for p in c.get("ports", [])):
                errors.append(f"{where}/{c['name']}: no port named metrics")


def kustomization_docs(directory, seen=None):
    """The documents a kustomization directory builds (resources, recursively),
    checking that each resource exists; patches and images are checked against
    them."""
    seen = seen if seen is not None else set()
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(path):
        errors.append(f"{directory}: no kustomization.yaml")
        return []
    if os.path.realpath(directory) in seen:
        errors.append(f"{directory}: kustomization cycle")
        return []
    seen.add(os.path.realpath(directory))
    k = yaml.safe_load(open(path))
    docs = []
    for resource in k.get("resources", []):
        target = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(target):
            docs += kustomization_docs(target, seen)
        elif os.path.isfile(target):
            docs += [d for d in yaml.safe_load_all(open(target)) if d]
        else:
            errors.append(f"{path}: resource {resource} does not exist")
    images = {c.get("image", "").split(":")[0]
              for d in docs for _, spec in pod_specs(d)
              for c in spec.get("initContainers", []) + spec["containers"]}
    for image in k.get("images", []):
        if image["name"] not in images:
            errors.append(f"{path}: image {image['name']} is used by no container")
    names = {(d.get("kind"), d["metadata"]["name"]) for d in docs}
    for patch in k.get("patches", []):
        t = patch.get("target", {})
        if (t.get("kind"), t.get("name")) not in names:
            errors.append(f"{path}: patch target {t.get('kind')}/{t.get('name')} is not built here")
        if "path" in patch and not os.path.isfile(os.path.join(directory, patch["path"])):
            errors.append(f"{path}: patch {patch['path']} does not exist")
    return docs


def check_kustomization(directory):
    docs = kustomization_docs(directory)
    if not any(d.get("kind") == "Namespace" for d in docs):
        errors.append(f"{directory}: builds no Namespace for memd")
    check_node_daemon(directory, docs)


# --- Compose ----------------------------------------------------------------

def entrypoint(compose_path, build):
    """The ENTRYPOINT of the build's target stage in its Dockerfile."""
    context = os.path.join(os.path.dirname(compose_path), build.get("context", "."))
    text = open(os.path.join(context, build.get("dockerfile", "Dockerfile"))).read()
    stage, found = None, {}
    for line in text.replace("\\\n", " ").splitlines():
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if m:
            stage = m.group(1)
        m = re.match(r"ENTRYPOINT\s+(\[.*\])\s*$", line)
        if m:
            found[stage] = json.loads(m.group(1))
    return found.get(build.get("target"), [])


def flag_values(args, flag):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def check_compose(path, lane_size):
    doc = yaml.safe_load(open(path))
    services, volumes = doc["services"], set(doc.get("volumes", {}))
    mounts = {}
    for name, svc in services.items():
        for key in ("ipc", "shm_size"):
            if key in svc:
                errors.append(f"{path}: {name} sets {key}; memd's clients share only the socket "
                              "directory")
        mounts[name] = {}
        for v in svc.get("volumes", []):
            source, target = (v.split(":") + [""])[:2]
            if source not in volumes:
                errors.append(f"{path}: {name} uses undeclared volume {v}")
            mounts[name][target] = source
        targets = list(mounts[name]) + [t.split(":")[0] for t in svc.get("tmpfs", [])]
        check_shm_free(f"{path}: {name}", targets)
    memd = services.get("memd")
    if memd is None:
        return
    args = entrypoint(path, memd.get("build", {}))[1:] + memd.get("command", [])
    pools = sum(size_bytes(p.split("=")[1].split(",")[0]) or 0 for p in flag_values(args, "--pool"))
    lanes = flag_values(args, "--max-lanes")
    check_memory(f"{path}: memd", "limit (mem_limit)", memd.get("mem_limit"), pools,
                 int(lanes[-1]) if lanes else None, lane_size)
    sockets = [a[len("unix://"):] for a in flag_values(args, "--listen") if a.startswith("unix://")]
    states = flag_values(args, "--state-dir")
    socket_volume = mounts["memd"].get(posixpath.dirname(sockets[-1])) if sockets else None
    state_volume = mounts["memd"].get(states[-1]) if states else None
    if state_volume is None or state_volume == socket_volume:
        errors.append(f"{path}: memd's --state-dir {states[-1] if states else '(unset)'} is not a "
                      "volume of its own: a recreated container would lose every pool")
    for name, targets in mounts.items():
        if name != "memd" and any(source != socket_volume for source in targets.values()):
            errors.append(f"{path}: {name} mounts {sorted(set(targets.values()))}; a client "
                          f"shares only memd's socket volume {socket_volume}")


def main(paths):
    lane_size = lane_bytes()
    memd_dirs, client_pods = {}, []
    for path in paths:
        if os.path.isdir(path):
            check_kustomization(path)
        elif path.endswith("compose.yaml"):
            check_compose(path, lane_size)
        else:
            client_pods.append((path, check_kubernetes(path, memd_dirs, lane_size)))
    if memd_dirs:
        for path, pods in client_pods:
            check_clients(path, pods, memd_dirs)
    print("\n".join(errors) if errors else "ok")
    return 1 if errors else 0


if __name__ == "__main__":
    kustomizations = [os.path.dirname(os.path.join(d, "kustomization.yaml"))
                      for d, _, files in os.walk(os.path.join(REPO, "deploy/kubernetes"))
                      if "kustomization.yaml" in files]
    sys.exit(main(sys.argv[1:] or
                  [os.path.join(REPO, f) for f in DEFAULT_FILES] + sorted(kustomizations)))
