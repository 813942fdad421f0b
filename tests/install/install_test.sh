#!/usr/bin/env bash
# Installs the build into a temporary prefix and checks what a user gets:
# bin/memd, bin/memctl, libmemd.so with a versioned SONAME, headers, the CMake
# package (find_package(memd) -> memd::client from C and C++), memd.pc for
# pkg-config, and loading libmemd from Python ctypes; memd::ffmpeg (CMake
# COMPONENTS ffmpeg and memd-ffmpeg.pc) and the GStreamer plugin when they
# were built. Then runs the installed daemon and has the consumer programs
# share buffers and frames through it.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
prefix=$work/prefix
memd_pid=""
cleanup() { [[ -n $memd_pid ]] && kill "$memd_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/memd bin/memctl include/memd/memd.h include/memd/client.h lib/pkgconfig/memd.pc \
         lib/cmake/memd/memdConfig.cmake lib/libmemd.so lib/systemd/system/memd.service \
         lib/systemd/system/memd.socket lib/sysusers.d/memd.conf include/memd/version.h \
         share/man/man1/memctl.1 share/bash-completion/completions/memctl \
         share/zsh/vendor-completions/_memctl share/fish/vendor_completions.d/memctl.fish \
         lib/libmemd_admin.so include/memd/admin.h lib/pkgconfig/memd-admin.pc \
         share/memd/memd.toml; do
  [[ -e $prefix/$f ]] || fail "missing $f after install"
done
soname=$(objdump -p "$prefix/lib/libmemd.so" | awk '/SONAME/ {print $2}')
[[ $soname =~ ^libmemd\.so\.[0-9]+$ ]] || fail "SONAME is '$soname', want libmemd.so.N"

# The installed example configuration is valid as it is.
"$prefix/bin/memd" --config "$prefix/share/memd/memd.toml" --check-config > /dev/null \
  || fail "the installed memd.toml does not pass --check-config"

# find_package(memd CONFIG) from C and C++.
cmake -S "$src/examples/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" > "$work/consumer.log"
cmake --build "$work/consumer" > "$work/consumer-build.log"

# pkg-config, plain C compiler.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc "$src/examples/consumer/share.c" $(pkg-config --cflags --libs memd) -o "$work/share_pc"

# memd::ffmpeg: find_package(memd COMPONENTS ffmpeg) and memd-ffmpeg.pc.
have_ffmpeg=0
if [[ -e $prefix/lib/libmemd-ffmpeg.so ]]; then
  have_ffmpeg=1
  for f in include/memd/ffmpeg.h lib/pkgconfig/memd-ffmpeg.pc lib/cmake/memd/memdFfmpegTargets.cmake; do
    [[ -e $prefix/$f ]] || fail "missing $f after install"
  done
  cmake -S "$src/tests/install/ffmpeg_consumer" -B "$work/ffmpeg_consumer" \
    -DCMAKE_PREFIX_PATH="$prefix" > "$work/ffmpeg_consumer.log" || fail "find_package(memd COMPONENTS ffmpeg)"
  cmake --build "$work/ffmpeg_consumer" > "$work/ffmpeg_consumer-build.log" || fail "memd::ffmpeg consumer build"
  absl_libs=$(pkg-config --libs absl_status absl_statusor)
  c++ -std=c++20 "$src/tests/install/ffmpeg_consumer/frames.cc" \
    $(pkg-config --cflags --libs memd-ffmpeg) $absl_libs -o "$work/frames_pc" || fail "memd-ffmpeg.pc build"
fi

# The installed daemon on a private socket and instance.
sock=$work/memd.sock
instance=memd-install-$$
"$prefix/bin/memd" --listen "unix://$sock" --instance "$instance" --pool default=8MiB --log-level warn &
memd_pid=$!
for _ in $(seq 200); do "$prefix/bin/memctl" --address "unix://$sock" health >/dev/null 2>&1 && break; sleep 0.05; done
"$prefix/bin/memctl" --address "unix://$sock" health > /dev/null || fail "installed memd did not become healthy"
export MEMD_ADDRESS=unix://$sock LD_LIBRARY_PATH=$prefix/lib

# C producer (CMake build) -> C consumer (pkg-config build), in place.
coproc PRODUCER { "$work/consumer/share_c" put "frame-0042"; }
read -r handle <&"${PRODUCER[0]}"
[[ $handle =~ ^[0-9]+$ ]] || fail "producer printed '$handle', not a handle"
got=$("$work/share_pc" get "$handle")
[[ $got == frame-0042 ]] || fail "consumer read '$got'"
echo go >&"${PRODUCER[1]}"
wait "$PRODUCER_PID" || fail "producer failed"

"$work/consumer/share_cpp" | grep -q "allocated handle" || fail "C++ consumer failed"

if ((have_ffmpeg)); then
  "$work/ffmpeg_consumer/frames" | grep -q "frame received intact" || fail "memd::ffmpeg consumer (CMake) failed"
  "$work/frames_pc" | grep -q "frame received intact" || fail "memd::ffmpeg consumer (pkg-config) failed"
fi

# The GStreamer plugin from the installed prefix, finding libmemd.so by its
# own relative RPATH (no LD_LIBRARY_PATH: a custom prefix is not searched).
if [[ -e $prefix/lib/gstreamer-1.0/libgstmemd.so ]]; then
  runpath=$(objdump -p "$prefix/lib/gstreamer-1.0/libgstmemd.so" | awk '/RUNPATH|RPATH/ {print $2}')
  [[ $runpath =~ ^\$ORIGIN/\.\./?$ ]] || fail "libgstmemd.so's run path is '$runpath', want \$ORIGIN/.."
  export GST_PLUGIN_PATH=$prefix/lib/gstreamer-1.0 GST_REGISTRY=$work/gst-registry.bin
  inspect=$(env -u LD_LIBRARY_PATH gst-inspect-1.0 memd) || fail "gst-inspect-1.0 memd failed"
  grep -q memdsink <<<"$inspect" && grep -q memdsrc <<<"$inspect" \
    || fail "gst-inspect-1.0 memd does not list memdsink and memdsrc"
  env -u LD_LIBRARY_PATH gst-launch-1.0 -q memdsrc channel=gst ! fakesink & reader=$!
  env -u LD_LIBRARY_PATH gst-launch-1.0 -q videotestsrc num-buffers=3 ! memdsink channel=gst \
    || fail "installed memdsink failed"
  wait "$reader" || fail "installed memdsrc failed"
fi

# Python ctypes.
python3 - "$prefix/lib/libmemd.so" <<'PY' || fail "ctypes check failed"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.memd_malloc.restype = ctypes.c_void_p
lib.memd_malloc.argtypes = [ctypes.c_size_t]
lib.memd_handle.restype = ctypes.c_uint64
lib.memd_handle.argtypes = [ctypes.c_void_p]
lib.memd_free.argtypes = [ctypes.c_void_p]
assert lib.memd_init(None, None) == 0
p = lib.memd_malloc(100)
assert p and p % 64 == 0, p
ctypes.memset(p, 7, 100)
assert lib.memd_handle(p) != 0
lib.memd_free(p)
lib.memd_uninit()
PY

# The Python package (when the build has it): `import memd` from the prefix's
# site directory, its module finding libmemd.so by its own RPATH.
if compgen -G "$build/python/memd/_memd*.so" > /dev/null; then
  site=$(sed -n 's/^MEMD_PYTHON_INSTALL_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")
  [[ -d $prefix/$site/memd ]] || fail "missing $site/memd after install"
  env -u LD_LIBRARY_PATH PYTHONPATH="$prefix/$site" python3 -c "
import memd
with memd.connect() as c, c.allocate(100, zero=True) as b:
    memoryview(b)[:2] = b'ok'
    assert bytes(memoryview(c.retain(b.handle))[:2]) == b'ok'
" || fail "python3 -c 'import memd' from $prefix/$site failed"
fi

used=$("$prefix/bin/memctl" --address "unix://$sock" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pools"][0]["used_bytes"])')
[[ $used == 0 ]] || fail "used_bytes is $used after every consumer exited"
echo "install test passed"
