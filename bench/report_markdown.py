"""The lines of docs/PERFORMANCE.md's current table, made from report rows:

| id | what | floor (same run) | target | figure | met | date | command | note |

figure is memd's value, then its ratio to the floor in brackets; met is MET,
NOT MET or "reported" (a row without a target); date is the day of the run;
command is what writes the file the row came from (bench/run.sh runs each of
them; `python3 bench/report.py FILE... --markdown` then prints the lines);
note is left empty for the reader (a loaded machine, a superseded run)."""
import datetime
import os

HEADER = ("| id | what | floor (same run) | target | figure | met | date | command | note |\n"
          "|---|---|---|---|---|---|---|---|---|")

# The Google Benchmark flags bench/run.sh passes (medians of 5 repetitions,
# interleaved at random).
_BENCHMARK_FLAGS = ("--benchmark_repetitions=5 --benchmark_report_aggregates_only=true "
                    "--benchmark_enable_random_interleaving=true --benchmark_min_time=0.2 "
                    "--benchmark_format=json")

# The arguments bench/run.sh gives memd_bench_rpc (the file says nothing of them).
_RPC_CALLS = 20000


def benchmark_command(row_id):
    """Rows D, D2, H: memd_bench_allocator; G: memd_bench_backptr."""
    if row_id == "G":
        return f"./build/bench/memd_bench_backptr {_BENCHMARK_FLAGS} > backptr.json"
    pattern = "^H/" if row_id == "H" else "^D"
    return (f"./build/bench/memd_bench_allocator --benchmark_filter='{pattern}' "
            f"{_BENCHMARK_FLAGS} > allocator.json")


def rpc_command():
    return f"./build/bench/memd_bench_rpc {_RPC_CALLS} > rpc.rpcjson"


def frames_command(frames):
    """Row F needs a daemon of its own with room for a few 4K frames (as in bench/run.sh)."""
    sock = "unix:///tmp/memd-bench-f.sock"
    return (f"./build/server/memd --listen {sock} --instance memd-bench-f --pool default=256MiB "
            f"--log-level error & sleep 1; MEMD_ADDRESS={sock} ./build/bench/memd_bench_frames "
            f"{frames} > frames.framejson; kill $!")


def pipeline_command(seconds, reps):
    return f"python3 bench/pipeline_bench.py build pipeline.pipejson --seconds {seconds} --reps {reps}"


def handoff_command(seconds, reps):
    """Row L starts a memd of its own (the one built beside it)."""
    return f"./build/bench/memd_bench_handoff --seconds {seconds:g} --reps {reps} > handoff.handoffjson"


def file_date(path):
    """The day (UTC) a benchmark wrote `path`: its modification time."""
    stamp = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d")


def _cell(text):
    return str(text).replace("|", "\\|")


def line(row, date, command, note=""):
    """One table line for a report row (see the module comment)."""
    what = row["what"]
    if what.startswith("  "):  # qualifies the line above it
        what = "↳ " + what.strip()
    figure = f"{row['memd']:.2f}" if row["ratio"] == "-" else f"{row['memd']:.2f} ({row['ratio']})"
    met = "reported" if row["target"] == "(reported)" else "MET" if row["met"] else "NOT MET"
    cells = [row["id"], what, row["floor"], row["target"], figure, met, date, f"`{command}`", note]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"
