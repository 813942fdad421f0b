#!/usr/bin/env bash
# ctest python.pip_install: the memd Python package installed the way Python
# users install things, offline, with Debian 12's packages, against libmemd
# installed from this build (cmake --install into a temporary prefix):
#   1. `pip install --no-build-isolation ./python` into a fresh virtual
#      environment (python3 -m venv --system-site-packages: numpy from Debian);
#   2. `python3 -m build --no-isolation --wheel python`, and that wheel
#      installed into a second fresh environment.
# Each then imports memd outside the source tree, checks memd.__version__
# against the daemon's and libmemd's, and shares a buffer through the
# installed daemon (stats() included: libmemd_admin).
# Usage: pip_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
memd_pid=""
cleanup() { [[ -n $memd_pid ]] && kill "$memd_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
python=/usr/bin/python3   # Debian's, whose pip, setuptools, build and numpy these are
# The extension is compiled twice (pip, then build): without optimisation, as
# this tests the packaging, not the code (setuptools appends $CFLAGS).
export CFLAGS="-O0 -g0"

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
version=$(pkg-config --modversion memd)
# pip and build work in the directory they are given (egg-info, build/):
# a copy keeps the source tree clean.
cp -r "$src/python" "$work/python"

"$python" -m venv --system-site-packages "$work/venv-pip"
"$work/venv-pip/bin/pip" install --no-build-isolation --no-index --no-cache-dir -q "$work/python" \
  > "$work/pip.log" 2>&1 || { cat "$work/pip.log"; fail "pip install --no-build-isolation ./python"; }

(cd "$work/python" && "$python" -m build --no-isolation --wheel --outdir "$work/dist" . \
  > "$work/build.log" 2>&1) || { cat "$work/build.log"; fail "python3 -m build --no-isolation --wheel"; }
wheel=$(ls "$work"/dist/memd-"$version"-*.whl) || fail "no wheel memd-$version-*.whl in $work/dist"
"$python" -m venv --system-site-packages "$work/venv-wheel"
"$work/venv-wheel/bin/pip" install --no-index --no-cache-dir -q "$wheel" > "$work/wheel.log" 2>&1 \
  || { cat "$work/wheel.log"; fail "pip install $wheel"; }

sock=$work/memd.sock
"$prefix/bin/memd" --listen "unix://$sock" --instance "memd-pip-$$" --state-dir "$work/state" \
  --pool default=8MiB --log-level warn &
memd_pid=$!
for _ in $(seq 200); do "$prefix/bin/memctl" --address "unix://$sock" health >/dev/null 2>&1 && break; sleep 0.05; done
"$prefix/bin/memctl" --address "unix://$sock" health > /dev/null || fail "installed memd did not become healthy"

for venv in venv-pip venv-wheel; do
  # From / and without LD_LIBRARY_PATH or PYTHONPATH: the installed package
  # and its module's RPATH to the prefix, nothing of the build.
  (cd / && env -u LD_LIBRARY_PATH -u PYTHONPATH MEMD_ADDRESS="unix://$sock" \
    "$work/$venv/bin/python" - "$version" "$work/$venv" <<'PY') || fail "$venv: the installed package does not work"
import sys
import numpy as np
import memd
version, venv = sys.argv[1], sys.argv[2]
assert memd.__file__.startswith(venv), f"memd imported from {memd.__file__}, not {venv}"
assert memd.__version__ == version, (memd.__version__, version)
with memd.connect(name="pip") as c:
    assert c.stats()["version"] == memd.__version__, c.stats()["version"]
    with c.allocate(64, zero=True) as buf:
        np.frombuffer(buf, dtype=np.uint8)[:2] = (7, 9)
        other = c.retain(buf.handle)
        assert bytes(memoryview(other)[:2]) == b"\x07\x09"
        other.release()
print(venv, "ok", memd.__version__)
PY
done
echo "pip install test passed (memd $version)"
