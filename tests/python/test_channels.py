"""Channels: buffers and metadata between processes, timeouts, asyncio, the GIL."""

import asyncio
import threading

import numpy as np
import pytest

import memd
from conftest import python_child, run_child


def test_a_buffer_and_metadata_sent_by_another_process_arrive_in_place(daemon, client):
    producer = python_child(daemon, """
        import memd, numpy as np
        c = memd.connect()
        buf = c.allocate(1 << 16)
        np.frombuffer(buf, dtype=np.uint16)[:] = np.arange(1 << 15, dtype=np.uint16)
        c.send("frames", [buf], meta=b"pts=42", timeout=5)
        assert buf.released          # the reference moved into the channel
        print("sent", flush=True)
        input()                      # stay alive until the consumer is done
    """)
    bufs, meta = client.receive("frames", timeout=10)
    assert meta == b"pts=42"
    assert len(bufs) == 1 and bufs[0].size == 1 << 16
    arr = np.frombuffer(bufs[0], dtype=np.uint16)
    assert (arr == np.arange(1 << 15, dtype=np.uint16)).all()
    producer.communicate("done\n", timeout=10)
    assert producer.returncode == 0
    del arr
    bufs[0].release()
    assert daemon.used_bytes() == 0


def test_share_keeps_the_senders_reference_and_metadata_alone_is_a_message(daemon, client):
    buf = client.allocate(256)
    memoryview(buf)[:5] = b"hello"
    view = memoryview(buf)            # a share may send an exported buffer
    client.send("ch", [buf], meta=b"first", share=True)
    client.send("ch", meta=b"only metadata")
    assert not buf.released
    got, meta = client.receive("ch", timeout=5)
    assert meta == b"first" and got[0].handle == buf.handle
    assert bytes(memoryview(got[0])[:5]) == b"hello"
    assert client.refs([buf.handle])[0].held == 2  # ours and the received one
    assert client.receive("ch", timeout=5) == ([], b"only metadata")
    view.release()
    got[0].release()
    buf.release()


def test_a_moving_send_of_an_exported_buffer_raises_buffer_error_and_sends_nothing(daemon, client):
    buf = client.allocate(64)
    arr = np.frombuffer(buf, dtype=np.uint8)
    with pytest.raises(BufferError, match="share=True"):
        client.send("ch", [buf])
    assert not buf.released
    with pytest.raises(memd.Timeout):
        client.receive("ch", timeout=0)
    del arr
    client.send("ch", [buf])
    assert buf.released


def test_receive_times_out_with_deadline_exceeded(client):
    with pytest.raises(memd.DeadlineExceeded) as e:
        client.receive("empty", timeout=0.2)
    assert isinstance(e.value, TimeoutError) and e.value.code == "DEADLINE_EXCEEDED"
    assert memd.Timeout is memd.DeadlineExceeded


def test_send_to_a_full_channel_times_out_with_resource_exhausted(client):
    client.send("tiny", meta=b"1", capacity=1)
    with pytest.raises(memd.ResourceExhausted, match="tiny"):
        client.send("tiny", meta=b"2", timeout=0.1)
    assert client.receive("tiny", timeout=0) == ([], b"1")


def test_a_blocked_receive_releases_the_gil(daemon, client):
    got = []
    thread = threading.Thread(target=lambda: got.append(client.receive("gil", timeout=30)))
    thread.start()
    # This thread runs (and sends) only because the receiving one dropped the GIL.
    other = memd.connect(daemon.address)
    other.send("gil", meta=b"through")
    thread.join(30)
    assert not thread.is_alive()
    assert got == [([], b"through")]
    other.close()


def test_receive_async_gets_a_message_sent_by_another_process(daemon, client):
    async def main():
        task = asyncio.ensure_future(client.receive_async("async", timeout=20))
        await asyncio.sleep(0)
        run_child(daemon, """
            import memd
            memd.connect().send("async", meta=b"from a process")
        """)
        return await task
    assert asyncio.run(main()) == ([], b"from a process")


def test_receive_async_times_out_and_a_cancelled_one_loses_no_message(client):
    async def main():
        with pytest.raises(memd.Timeout):
            await client.receive_async("idle", timeout=0.3)
        task = asyncio.ensure_future(client.receive_async("late", timeout=None))
        await asyncio.sleep(0.05)
        client.send("late", meta=b"kept")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())
    # Whether the cancelled receive took the message or not, it is still ours.
    assert client.receive("late", timeout=5) == ([], b"kept")


def test_a_buffer_of_another_client_is_refused_by_send(daemon, client):
    other = memd.connect(daemon.address)
    buf = other.allocate(8)
    with pytest.raises(ValueError, match="belongs to another memd.Client"):
        client.send("ch", [buf])
    assert not buf.released
    with pytest.raises(memd.Timeout):
        client.receive("ch", timeout=0)
    buf.release()
    other.close()


def test_a_huge_timeout_is_a_wait_without_end(client):
    client.send("far", meta=b"x")
    assert client.receive("far", timeout=1e300) == ([], b"x")
    client.send("far", meta=b"y", timeout=1e300)
    assert client.receive("far", timeout=0) == ([], b"y")


def test_send_and_receive_do_not_wait_by_default_as_in_the_cpp_api(daemon):
    # Issue 27: send did not wait by default while receive waited forever.
    # Both default to timeout 0 (Client::Send and Client::Receive: timeout_ms
    # = 0); in a child, so a receive that waits fails this test instead of
    # hanging it.
    out = run_child(daemon, """
        import memd
        c = memd.connect()
        try:
            c.receive("empty")
        except memd.Timeout:
            print("receive: Timeout")
        c.send("full", meta=b"1", capacity=1)
        try:
            c.send("full", meta=b"2")
        except memd.ResourceExhausted:
            print("send: ResourceExhausted")
    """, timeout=20)
    assert out == "receive: Timeout\nsend: ResourceExhausted\n"
