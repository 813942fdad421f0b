"""Row Q: GStreamer pipelines across two processes, memdsink/memdsrc against
GStreamer's own shmsink/shmsrc (gst-plugins-bad), at 1080p and 4K NV12, in one run.

Usage: /usr/bin/python3 bench/gst_bench.py BUILD_DIR [--reps N] [--json OUT] [--live]

Per transport and size: a writer `videotestsrc is-live=false num-buffers=N pattern=black !
NV12 caps ! SINK` and a reader `SRC ! identity silent=false ! fakesink sync=false
enable-last-sample=false` (it counts the frames), two gst-launch-1.0 processes: the source
runs at full speed (issue 25), every sink with sync=false enable-last-sample=false. frames/s
is the slope of the frames the reader counted over the wall time between runs of SHORT and
LONG frames (start-up not counted). CPU per frame is the two processes' user+system time
(wait4 rusage), plus for memd the daemon's CPU during the run (`memctl stats --json`), as
the same slope. --live: the earlier runs' source, live at 60/s (frames/s then only says
whether a transport keeps up), with 60 and 360 frames. *Handoff CPU* subtracts the same slope of the source into
the counting fakesink in one process (same run): what moving a frame between processes
cost. Medians over N repetitions, transports interleaved.

Then what each does when the reader is SIGKILLed mid-stream: does the writer go on,
does a new reader get frames, and (memd) what the pool holds once everyone exited.

Recorded as row Q in docs/PERFORMANCE.md. shmsink waits for its reader
(wait-for-connection=true) with the non-live source; with --live it does not (true stalled
its writer then). It exits 1 at teardown ("Failed waiting on fd activity") after sending
every frame, so success is judged by the frames the reader counted.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# Frames per run. The source runs at full speed (is-live=false); shmsink then waits for
# its reader (wait-for-connection=true), and every sink has enable-last-sample=false (with
# it on, shm did not finish). --live: the earlier runs' source, live at RATE frames/s,
# LIVE_SHORT and LIVE_LONG frames (shmsink without waiting: waiting stalled it then).
# Each case runs twice, with SHORT and with LONG frames; CPU per frame is the slope
# (cpu(LONG) - cpu(SHORT)) / (LONG - SHORT), so process start-up (plugin loading,
# connecting, ~0.1-0.2 s of CPU per gst-launch) is not counted per frame; frames/s too.
SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
LIVE = "--live" in sys.argv
SHORT, LONG = (60, 360) if LIVE else (100, 1000)
RATE = 60
SINK = "sync=false enable-last-sample=false"
# The reader counts what it got: identity's per-buffer notify (same cost everywhere).
COUNT = f"identity silent=false ! fakesink {SINK}"


def caps(w, h):
    return f"video/x-raw,format=NV12,width={w},height={h},framerate={RATE}/1"


def launch(argv_text, env, out=None):
    """gst-launch-1.0; with `out` (a path) verbose, its stdout there."""
    if out is None:
        return subprocess.Popen(["gst-launch-1.0", "-q"] + argv_text.split(), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out, "w") as f:
        return subprocess.Popen(["gst-launch-1.0", "-v"] + argv_text.split(), env=env,
                                stdout=f, stderr=subprocess.STDOUT)


def frames_seen(path):
    """Buffers `identity silent=false` reported in a verbose gst-launch log."""
    with open(path) as f:
        return sum(1 for line in f if "last-message = chain" in line)


def wait_cpu(proc, timeout_s=60):
    """Reaps `proc` (SIGKILL after timeout_s); its user+system CPU seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def daemon_cpu_s(memctl, env):
    out = subprocess.run([memctl, "stats", "--json"], capture_output=True, check=True,
                         env=env).stdout
    stats = json.loads(out)
    return (stats["cpu_user_us"] + stats["cpu_system_us"]) / 1e6


def one_run(transport, size, n, work, env, memctl, run_id):
    w, h = SIZES[size]
    frame = w * h * 3 // 2
    source = f"videotestsrc is-live={str(LIVE).lower()} num-buffers={n} pattern=black ! {caps(w, h)}"
    if transport == "baseline":
        start = time.monotonic()
        log = os.path.join(work, f"{run_id}.log")
        p = launch(f"{source} ! {COUNT}", env, log)
        cpu = wait_cpu(p)
        return {"wall_s": time.monotonic() - start, "cpu_s": cpu, "frames": frames_seen(log),
                "ok": p.returncode == 0}
    if transport == "memd":
        channel = f"q{run_id}"
        reader_text = f"memdsrc channel={channel} ! {COUNT}"
        writer_text = f"{source} ! memdsink channel={channel} {SINK}"
        d0 = daemon_cpu_s(memctl, env)
    else:
        sock = os.path.join(work, f"shm{run_id}")
        reader_text = f"shmsrc socket-path={sock} is-live={str(LIVE).lower()} ! {caps(w, h)} ! {COUNT}"
        # Live: wait-for-connection=true stalled the writer here; the reader connects
        # within ~20 ms of the socket's creation and frames are counted at the reader.
        writer_text = (f"{source} ! shmsink socket-path={sock} shm-size={frame * 20} "
                       f"wait-for-connection={str(not LIVE).lower()} {SINK}")
    start = time.monotonic()
    writer = launch(writer_text, env)
    if transport == "shm":
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
    log = os.path.join(work, f"{run_id}.log")
    reader = launch(reader_text, env, log)
    cpu = wait_cpu(writer)
    # shmsrc sees no EOS: it ends when the writer's socket closes.
    cpu += wait_cpu(reader, 5)
    wall = time.monotonic() - start
    if transport == "memd":
        cpu += daemon_cpu_s(memctl, env) - d0
    # shmsink exits 1 at teardown here ("Failed waiting on fd activity", EBUSY) after
    # sending every frame: success is judged by the frames the reader saw.
    frames = frames_seen(log)
    return {"wall_s": wall, "cpu_s": cpu, "frames": frames, "ok": frames >= n * 9 // 10}


def kill_reader(transport, work, env, memctl):
    """Writer of 1080p frames at 30/s (live), reader killed after ~1 s, a new reader for 2 s."""
    w, h = SIZES["1080p"]
    source = f"videotestsrc is-live=true num-buffers=240 pattern=black ! {caps(w, h)}"
    if transport == "memd":
        writer_text = f"{source} ! memdsink channel=kill"
        reader_text = "memdsrc channel=kill ! fakesink sync=false"
    else:
        sock = os.path.join(work, "shmkill")
        writer_text = (f"{source} ! shmsink socket-path={sock} shm-size={w * h * 30} "
                       f"wait-for-connection=false sync=false")
        reader_text = f"shmsrc socket-path={sock} is-live=true ! {caps(w, h)} ! fakesink sync=false"
    writer = launch(writer_text, env)
    time.sleep(0.5)
    reader = launch(reader_text, env)
    time.sleep(1.0)
    reader.kill()
    reader.wait()
    time.sleep(0.5)
    again = subprocess.Popen(["gst-launch-1.0", "-q", "-m"] + reader_text.split(), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        writer_code = writer.wait(timeout=20)
    except subprocess.TimeoutExpired:
        writer.kill()
        writer_code = "hung (killed after 20 s)"
    try:
        again.wait(timeout=5)
    except subprocess.TimeoutExpired:
        again.send_signal(signal.SIGINT)
    out = again.communicate()[0]
    result = {"writer_exit": writer_code, "new_reader_exit": again.returncode,
              "new_reader_error": next((l for l in out.splitlines() if "ERROR" in l), "")}
    if transport == "memd":
        time.sleep(0.5)
        stats = json.loads(subprocess.run([memctl, "stats", "--json"], capture_output=True,
                                          check=True, env=env).stdout)
        pool = stats["pools"][0]
        result["pool_live_buffers_after"] = pool.get("live_buffers", 0)
        result["pool_used_bytes_after"] = pool.get("used_bytes", 0)
    return result


def main():
    build = sys.argv[1]
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    out_path = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    memd = os.path.join(build, "server/memd")
    memctl = os.path.join(build, "client/memctl/memctl")
    work = tempfile.mkdtemp(prefix="memd-gst-bench-")
    sock = os.path.join(work, "memd.sock")
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(build, "gst"),
               GST_REGISTRY=os.path.join(work, "registry.bin"), MEMD_ADDRESS=f"unix://{sock}")
    daemon = subprocess.Popen([memd, "--listen", f"unix://{sock}", "--instance",
                               f"gst-bench-{os.getpid()}", "--state-dir", work, "--pool",
                               "default=512MiB", "--log-level", "warn"])
    try:
        for _ in range(200):
            if subprocess.run([memctl, "health"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        # The first gst-launch of a fresh registry scans every plugin: not in a sample.
        subprocess.run(["gst-inspect-1.0", "memd"], env=env, capture_output=True, check=True)
        rows = {"live_source": LIVE, "short": SHORT, "long": LONG,
            "load_before": open("/proc/loadavg").read().split()[:3]}
        run_id = 0
        for size in SIZES:
            samples = {(t, n): [] for t in ("baseline", "memd", "shm") for n in (SHORT, LONG)}
            for _ in range(reps):
                for t, n in samples:
                    run_id += 1
                    samples[(t, n)].append(one_run(t, size, n, work, env, memctl, run_id))
            row = {}
            for t in ("baseline", "memd", "shm"):
                short, long_ = samples[(t, SHORT)], samples[(t, LONG)]
                cpu = lambda runs: statistics.median(r["cpu_s"] for r in runs)
                frames = lambda runs: statistics.median(r["frames"] for r in runs)
                row[t] = {
                    "ok": all(r["ok"] for r in short + long_),
                    "frames_long": frames(long_),
                    # Live: paced by the source (whether it kept up with RATE); else the
                    # slope between the SHORT and LONG runs, start-up excluded.
                    "frames_per_s": statistics.median(r["frames"] / r["wall_s"] for r in long_) if LIVE
                                    else (frames(long_) - frames(short)) /
                                         max(statistics.median(r["wall_s"] for r in long_) -
                                             statistics.median(r["wall_s"] for r in short), 1e-3),
                    "cpu_us_per_frame": 1e6 * (cpu(long_) - cpu(short)) /
                                        max(frames(long_) - frames(short), 1),
                }
            for t in ("memd", "shm"):
                row[t]["handoff_cpu_us_per_frame"] = (row[t]["cpu_us_per_frame"] -
                                                      row["baseline"]["cpu_us_per_frame"])
            row["fps_ratio_memd_over_shm"] = row["memd"]["frames_per_s"] / row["shm"]["frames_per_s"]
            row["cpu_ratio_memd_over_shm"] = (row["memd"]["cpu_us_per_frame"] /
                                              row["shm"]["cpu_us_per_frame"])
            row["handoff_ratio_memd_over_shm"] = (row["memd"]["handoff_cpu_us_per_frame"] /
                                                  row["shm"]["handoff_cpu_us_per_frame"])
            rows[size] = row
            print(f"Q  {size}: frames/s memd {row['memd']['frames_per_s']:.0f}, shm "
                  f"{row['shm']['frames_per_s']:.0f} ({row['fps_ratio_memd_over_shm']:.2f}x); handoff CPU "
                  f"per frame memd {row['memd']['handoff_cpu_us_per_frame']:.0f} us, shm "
                  f"{row['shm']['handoff_cpu_us_per_frame']:.0f} us "
                  f"({row['handoff_ratio_memd_over_shm']:.2f}x)", file=sys.stderr, flush=True)
        rows["kill_reader"] = {t: kill_reader(t, work, env, memctl) for t in ("memd", "shm")}
        rows["load_after"] = open("/proc/loadavg").read().split()[:3]
    finally:
        daemon.terminate()
        daemon.wait()
    text = json.dumps(rows, indent=2)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
