"""The examples of docs/python.md and memd's docstring, as a type checker sees
them: `mypy --strict` (Debian's mypy) must pass this file against the package's
stubs (ctest python.mypy). Never run; only checked."""

import asyncio
from typing import Any, Dict, List, Tuple

import numpy as np
import numpy.typing as npt

import memd
import memd.frames as frames


def first_example() -> None:
    c: memd.Client = memd.connect()
    print(c, memd.__version__)
    buf: memd.Buffer = c.allocate(1 << 20, zero=True)
    print(buf, buf.handle, buf.size)
    a: npt.NDArray[np.uint8] = np.frombuffer(buf, dtype=np.uint8)
    a[:4] = [1, 2, 3, 4]
    other = c.retain(buf.handle)
    print(np.frombuffer(other, dtype=np.uint8)[:4])
    view = memoryview(buf)
    view.release()
    try:
        buf.release()
    except BufferError as e:
        print("BufferError:", e)
    del a
    c.send("frames", [buf], meta=b"pts=0")
    bufs, meta = c.receive("frames", timeout=1.0)
    received: Tuple[List[memd.Buffer], bytes] = (bufs, meta)
    print(received)
    pool: Dict[str, Any] = c.stats()["pools"][0]
    print(pool["name"], pool["used_bytes"], pool["live_buffers"], pool["channels"])
    try:
        c.receive("frames", timeout=0.5)
    except memd.Timeout as e:
        print(type(e).__name__, e.code, e)
    try:
        c.allocate(300 << 20)
    except memd.MemdError as e:
        print(type(e).__name__, e.code, e.status, e)
    with memd.connect("unix:///run/memd/memd.sock", pool="video", name="typed") as d:
        with d.allocate(100) as b:
            print(len(b), b.capacity, b.released, b.exports, d.pool.max_alloc_bytes)
        print(d.refs([1, 2])[0].held, d.session_id, d.connected, d.reconnects, d.address)
        d.flush_releases()


def producer() -> None:
    c = memd.connect(name="producer")
    for pts in range(3):
        buf = c.allocate(1080 * 1920)
        frame = np.frombuffer(buf, dtype=np.uint8).reshape(1080, 1920)
        frame[:] = pts
        del frame
        c.send("frames", [buf], meta=str(pts).encode(), timeout=5.0)
    c.send("frames", meta=b"end")


async def consumer() -> None:
    c: memd.Client = memd.connect(name="consumer")
    while True:
        bufs, meta = await c.receive_async("frames", timeout=10.0)
        if meta == b"end":
            break
        with bufs[0] as buf:
            total = int(np.frombuffer(buf, dtype=np.uint8).sum())
        print(f"pts {meta.decode()}: sum {total}, {bufs[0]!r}")
    print(c.stats()["pools"][0]["used_bytes"], "bytes in use")


def frames_example() -> None:
    c = memd.connect()
    f = frames.allocate(c, "nv12", 1920, 1080, pts=0, flags=frames.KEYFRAME)
    y, uv = f.planes
    y[:] = 16
    uv[:] = 128
    del y, uv
    frames.send(c, "raw", f, timeout=1.0)
    frames.send_end_of_stream(c, "raw")
    g = frames.receive(c, "raw", timeout=1.0)
    print(g, g.planes[0].strides)
    print(frames.receive(c, "raw", timeout=1.0))
    g.release()


if __name__ == "__main__":
    first_example()
    producer()
    asyncio.run(consumer())
    frames_example()
