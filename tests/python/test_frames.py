"""Raw frames (memd.frames over the memd/raw_frame.h codec): numpy planes across processes."""

import struct

import numpy as np
import pytest

import memd
import memd.frames as frames
from conftest import python_child


def test_an_nv12_frame_written_by_another_process_arrives_as_strided_planes(daemon, client):
    producer = python_child(daemon, """
        import memd, memd.frames as frames, numpy as np
        c = memd.connect()
        f = frames.allocate(c, "nv12", 1920, 1080, pts=40_000_000, duration=40_000_000,
                            flags=frames.KEYFRAME, stride_align=256)
        y, uv = f.planes
        y[:] = (np.arange(1080, dtype=np.uint32) % 256).astype(np.uint8)[:, None]
        uv[:] = 128
        del y, uv
        frames.send(c, "raw", f, timeout=5)
        frames.send_end_of_stream(c, "raw", timeout=5)
        print("sent", flush=True)
        input()
    """)
    f = frames.receive(client, "raw", timeout=10)
    assert (f.format, f.width, f.height, f.pts, f.duration) == ("nv12", 1920, 1080, 40_000_000, 40_000_000)
    assert f.keyframe and not f.end_of_stream
    y, uv = f.planes
    assert y.shape == (1080, 1920) and uv.shape == (540, 1920)
    assert y.strides == (2048, 1) and uv.strides == (2048, 1)  # rows aligned to 256 bytes
    assert (y[:, 7] == np.arange(1080) % 256).all() and (uv == 128).all()
    assert f.buffers[0].exports == 2
    eos = frames.receive(client, "raw", timeout=10)
    assert eos.end_of_stream and eos.format is None and eos.planes == []
    producer.communicate("done\n", timeout=10)
    del y, uv
    f.release()
    assert daemon.used_bytes() == 0


@pytest.mark.parametrize("fmt, shape, dtype", [
    ("f32", [(1024, 2)], np.float32),
    ("s16p", [(1024,), (1024,)], np.int16),
])
def test_audio_planes_have_the_sample_type(client, fmt, shape, dtype):
    f = frames.allocate(client, fmt, samples=1024, channels=2, sample_rate=48000, pts=0)
    for p in f.planes:
        p[...] = 3
    del p  # the loop's name still views the last plane
    frames.send(client, "audio", f)
    g = frames.receive(client, "audio", timeout=5)
    assert [p.shape for p in g.planes] == shape and all(p.dtype == dtype for p in g.planes)
    assert all((p == 3).all() for p in g.planes)
    assert (g.samples, g.channels, g.sample_rate) == (1024, 2, 48000)
    g.release()


def test_the_metadata_is_the_documented_wire_header(client):
    f = frames.allocate(client, "i420", 64, 48, pts=7)
    frames.send(client, "wire", f, share=True)
    buffers, meta = client.receive("wire", timeout=5)
    # docs/wire-format.md: magic "MMRF", version 1, 224-byte header, format 2 (i420), 3 planes.
    assert meta[:4] == b"MMRF"
    magic, version, header_bytes, fmt, plane_count = struct.unpack_from("<IHHHH", meta)
    assert (version, header_bytes, fmt, plane_count) == (1, 224, 2, 3) and len(meta) == 224
    assert frames.is_frame(meta) and not frames.is_frame(b"plain metadata")
    g = frames.from_message(buffers, meta)
    assert g.raw.planes == f.raw.planes and g.pts == 7
    g.release()
    f.release()


def test_a_moving_send_with_a_plane_still_referenced_raises_buffer_error(client):
    f = frames.allocate(client, "gray8", 32, 32)
    y = f.planes[0]
    with pytest.raises(BufferError):
        frames.send(client, "busy", f)
    del y
    frames.send(client, "busy", f)
    assert f.buffers[0].released


def test_bad_frames_name_the_value_and_free_what_came(daemon, client):
    with pytest.raises(memd.InvalidArgument, match="'yuv9' is not a memd format"):
        frames.allocate(client, "yuv9", 16, 16)
    with pytest.raises(memd.InvalidArgument, match="width and height"):
        frames.allocate(client, "nv12", 0, 16)
    with pytest.raises(memd.InvalidArgument, match="width"):
        frames.allocate(client, "nv12", 40000, 16)
    buf = client.allocate(100)
    client.send("junk", [buf], meta=b"not a frame")
    with pytest.raises(memd.InvalidArgument):
        frames.receive(client, "junk", timeout=5)
    # A plane that does not fit its buffer is refused by the decoder, naming it.
    f = frames.allocate(client, "gray8", 16, 16)
    f.raw.planes = [(0, 16, 1 << 20)]
    frames.send(client, "junk", f)
    with pytest.raises(memd.InvalidArgument, match="offset_bytes"):
        frames.receive(client, "junk", timeout=5)
    client.flush_releases()
    assert daemon.used_bytes() == 0
