"""Processes and the daemon: a killed holder, a daemon restart, fork, stats."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

import memd
from conftest import MEMCTL_BINARY, python_child, run_child, wait_for


def test_sigkill_of_a_python_holder_returns_its_memory(daemon, client):
    holder = python_child(daemon, """
        import memd, numpy as np
        c = memd.connect(name="holder")
        bufs = [c.allocate(4 << 20) for _ in range(3)]
        views = [np.frombuffer(b, dtype=np.uint8) for b in bufs]
        print("holding", flush=True)
        input()
    """)
    assert holder.stdout.readline() == "holding\n"
    assert daemon.used_bytes() >= 12 << 20
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert wait_for(lambda: daemon.used_bytes() == 0)
    assert client.stats()["pools"][0]["used_bytes"] == 0


def test_a_daemon_killed_and_restarted_is_survived(daemon):
    c = memd.connect(daemon.address, outage_wait=10)
    buf = c.allocate(1 << 20)
    arr = np.frombuffer(buf, dtype=np.uint8)
    arr[:] = 0x5A
    handle = buf.handle
    daemon.stop(signal.SIGKILL)
    arr[:16] = 0xA5          # the mapping stays valid while memd is away
    daemon.start()           # same instance and state directory: re-adopts the pool
    again = c.allocate(4096)  # waits for the reconnection
    assert c.reconnects >= 1 and c.connected
    assert (arr[16:] == 0x5A).all() and (arr[:16] == 0xA5).all()
    # Our reference was reclaimed: another process still finds the buffer.
    out = run_child(daemon, """
        import sys, memd, numpy as np
        b = memd.connect().retain(int(sys.argv[1]))
        print(int(np.frombuffer(b, dtype=np.uint8)[100]))
    """, handle)
    assert int(out) == 0x5A
    del arr
    buf.release()
    again.release()
    c.flush_releases()
    assert daemon.used_bytes() == 0
    c.close()


def test_a_fork_child_gets_fork_errors_and_leaves_the_parents_session_alone(daemon, client):
    buf = client.allocate(1024, zero=True)
    memoryview(buf)[:6] = b"parent"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)  # a child that hangs dies, and the parent's assert says so
        os.close(r)
        report = []
        try:
            for use in (lambda: client.allocate(1), lambda: client.retain(buf.handle),
                        lambda: memoryview(buf), lambda: buf.release(), lambda: client.stats(),
                        lambda: memd.connect(daemon.address)):
                try:
                    use()
                    report.append("no error")
                except memd.ForkError as e:
                    report.append("ok" if "'spawn'" in str(e) and str(os.getpid()) in str(e) else str(e))
        except BaseException as e:  # report, never run the parent's test code
            report.append(repr(e))
        os.write(w, "\n".join(report).encode())
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    report = os.read(r, 65536).decode().split("\n")
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == ["ok"] * 6
    # The parent's client and buffer are untouched.
    assert bytes(memoryview(buf)[:6]) == b"parent"
    assert client.allocate(10).size == 10
    assert client.refs([buf.handle])[0].held == 1
    buf.release()


def test_children_forked_before_connecting_or_spawned_after_connect(daemon, tmp_path):
    script = tmp_path / "children.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, os, sys
        import memd

        def write(handle, text):
            with memd.connect() as c:
                b = c.retain(handle)
                memoryview(b)[:len(text)] = text
                b.release()

        if __name__ == "__main__":
            pid = os.fork()                  # before this process connects: allowed
            if pid == 0:
                with memd.connect() as c:
                    c.send("forked", meta=b"from a fork child")
                os._exit(0)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
            c = memd.connect()
            assert c.receive("forked", timeout=10) == ([], b"from a fork child")
            buf = c.allocate(16, zero=True)
            p = mp.get_context("spawn").Process(target=write, args=(buf.handle, b"spawned"))
            p.start(); p.join(30)
            assert p.exitcode == 0
            print(bytes(memoryview(buf)[:7]).decode())
    """))
    out = subprocess.run([sys.executable, str(script)], env=daemon.env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "spawned\n"


def test_stats_is_the_document_memctl_stats_json_prints(daemon, client):
    buf = client.allocate(1 << 20)
    client.send("stats-channel", meta=b"x")
    mine = client.stats()
    theirs = daemon.memctl_json("stats")
    assert mine.keys() == theirs.keys()
    assert mine["instance"] == daemon.instance
    pool, other = mine["pools"][0], theirs["pools"][0]
    assert pool.keys() == other.keys()
    for key in ("name", "size_bytes", "used_bytes", "live_buffers", "sessions", "channels"):
        assert pool[key] == other[key], key
    assert pool["channels"][0]["name"] == "stats-channel" and pool["channels"][0]["depth"] == 1
    assert client.pool.name == "default" and client.pool.size_bytes == 64 << 20
    buf.release()


def test_version_is_the_daemons_the_librarys_and_memctls(daemon, client):
    # Issue 27: memd.__version__, one version with the daemon's and memctl's.
    assert isinstance(memd.__version__, str) and memd.__version__.count(".") == 2
    assert client.stats()["version"] == memd.__version__
    first = subprocess.run([MEMCTL_BINARY, "--version"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[0]
    assert first == f"memctl {memd.__version__}"
