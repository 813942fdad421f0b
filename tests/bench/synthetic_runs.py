"""Minimal documents of each kind bench/report.py reads, with round numbers so
a test can tell every figure in its output apart. One function per kind; each
returns the parsed document (write it with json.dump)."""

BENCH_DATE = "2026-12-07T10:11:12+00:00"


def _median(name, **fields):
    entry = {"name": name + "_median", "run_name": name, "run_type": "aggregate",
             "aggregate_name": "median", "time_unit": "ns"}
    entry.update(fields)
    return entry


def allocator_doc():
    """memd_bench_allocator: rows D, D2 and H."""
    marks = []
    for size, (ours, boost, glibc) in {64: (50.0, 250.0, 100.0), 4096: (60.0, 300.0, 120.0),
                                       1 << 20: (70.0, 140.0, 700.0)}.items():
        marks.append(_median(f"D/fixed/memd_tlsf/{size}", real_time=ours))
        marks.append(_median(f"D/fixed/boost_interprocess/{size}", real_time=boost))
        marks.append(_median(f"D/fixed/glibc_posix_memalign/{size}", real_time=glibc))
    marks.append(_median("D/mix/memd_tlsf", real_time=100.0))
    marks.append(_median("D/mix/boost_interprocess", real_time=2000.0))
    marks.append(_median("D/mix/glibc_posix_memalign", real_time=500.0))
    marks.append(_median("D2/fill_ratio/memd_tlsf/iterations:3", real_time=1.0, fill_ratio=0.999))
    marks.append(_median("H/million_handles/memd_pool/iterations:1", real_time=1.0,
                         time_unit="ms", bytes_per_handle=58.7427, stats_ns=3.7e-08))
    marks.append(_median("H/pool_alloc_release/memd_pool/64", real_time=154.0))
    marks.append(_median("H/pool_alloc_release/memd_pool/4096", real_time=160.0))
    return {"context": {"date": BENCH_DATE, "host_name": "bench-host", "num_cpus": 2,
                        "mhz_per_cpu": 2000}, "benchmarks": marks}


def backptr_doc():
    """memd_bench_backptr: row G (bytes/s; memd 2x libavutil at back=2, else equal)."""
    marks = []
    for back in (1, 2, 3, 4, 7, 16, 64):
        for cnt in (4096, 65536):
            ours = 20e9 if back == 2 else 10e9
            marks.append(_median(f"G/backptr/memd/{back}/{cnt}", real_time=1.0, bytes_per_second=ours))
            marks.append(_median(f"G/backptr/libavutil/{back}/{cnt}", real_time=1.0,
                                 bytes_per_second=10e9))
    return {"context": {"date": BENCH_DATE, "host_name": "bench-host", "num_cpus": 2,
                        "mhz_per_cpu": 2000}, "benchmarks": marks}


def rpc_doc():
    """memd_bench_rpc: rows A, A-trace, A2, A3, A2b, E, B, C, I."""
    floor = {"p50": 60000.0, "p99": 150000.0}
    pair = {"p50_ns": 4800.0, "p99_ns": 45000.0, "p50_ratio_to_floor": 0.08,
            "p99_ratio_to_floor": 0.3, "p50_ratio_to_busy_poll": 0.31}
    return {
        "floor_unary_call_ns": floor,
        "floor_busy_poll_rtt_ns": {"p50": 8000.0, "p99": 9000.0},
        "A": {"64": pair, "1048576": pair},
        "A_trace": {"p50_ns_off": 5000.0, "p50_ns_on": 5500.0, "p99_ns_off": 40000.0,
                    "p99_ns_on": 48000.0, "p50_ratio": 1.1, "p99_ratio": 1.2, "events_recorded": 12000},
        "A2": {"ns_per_pair": 60.0, "ratio_to_floor_p50": 0.001},
        "A3": {"64": {"memd_ns": 50.0, "av_ns": 75.0, "ratio": 0.66},
               "mix": {"memd_ns": 640.0, "av_ns": 1300.0, "ratio": 0.49}},
        "A2b": {"ns_per_pair": 1260.0, "ratio_to_floor_p50": 0.021},
        "E": {"4096": {"memd_memdup_GBps": 30.0, "heap_memcpy_GBps": 50.0, "pool_memcpy_GBps": 40.0,
                       "ratio": 0.6, "ratio_to_pool_memcpy": 0.75},
              "12441600": {"memd_memdup_GBps": 9.0, "heap_memcpy_GBps": 10.0,
                           "pool_memcpy_GBps": 9.5, "ratio": 0.9, "ratio_to_pool_memcpy": 0.947}},
        "C": {"4096": {"memd_buffer_pool_ns": 55.0, "malloc_free_ns": 50.0, "memd_frame_pool_ns": 230.0,
                       "libavutil_heap_pool_ns": 180.0, "ratio_to_malloc": 1.1}},
        "B": {"1": {"memd_pairs_per_s": 180000.0, "unary_calls_per_s": 7200.0, "ratio": 25.0,
                    "memd_deferred_pairs_per_s": 36000.0, "deferred_ratio": 5.0},
              "4": {"memd_pairs_per_s": 10000.0, "unary_calls_per_s": 20000.0, "ratio": 0.5,
                    "memd_deferred_pairs_per_s": 40000.0, "deferred_ratio": 2.0}},
        "I": {"no_reserve": {"median_ms": 22.5}, "reserve": {"median_ms": 250.0}},
    }


def frames_doc():
    """memd_bench_frames: row F."""
    return {"frame_bytes": 12441600, "frames": 300,
            "frames_per_second": {"raw_shm": 750.0, "memd": 600.0, "memd_pool": 690.0,
                                  "copy_socket": 180.0, "copy_pipe": 75.0},
            "ratios": {"memd_vs_raw": 0.8, "memd_pool_vs_raw": 0.92, "raw_vs_copy_socket": 4.1666,
                       "raw_vs_copy_pipe": 10.0, "memd_vs_copy_socket": 3.3333,
                       "memd_vs_copy_pipe": 8.0}}


def pipeline_doc():
    """bench/pipeline_bench.py: row P."""
    def resolution(handoff, pipe_handoff):
        return {"memd": {"frames": 200, "frames_per_s": 28.0, "cpu_s_per_frame": 0.05,
                         "handoff_cpu_us_per_frame": handoff, "daemon_cpu_us_per_frame": 250.0},
                "pipe": {"frames": 200, "frames_per_s": 24.0, "cpu_s_per_frame": 0.06,
                         "handoff_cpu_us_per_frame": pipe_handoff, "daemon_cpu_us_per_frame": 0.0},
                "memd_stream": {"frames": 200, "frames_per_s": 27.0, "cpu_s_per_frame": 0.055,
                                "handoff_cpu_us_per_frame": 1600.0, "daemon_cpu_us_per_frame": 900.0},
                "ratios": {"handoff_cost_pipe_over_memd": pipe_handoff / handoff,
                           "frames_per_s_memd_over_pipe": 28.0 / 24.0,
                           "cpu_per_frame_pipe_over_memd": 0.06 / 0.05,
                           "handoff_cost_pipe_over_memd_stream": pipe_handoff / 1600.0}}
    return {"seconds": 8, "reps": 3, "P": {"1080p": resolution(500.0, 3000.0),
                                           "4k": resolution(500.0, 12500.0)}}


def handoff_doc():
    """memd_bench_handoff: row L, 64 KiB at 1 and 4 pairs."""
    def side(fps, producer, consumer, daemon, p50, p99):
        total = producer + consumer + (daemon or 0.0)
        return {"frames_per_s": fps, "latency_us": {"p50": p50, "p99": p99},
                "cpu_us_per_frame": {"producer": producer, "consumer": consumer, "daemon": daemon,
                                     "total": total}, "runs": []}

    def case(pairs, memd_fps, memd_daemon):
        floor = side(100000.0, 2.0, 2.0, None, 10.0, 40.0)
        memd = side(memd_fps, 20.0, 20.0, memd_daemon, 300.0, 100.0)
        return {"frame_bytes": 65536, "pairs": pairs, "floor": floor, "memd": memd,
                "ratios": {"frames_per_s": memd_fps / 100000.0,
                           "cpu_per_frame": memd["cpu_us_per_frame"]["total"] / 4.0,
                           "p50": 300.0 / 10.0, "p99": 100.0 / 40.0}}
    return {"row": "L", "seconds": 3, "reps": 3, "depth": 4,
            "cases": [case(1, 60000.0, 40.0), case(4, 20000.0, 60.0)]}
