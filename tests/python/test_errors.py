"""Every exception class: the ones a real daemon raises, and the code table for all."""

import os
import signal

import pytest

import memd
from memd import errors
from conftest import Daemon, python_child


def test_not_found_for_an_unknown_pool_and_a_handle_never_issued(daemon, client):
    with pytest.raises(memd.NotFound, match="no pool named 'nope'") as e:
        memd.connect(daemon.address, pool="nope")
    assert isinstance(e.value, LookupError) and e.value.status == 5
    with pytest.raises(memd.NotFound, match="never issued"):
        client.retain(1234)


def test_not_found_for_a_freed_handle(client):
    buf = client.allocate(10)
    handle = buf.handle
    buf.release()
    with pytest.raises(memd.NotFound, match="stale"):
        client.retain(handle)


def test_invalid_argument_names_the_value_and_the_limit(client):
    with pytest.raises(memd.InvalidArgument, match=r"exceeds the size 64\.0 MiB") as e:
        client.allocate(100 << 20)
    assert isinstance(e.value, ValueError) and e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(memd.InvalidArgument, match="client_name is 65 bytes; the limit is 64"):
        memd.connect(client.address, name="x" * 65)


def test_resource_exhausted_when_the_pool_is_full(client):
    held = [client.allocate(30 << 20), client.allocate(30 << 20)]
    with pytest.raises(memd.OutOfMemory, match="does not fit in pool 'default'") as e:
        client.allocate(30 << 20)
    assert type(e.value) is memd.ResourceExhausted
    for b in held:
        b.release()


def test_unavailable_when_no_daemon_listens(tmp_path):
    with pytest.raises(memd.Unavailable) as e:
        memd.connect("unix://" + str(tmp_path / "none.sock"))
    assert isinstance(e.value, ConnectionError) and "none.sock" in str(e.value)


def test_permission_denied_for_a_uid_the_pool_does_not_admit():
    d = Daemon(extra_args=["--socket-mode", "0666"])  # pools stay 0600: root only
    try:
        child = python_child(d, """
            import memd
            try:
                memd.connect()
            except memd.PermissionDenied as e:
                assert isinstance(e, PermissionError)
                print("denied:", e)
        """, user=65534)
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert out.startswith("denied:") and "uid 65534" in out
    finally:
        assert d.close() == 0


def test_failed_precondition_when_the_daemon_comes_back_without_the_pool():
    d = Daemon()
    try:
        c = memd.connect(d.address, outage_wait=10)
        buf = c.allocate(100)
        d.stop(signal.SIGKILL)
        d.start(extra_args=["--fresh"])  # discards the pool the client mapped
        with pytest.raises(memd.FailedPrecondition, match="segment"):
            c.allocate(1)  # waits for the reconnection (outage_wait), which finds no pool
        del buf
        c.close()
    finally:
        d.close()


def test_fork_error_is_a_failed_precondition(client):
    pid = os.fork()
    if pid == 0:
        try:
            client.allocate(1)
            os._exit(1)
        except memd.ForkError as e:
            os._exit(0 if isinstance(e, memd.FailedPrecondition) and "memd.connect()" in str(e) else 2)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("status, name, cls", [
    (1, "CANCELLED", memd.Cancelled), (2, "UNKNOWN", memd.Unknown),
    (3, "INVALID_ARGUMENT", memd.InvalidArgument), (4, "DEADLINE_EXCEEDED", memd.DeadlineExceeded),
    (5, "NOT_FOUND", memd.NotFound), (6, "ALREADY_EXISTS", memd.AlreadyExists),
    (7, "PERMISSION_DENIED", memd.PermissionDenied), (8, "RESOURCE_EXHAUSTED", memd.ResourceExhausted),
    (9, "FAILED_PRECONDITION", memd.FailedPrecondition), (10, "ABORTED", memd.Aborted),
    (11, "OUT_OF_RANGE", memd.OutOfRange), (12, "UNIMPLEMENTED", memd.Unimplemented),
    (13, "INTERNAL", memd.Internal), (14, "UNAVAILABLE", memd.Unavailable),
    (15, "DATA_LOSS", memd.DataLoss), (16, "UNAUTHENTICATED", memd.Unauthenticated),
])
def test_every_status_code_has_its_class_with_message_and_code(status, name, cls):
    e = errors._from_status(status, f"message {status}")
    assert type(e) is cls and isinstance(e, memd.MemdError)
    assert (e.code, e.status, str(e)) == (name, status, f"message {status}")


def test_an_unknown_status_number_keeps_it():
    e = errors._from_status(99, "new code")
    assert type(e) is memd.Unknown and e.status == 99


def test_metadata_over_the_limit_is_refused_before_sending_and_the_session_goes_on(client):
    # Issue 24, defect 9: 70 KB, 1 MiB and 5 MiB of metadata ended the session's
    # stream (Unavailable "session stream closed", then a reconnect), and calls
    # of other threads failed meanwhile.
    import threading
    session = client.session_id
    stop = threading.Event()
    failures = []

    def bystander():
        while not stop.is_set():
            try:
                client.allocate(64).release()
            except memd.MemdError as e:  # pragma: no cover - the failure it guards against
                failures.append(e)

    thread = threading.Thread(target=bystander)
    thread.start()
    try:
        for size in (70_000, 1 << 20, 5 << 20):
            with pytest.raises(memd.InvalidArgument,
                               match=f"carries {size} bytes of metadata; the limit is 4096"):
                client.send("big", meta=b"m" * size)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert client.reconnects == 0 and client.session_id == session
    client.send("big", meta=b"m" * 4096)
    assert client.receive("big", timeout=5) == ([], b"m" * 4096)
