#!/usr/bin/python3
"""Row N (issue 19): 4K NV12 frames pulled through the UCX transport across a
veth link between two network namespaces, against iperf3 TCP over the same
link in the same run.

    /usr/bin/python3 bench/bridge_bench.py build [--frames 200] [--reps 3]

Needs root (it makes the namespaces and removes them at exit), iperf3, and a
build with MEMD_BUILD_UCX and tests (build/tests/memd_ucx_peer). One exposing
process in namespace A serves a 64 MiB memfd; one pulling process in B pulls
the same 12441600-byte frame --frames times into one reused buffer, once
with UCX_TLS=tcp and once with UCX's own choice. CPU per frame is each
process's user+system time over the timed pulls (the exposer's from its
start-up line to its end, so it includes the connection set-up). Prints a
Markdown table; medians of --reps runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FRAME = 12441600
REGION = 64 << 20
IP = "/usr/sbin/ip"


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


class Veth:
    def __init__(self):
        pid = os.getpid()
        self.a, self.b = f"memdbenchn{pid}a", f"memdbenchn{pid}b"
        va, vb = f"mb{pid}a", f"mb{pid}b"
        run(IP, "netns", "add", self.a)
        run(IP, "netns", "add", self.b)
        run(IP, "link", "add", va, "netns", self.a, "type", "veth", "peer", "name", vb, "netns", self.b)
        run(IP, "-n", self.a, "addr", "add", "10.77.0.1/24", "dev", va)
        run(IP, "-n", self.b, "addr", "add", "10.77.0.2/24", "dev", vb)
        for ns, dev in ((self.a, va), (self.b, vb), (self.a, "lo"), (self.b, "lo")):
            run(IP, "-n", ns, "link", "set", dev, "up")
        for ns, dev in ((self.a, va), (self.b, vb)):  # UCX lists running interfaces only
            for _ in range(1000):
                if "state UP" in run(IP, "-n", ns, "-o", "link", "show", "dev", dev).stdout:
                    break
                time.sleep(0.01)

    def close(self):
        for ns in (self.a, self.b):
            subprocess.run([IP, "netns", "del", ns], capture_output=True)


def peer_line(stream, key):
    """The next "KEY ..." line of memd_ucx_peer, skipping UCX's own log lines."""
    for line in stream:
        if line.startswith(key + " "):
            return line.split()
    raise RuntimeError(f"memd_ucx_peer printed no '{key}' line")


def in_ns(ns, argv):
    return [IP, "netns", "exec", ns] + argv


def iperf3(veth, seconds):
    server = subprocess.Popen(in_ns(veth.a, ["iperf3", "-s", "-1", "-B", "10.77.0.1"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last_error = ""
    time.sleep(1)  # a client that comes before the server listens can leave `-1` waiting
    try:
        for _ in range(100):
            try:
                # -R: the server in A sends, B receives: the direction of a pull.
                out = run(*in_ns(veth.b, ["iperf3", "-c", "10.77.0.1", "-R", "-J", "-t", str(seconds)]))
                break
            except subprocess.CalledProcessError as e:
                last_error = e.stdout + e.stderr
                time.sleep(0.1)
        else:
            raise RuntimeError("iperf3 client never connected: " + last_error)
    finally:
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    result = json.loads(out.stdout)
    end = result["end"]
    bps = end["sum_received"]["bits_per_second"] / 8
    cpu = end["cpu_utilization_percent"]
    frames = bps * seconds / FRAME
    # host = the client in B (receiving), remote = the server in A (sending).
    return {"bytes_per_s": bps,
            "cpu_us_per_frame_receiver": cpu["host_total"] / 100 * seconds * 1e6 / frames,
            "cpu_us_per_frame_sender": cpu["remote_total"] / 100 * seconds * 1e6 / frames}


def ucx(veth, peer, tls, frames):
    env = dict(os.environ)
    env.pop("UCX_TLS", None)
    if tls:
        env["UCX_TLS"] = tls
    exposer = subprocess.Popen(in_ns(veth.a, [peer, "expose", str(REGION)]), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    address = peer_line(exposer.stdout, "address")[1]
    region = peer_line(exposer.stdout, "region")[1]
    out = run(*in_ns(veth.b, [peer, "pull", address, region, "--repeat", str(frames),
                              "--deadline-ms", "60000", f"0:{FRAME}"]), env=env).stdout
    exposer.stdin.close()
    exposer_cpu = int(peer_line(exposer.stdout, "cpu_us")[1])
    exposer.wait(timeout=30)
    _, n, nbytes, seconds, cpu_us = peer_line(iter(out.splitlines()), "pulled")
    n = int(n)
    return {"bytes_per_s": int(nbytes) / float(seconds),
            "cpu_us_per_frame_receiver": int(cpu_us) / n,
            "cpu_us_per_frame_sender": exposer_cpu / n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--iperf-seconds", type=int, default=5)
    args = parser.parse_args()
    peer = os.path.abspath(os.path.join(args.build, "tests", "memd_ucx_peer"))
    if os.geteuid() != 0:
        sys.exit("bridge_bench: needs root (network namespaces)")
    veth = Veth()
    try:
        runs = {"iperf3": [], "ucx tcp": [], "ucx default": []}
        for _ in range(args.reps):  # interleaved, so drift hits every variant alike
            runs["iperf3"].append(iperf3(veth, args.iperf_seconds))
            runs["ucx tcp"].append(ucx(veth, peer, "tcp", args.frames))
            runs["ucx default"].append(ucx(veth, peer, "", args.frames))
    finally:
        veth.close()
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    # The ratio of each run to the iperf3 run just before it, then the median:
    # a shared machine's drift hits both sides of one ratio alike.
    ratio = {k: statistics.median(r["bytes_per_s"] / f["bytes_per_s"]
                                  for r, f in zip(v, runs["iperf3"])) for k, v in runs.items()}
    print(f"| 4K NV12 frames ({FRAME} B) across veth, medians of {args.reps} | MB/s | x iperf3 "
          "(median of per-run ratios) | CPU µs/frame receiver | CPU µs/frame sender |")
    print("|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['bytes_per_s'] / 1e6:.0f} | {ratio[name]:.2f}x | "
              f"{m['cpu_us_per_frame_receiver']:.0f} | {m['cpu_us_per_frame_sender']:.0f} |")
    print("\nruns (MB/s):", {k: [round(r["bytes_per_s"] / 1e6) for r in v] for k, v in runs.items()})


if __name__ == "__main__":
    main()
