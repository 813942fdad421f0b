"""Turns memd's benchmark output into rows: each figure as a ratio against its
floor measured in the same run.

Usage: report.py FILE... [--json | --markdown [--date YYYY-MM-DD]]

FILE is Google Benchmark JSON (*.json: memd_bench_allocator, memd_bench_backptr),
memd_bench_rpc output (*.rpcjson), memd_bench_frames output (*.framejson),
bench/pipeline_bench.py output (*.pipejson) or memd_bench_handoff output
(*.handoffjson). Without a flag: a text table.
--json: one JSON document. --markdown: the lines of docs/PERFORMANCE.md's current
table (bench/report_markdown.py), dated by the benchmark's own date or the file's
modification time, or by --date."""
import json
import sys

import report_markdown
from report_rows import (benchmark_rows, frame_rows, handoff_rows, load_benchmarks, pipeline_rows,
                         rpc_rows)


def load(path):
    with open(path) as f:
        return json.load(f)


def main(argv):
    files = [a for a in argv if a.endswith(".json")]
    date = argv[argv.index("--date") + 1] if "--date" in argv else None
    medians, counters, context = load_benchmarks(files)
    # (row, date, command) in the order of the text table.
    lines = []
    for row in benchmark_rows(medians, counters):
        day = date or context.get("date", "")[:10] or report_markdown.file_date(files[-1])
        lines.append((row, day, report_markdown.benchmark_command(row["id"])))
    for path in (a for a in argv if a.endswith(".rpcjson")):
        for row in rpc_rows(load(path)):
            lines.append((row, date or report_markdown.file_date(path), report_markdown.rpc_command()))
    for path in (a for a in argv if a.endswith(".framejson")):
        doc = load(path)
        for row in frame_rows(doc):
            lines.append((row, date or report_markdown.file_date(path),
                          report_markdown.frames_command(doc.get("frames", 300))))
    for path in (a for a in argv if a.endswith(".pipejson")):
        doc = load(path)
        for row in pipeline_rows(doc):
            lines.append((row, date or report_markdown.file_date(path),
                          report_markdown.pipeline_command(doc.get("seconds", 8), doc.get("reps", 3))))
    for path in (a for a in argv if a.endswith(".handoffjson")):
        doc = load(path)
        for row in handoff_rows(doc):
            lines.append((row, date or report_markdown.file_date(path),
                          report_markdown.handoff_command(doc.get("seconds", 3), doc.get("reps", 3))))
    rows = [row for row, _, _ in lines]

    if "--json" in argv:
        json.dump({"machine": {k: context.get(k) for k in ("host_name", "num_cpus", "mhz_per_cpu", "date")},
                   "rows": rows}, sys.stdout, indent=2)
        print()
    elif "--markdown" in argv:
        print(report_markdown.HEADER)
        for row, day, command in lines:
            print(report_markdown.line(row, day, command))
    else:
        print(f"{'id':<3} {'what':<46} {'memd':>9} {'floor (same run)':<28} {'ratio':<44} target")
        for r in rows:
            value = r["memd"]
            print(f"{r['id']:<3} {r['what']:<46} {value:>9.2f} {r['floor']:<28} {r['ratio']:<44} "
                  f"{r['target']} {'MET' if r['met'] else 'NOT MET'}")


if __name__ == "__main__":
    main(sys.argv[1:])
