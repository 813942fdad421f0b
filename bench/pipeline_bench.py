"""Row P: the decode -> filter (pass) -> encode pipeline of examples/pipeline with frames
passed through memd channels versus copied through pipes, at 1080p and 4K, in one run.

Usage: pipeline_bench.py BUILD_DIR OUT.pipejson [--seconds S] [--reps N]

Three modes, interleaved: memd (sessions with lanes, the default), memd_stream
(MEMD_LANE=0: every request a gRPC message) and pipe. Per mode it reports frames/s (frames over the pipeline's wall time), CPU seconds per frame
(all three stages, plus the daemon for memd) and the handoff cost per frame: the CPU the
stages spent inside their links (send/receive for memd, write/read for pipes), plus, for
memd, all of the daemon's CPU during the run (its getrusage, in microseconds,
read with `memctl stats --json` before and after). Medians over N repetitions; ratios are
copy / memd, taken in the same run.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

RESOLUTIONS = {"1080p": "1920x1080", "4k": "3840x2160"}


def daemon_cpu_s(memctl):
    """The daemon's CPU time (all threads, exited ones included; microseconds
    from its getrusage), read through `memctl stats --json`."""
    out = subprocess.run([memctl, "stats", "--json"], capture_output=True, check=True).stdout
    stats = json.loads(out)
    return (stats["cpu_user_us"] + stats["cpu_system_us"]) / 1e6


def run_once(build, work, source, transport, run_id, memctl, lane):
    stage = lambda name: os.path.join(build, "examples/pipeline", f"memd_pipeline_{name}")
    reports = [os.path.join(work, f"{run_id}-{s}.json") for s in ("decode", "filter", "encode")]
    out = os.path.join(work, f"{run_id}-out.mkv")
    raw, filtered = (f"raw-{run_id}", f"filtered-{run_id}") if transport != "pipe" else ("-", "-")
    argv = [
        [stage("decode"), "--input", source, "--output", raw, "--report", reports[0]],
        [stage("filter"), "--mode", "pass", "--input", raw, "--output", filtered, "--report", reports[1]],
        [stage("encode"), "--input", filtered, "--output", out, "--report", reports[2]],
    ]
    cpu_before = daemon_cpu_s(memctl)
    start = time.monotonic()
    if transport == "memd":
        env = dict(os.environ, MEMD_LANE="1" if lane else "0")
        procs = [subprocess.Popen(a, env=env) for a in argv]
    else:
        decode = subprocess.Popen(argv[0], stdout=subprocess.PIPE)
        filt = subprocess.Popen(argv[1], stdin=decode.stdout, stdout=subprocess.PIPE)
        decode.stdout.close()
        encode = subprocess.Popen(argv[2], stdin=filt.stdout)
        filt.stdout.close()
        procs = [decode, filt, encode]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    daemon = daemon_cpu_s(memctl) - cpu_before if transport != "pipe" else 0.0
    if any(codes):
        sys.exit(f"pipeline ({transport}) failed: exit codes {codes}")
    stages = [json.load(open(r)) for r in reports]
    frames = stages[2]["frames"]
    return {
        "frames": frames,
        "frames_per_s": frames / wall,
        "cpu_s_per_frame": (sum(s["cpu_s"] for s in stages) + daemon) / frames,
        "handoff_cpu_us_per_frame": (sum(s["transport_cpu_s"] for s in stages) + daemon) / frames * 1e6,
        "daemon_cpu_us_per_frame": daemon / frames * 1e6,
    }


def main():
    build, out_path = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 2
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    work = tempfile.mkdtemp(prefix="memd-pipeline-bench-")
    sock = os.path.join(work, "memd.sock")
    memd = subprocess.Popen([os.path.join(build, "server/memd"), "--listen", f"unix://{sock}",
                             "--instance", f"pipeline-bench-{os.getpid()}", "--pool", "default=1GiB",
                             "--log-level", "error"])
    env_address = f"unix://{sock}"
    os.environ["MEMD_ADDRESS"] = env_address
    memctl = os.path.join(build, "client/memctl/memctl")
    for _ in range(200):
        if subprocess.run([memctl, "health"], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    result = {"seconds": seconds, "reps": reps, "P": {}}
    try:
        for name, size in RESOLUTIONS.items():
            source = os.path.join(work, f"in-{name}.mkv")
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                            f"testsrc2=size={size}:rate=25:duration={seconds}", "-c:v", "mpeg4",
                            "-q:v", "3", "-pix_fmt", "yuv420p", source], check=True)
            runs = {"memd": [], "pipe": [], "memd_stream": []}
            for rep in range(reps):  # interleaved, so drift hits all alike
                for transport in runs:
                    runs[transport].append(run_once(
                        build, work, source, "pipe" if transport == "pipe" else "memd",
                        f"{name}-{transport}-{rep}", memctl, lane=transport == "memd"))
            med = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in runs.items()}
            med["ratios"] = {
                "handoff_cost_pipe_over_memd": med["pipe"]["handoff_cpu_us_per_frame"]
                / med["memd"]["handoff_cpu_us_per_frame"],
                "frames_per_s_memd_over_pipe": med["memd"]["frames_per_s"] / med["pipe"]["frames_per_s"],
                "cpu_per_frame_pipe_over_memd": med["pipe"]["cpu_s_per_frame"] / med["memd"]["cpu_s_per_frame"],
                "handoff_cost_pipe_over_memd_stream": med["pipe"]["handoff_cpu_us_per_frame"]
                / med["memd_stream"]["handoff_cpu_us_per_frame"],
            }
            result["P"][name] = med
    finally:
        memd.terminate()
        memd.wait()
        subprocess.run(["rm", "-rf", work])
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
