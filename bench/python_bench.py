"""Row R: numpy frames from a producer process to a consumer process that sums
each frame, through memd vs a ring of RING reused multiprocessing.shared_memory
segments with two Queues of slot indices (full, free: issue 25's floor) vs a
new shared_memory segment per frame with its name through a Queue vs pickling
arrays through a multiprocessing.Queue; plus what each leaves in /dev/shm (and,
for memd, in the pool) after the producer is SIGKILLed.

Usage: /usr/bin/python3 bench/python_bench.py BUILD_DIR [--frames N] [--sizes 1080p,4k]
                                             [--reps N] [--json OUT]

Frames are NV12-sized uint8 arrays (width x height x 1.5 bytes: 3.1 MB at
1080p, 12.4 MB at 4K). Every variant does the same work per frame: the
producer gets a fresh frame buffer, fills it (numpy, one value per frame),
hands it over; the consumer sums it (uint64) and checks the sum, then frees
it (the ring: gives the slot back on the free Queue; its RING segments are made
and mapped before the run, as a long-lived pipeline would). Queues hold at most
4 frames. frames/s = frames / wall time from the first frame sent to the last
one summed. CPU per frame = the producer's and the consumer's own CPU (all
threads, getrusage from the start to their last frame) plus, for memd, the
daemon's (/proc/PID/stat over the run), over the frames; multiprocessing's
resource tracker process is not counted (the segment-per-frame variant sends it
two messages per frame). Variants interleave; medians over --reps. The memd variant runs against a memd it starts (BUILD_DIR/server/memd,
one 256 MiB pool) with populate=True (pool pages mapped at connect).
"""
import argparse
import glob
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
DEPTH = 4
RING = 6  # issue 25: a ring of 6 reused segments
VARIANTS = ("memd", "ring", "shm", "pickle")


def frame_bytes(size):
    w, h = SIZES[size]
    return w * h * 3 // 2


def expected_sum(i, nbytes):
    return (i % 251) * nbytes


def cpu_s():
    """This process's user+system CPU seconds, all threads."""
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def process_cpu_s(pid):
    """utime+stime of another process, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- producers and consumers (run in spawned processes) ---------------------
def memd_producer(size, frames, ready, go, done):
    import memd, numpy as np
    c = memd.connect(populate=True, name="bench-producer")
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for i in range(frames):
        buf = c.allocate(nbytes)
        np.frombuffer(buf, dtype=np.uint8)[:] = i % 251
        c.send("bench", [buf], meta=i.to_bytes(8, "little"), timeout=60, capacity=DEPTH)
    done.put(("producer", time.monotonic(), cpu_s() - cpu0))


def memd_consumer(size, frames, ready, go, done):
    import memd, numpy as np
    c = memd.connect(populate=True, name="bench-consumer")
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for _ in range(frames):
        (buf,), meta = c.receive("bench", timeout=60, capacity=DEPTH)
        i = int.from_bytes(meta, "little")
        a = np.frombuffer(buf, dtype=np.uint8)
        assert int(a.sum(dtype=np.uint64)) == expected_sum(i, nbytes)
        del a
        buf.release()
    done.put(("consumer", time.monotonic(), cpu_s() - cpu0))


def ring_producer(size, frames, names, full, free, ready, go, done):
    from multiprocessing import shared_memory
    import numpy as np
    nbytes = frame_bytes(size)
    segments = [shared_memory.SharedMemory(name=n) for n in names]
    slots = [np.ndarray((nbytes,), dtype=np.uint8, buffer=s.buf) for s in segments]
    for a in slots:  # warm, as a long-lived ring is: no first-touch fault in the run
        a[:] = 0
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for i in range(frames):
        slot = free.get(timeout=60)
        slots[slot][:] = i % 251
        full.put((slot, i))
    done.put(("producer", time.monotonic(), cpu_s() - cpu0))
    del slots
    for s in segments:
        s.close()


def ring_consumer(size, frames, names, full, free, ready, go, done):
    from multiprocessing import shared_memory
    import numpy as np
    nbytes = frame_bytes(size)
    segments = [shared_memory.SharedMemory(name=n) for n in names]
    slots = [np.ndarray((nbytes,), dtype=np.uint8, buffer=s.buf) for s in segments]
    for a in slots:  # mapped in, as in a long-lived ring
        a.sum(dtype=np.uint64)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for _ in range(frames):
        slot, i = full.get(timeout=60)
        assert int(slots[slot].sum(dtype=np.uint64)) == expected_sum(i, nbytes)
        free.put(slot)
    done.put(("consumer", time.monotonic(), cpu_s() - cpu0))
    del slots
    for s in segments:
        s.close()


def shm_producer(size, frames, queue, ready, go, done):
    from multiprocessing import shared_memory
    import numpy as np
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for i in range(frames):
        shm = shared_memory.SharedMemory(create=True, size=nbytes)
        np.ndarray((nbytes,), dtype=np.uint8, buffer=shm.buf)[:] = i % 251
        queue.put((shm.name, i))
        shm.close()
    done.put(("producer", time.monotonic(), cpu_s() - cpu0))


def shm_consumer(size, frames, queue, ready, go, done):
    from multiprocessing import shared_memory
    import numpy as np
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for _ in range(frames):
        name, i = queue.get(timeout=60)
        shm = shared_memory.SharedMemory(name=name)
        a = np.ndarray((nbytes,), dtype=np.uint8, buffer=shm.buf)
        assert int(a.sum(dtype=np.uint64)) == expected_sum(i, nbytes)
        del a
        shm.close()
        shm.unlink()
    done.put(("consumer", time.monotonic(), cpu_s() - cpu0))


def pickle_producer(size, frames, queue, ready, go, done):
    import numpy as np
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for i in range(frames):
        a = np.empty(nbytes, dtype=np.uint8)
        a[:] = i % 251
        queue.put((a, i))
    done.put(("producer", time.monotonic(), cpu_s() - cpu0))


def pickle_consumer(size, frames, queue, ready, go, done):
    import numpy as np
    nbytes = frame_bytes(size)
    ready.set(); go.wait()
    cpu0 = cpu_s()
    for _ in range(frames):
        a, i = queue.get(timeout=60)
        assert int(a.sum(dtype=np.uint64)) == expected_sum(i, nbytes)
    done.put(("consumer", time.monotonic(), cpu_s() - cpu0))


# --- the runs ---------------------------------------------------------------
def start_pair(ctx, variant, size, frames, ring_names=None):
    ready = [ctx.Event(), ctx.Event()]
    go, done = ctx.Event(), ctx.Queue()
    if variant == "memd":
        prod = ctx.Process(target=memd_producer, args=(size, frames, ready[0], go, done))
        cons = ctx.Process(target=memd_consumer, args=(size, frames, ready[1], go, done))
    elif variant == "ring":
        full, free = ctx.Queue(), ctx.Queue()
        for slot in range(len(ring_names)):
            free.put(slot)
        prod = ctx.Process(target=ring_producer, args=(size, frames, ring_names, full, free, ready[0], go, done))
        cons = ctx.Process(target=ring_consumer, args=(size, frames, ring_names, full, free, ready[1], go, done))
    else:
        queue = ctx.Queue(maxsize=DEPTH)
        p, c = (shm_producer, shm_consumer) if variant == "shm" else (pickle_producer, pickle_consumer)
        prod = ctx.Process(target=p, args=(size, frames, queue, ready[0], go, done))
        cons = ctx.Process(target=c, args=(size, frames, queue, ready[1], go, done))
    prod.start(); cons.start()
    for r in ready:
        if not r.wait(60):
            raise RuntimeError(f"{variant}: a process did not start")
    return prod, cons, go, done


def run_throughput(ctx, variant, size, frames, daemon_pid):
    """frames/s and CPU per frame (us) of the producer, the consumer and (memd) the daemon."""
    from multiprocessing import shared_memory
    ring = [shared_memory.SharedMemory(create=True, size=frame_bytes(size)) for _ in range(RING)] \
        if variant == "ring" else []
    try:
        prod, cons, go, done = start_pair(ctx, variant, size, frames, [s.name for s in ring])
        daemon0 = process_cpu_s(daemon_pid)
        start = time.monotonic()
        go.set()
        got = dict((who, (end, cpu)) for who, end, cpu in (done.get(timeout=600) for _ in range(2)))
        daemon = process_cpu_s(daemon_pid) - daemon0 if variant == "memd" else 0.0
        prod.join(60); cons.join(60)
        if prod.exitcode or cons.exitcode:
            raise RuntimeError(f"{variant} {size}: exit codes {prod.exitcode}, {cons.exitcode}")
    finally:
        for s in ring:
            s.close()
            s.unlink()
    us = 1e6 / frames
    cpu = {"producer": got["producer"][1] * us, "consumer": got["consumer"][1] * us, "daemon": daemon * us}
    cpu["total"] = sum(cpu.values())
    return frames / (got["consumer"][0] - start), cpu


def shm_entries():
    out = {}
    for path in glob.glob("/dev/shm/*"):
        try:
            out[path] = os.stat(path).st_size
        except FileNotFoundError:
            pass
    return out


def run_kill(ctx, variant, size, memctl, address):
    """Kills the producer mid-stream (after the consumer took 10 frames), lets
    the consumer drain and exit, and reports what is left."""
    before = shm_entries()
    frames = 10_000  # never reached: the producer dies first
    prod, cons, go, done = start_pair(ctx, variant, size, frames)
    go.set()
    time.sleep(1.0)          # frames in flight, the queue full
    os.kill(prod.pid, signal.SIGKILL)
    prod.join()
    cons.terminate()         # a consumer that waits for frames that never come
    cons.join()
    time.sleep(2.0)          # any resource tracker gets its chance to clean up
    after = shm_entries()
    new = {p: s for p, s in after.items() if p not in before}
    # sem.* are the named semaphores of this harness's multiprocessing Events
    # and Queues (every variant has them); the rest is the variant's.
    mine = {p: s for p, s in new.items() if not os.path.basename(p).startswith("sem.")}
    left = {"dev_shm_files": len(mine), "dev_shm_bytes": sum(mine.values()),
            "harness_semaphores": len(new) - len(mine)}
    for p in new:            # clean up after the measurement
        try:
            os.unlink(p)
        except OSError:
            pass
    if variant == "memd":
        stats = json.loads(subprocess.run([memctl, "--address", address, "stats", "--json"],
                                          capture_output=True, check=True).stdout)
        pool = stats["pools"][0]
        left["pool_used_bytes"] = pool["used_bytes"]
        left["channel_depth"] = sum(ch["depth"] for ch in pool["channels"])
        # Queued frames are the channel's, not leaked: a new consumer takes them.
        import memd
        c = memd.connect(address)
        while True:
            try:
                bufs, _ = c.receive("bench", timeout=0)
            except memd.Timeout:
                break
            for b in bufs:
                b.release()
        left["pool_used_bytes_after_drain"] = c.stats()["pools"][0]["used_bytes"]
        c.close()
    return left


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--sizes", default="1080p,4k")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    os.environ["PYTHONPATH"] = os.path.join(args.build, "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    memd_bin = os.path.join(args.build, "server", "memd")
    memctl = os.path.join(args.build, "client", "memctl", "memctl")
    work = tempfile.mkdtemp(prefix="memd-pybench-")
    address = f"unix://{work}/memd.sock"
    daemon = subprocess.Popen([memd_bin, "--listen", address, "--instance", f"pybench-{os.getpid()}",
                               "--state-dir", f"{work}/state", "--pool", "default=256MiB",
                               "--log-level", "warn"])
    try:
        for _ in range(500):
            if subprocess.run([memctl, "--address", address, "health"], capture_output=True).returncode == 0:
                break
            time.sleep(0.02)
        os.environ["MEMD_ADDRESS"] = address
        ctx = mp.get_context("spawn")
        results = {"load_before": open("/proc/loadavg").read().split()[:3]}
        for size in args.sizes.split(","):
            runs = {v: [] for v in VARIANTS}
            for _ in range(args.reps):
                for variant in runs:
                    runs[variant].append(run_throughput(ctx, variant, size, args.frames, daemon.pid))
            fps = {v: statistics.median(f for f, _ in r) for v, r in runs.items()}
            cpu = {v: {k: statistics.median(c[k] for _, c in r) for k in r[0][1]} for v, r in runs.items()}
            results[size] = {
                "frame_bytes": frame_bytes(size),
                "fps": fps, "fps_runs": {v: [f for f, _ in r] for v, r in runs.items()},
                "cpu_us_per_frame": cpu, "cpu_runs": {v: [c for _, c in r] for v, r in runs.items()},
                "memd_vs_ring": fps["memd"] / fps["ring"],
                "cpu_memd_over_ring": cpu["memd"]["total"] / cpu["ring"]["total"],
                "memd_vs_shm": fps["memd"] / fps["shm"],
                "cpu_memd_over_shm": cpu["memd"]["total"] / cpu["shm"]["total"],
                "memd_vs_pickle": fps["memd"] / fps["pickle"],
            }
            r = results[size]
            print(f"R  {size:5s} frames/s: memd {fps['memd']:.1f}  ring of {RING} {fps['ring']:.1f}  "
                  f"segment per frame {fps['shm']:.1f}  pickle {fps['pickle']:.1f}  -> "
                  f"{r['memd_vs_ring']:.2f}x the ring (target >= 2x), {r['memd_vs_shm']:.2f}x segment "
                  f"per frame, {r['memd_vs_pickle']:.2f}x pickle", flush=True)
            print(f"R  {size:5s} CPU per frame (us, producer+consumer+daemon): "
                  + "  ".join(f"{v} {c['total']:.0f} ({c['producer']:.0f}+{c['consumer']:.0f}+{c['daemon']:.0f})"
                              for v, c in cpu.items())
                  + f"  -> {r['cpu_memd_over_ring']:.2f}x the ring (target <= 0.5x), "
                  f"{r['cpu_memd_over_shm']:.2f}x segment per frame", flush=True)
        results["load_after"] = open("/proc/loadavg").read().split()[:3]
        size = args.sizes.split(",")[-1]
        left = {v: run_kill(ctx, v, size, memctl, address) for v in ("memd", "shm", "pickle")}
        results["after_producer_sigkill"] = {"size": size, **left}
        for v, l in left.items():
            print(f"R  left after SIGKILL of the producer ({size}), {v}: {l}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        daemon.terminate()
        daemon.wait(10)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
