#!/usr/bin/python3
"""Row N (issue 19): 4K NV12 frames across a veth link between two network
namespaces, through two memd daemons and a bridged channel (UCX and gRPC
transports) and through the UCX transport alone, against iperf3 TCP over the
same link in the same run.

    /usr/bin/python3 bench/bridge_bench.py build [--frames 200] [--reps 3] [--no-grpc]

Needs root (it makes the namespaces and removes them at exit), iperf3,
openssl, and a build with MEMD_BUILD_UCX and tests (memd, memctl,
tests/memd_bridge_client, tests/memd_ucx_peer).

- "bridge ucx", "bridge grpc": memd in A (node a, bridge video/frames=b) and
  memd in B (node b), mutual TLS, --bridge-transport as named. A producer in A
  sends --frames frames of 12441600 bytes to channel `frames`; a consumer in B
  receives them (memd_bridge_client ... stamp: the clients write and check
  only a stamp per frame, so their CPU is memd's part). MB/s: bytes of the
  frames after the first over the time between the consumer's first and last
  frame. CPU per frame: each daemon's getrusage over the run (`memctl stats
  --json` before the producer starts and after the consumer ends) and each
  client's (wait4), divided by --frames.
- "bridge ucx" is encrypted (AES-256-GCM, the default); "bridge ucx trusted"
  runs both daemons with --bridge-link trusted (UCX bytes in clear, issue 24).
- "ucx transport": one exposing process in A serves a 64 MiB memfd; one
  pulling process in B pulls the same frame --frames times into one reused
  buffer (memd_ucx_peer). CPU per frame: each process's user+system time over
  the timed pulls (the exposer's from its start-up line to its end). Sealed
  (AES-256-GCM) as the daemons' default; "ucx transport clear" in clear.
- iperf3 -R (A sends, B receives), CPU per 12441600 bytes from its reported
  utilisation.

Every "x iperf3" is the median over --reps of the ratio of a run to the
iperf3 run just before it (a shared machine's drift hits both sides alike).
Prints Markdown tables.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def ucx(veth, peer, tls, frames, clear=False):
    env = dict(os.environ)
    env.pop("UCX_TLS", None)
    if tls:
        env["UCX_TLS"] = tls
    exposer = subprocess.Popen(in_ns(veth.a, [peer, "expose", str(REGION)] + (["clear"] if clear else [])), stdin=subprocess.PIPE,
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


def make_certificates(work):
    """A CA and node certificates for a and b (CN and DNS name = node), as
    docs/multi-node.md shows."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=memd-ca", cwd=work)
    for n in ("a", "b"):
        with open(os.path.join(work, n + ".ext"), "w") as f:
            f.write(f"subjectAltName=DNS:{n}")
        run("openssl", "req", *key, "-keyout", n + ".key", "-out", n + ".csr", "-subj", "/CN=" + n,
            cwd=work)
        run("openssl", "x509", "-req", "-in", n + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", n + ".pem", "-days", "2", "-extfile", n + ".ext", cwd=work)


class Daemons:
    """memd a in namespace A and memd b in namespace B, peers of each other."""

    def __init__(self, veth, build, work, transport, link="encrypted"):
        self.build, self.work = build, work
        self.memctl = os.path.join(build, "client", "memctl", "memctl")
        self.procs = {}
        ips = {"a": "10.77.0.1", "b": "10.77.0.2"}
        for node, ns, peer in (("b", veth.b, "a"), ("a", veth.a, "b")):
            argv = [os.path.join(build, "server", "memd"), "--instance", f"bench-{node}",
                    "--state-dir", os.path.join(work, "state-" + node),
                    "--listen", "unix://" + self.socket(node), "--listen", ips[node] + ":7441",
                    "--tls-cert", f"{work}/{node}.pem", "--tls-key", f"{work}/{node}.key",
                    "--tls-client-ca", f"{work}/ca.pem", "--node", node,
                    "--peer", f"{peer}={ips[peer]}:7441", "--pool", "video=160MiB,bridge=true",
                    "--bridge-transport", transport, "--bridge-link", link,
                    "--log-level", "warn"]
            if node == "a":
                argv += ["--bridge", "video/frames=b"]
            self.procs[node] = subprocess.Popen(in_ns(ns, argv))
            self.wait(lambda: self.ctl(node, "health").returncode == 0, f"memd {node} serves")
        self.wait(lambda: self.bridge_link("a") == "up", "the bridge's link is up")

    def socket(self, node):
        return os.path.join(self.work, node + ".sock")

    def ctl(self, node, *args):
        return subprocess.run([self.memctl, "--address", "unix://" + self.socket(node), *args],
                              capture_output=True, text=True)

    def bridge_link(self, node):
        out = self.ctl(node, "bridge", "list", "-o", "json")
        bridges = json.loads(out.stdout)["bridges"] if out.returncode == 0 else []
        return bridges[0]["link"] if bridges else ""

    def cpu_us(self, node):
        stats = json.loads(self.ctl(node, "stats", "--json").stdout)
        return stats["cpu_user_us"] + stats["cpu_system_us"]

    @staticmethod
    def wait(predicate, what, seconds=30):
        end = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > end:
                raise RuntimeError("timed out waiting until " + what)
            time.sleep(0.05)

    def close(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.wait(timeout=30)


def child_cpu_us(proc):
    """Waits for `proc` and returns its exit code and user+system CPU (µs)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, (usage.ru_utime + usage.ru_stime) * 1e6


def bridge(veth, build, work, transport, frames, link="encrypted"):
    client = os.path.join(build, "tests", "memd_bridge_client")
    daemons = Daemons(veth, build, work, transport, link)
    try:
        cpu_before = {n: daemons.cpu_us(n) for n in ("a", "b")}
        env = lambda node: dict(os.environ, MEMD_ADDRESS="unix://" + daemons.socket(node),
                                MEMD_POOL="video")
        consumer = subprocess.Popen(in_ns(veth.b, [client, "consume", "frames", str(frames),
                                                   str(2**64 - 1), "stamp"]),
                                    stdout=subprocess.PIPE, text=True, env=env("b"))
        producer = subprocess.Popen(in_ns(veth.a, [client, "produce", "frames", "0", str(frames),
                                                   str(FRAME), "stamp"]),
                                    stdout=subprocess.DEVNULL, env=env("a"))
        times = []
        for line in consumer.stdout:
            if not line.startswith("got "):
                continue
            times.append(time.monotonic())
            if not line.strip().endswith(" ok"):
                raise RuntimeError(f"bridge {transport}: consumer says {line.strip()}")
        codes = {"producer": child_cpu_us(producer), "consumer": child_cpu_us(consumer)}
        if any(code for code, _ in codes.values()) or len(times) != frames:
            raise RuntimeError(f"bridge {transport}: {len(times)} of {frames} frames; "
                               f"exit codes {[c for c, _ in codes.values()]}")
        cpu = {n: daemons.cpu_us(n) - cpu_before[n] for n in ("a", "b")}
    finally:
        daemons.close()
    return {"bytes_per_s": (frames - 1) * FRAME / (times[-1] - times[0]),
            "cpu_us_per_frame_receiver": cpu["b"] / frames,
            "cpu_us_per_frame_sender": cpu["a"] / frames,
            "cpu_us_per_frame_producer": codes["producer"][1] / frames,
            "cpu_us_per_frame_consumer": codes["consumer"][1] / frames}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--iperf-seconds", type=int, default=5)
    parser.add_argument("--no-grpc", action="store_true",
                        help="skip the gRPC transport (a shorter run)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    peer = os.path.join(build, "tests", "memd_ucx_peer")
    if os.geteuid() != 0:
        sys.exit("bridge_bench: needs root (network namespaces)")
    work = tempfile.mkdtemp(prefix="memd-bridge-bench-")
    veth = Veth()
    try:
        make_certificates(work)
        variants = {
            "bridge ucx": lambda: bridge(veth, build, work, "ucx", args.frames),
            "bridge ucx trusted": lambda: bridge(veth, build, work, "ucx", args.frames, "trusted"),
            "bridge grpc": lambda: bridge(veth, build, work, "grpc", args.frames),
            "ucx transport": lambda: ucx(veth, peer, "", args.frames),
            "ucx transport clear": lambda: ucx(veth, peer, "", args.frames, clear=True),
        }
        if args.no_grpc:
            del variants["bridge grpc"]
        runs = {"iperf3": []} | {name: [] for name in variants}
        for _ in range(args.reps):  # interleaved, so drift hits every variant alike
            runs["iperf3"].append(iperf3(veth, args.iperf_seconds))
            for name, run_variant in variants.items():
                runs[name].append(run_variant())
    finally:
        veth.close()
        shutil.rmtree(work, ignore_errors=True)
    report(runs, args.reps)


def report(runs, reps):
    """Medians, and each figure as the median of its per-run ratio to the
    iperf3 run just before it (the floor: the same link, the same bytes)."""
    floor = runs["iperf3"]

    def ratio(name, field, floor_field):
        return statistics.median(r[field] / f[floor_field] for r, f in zip(runs[name], floor))

    med = lambda name, field: statistics.median(r[field] for r in runs[name])
    print(f"| 4K NV12 frames ({FRAME} B) across veth, medians of {reps} | MB/s | x iperf3 "
          "| CPU µs/frame receiving daemon (x iperf3 receiver) | CPU µs/frame sending daemon "
          "(x iperf3 sender) | CPU µs/frame consumer | CPU µs/frame producer |")
    print("|---|---|---|---|---|---|---|")
    for name in runs:
        row = [name, f"{med(name, 'bytes_per_s') / 1e6:.0f}",
               f"{ratio(name, 'bytes_per_s', 'bytes_per_s'):.2f}x"]
        for side in ("receiver", "sender"):
            field = "cpu_us_per_frame_" + side
            row.append(f"{med(name, field):.0f} ({ratio(name, field, field):.2f}x)")
        for client in ("consumer", "producer"):
            field = "cpu_us_per_frame_" + client
            row.append(f"{med(name, field):.0f}" if field in runs[name][0] else "")
        print("| " + " | ".join(row) + " |")
    # Everything memd spends per frame (two daemons, two clients) against
    # iperf3's two ends.
    for name in [n for n in ("bridge ucx", "bridge ucx trusted", "bridge grpc") if n in runs]:
        total = lambda r: sum(r["cpu_us_per_frame_" + k]
                              for k in ("receiver", "sender", "consumer", "producer"))
        both = lambda f: f["cpu_us_per_frame_receiver"] + f["cpu_us_per_frame_sender"]
        print(f"\n{name}: CPU per frame, both daemons and both clients over iperf3's two ends: "
              f"{statistics.median(total(r) / both(f) for r, f in zip(runs[name], floor)):.2f}x")
    print("\nruns (MB/s):", {k: [round(r["bytes_per_s"] / 1e6) for r in v] for k, v in runs.items()})


if __name__ == "__main__":
    main()
