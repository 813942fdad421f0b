#!/usr/bin/env python3
"""Checks the deployment manifests without a cluster or container engine:
every file parses as YAML; in every pod template each volumeMount names a
declared volume; compose services that share memd's IPC namespace or socket
volume refer to a declared service and volume; the memd container's memory
request covers its pools (the sizes in its ConfigMap). Prints what is wrong
and exits 1, or prints "ok"."""
import re
import sys

import yaml

errors = []


def pod_specs(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        yield doc["metadata"]["name"], doc["spec"]
    elif kind in ("DaemonSet", "Deployment", "StatefulSet"):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def size_mib(text):
    m = re.fullmatch(r"(\d+)\s*(Mi|MiB|Gi|GiB)", str(text))
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2).startswith("G") else 1)


def check_kubernetes(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    pool_mib = 0
    for doc in docs:
        if doc.get("kind") == "ConfigMap":
            for text in doc["data"].values():
                pool_mib += sum(size_mib(s) or 0 for s in re.findall(r'size = "([^"]+)"', text))
    for name, spec in (p for d in docs for p in pod_specs(d)):
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    errors.append(f"{path}: {name}/{c['name']} mounts undeclared volume {m['name']}")
            if c["name"] == "memd" and pool_mib:
                request = size_mib(c["resources"]["requests"]["memory"])
                if request is None or request < pool_mib:
                    errors.append(f"{path}: memd requests {request} MiB, pools need {pool_mib} MiB")


def check_compose(path):
    doc = yaml.safe_load(open(path))
    services, volumes = doc["services"], set(doc.get("volumes", {}))
    for name, svc in services.items():
        ipc = svc.get("ipc", "")
        if ipc.startswith("service:") and ipc[8:] not in services:
            errors.append(f"{path}: {name} shares the IPC of unknown service {ipc[8:]}")
        for v in svc.get("volumes", []):
            if v.split(":")[0] not in volumes:
                errors.append(f"{path}: {name} uses undeclared volume {v}")
    if "shm_size" not in services.get("memd", {}):
        errors.append(f"{path}: memd has no shm_size for its pools")


for path in sys.argv[1:]:
    if path.endswith("compose.yaml"):
        check_compose(path)
    else:
        check_kubernetes(path)
print("\n".join(errors) if errors else "ok")
sys.exit(1 if errors else 0)
