"""Fixtures of the memd Python tests: real memd daemons and real processes.

A daemon is started the way tests/support/daemon_env.cc starts one: the
build's memd binary (MEMD_BINARY, set by ctest), a private Unix socket in a
temporary directory, a unique instance name and its own state directory;
the fixture waits until it serves and stops it with SIGTERM afterwards.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import itertools

import pytest

import memd

MEMD_BINARY = os.environ.get("MEMD_BINARY", "memd")
MEMCTL_BINARY = os.environ.get("MEMCTL_BINARY", "memctl")
_counter = itertools.count()


def wait_for(condition, timeout=10.0, step=0.01):
    """Polls `condition` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


class Daemon:
    """One memd process; restartable on the same instance and state directory."""

    def __init__(self, pools=("default=64MiB",), extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="memd-py-test-")
        os.chmod(self.dir, 0o755)  # other uids reach the socket through it
        self.socket_path = os.path.join(self.dir, "memd.sock")
        self.address = "unix://" + self.socket_path
        self.instance = f"memd-py-test-{os.getpid()}-{next(_counter)}"
        self.state_dir = os.path.join(self.dir, "state")
        self.pools = list(pools)
        self.extra_args = list(extra_args)
        self.process = None
        self.start()

    def start(self, extra_args=()):
        argv = [MEMD_BINARY, "--listen", self.address, "--instance", self.instance,
                "--state-dir", self.state_dir, "--log-level", "warn", *self.extra_args,
                *extra_args]
        for pool in self.pools:
            argv += ["--pool", pool]
        self.process = subprocess.Popen(argv)
        if not wait_for(self._serves):
            raise RuntimeError(f"memd did not come up: {argv}")

    def _serves(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"memd exited with {self.process.returncode}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket_path)
        except OSError:
            return False
        finally:
            s.close()
        return subprocess.run([MEMCTL_BINARY, "--address", self.address, "health"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig` and waits; returns the exit status (negative: killed by a signal)."""
        if self.process is None:
            return None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def env(self, pool="default"):
        """Environment of a client process: MEMD_ADDRESS here, MEMD_POOL, this package."""
        env = dict(os.environ, MEMD_ADDRESS=self.address, MEMD_POOL=pool)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        return env

    def memctl_json(self, *args):
        import json
        out = subprocess.run([MEMCTL_BINARY, "--address", self.address, *args, "--json"],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def used_bytes(self, pool="default"):
        for p in self.memctl_json("stats")["pools"]:
            if p["name"] == pool:
                return p["used_bytes"]
        raise KeyError(pool)

    def close(self):
        code = self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    code = d.close()
    assert code in (None, 0), f"memd exited with {code} after SIGTERM"


@pytest.fixture
def client(daemon):
    c = memd.connect(daemon.address, name="pytest")
    yield c
    c.close()


def python_child(daemon, code, *args, **popen):
    """Starts `python3 -c code args...` as a real process using the daemon; text pipes."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            env=daemon.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def run_child(daemon, code, *args, timeout=30, **popen):
    """Runs a child to its end; returns its stdout, failing the test with its stderr."""
    p = python_child(daemon, code, *args, **popen)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"child failed ({p.returncode}):\n{err}"
    return out
