"""ctest python.mypy: the package's type stubs under `mypy --strict` (Debian's
mypy). documented_examples.py (docs/python.md's examples) must pass;
wrong_usage.py must fail exactly on its lines marked `# error: CODE`.
Usage: check_types.py PACKAGE_DIR (the directory holding memd/)."""

import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, MYPYPATH=sys.argv[1])


def mypy(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--cache-dir", os.devnull, "--show-error-codes",
                           os.path.join(here, name)], env=env, capture_output=True, text=True)


ok = mypy("documented_examples.py")
if ok.returncode != 0:
    sys.exit(f"mypy --strict fails on the documented examples:\n{ok.stdout}{ok.stderr}")

bad = mypy("wrong_usage.py")
reported = {(int(m.group(1)), m.group(2))
            for m in re.finditer(r"wrong_usage\.py:(\d+): error: .*\[([a-z-]+)\]$", bad.stdout, re.M)}
wanted = set()
with open(os.path.join(here, "wrong_usage.py")) as f:
    for number, line in enumerate(f, 1):
        m = re.search(r"# error: ([a-z-]+)", line)
        if m:
            wanted.add((number, m.group(1)))
if reported != wanted:
    sys.exit(f"mypy on wrong_usage.py: wanted {sorted(wanted)}, got {sorted(reported)}\n{bad.stdout}")
print(f"mypy --strict: the documented examples pass; {len(wanted)} misuses caught")
