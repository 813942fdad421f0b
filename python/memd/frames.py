"""Raw frames on memd channels, as numpy planes.

The wire format (a 224-byte header plus extensions as the message's
metadata, the planes in the message's buffers) is spoken by the FFmpeg
stages (memd::ffmpeg) and the GStreamer elements (memdsink, memdsrc). Its one
owner is the C++ codec memd/raw_frame.h (docs/wire-format.md); this module
binds it and adds only the numpy view of the planes: plane p of a video frame
is a 2-D array (rows, row bytes / sample size) whose row stride is the
frame's stride; an interleaved audio plane is (samples, channels); a planar
one (samples,).

Example::

    import memd, memd.frames as frames
    c = memd.connect()
    f = frames.allocate(c, "nv12", 1920, 1080, pts=0)   # one pool buffer, 64-byte rows
    f.planes[0][:] = 16                                 # Y
    f.planes[1][:] = 128                                # interleaved UV
    frames.send(c, "raw", f)                            # to a memdsrc or an FFmpeg stage
    g = frames.receive(c, "raw", timeout=1.0)           # from memdsink or an FFmpeg stage
    y = g.planes[0]; g.release()
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _memd
from ._memd import Buffer, RawFrame
from .client import Client
from .errors import InvalidArgument

# A plane: a strided numpy view of pool memory.
Plane = npt.NDArray[Any]

__all__ = ["Frame", "FormatInfo", "FORMATS", "allocate", "send", "send_end_of_stream",
           "receive", "from_message", "is_frame", "KEYFRAME", "END_OF_STREAM", "DISCONT",
           "CORRUPT", "INTERLACED", "TOP_FIELD_FIRST"]

KEYFRAME = _memd.RAW_FLAG_KEYFRAME
END_OF_STREAM = _memd.RAW_FLAG_END_OF_STREAM
DISCONT = _memd.RAW_FLAG_DISCONT
CORRUPT = _memd.RAW_FLAG_CORRUPT
INTERLACED = _memd.RAW_FLAG_INTERLACED
TOP_FIELD_FIRST = _memd.RAW_FLAG_TOP_FIELD_FIRST
_NO_TIMESTAMP = _memd.RAW_NO_TIMESTAMP


class FormatInfo(NamedTuple):
    """A memd format (memd::RawFormatInfo): number on the wire, name, geometry."""
    number: int
    name: str
    audio: bool
    planar_audio: bool
    plane_count: int               # video planes; interleaved audio 1; planar audio 0 (= channels)
    planes: Tuple[Tuple[int, int, int], ...]  # (unit_bytes, h_shift, v_shift) per plane


#: Every memd format by name ("nv12", "i420", "rgba", "s16", "f32p", ...).
FORMATS: Dict[str, FormatInfo] = {
    d["name"]: FormatInfo(d["number"], d["name"], d["audio"], d["planar_audio"],
                          d["plane_count"], tuple(d["planes"]))
    for d in _memd.raw_formats()}
_BY_NUMBER = {f.number: f for f in FORMATS.values()}

# The numpy column of the format table (as frame_wire.cc holds FFmpeg's and
# memd_format.cc GStreamer's): the sample type of each format's planes; the
# others are bytes (uint8). All samples are little-endian on the wire.
_SAMPLE_DTYPE = {
    "p010": "<u2", "gray16": "<u2", "i420p10": "<u2",
    "s16": "<i2", "s16p": "<i2", "s32": "<i4", "s32p": "<i4",
    "f32": "<f4", "f32p": "<f4", "f64": "<f8", "f64p": "<f8", "u8": "u1",
}


def _format(name_or_number: Union[str, int]) -> FormatInfo:
    info = FORMATS.get(name_or_number) if isinstance(name_or_number, str) else _BY_NUMBER.get(name_or_number)
    if info is None:
        raise InvalidArgument(f"raw frame format {name_or_number!r} is not a memd format; "
                              f"known: {', '.join(FORMATS)}")
    return info


class Frame:
    """A raw frame: its description (``raw``), its Buffers and numpy planes.

    ``planes`` are views into the Buffers (zero copy). The Frame owns its
    Buffers: ``release()`` (or leaving a ``with`` block) drops the planes and
    releases them; a moving ``send`` drops the planes first.
    """

    def __init__(self, raw: RawFrame, buffers: Sequence[Buffer]):
        self.raw = raw
        self.buffers: List[Buffer] = list(buffers)
        self._planes: Optional[List[Plane]] = None

    # --- description ---------------------------------------------------------
    @property
    def format(self) -> Optional[str]:
        """memd format name ("nv12", "s16", ...); None for an end-of-stream marker."""
        info = _BY_NUMBER.get(self.raw.format)
        return info.name if info else None

    width = property(lambda self: self.raw.width, doc="Video: pixels.")
    height = property(lambda self: self.raw.height, doc="Video: pixels.")
    samples = property(lambda self: self.raw.samples, doc="Audio: samples per channel.")
    channels = property(lambda self: self.raw.channels, doc="Audio: channels.")
    sample_rate = property(lambda self: self.raw.sample_rate_hz, doc="Audio: Hz.")
    flags = property(lambda self: self.raw.flags, doc="KEYFRAME | DISCONT | ... bits.")

    @property
    def pts(self) -> Optional[int]:
        """Presentation time in nanoseconds; None when there is none."""
        return None if self.raw.pts_ns == _NO_TIMESTAMP else self.raw.pts_ns

    @pts.setter
    def pts(self, value: Optional[int]) -> None:
        self.raw.pts_ns = _NO_TIMESTAMP if value is None else int(value)

    @property
    def duration(self) -> Optional[int]:
        """Duration in nanoseconds; None when unknown."""
        return None if self.raw.duration_ns == _NO_TIMESTAMP else self.raw.duration_ns

    @duration.setter
    def duration(self, value: Optional[int]) -> None:
        self.raw.duration_ns = _NO_TIMESTAMP if value is None else int(value)

    @property
    def end_of_stream(self) -> bool:
        return bool(self.raw.flags & END_OF_STREAM)

    @property
    def keyframe(self) -> bool:
        return bool(self.raw.flags & KEYFRAME)

    # --- planes --------------------------------------------------------------
    @property
    def planes(self) -> List[Plane]:
        """The planes as numpy arrays over the pool memory (made on first use)."""
        if self._planes is None:
            self._planes = [self._plane(p) for p in range(len(self.raw.planes))]
        return self._planes

    def _plane(self, p: int) -> Plane:
        info = _BY_NUMBER[self.raw.format]
        index, stride, offset = self.raw.planes[p]
        dtype = np.dtype(_SAMPLE_DTYPE.get(info.name, "u1"))
        # np.ndarray(buffer=obj) lets go of obj's export at once (it keeps
        # only the object), so the plane is made over np.frombuffer's array,
        # which holds a memoryview of the Buffer: the Buffer counts the export.
        memory = np.frombuffer(self.buffers[index], dtype=np.uint8)
        if not info.audio:
            rows = _memd.raw_plane_rows(info.number, p, self.raw.height)
            row_bytes = _memd.raw_plane_row_bytes(info.number, p, self.raw.width)
            return np.ndarray((rows, row_bytes // dtype.itemsize), dtype, memory, offset,
                              (stride, dtype.itemsize))
        if info.planar_audio:
            return np.ndarray((self.raw.samples,), dtype, memory, offset)
        channels = self.raw.channels
        return np.ndarray((self.raw.samples, channels), dtype, memory, offset,
                          (channels * dtype.itemsize, dtype.itemsize))

    def drop_planes(self) -> None:
        """Forgets the plane arrays (others' references to them stay valid)."""
        self._planes = None

    def release(self) -> None:
        """Drops the planes and releases the Buffers (BufferError while other
        views of them exist)."""
        self.drop_planes()
        for b in self.buffers:
            b.release()

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        if self.end_of_stream:
            return "<memd.frames.Frame end of stream>"
        if _BY_NUMBER[self.raw.format].audio:
            what = f"{self.samples} samples x {self.channels} ch @ {self.sample_rate} Hz"
        else:
            what = f"{self.width}x{self.height}"
        return f"<memd.frames.Frame {self.format} {what} pts={self.pts} planes={len(self.raw.planes)}>"


def allocate(client: Client, format: Union[str, int], width: int = 0, height: int = 0, *, samples: int = 0,
             channels: int = 0, sample_rate: int = 0, pts: Optional[int] = None,
             duration: Optional[int] = None, flags: int = 0, stride_align: int = 64,
             zero: bool = False) -> Frame:
    """A new frame in one pool buffer, planes packed with rows aligned to
    ``stride_align`` bytes (memd::LayoutRawFrame). Video: width and height;
    audio: samples (per channel), channels and sample_rate."""
    info = _format(format)
    raw = RawFrame()
    raw.format = info.number
    raw.width, raw.height = width, height
    raw.samples, raw.channels, raw.sample_rate_hz = samples, channels, sample_rate
    raw.flags = flags
    raw.pts_ns = _NO_TIMESTAMP if pts is None else pts
    raw.duration_ns = _NO_TIMESTAMP if duration is None else duration
    total = _memd.layout_raw_frame(raw, stride_align)
    _memd.encode_raw_frame(raw)  # every limit checked before the pool is asked
    raw.buffer_count = 1
    return Frame(raw, [client.allocate(total, zero=zero)])


def send(client: Client, channel: str, frame: Frame, *, timeout: Optional[float] = 0.0,
         share: bool = False, capacity: int = 0) -> None:
    """Sends the frame: its description as metadata, its Buffers by reference.
    Moves the Buffers (the frame's planes are dropped first; BufferError if
    other views remain) unless ``share=True``."""
    frame.raw.buffer_count = len(frame.buffers)
    metadata = _memd.encode_raw_frame(frame.raw)
    if not share:
        frame.drop_planes()
    client.send(channel, frame.buffers, metadata, timeout=timeout, share=share, capacity=capacity)


def send_end_of_stream(client: Client, channel: str, *, timeout: Optional[float] = 0.0,
                       capacity: int = 0) -> None:
    """Sends the end-of-stream marker (no buffers)."""
    raw = RawFrame()
    raw.flags = END_OF_STREAM
    client.send(channel, (), _memd.encode_raw_frame(raw), timeout=timeout, capacity=capacity)


def is_frame(meta: bytes) -> bool:
    """Whether a message's metadata starts like a raw frame (channels of mixed kinds)."""
    return _memd.is_raw_frame(meta)


def from_message(buffers: Sequence[Buffer], meta: bytes) -> Frame:
    """The Frame of a received message; InvalidArgument (naming the field, its
    value and the limit) when the metadata is not a valid raw frame for these
    buffers. The Frame owns the Buffers."""
    raw = _memd.decode_raw_frame(meta, [b.size for b in buffers])
    return Frame(raw, buffers)


def receive(client: Client, channel: str, timeout: Optional[float] = 0.0, *, capacity: int = 0) -> Frame:
    """Receives one frame (Client.receive + from_message; the same timeout: 0
    by default, None to wait for one). A message that is not a valid raw frame
    raises InvalidArgument; its Buffers are released."""
    buffers, meta = client.receive(channel, timeout, capacity=capacity)
    try:
        return from_message(buffers, meta)
    except Exception:
        for b in buffers:
            b.release()
        raise
