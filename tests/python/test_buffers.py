"""Buffers: zero-copy numpy across processes, lifetimes, bad input."""

import gc
import pydoc

import numpy as np
import pytest

import memd
from conftest import run_child, wait_for


def test_numpy_array_written_here_is_read_and_changed_in_place_by_another_process(daemon, client):
    buf = client.allocate(1920 * 1080, zero=True)
    frame = np.frombuffer(buf, dtype=np.uint8).reshape(1080, 1920)
    frame[:] = np.arange(1920, dtype=np.uint32).astype(np.uint8)  # each row 0..255, 0..
    written_sum = int(frame.sum(dtype=np.uint64))
    out = run_child(daemon, """
        import sys, memd, numpy as np
        c = memd.connect()
        other = c.retain(int(sys.argv[1]))
        a = np.frombuffer(other, dtype=np.uint8).reshape(1080, 1920)
        print(int(a[5, 300]), int(a.sum(dtype=np.uint64)))
        a += 1                       # in place, in the pool
        del a
        other.release()
    """, buf.handle)
    value, total = map(int, out.split())
    assert value == 300 % 256
    assert total == written_sum
    # The other process's writes landed in the same bytes this array views.
    assert frame[5, 300] == (300 % 256 + 1) % 256
    assert frame[0, 255] == 0  # 255 + 1 wrapped
    del frame
    buf.release()


def test_buffer_exposes_writable_bytes_and_its_handle(client):
    buf = client.allocate(100)
    assert len(buf) == buf.size == 100
    assert buf.capacity >= 100
    assert buf.handle != 0
    view = memoryview(buf)
    assert not view.readonly and view.nbytes == 100 and view.format == "B"
    view[:3] = b"abc"
    same = client.retain(buf.handle)
    assert bytes(memoryview(same)[:3]) == b"abc"
    view.release()
    same.release()
    buf.release()
    assert buf.released and repr(buf) == "<memd.Buffer released>"


def test_release_while_a_view_exists_raises_buffer_error_and_keeps_the_buffer(daemon, client):
    buf = client.allocate(4096, zero=True)
    view = memoryview(buf)
    with pytest.raises(BufferError, match="1 exported view"):
        buf.release()
    arr = np.frombuffer(buf, dtype=np.uint8)
    assert buf.exports == 2
    with pytest.raises(BufferError, match="2 exported view"):
        buf.release()
    assert not buf.released
    arr[0] = 7  # still valid memory
    assert view[0] == 7
    view.release()
    del arr
    assert buf.exports == 0
    buf.release()
    assert buf.released
    assert daemon.used_bytes() == 0
    with pytest.raises(ValueError, match="reference is gone"):
        memoryview(buf)
    buf.release()  # a second release is a no-op


def test_with_block_releases_and_refuses_while_exported(daemon, client):
    with client.allocate(1 << 20) as buf:
        assert daemon.used_bytes() >= 1 << 20
    assert buf.released
    assert daemon.used_bytes() == 0
    with pytest.raises(BufferError):
        with client.allocate(64) as buf:
            view = memoryview(buf)
    view.release()
    buf.release()


def test_garbage_collection_releases_the_reference(daemon, client):
    buf = client.allocate(1 << 20)
    arr = np.frombuffer(buf, dtype=np.uint8)
    del buf           # the array keeps the Buffer alive
    gc.collect()
    assert daemon.used_bytes() >= 1 << 20
    arr[:] = 1
    del arr           # last holder gone: released without a round trip
    gc.collect()
    client.flush_releases()
    assert daemon.used_bytes() == 0


def test_buffers_keep_the_pool_mapped_after_the_client_is_closed(daemon):
    c = memd.connect(daemon.address)
    buf = c.allocate(1024)
    arr = np.frombuffer(buf, dtype=np.uint8)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.allocate(1)
    arr[:] = 9       # the session lives on while a Buffer of it does
    assert daemon.memctl_json("stats")["pools"][0]["sessions"] == 1
    del arr
    buf.release()
    del buf
    gc.collect()
    # The last Buffer gone, the session ends.
    assert wait_for(lambda: daemon.memctl_json("stats")["pools"][0]["sessions"] == 0)


@pytest.mark.parametrize("call, error, text", [
    (lambda c: c.allocate(-1), memd.InvalidArgument, "size -1 is out of range"),
    (lambda c: c.allocate(1 << 64), memd.InvalidArgument, "size 18446744073709551616"),
    (lambda c: c.allocate("big"), TypeError, "size must be an int"),
    (lambda c: c.retain(-5), memd.InvalidArgument, "handle -5"),
    (lambda c: c.receive("ch", timeout=-1), memd.InvalidArgument, "timeout -1 s"),
    (lambda c: c.receive("ch", timeout=float("nan")), memd.InvalidArgument, "timeout nan"),
    (lambda c: c.send("ch", [b"bytes"]), TypeError, "memd.Buffer objects, not bytes"),
    (lambda c: c.send("ch", capacity=1 << 32), memd.InvalidArgument, "capacity 4294967296"),
    (lambda c: c.allocate(65 << 20), memd.InvalidArgument, "exceeds the size"),
])
def test_bad_input_names_the_value_and_changes_nothing(daemon, client, call, error, text):
    with pytest.raises(error, match=text):
        call(client)
    assert daemon.used_bytes() == 0
    assert client.allocate(1).size == 1  # the client still works


def test_help_documents_the_package():
    text = pydoc.render_doc(memd)
    for word in ("connect", "allocate", "receive_async", "BufferError", "ForkError", "np.frombuffer"):
        assert word in text
    assert "max_alloc" in pydoc.render_doc(memd.Client.allocate)
    assert "buffer protocol" in pydoc.render_doc(memd.Buffer)


def test_a_reader_gets_read_only_arrays_and_cannot_allocate(daemon, client):
    """connect(read_only=True): the pool is mapped read-only (issue 24, read-only consumers)."""
    buf = client.allocate(4096, zero=True)
    np.frombuffer(buf, dtype=np.uint8)[:] = 7
    out = run_child(daemon, """
        import sys, memd, numpy as np
        c = memd.connect(read_only=True)
        other = c.retain(int(sys.argv[1]))
        a = np.frombuffer(other, dtype=np.uint8)
        print(c.read_only, int(a[0]), a.flags.writeable)
        try:
            a[0] = 1
        except ValueError:
            print("refused")
        try:
            c.allocate(64)
        except memd.errors.PermissionDenied as e:
            print("denied", "reader of pool" in str(e))
        del a
        other.release()
    """, buf.handle)
    assert out.split() == ["True", "7", "False", "refused", "denied", "True"]
    assert not client.read_only
    assert int(np.frombuffer(buf, dtype=np.uint8).sum()) == 7 * 4096
    buf.release()
