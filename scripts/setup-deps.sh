#!/usr/bin/env bash
# Installs the Debian 12 packages memd needs to build, test and benchmark.
# Idempotent and non-interactive: packages already present are skipped by apt.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libavutil-dev libavcodec-dev libavformat-dev libswscale-dev ffmpeg
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  clang libclang-rt-14-dev
  lld           # links the test binaries several times faster than ld.bfd (CMakeLists.txt MEMD_USE_LLD)
  prometheus-cpp-dev prometheus doxygen
  python3 python3-yaml procps util-linux openssl systemd
  iproute2      # `ip`: the bridge suites' network namespaces, DaemonSetTest's pod loopback
  pybind11-dev python3-dev python3-numpy python3-pytest
  libsystemd-dev strace groff-base
  gdb           # CheckBrokenTest breaks a live pool's counter to provoke E63
  libucx-dev    # the UCX bridge transport (server/bridge/ucx)
  iperf3        # bench only: row N compares the bridge with iperf3
  libyaml-cpp-dev   # memctl -o yaml (client/memctl/output.cc)
  libxxhash-dev     # memd::ffmpeg::FrameChecksum is XXH3
  python3-venv python3-pip python3-setuptools python3-wheel python3-build
                    # the Python package installed with pip / built as a wheel (python.pip_install)
  mypy              # the Python stubs under mypy --strict (python.mypy)
  zsh fish          # memctl's zsh and fish completions, checked by the shells themselves
  systemtap-sdt-dev  # <sys/sdt.h>: the USDT probes of memd and libmemd (docs/operations.md)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "setup-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
