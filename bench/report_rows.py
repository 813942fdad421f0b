"""memd's benchmark rows, one function per kind of file bench/report.py reads.
Each returns a list of rows: {"id", "what", "memd", "floor", "ratio", "target",
"met"}, every figure a ratio against its floor measured in the same run. A
"what" that starts with two spaces qualifies the row before it."""
import json


def load_benchmarks(paths):
    """Google Benchmark JSON files: the medians by run name, the fill_ratio
    counters, and the context of the last file (its date, machine)."""
    medians, counters, context = {}, {}, {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        context = doc["context"]
        for b in doc["benchmarks"]:
            if b.get("aggregate_name") == "median" or "aggregate_name" not in b:
                name = b["run_name"] if "run_name" in b else b["name"]
                medians[name] = b
                if "fill_ratio" in b:
                    counters[name] = b["fill_ratio"]
    return medians, counters, context


def e_target(size):
    # Row E: >= 0.5x memcpy at 4 KiB, >= 0.8x at 64 KiB, >= 0.95x above.
    return 0.5 if size <= 4096 else 0.8 if size <= 65536 else 0.95


def benchmark_rows(medians, counters):
    """Rows D, D2 (memd_bench_allocator), G (memd_bench_backptr) and H
    (memd_bench_allocator); each only when its benchmarks are in the files."""
    def ns(name):
        return medians[name]["real_time"] if medians[name]["time_unit"] == "ns" else None

    rows = []
    if "D/fixed/memd_tlsf/64" in medians:
        for size in (64, 4096, 1 << 20):
            ours = ns(f"D/fixed/memd_tlsf/{size}")
            boost = ns(f"D/fixed/boost_interprocess/{size}")
            glibc = ns(f"D/fixed/glibc_posix_memalign/{size}")
            rows.append({"id": "D", "what": f"alloc+free fixed {size} B (ns/pair)", "memd": ours,
                         "floor": f"Boost {boost:.1f} / glibc {glibc:.1f}",
                         "ratio": f"{boost / ours:.1f}x faster than Boost; {ours / glibc:.2f}x glibc time",
                         "target": ">= 3x faster than Boost", "met": boost / ours >= 3})
    if "D/mix/memd_tlsf" in medians:
        ours, boost, glibc = (ns("D/mix/memd_tlsf"), ns("D/mix/boost_interprocess"),
                              ns("D/mix/glibc_posix_memalign"))
        rows.append({"id": "D", "what": "mix 64 B-4 MiB, 1000 live (ns/free+alloc)", "memd": ours,
                     "floor": f"Boost {boost:.1f} / glibc {glibc:.1f}",
                     "ratio": f"{boost / ours:.1f}x faster than Boost; {ours / glibc:.2f}x glibc time",
                     "target": ">= 3x Boost; <= 1.0x glibc", "met": boost / ours >= 3 and ours / glibc <= 1.0})
    fill = next((v for k, v in counters.items() if k.startswith("D2/fill_ratio/memd_tlsf")), None)
    if fill is not None:
        rows.append({"id": "D2", "what": "bytes allocated before first failure / pool size", "memd": fill,
                     "floor": "pool size", "ratio": f"{fill:.3f}", "target": ">= 0.95", "met": fill >= 0.95})
    if "G/backptr/memd/1/4096" in medians:
        for back in (1, 2, 3, 4, 7, 16, 64):
            for cnt in (4096, 65536):
                ours = medians[f"G/backptr/memd/{back}/{cnt}"]["bytes_per_second"]
                theirs = medians[f"G/backptr/libavutil/{back}/{cnt}"]["bytes_per_second"]
                rows.append({"id": "G", "what": f"backptr back={back} cnt={cnt} (GB/s)", "memd": ours / 1e9,
                             "floor": f"libavutil {theirs / 1e9:.1f}", "ratio": f"{ours / theirs:.2f}x",
                             "target": ">= 0.95x", "met": ours / theirs >= 0.95})
    h = next((b for k, b in medians.items() if k.startswith("H/million_handles")), None)
    if h is not None:
        rows.append({"id": "H", "what": "daemon heap per live handle (bytes), 1M handles",
                     "memd": h["bytes_per_handle"], "floor": "-", "ratio": "-", "target": "<= 64 B",
                     "met": h["bytes_per_handle"] <= 64})
        rows.append({"id": "H", "what": "Pool::Stats() with 1M live handles (ns)", "memd": h["stats_ns"] * 1e9,
                     "floor": "-", "ratio": "-", "target": "stats p50 <= 1 ms (in-process part)",
                     "met": h["stats_ns"] < 1e-3})
    for size in (64, 4096):
        name = f"H/pool_alloc_release/memd_pool/{size}"
        pair = ns(name) if name in medians else None
        if pair is not None:
            rows.append({"id": "H", "what": f"Pool::Allocate+Release {size} B, 1000 live (ns/pair)", "memd": pair,
                         "floor": "-", "ratio": "-", "target": "(reported)", "met": True})
    return rows


def rpc_rows(rpc):
    """Rows A, A2, A3, A2b, E, B, C, I from one memd_bench_rpc document."""
    rows = []
    floor = rpc["floor_unary_call_ns"]
    for size, a in rpc["A"].items():
        rows.append({"id": "A", "what": f"malloc+free pair {size} B, p50 (us)", "memd": a["p50_ns"] / 1e3,
                     "floor": f"unary p50 {floor['p50'] / 1e3:.1f}", "ratio": f"{a['p50_ratio_to_floor']:.2f}x",
                     "target": "<= 0.1x", "met": a["p50_ratio_to_floor"] <= 0.1})
        rows.append({"id": "A", "what": f"malloc+free pair {size} B, p99 (us)", "memd": a["p99_ns"] / 1e3,
                     "floor": f"unary p99 {floor['p99'] / 1e3:.1f}", "ratio": f"{a['p99_ratio_to_floor']:.2f}x",
                     "target": "(reported)", "met": True})
        if "p50_ratio_to_busy_poll" in a:
            busy = rpc["floor_busy_poll_rtt_ns"]
            rows.append({"id": "A", "what": "  same pair, p50 vs 2 busy-polled socket round trips",
                         "memd": a["p50_ns"] / 1e3, "floor": f"busy-poll rtt p50 {busy['p50'] / 1e3:.2f}",
                         "ratio": f"{a['p50_ratio_to_busy_poll']:.2f}x", "target": "(reported)", "met": True})
    if "A_trace" in rpc:
        t = rpc["A_trace"]
        for pct in ("p50", "p99"):
            rows.append({"id": "A-trace", "what": f"malloc+free pair 64 B while memctl trace records, {pct} (us)",
                         "memd": t[f"{pct}_ns_on"] / 1e3, "floor": f"no recording {pct} {t[f'{pct}_ns_off'] / 1e3:.2f}",
                         "ratio": f"{t[f'{pct}_ratio']:.2f}x", "target": "(reported)", "met": True})
    a2 = rpc["A2"]
    rows.append({"id": "A2", "what": "memd_malloc+memd_free <= 64 KiB loop (us/pair)", "memd": a2["ns_per_pair"] / 1e3,
                 "floor": f"unary p50 {floor['p50'] / 1e3:.1f}", "ratio": f"{a2['ratio_to_floor_p50']:.2f}x",
                 "target": "<= 0.05x (1/20)", "met": a2["ratio_to_floor_p50"] <= 0.05})
    if "A3" in rpc:
        for key, what, target in (("64", "memd_malloc+memd_free 64 B (ns/pair)", 3.0),
                                  ("mix", "16 B-64 KiB mix, 4 threads, 1000 live (ns/step)", 2.0)):
            a3 = rpc["A3"][key]
            rows.append({"id": "A3", "what": what, "memd": a3["memd_ns"],
                         "floor": f"av_malloc {a3['av_ns']:.1f}", "ratio": f"{a3['ratio']:.2f}x",
                         "target": f"<= {target:g}x", "met": a3["ratio"] <= target})
    if "A2b" in rpc:
        b = rpc["A2b"]
        rows.append({"id": "A2b", "what": "batched alloc+release, 64 x <= 64 KiB per message (us/pair)",
                     "memd": b["ns_per_pair"] / 1e3, "floor": f"unary p50 {floor['p50'] / 1e3:.1f}",
                     "ratio": f"{b['ratio_to_floor_p50']:.3f}x", "target": "<= 0.05x (1/20)",
                     "met": b["ratio_to_floor_p50"] <= 0.05})
    for size, e in rpc["E"].items():
        rows.append({"id": "E", "what": f"memd_memdup {size} B (GB/s)", "memd": e["memd_memdup_GBps"],
                     "floor": f"heap memcpy {e['heap_memcpy_GBps']:.1f}", "ratio": f"{e['ratio']:.3f}x",
                     "target": f">= {e_target(int(size)):g}x", "met": e["ratio"] >= e_target(int(size))})
        if "pool_memcpy_GBps" in e:
            rows.append({"id": "E", "what": "  same memdup vs memcpy heap -> pool memory (no memd call)",
                         "memd": e["memd_memdup_GBps"], "floor": f"pool memcpy {e['pool_memcpy_GBps']:.1f}",
                         "ratio": f"{e['ratio_to_pool_memcpy']:.3f}x", "target": "(reported)", "met": True})
    for processes, b in rpc.get("B", {}).items():
        rows.append({"id": "B", "what": f"alloc+free pairs/s, {processes} client processes", "memd": b["memd_pairs_per_s"],
                     "floor": f"unary calls/s {b['unary_calls_per_s']:.0f}", "ratio": f"{b['ratio']:.2f}x",
                     "target": ">= 1.0x", "met": b["ratio"] >= 1.0})
        if "memd_deferred_pairs_per_s" in b:
            rows.append({"id": "B", "what": f"  alloc + deferred release, {processes} processes",
                         "memd": b["memd_deferred_pairs_per_s"], "floor": f"unary calls/s {b['unary_calls_per_s']:.0f}",
                         "ratio": f"{b['deferred_ratio']:.2f}x", "target": ">= 1.0x",
                         "met": b["deferred_ratio"] >= 1.0})
    for size, c in rpc.get("C", {}).items():
        rows.append({"id": "C", "what": f"BufferPool get+release {size} B (ns)", "memd": c["memd_buffer_pool_ns"],
                     "floor": f"malloc+free {c['malloc_free_ns']:.1f}",
                     "ratio": f"{c['ratio_to_malloc']:.2f}x glibc time", "target": "<= 2x",
                     "met": c["ratio_to_malloc"] <= 2})
        rows.append({"id": "C", "what": f"  FramePool (AVBufferPool) get+unref {size} B (ns)",
                     "memd": c["memd_frame_pool_ns"], "floor": f"av heap pool {c['libavutil_heap_pool_ns']:.1f}",
                     "ratio": f"{c['memd_frame_pool_ns'] / c['libavutil_heap_pool_ns']:.2f}x libavutil's pool",
                     "target": "(reported)", "met": True})
    for mode, i in rpc["I"].items():
        limit = 1000 if mode == "reserve" else 50
        rows.append({"id": "I", "what": f"start to healthy, 1 GiB pool, {mode} (ms)", "memd": i["median_ms"],
                     "floor": "-", "ratio": "-", "target": f"<= {limit} ms", "met": i["median_ms"] <= limit})
    return rows


def frame_rows(f):
    """Row F from one memd_bench_frames document."""
    fps, ratios = f["frames_per_second"], f["ratios"]
    rows = [{"id": "F", "what": "4K NV12 handoff + consumer checksum (frames/s)", "memd": fps["memd"],
             "floor": f"raw shm {fps['raw_shm']:.0f}", "ratio": f"{ratios['memd_vs_raw']:.2f}x",
             "target": ">= 0.9x raw", "met": ratios["memd_vs_raw"] >= 0.9}]
    if "memd_pool" in fps:
        rows.append({"id": "F", "what": "  BufferPool frames, lent; deferred releases", "memd": fps["memd_pool"],
                     "floor": f"raw shm {fps['raw_shm']:.0f}", "ratio": f"{ratios['memd_pool_vs_raw']:.2f}x",
                     "target": ">= 0.9x raw", "met": ratios["memd_pool_vs_raw"] >= 0.9})
    rows.append({"id": "F", "what": "  copy through a Unix socket (frames/s)", "memd": fps["copy_socket"],
                 "floor": f"raw shm {fps['raw_shm']:.0f}", "ratio": f"raw is {ratios['raw_vs_copy_socket']:.1f}x; memd {ratios['memd_vs_copy_socket']:.1f}x",
                 "target": "(reported)", "met": True})
    rows.append({"id": "F", "what": "  copy through a pipe (frames/s)", "memd": fps["copy_pipe"],
                 "floor": f"raw shm {fps['raw_shm']:.0f}", "ratio": f"raw is {ratios['raw_vs_copy_pipe']:.1f}x; memd {ratios['memd_vs_copy_pipe']:.1f}x",
                 "target": "(reported)", "met": True})
    return rows


def pipeline_rows(doc):
    """Row P from one bench/pipeline_bench.py document."""
    rows = []
    for res, p in doc["P"].items():
        m, c, r = p["memd"], p["pipe"], p["ratios"]
        target = ">= 20x at 4K" if res == "4k" else "(reported)"
        rows.append({"id": "P", "what": f"pipeline {res}: handoff CPU per frame (us)", "memd": m["handoff_cpu_us_per_frame"],
                     "floor": f"pipe copy {c['handoff_cpu_us_per_frame']:.0f}",
                     "ratio": f"copy costs {r['handoff_cost_pipe_over_memd']:.1f}x memd", "target": target,
                     "met": res != "4k" or r["handoff_cost_pipe_over_memd"] >= 20})
        if "memd_stream" in p:
            rows.append({"id": "P", "what": f"  pipeline {res}: handoff, stream only (MEMD_LANE=0)",
                         "memd": p["memd_stream"]["handoff_cpu_us_per_frame"],
                         "floor": f"pipe copy {c['handoff_cpu_us_per_frame']:.0f}",
                         "ratio": f"copy costs {r['handoff_cost_pipe_over_memd_stream']:.1f}x",
                         "target": "(reported)", "met": True})
            rows.append({"id": "P", "what": f"  pipeline {res}: daemon CPU per frame, lanes (us)",
                         "memd": m["daemon_cpu_us_per_frame"],
                         "floor": f"stream only {p['memd_stream']['daemon_cpu_us_per_frame']:.0f}",
                         "ratio": f"{p['memd_stream']['daemon_cpu_us_per_frame'] / m['daemon_cpu_us_per_frame']:.1f}x less",
                         "target": "(reported)", "met": True})
        rows.append({"id": "P", "what": f"  pipeline {res}: frames/s", "memd": m["frames_per_s"],
                     "floor": f"pipe copy {c['frames_per_s']:.1f}",
                     "ratio": f"{r['frames_per_s_memd_over_pipe']:.2f}x", "target": "(reported)", "met": True})
        rows.append({"id": "P", "what": f"  pipeline {res}: CPU s per frame (all processes)", "memd": m["cpu_s_per_frame"],
                     "floor": f"pipe copy {c['cpu_s_per_frame']:.4f}",
                     "ratio": f"copy uses {r['cpu_per_frame_pipe_over_memd']:.2f}x", "target": "(reported)", "met": True})
    return rows


def _handoff_label(frame_bytes):
    return {65536: "64 KiB", 1920 * 1080 * 3 // 2: "1080p NV12"}.get(frame_bytes, f"{frame_bytes} B")


# Issue 25's targets for row L, memd over the futex ring of the same run.
HANDOFF_TARGETS = {"frames_per_s": 0.5, "cpu_per_frame": 1.5, "p50": 2.0, "p99": 3.0}
# With more pairs memd's CPU per frame must not grow: at most this much above
# the 1-pair figure of the same size and document (run-to-run noise).
HANDOFF_PAIRS_SLACK = 1.1


def handoff_rows(doc):
    """Row L from one memd_bench_handoff document: per frame size and number of
    pairs, frames/s, CPU per frame (producer + consumer + daemon) and one-way
    latency p50/p99, memd against the futex frame ring; with more than one
    pair, also memd's CPU per frame against its own 1-pair figure."""
    rows = []
    one_pair = {c["frame_bytes"]: (c["memd"]["cpu_us_per_frame"]["total"], c["floor"]["cpu_us_per_frame"]["total"])
                for c in doc["cases"] if c["pairs"] == 1}
    for c in doc["cases"]:
        f, m, r = c["floor"], c["memd"], c["ratios"]
        head = f"{_handoff_label(c['frame_bytes'])}, {c['pairs']} pair{'s' if c['pairs'] > 1 else ''}"
        fc, mc = f["cpu_us_per_frame"], m["cpu_us_per_frame"]
        daemon = "not counted" if mc["daemon"] is None else f"{mc['daemon']:.1f}"
        lines = [
            (f"{head}: frames/s", m["frames_per_s"], f"futex ring {f['frames_per_s']:.0f}",
             f"{r['frames_per_s']:.3f}x", "frames_per_s", ">="),
            (f"  {head}: CPU per frame, all processes (us)", mc["total"], f"futex ring {fc['total']:.2f}",
             f"{r['cpu_per_frame']:.1f}x; memd producer {mc['producer']:.1f}, consumer "
             f"{mc['consumer']:.1f}, daemon {daemon}", "cpu_per_frame", "<="),
            (f"  {head}: one-way latency p50 (us)", m["latency_us"]["p50"],
             f"futex ring {f['latency_us']['p50']:.1f}", f"{r['p50']:.1f}x", "p50", "<="),
            (f"  {head}: one-way latency p99 (us)", m["latency_us"]["p99"],
             f"futex ring {f['latency_us']['p99']:.1f}", f"{r['p99']:.1f}x", "p99", "<="),
        ]
        for what, value, floor, ratio, key, sense in lines:
            limit = HANDOFF_TARGETS[key]
            met = r[key] >= limit if sense == ">=" else r[key] <= limit
            rows.append({"id": "L", "what": what, "memd": value, "floor": floor, "ratio": ratio,
                         "target": f"{sense} {limit:g}x", "met": met})
        if c["pairs"] > 1 and c["frame_bytes"] in one_pair:
            memd_one, floor_one = one_pair[c["frame_bytes"]]
            growth = mc["total"] / memd_one
            rows.append({"id": "L", "what": f"  {head}: memd CPU per frame vs 1 pair (us)", "memd": mc["total"],
                         "floor": f"memd, 1 pair {memd_one:.1f}",
                         "ratio": f"{growth:.2f}x; futex ring {fc['total'] / floor_one:.2f}x its 1 pair",
                         "target": f"not growing (<= {HANDOFF_PAIRS_SLACK:g}x)",
                         "met": growth <= HANDOFF_PAIRS_SLACK})
    return rows
