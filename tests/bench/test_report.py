"""bench/report.py on synthetic input (tests/bench/synthetic_runs.py): one
minimal document of each kind it reads, and the lines of docs/PERFORMANCE.md's
current table that --markdown prints from them.

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/bench"""
import datetime
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import synthetic_runs  # noqa: E402

REPORT = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "report.py")
FILE_DAY = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def runs(tmp_path):
    """One file of each kind, the non-Google-Benchmark ones dated 2026-12-05."""
    paths = {}
    for name, doc in (("allocator.json", synthetic_runs.allocator_doc()),
                      ("backptr.json", synthetic_runs.backptr_doc()),
                      ("rpc.rpcjson", synthetic_runs.rpc_doc()),
                      ("frames.framejson", synthetic_runs.frames_doc()),
                      ("pipeline.pipejson", synthetic_runs.pipeline_doc()),
                      ("handoff.handoffjson", synthetic_runs.handoff_doc())):
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        os.utime(path, (FILE_DAY.timestamp(), FILE_DAY.timestamp()))
        paths[name] = str(path)
    return paths


def report(*args):
    out = subprocess.run([sys.executable, REPORT, *args], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def table_lines(*args):
    """The --markdown output without its two header lines, as lists of cells."""
    lines = report(*args, "--markdown")
    assert lines[0] == ("| id | what | floor (same run) | target | figure | met | date | command "
                        "| note |")
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|"
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def find(lines, row_id, what):
    matches = [l for l in lines if l[0] == row_id and l[1] == what]
    assert len(matches) == 1, f"{row_id} {what!r}: {len(matches)} lines"
    return matches[0]


def test_every_row_of_the_text_table_has_one_markdown_line_in_the_same_order(runs):
    files = list(runs.values())
    rows = json.loads("\n".join(report(*files, "--json")))["rows"]
    lines = table_lines(*files)
    assert len(lines) == len(rows) == len(report(*files)) - 1
    assert [l[0] for l in lines] == [r["id"] for r in rows]
    assert all(len(l) == 9 for l in lines)
    assert {l[0] for l in lines} == {"D", "D2", "G", "H", "A", "A-trace", "A2", "A3", "A2b", "E", "B",
                                     "C", "I", "F", "P", "L"}


def test_rpc_rows_give_figure_ratio_target_met_date_and_command(runs):
    lines = table_lines(runs["rpc.rpcjson"])
    command = "`./build/bench/memd_bench_rpc 20000 > rpc.rpcjson`"
    assert find(lines, "A", "malloc+free pair 64 B, p50 (us)") == [
        "A", "malloc+free pair 64 B, p50 (us)", "unary p50 60.0", "<= 0.1x", "4.80 (0.08x)", "MET",
        "2026-12-05", command, ""]
    assert find(lines, "A-trace", "malloc+free pair 64 B while memctl trace records, p50 (us)")[2:6] == [
        "no recording p50 5.00", "(reported)", "5.50 (1.10x)", "reported"]
    assert find(lines, "A2b", "batched alloc+release, 64 x <= 64 KiB per message (us/pair)")[4:6] == [
        "1.26 (0.021x)", "MET"]
    assert find(lines, "E", "memd_memdup 12441600 B (GB/s)")[2:6] == [
        "heap memcpy 10.0", ">= 0.95x", "9.00 (0.900x)", "NOT MET"]
    assert find(lines, "B", "alloc+free pairs/s, 4 client processes")[4:6] == ["10000.00 (0.50x)", "NOT MET"]
    deferred = find(lines, "B", "↳ alloc + deferred release, 4 processes")
    assert deferred[4:6] == ["40000.00 (2.00x)", "MET"]
    assert find(lines, "C", "↳ FramePool (AVBufferPool) get+unref 4096 B (ns)")[5] == "reported"
    assert find(lines, "I", "start to healthy, 1 GiB pool, reserve (ms)")[2:6] == [
        "-", "<= 1000 ms", "250.00", "MET"]
    assert {l[7] for l in lines} == {command}


def test_benchmark_rows_are_dated_by_the_run_and_name_their_binary(runs):
    lines = table_lines(runs["allocator.json"], runs["backptr.json"])
    assert {l[6] for l in lines} == {synthetic_runs.BENCH_DATE[:10]}
    fixed = find(lines, "D", "alloc+free fixed 1048576 B (ns/pair)")
    assert fixed[4:6] == ["70.00 (2.0x faster than Boost; 0.10x glibc time)", "NOT MET"]
    assert "memd_bench_allocator --benchmark_filter='^D'" in fixed[7]
    back = find(lines, "G", "backptr back=2 cnt=65536 (GB/s)")
    assert back[4:6] == ["20.00 (2.00x)", "MET"]
    assert back[7].startswith("`./build/bench/memd_bench_backptr --benchmark_repetitions=5")
    handle = find(lines, "H", "daemon heap per live handle (bytes), 1M handles")
    assert handle[4:6] == ["58.74", "MET"]
    assert "--benchmark_filter='^H/'" in handle[7]
    assert find(lines, "D2", "bytes allocated before first failure / pool size")[4] == "1.00 (0.999)"


def test_frame_and_pipeline_commands_carry_the_runs_own_counts(runs):
    frames = table_lines(runs["frames.framejson"])
    memd = find(frames, "F", "4K NV12 handoff + consumer checksum (frames/s)")
    assert memd[2:6] == ["raw shm 750", ">= 0.9x raw", "600.00 (0.80x)", "NOT MET"]
    assert "MEMD_ADDRESS=unix:///tmp/memd-bench-f.sock ./build/bench/memd_bench_frames 300 >" in memd[7]
    assert "--pool default=256MiB" in memd[7]
    pipeline = table_lines(runs["pipeline.pipejson"])
    four_k = find(pipeline, "P", "pipeline 4k: handoff CPU per frame (us)")
    assert four_k[2:8] == ["pipe copy 12500", ">= 20x at 4K", "500.00 (copy costs 25.0x memd)", "MET",
                           "2026-12-05",
                           "`python3 bench/pipeline_bench.py build pipeline.pipejson --seconds 8 --reps 3`"]
    assert find(pipeline, "P", "pipeline 1080p: handoff CPU per frame (us)")[5] == "reported"


def test_handoff_rows_give_each_ratio_against_its_issue_25_target(runs):
    lines = table_lines(runs["handoff.handoffjson"])
    command = "`./build/bench/memd_bench_handoff --seconds 3 --reps 3 > handoff.handoffjson`"
    assert find(lines, "L", "64 KiB, 1 pair: frames/s") == [
        "L", "64 KiB, 1 pair: frames/s", "futex ring 100000", ">= 0.5x", "60000.00 (0.600x)", "MET",
        "2026-12-05", command, ""]
    cpu = find(lines, "L", "↳ 64 KiB, 1 pair: CPU per frame, all processes (us)")
    assert cpu[2:6] == ["futex ring 4.00", "<= 1.5x",
                        "80.00 (20.0x; memd producer 20.0, consumer 20.0, daemon 40.0)", "NOT MET"]
    assert find(lines, "L", "↳ 64 KiB, 1 pair: one-way latency p50 (us)")[2:6] == [
        "futex ring 10.0", "<= 2x", "300.00 (30.0x)", "NOT MET"]
    assert find(lines, "L", "↳ 64 KiB, 1 pair: one-way latency p99 (us)")[2:6] == [
        "futex ring 40.0", "<= 3x", "100.00 (2.5x)", "MET"]
    assert find(lines, "L", "64 KiB, 4 pairs: frames/s")[4:6] == ["20000.00 (0.200x)", "NOT MET"]
    # 4 pairs: memd's CPU per frame (100 us) against its own 1-pair figure (80 us).
    assert find(lines, "L", "↳ 64 KiB, 4 pairs: memd CPU per frame vs 1 pair (us)")[2:6] == [
        "memd, 1 pair 80.0", "not growing (<= 1.1x)", "100.00 (1.25x; futex ring 1.00x its 1 pair)", "NOT MET"]
    assert len(lines) == 4 + 5
    assert {l[7] for l in lines} == {command}


def test_date_flag_dates_every_line(runs):
    lines = table_lines(*runs.values(), "--date", "2026-12-31")
    assert {l[6] for l in lines} == {"2026-12-31"}


def test_a_file_with_only_some_benchmarks_gives_their_rows(tmp_path):
    doc = synthetic_runs.allocator_doc()
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["run_name"].startswith("H/")]
    path = tmp_path / "h.json"
    path.write_text(json.dumps(doc))
    lines = table_lines(str(path))
    assert [l[0] for l in lines] == ["H", "H", "H", "H"]


def test_docs_current_table_is_in_the_format_report_prints():
    """docs/PERFORMANCE.md's table has report_markdown's header, 9 cells a line
    and a line for every row."""
    sys.path.insert(0, os.path.dirname(REPORT))
    import report_markdown
    doc = open(os.path.join(os.path.dirname(REPORT), "..", "docs", "PERFORMANCE.md")).read()
    start = doc.index(report_markdown.HEADER)
    lines = []
    for line in doc[start:].splitlines()[2:]:
        if not line.startswith("| "):
            break
        lines.append([c.strip() for c in line.strip("|").split(" | ")])
    assert all(len(l) == 9 for l in lines)
    assert {l[0] for l in lines} == {"A", "A-trace", "A2", "A2b", "A3", "B", "C", "D", "D2", "E", "F", "G", "H",
                                     "I", "L", "N", "P", "Q", "R"}
    assert all(l[5] in ("MET", "NOT MET", "reported", "-") or l[5].startswith(("met in", "not measured"))
               for l in lines)
