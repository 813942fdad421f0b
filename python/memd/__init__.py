"""memd for Python: zero-copy buffers in memd's shared-memory pools.

memd is a daemon that owns shared-memory buffer pools. A process allocates a
buffer, fills it in place (numpy, memoryview), and hands its 8-byte handle to
another process, which retains it and sees the same bytes: nothing is copied.
Channels in the daemon carry buffers (by reference) and metadata between
processes. A killed process's references are released by the daemon.

Example::

    import memd, numpy as np
    c = memd.connect()                     # $MEMD_ADDRESS, $MEMD_POOL
    buf = c.allocate(1 << 20, zero=True)   # memd.Buffer
    a = np.frombuffer(buf, dtype=np.uint8) # zero copy: writes land in the pool
    a[:4] = (1, 2, 3, 4)
    other = c.retain(buf.handle)           # in any process: the same bytes
    del a                                  # views first, then the buffer
    c.send("frames", [buf], meta=b"pts=0") # the reference moves into the channel
    bufs, meta = c.receive("frames", timeout=1.0)  # default timeout 0: no wait
    print(c.stats()["pools"][0]["used_bytes"])   # as `memctl stats --json`

Lifetimes: a Buffer's reference goes on ``release()``, ``with`` exit or
garbage collection; ``release()`` (and a moving send) raise BufferError while a
memoryview or numpy array still uses the memory.

Errors are exceptions: MemdError and one subclass per status code
(NotFound, InvalidArgument, ResourceExhausted, DeadlineExceeded, Unavailable,
PermissionDenied, FailedPrecondition, ForkError, ...; see memd.errors).

asyncio: ``await client.receive_async(channel, timeout)``.

Frames: ``import memd.frames`` reads and writes the raw-frame wire format
of the FFmpeg stages and GStreamer elements (memd/raw_frame.h): planes as
strided numpy arrays, pts, end of stream.

fork(): a session belongs to the process that connected. In a child forked
after memd.connect(), the parent's Client and Buffers and memd.connect()
itself raise ForkError (gRPC cannot start again there): start workers with
multiprocessing's "spawn" or "forkserver" method, or fork before connecting.

Defaults: ``send`` and ``receive`` do not wait unless given a timeout (0 s,
as ``Send`` and ``Receive`` of the C++ API); ``timeout=None`` waits for room
or a message.

Documentation: docs/python.md in the memd source tree.
"""

from . import _memd
from . import errors as errors
from ._memd import Buffer as Buffer
from .client import Client as Client, PoolInfo as PoolInfo, RefCount as RefCount
from .client import connect as connect
from .errors import *  # noqa: F401,F403  (the exception classes, errors.__all__)

_memd._set_error_factory(errors._from_status)

#: memd's version: the daemon's, libmemd's and memctl's (one version, memd/version.h).
__version__: str = _memd.__version__

__all__ = ["connect", "Client", "Buffer", "PoolInfo", "RefCount", "errors", "__version__"]
__all__ += errors.__all__
