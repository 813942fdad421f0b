"""Row Q: GStreamer pipelines across two processes, memdsink/memdsrc against
GStreamer's own shmsink/shmsrc (gst-plugins-bad), at 1080p and 4K NV12, in one run.

Usage: /usr/bin/python3 bench/gst_bench.py BUILD_DIR [--reps N] [--json OUT]

Per transport and size: a writer `videotestsrc num-buffers=N pattern=black ! NV12 caps !
SINK` and a reader `SRC ! fakesink`, two gst-launch-1.0 processes. frames/s is N over the
wall time from the writer's start to the end of both; CPU per frame is the two
processes' user+system time (wait4 rusage), plus for memd the daemon's CPU during the run
(`memctl stats --json`). *Handoff CPU* subtracts the CPU of the same source into a
fakesink in one process (measured in the same run): what moving the frame between
processes cost. Medians over N repetitions, transports interleaved.

Then what each does when the reader is SIGKILLed mid-stream: does the writer go on,
does a new reader get frames, and (memd) what the pool holds once everyone exited.

STATUS: not a finished benchmark. In its first runs (2026-12-02, machine busy with
other builds) the shm arm did not work: shmsink writers stalled until killed and
shmsrc readers failed ("Failed to read from shmsrc"), which may be this harness's use
of shmsink rather than shmsink itself; and the memd figures varied too much between
runs to subtract a baseline. No row Q is recorded in docs/PERFORMANCE.md from it.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# Frames per run. The source is live at 60 frames/s: shmsink with a non-live source
# stalled (wait-for-connection=true) or dropped everything before the reader came
# (false) on this machine, so both transports get the same paced source.
SIZES = {"1080p": (1920, 1080, 120), "4k": (3840, 2160, 60)}
RATE = 60


def caps(w, h):
    return f"video/x-raw,format=NV12,width={w},height={h},framerate={RATE}/1"


def launch(argv_text, env):
    return subprocess.Popen(["gst-launch-1.0", "-q"] + argv_text.split(), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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


def one_run(transport, size, work, env, memctl, run_id):
    w, h, n = SIZES[size]
    frame = w * h * 3 // 2
    source = f"videotestsrc is-live=true num-buffers={n} pattern=black ! {caps(w, h)}"
    if transport == "baseline":
        start = time.monotonic()
        p = launch(f"{source} ! fakesink sync=false", env)
        cpu = wait_cpu(p)
        return {"wall_s": time.monotonic() - start, "cpu_s": cpu, "frames": n, "ok": p.returncode == 0}
    if transport == "memd":
        channel = f"q{run_id}"
        reader_text = f"memdsrc channel={channel} ! fakesink sync=false"
        writer_text = f"{source} ! memdsink channel={channel}"
        d0 = daemon_cpu_s(memctl, env)
    else:
        sock = os.path.join(work, f"shm{run_id}")
        reader_text = f"shmsrc socket-path={sock} is-live=true ! {caps(w, h)} ! fakesink sync=false"
        writer_text = (f"{source} ! shmsink socket-path={sock} shm-size={frame * 20} "
                       f"wait-for-connection=true sync=false")
    start = time.monotonic()
    writer = launch(writer_text, env)
    if transport == "shm":
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
    reader = launch(reader_text, env)
    cpu = wait_cpu(writer)
    # shmsrc sees no EOS: it ends when the writer's socket closes.
    cpu += wait_cpu(reader, 5)
    wall = time.monotonic() - start
    if transport == "memd":
        cpu += daemon_cpu_s(memctl, env) - d0
    return {"wall_s": wall, "cpu_s": cpu, "frames": n, "ok": writer.returncode == 0}


def kill_reader(transport, work, env, memctl):
    """Writer of 1080p frames at 30/s (live), reader killed after ~1 s, a new reader for 2 s."""
    w, h, _ = SIZES["1080p"]
    source = f"videotestsrc is-live=true num-buffers=240 pattern=black ! {caps(w, h)}"
    if transport == "memd":
        writer_text = f"{source} ! memdsink channel=kill"
        reader_text = "memdsrc channel=kill ! fakesink sync=false"
    else:
        sock = os.path.join(work, "shmkill")
        writer_text = f"{source} ! shmsink socket-path={sock} shm-size={w * h * 30} sync=false"
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
        rows = {}
        run_id = 0
        for size in SIZES:
            samples = {t: [] for t in ("baseline", "memd", "shm")}
            for _ in range(reps):
                for t in samples:
                    run_id += 1
                    samples[t].append(one_run(t, size, work, env, memctl, run_id))
            row = {}
            for t, runs in samples.items():
                row[t] = {
                    "ok": all(r["ok"] for r in runs),
                    "frames_per_s": statistics.median(r["frames"] / r["wall_s"] for r in runs),
                    "cpu_us_per_frame": statistics.median(1e6 * r["cpu_s"] / r["frames"] for r in runs),
                }
            for t in ("memd", "shm"):
                row[t]["handoff_cpu_us_per_frame"] = (row[t]["cpu_us_per_frame"] -
                                                      row["baseline"]["cpu_us_per_frame"])
            row["fps_ratio_memd_over_shm"] = row["memd"]["frames_per_s"] / row["shm"]["frames_per_s"]
            row["handoff_ratio_memd_over_shm"] = (row["memd"]["handoff_cpu_us_per_frame"] /
                                                  row["shm"]["handoff_cpu_us_per_frame"])
            rows[size] = row
        rows["kill_reader"] = {t: kill_reader(t, work, env, memctl) for t in ("memd", "shm")}
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
