"""Frames between Python and the GStreamer elements (memdsink, memdsrc) over memd
channels. Runs when the build has the gst plugin (ctest sets GST_PLUGIN_PATH to
build/gst) and gst-launch-1.0 is installed; skipped otherwise."""

import shutil
import subprocess

import numpy as np
import pytest

import memd.frames as frames


def _have_plugin():
    if not shutil.which("gst-inspect-1.0"):
        return False
    return subprocess.run(["gst-inspect-1.0", "memdsink"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _have_plugin(), reason="no memd GStreamer plugin in this build")


def test_memdsink_frames_arrive_in_python(daemon, client):
    gst = subprocess.Popen(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=3", "pattern=white", "!",
         "video/x-raw,format=NV12,width=320,height=240,framerate=30/1", "!",
         "memdsink", "channel=from-gst"], env=daemon.env())
    got = []
    while True:
        f = frames.receive(client, "from-gst", timeout=30)
        if f.end_of_stream:
            break
        y, uv = f.planes
        got.append((f.format, f.width, f.height, f.pts, y.shape, uv.shape, int(y[10, 10])))
        del y, uv
        f.release()
    assert gst.wait(30) == 0
    assert got == [("nv12", 320, 240, pts, (240, 320), (120, 320), 235)
                   for pts in (0, 33_333_333, 66_666_666)]


def test_python_frames_play_through_memdsrc(daemon, client, tmp_path):
    out = tmp_path / "out.yuv"
    gst = subprocess.Popen(
        ["gst-launch-1.0", "-q", "memdsrc", "channel=to-gst", "!", "video/x-raw,format=I420",
         "!", "filesink", f"location={out}"], env=daemon.env())
    for i in range(3):
        f = frames.allocate(client, "i420", 320, 240, pts=i * 40_000_000, duration=40_000_000,
                            flags=frames.KEYFRAME)
        y, u, v = f.planes
        y[:] = 100 + i
        u[:] = 128
        v[:] = 128
        del y, u, v
        frames.send(client, "to-gst", f, timeout=30)
    frames.send_end_of_stream(client, "to-gst", timeout=30)
    assert gst.wait(30) == 0
    data = np.fromfile(out, dtype=np.uint8).reshape(3, -1)
    assert data.shape[1] == 320 * 240 * 3 // 2
    assert list(data[:, 0]) == [100, 101, 102] and (data[:, -1] == 128).all()
