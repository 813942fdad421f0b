"""memd.Client: one session with the memd daemon, attached to one pool."""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from . import _memd
from ._memd import Buffer
from .errors import DeadlineExceeded, InvalidArgument

__all__ = ["Client", "connect", "PoolInfo", "RefCount"]

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
# send(timeout=None): the longest wait there is; libmemd caps it (client.cc).
_LONGEST_MS = (1 << 63) - 1
# receive_async waits in steps this long, so a cancelled receive stops soon.
_ASYNC_STEP_S = 0.1

# A received message: its Buffers and its metadata.
_Message = Tuple[List[Buffer], bytes]


class PoolInfo(NamedTuple):
    """What the daemon said about the attached pool."""
    name: str
    shm_name: str          # label of the pool's sealed memfd
    size_bytes: int
    alignment_bytes: int   # every buffer's address is a multiple of this
    max_alloc_bytes: int   # largest single allocation
    index: int  # type: ignore[assignment]  # a field, shadowing tuple.index


class RefCount(NamedTuple):
    """References of one buffer now (Client.refs)."""
    handle: int
    references: int  # all holders together; 0 when the buffer is gone
    held: int        # by this client's session


def _check_int(name: str, value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > limit:
        raise InvalidArgument(f"{name} {value} is out of range: 0..{limit}")
    return value


def _timeout_ms(value: Optional[float], none_ms: int) -> int:
    """Seconds (float) to milliseconds; None gives `none_ms`."""
    if value is None:
        return none_ms
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"timeout {value} s is out of range: a finite number >= 0, or None")
    return min(math.ceil(value * 1000), _LONGEST_MS)


def connect(address: Optional[str] = None, pool: Optional[str] = None,
            name: Optional[str] = None, *, outage_wait: Optional[float] = None,
            lane: bool = True, populate: bool = False, read_only: bool = False) -> "Client":
    """Opens a session with memd and maps the pool (a round trip; GIL released).

    Args:
        address: ``"unix:///path"``; default ``$MEMD_ADDRESS``, else
            ``unix:///run/memd/memd.sock``.
        pool: pool to attach to; default ``$MEMD_POOL``, else ``"default"``.
        name: label ``memctl clients`` shows for this session (<= 64 bytes).
        outage_wait: while the daemon restarts, a call waits up to this many
            seconds for the reconnection, then raises Unavailable. Default
            ``$MEMD_OUTAGE_WAIT_MS`` (milliseconds), else 0.
        lane: use a shared-memory lane for requests when the daemon offers one.
        populate: map all the pool's pages now (no first-touch page faults later).
        read_only: attach as a reader: the pool is mapped read-only (Buffers
            export read-only views; numpy arrays over them cannot be written),
            and allocate raises PermissionDenied. Receive, retain and send of
            what it holds work (docs/security.md, "Readers").

    Raises:
        Unavailable: no daemon at the address. NotFound: no such pool.
        PermissionDenied: the pool is not open to this process's uid/gid.
    """
    wait_ms = -1 if outage_wait is None else _timeout_ms(outage_wait, -1)
    return Client(_memd.Session.connect(address or "", pool or "", name or "", wait_ms,
                                        bool(lane), bool(populate), bool(read_only)))


class Client:
    """One session with the daemon, attached to one pool (made by memd.connect).

    Thread-safe: many threads may call one Client at once (blocking calls
    release the GIL). The session ends when the Client is closed (``close()``,
    ``with`` exit, garbage collection) and no Buffer it made is alive; every
    reference the session still holds is then released, as when the process dies.

    After ``os.fork()`` the child cannot use the parent's Client or its
    Buffers, nor connect (ForkError): start workers with multiprocessing's
    "spawn" or "forkserver" method, or fork before connecting.
    """

    def __init__(self, session: "_memd.Session"):
        self._s = session
        self._stash_lock = threading.Lock()
        # channel -> messages a cancelled receive_async took
        self._stash: Dict[str, List[_Message]] = {}

    # --- buffers -------------------------------------------------------------
    def allocate(self, size: int, zero: bool = False) -> Buffer:
        """A new buffer of ``size`` bytes in the pool (zeroed if ``zero``).

        Raises InvalidArgument above the pool's max_alloc or size,
        ResourceExhausted when it does not fit or a quota is reached.
        """
        return self._s.allocate(_check_int("size", size, _U64), bool(zero))

    def retain(self, handle: int) -> Buffer:
        """A reference of this session to the buffer ``handle`` (from any process).

        Raises NotFound for a handle never issued or already freed.
        """
        return self._s.retain(_check_int("handle", handle, _U64))

    def refs(self, handles: Iterable[int]) -> List[RefCount]:
        """How many references each buffer has now (1..1024 handles, one round trip)."""
        checked = [_check_int("handle", h, _U64) for h in handles]
        return [RefCount(*t) for t in self._s.query_refs(checked)]

    def flush_releases(self) -> None:
        """Sends the releases of garbage-collected Buffers now (otherwise they ride
        on the next request, or go by themselves within 25 ms)."""
        self._s.flush_releases()

    # --- channels ------------------------------------------------------------
    def send(self, channel: str, buffers: Iterable[Buffer] = (), meta: bytes = b"", *,
             timeout: Optional[float] = 0.0, share: bool = False, capacity: int = 0) -> None:
        """Puts a message (buffers by reference, plus metadata bytes) on a channel.

        By default each Buffer's reference *moves* into the channel: the Buffer
        is released here (BufferError if a view of it exists). With
        ``share=True`` the channel gets new references and the Buffers stay
        usable. A full channel is waited on up to ``timeout`` seconds (0, the
        default, as in the C++ API: not at all; None: as long as libmemd
        allows, one hour), then ResourceExhausted. A channel is made by its
        first user with room for ``capacity`` messages (0: 16). At most 64
        buffers and 4096 bytes of metadata (InvalidArgument, nothing sent).
        """
        bufs = list(buffers)
        for b in bufs:
            if not isinstance(b, Buffer):
                raise TypeError(f"send takes memd.Buffer objects, not {type(b).__name__}")
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, not {type(channel).__name__}")
        self._s.send(channel, bufs, bytes(meta), _timeout_ms(timeout, _LONGEST_MS),
                     _check_int("capacity", capacity, _U32), bool(share))

    def receive(self, channel: str, timeout: Optional[float] = 0.0, *,
                capacity: int = 0) -> Tuple[List[Buffer], bytes]:
        """Takes the oldest message of a channel: ``(buffers, meta)``.

        Waits up to ``timeout`` seconds (0, the default, as in the C++ API and
        as ``send``: not at all; None: until one comes), then raises
        DeadlineExceeded (memd.Timeout). The GIL is released while waiting,
        and Ctrl-C interrupts the wait. The Buffers are this session's.
        """
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, not {type(channel).__name__}")
        stashed = self._unstash(channel)
        if stashed is not None:
            return stashed
        message: _Message = self._s.receive(channel, _timeout_ms(timeout, -1),
                                            _check_int("capacity", capacity, _U32))
        return message

    async def receive_async(self, channel: str, timeout: Optional[float] = 0.0, *,
                            capacity: int = 0) -> Tuple[List[Buffer], bytes]:
        """``await client.receive_async(channel, timeout)``: receive for asyncio
        (the same timeout as ``receive``: 0 by default, None to wait for a message).

        The wait runs in a thread of its own, in steps of 0.1 s, so the event
        loop keeps running and a cancelled receive ends its thread within a
        step. A message that a cancelled receive took in its last step is not
        lost: the next receive of this Client on that channel returns it.
        """
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, not {type(channel).__name__}")
        ms = _timeout_ms(timeout, -1)
        cap = _check_int("capacity", capacity, _U32)
        stashed = self._unstash(channel)
        if stashed is not None:
            return stashed
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[_Message]" = loop.create_future()
        cancelled = threading.Event()

        def deliver(outcome: Optional[_Message], error: Optional[BaseException]) -> None:
            if future.done():  # cancelled meanwhile
                if outcome is not None:
                    self._stash_message(channel, outcome)
            elif outcome is not None:
                future.set_result(outcome)
            elif error is not None:
                future.set_exception(error)

        def wait() -> None:
            outcome: Optional[_Message] = None
            error: Optional[BaseException] = None
            try:
                outcome = self._receive_in_steps(channel, ms, cap, cancelled)
            except BaseException as e:  # noqa: B036: handed to the awaiting task
                error = e
            if cancelled.is_set():
                if outcome is not None:
                    self._stash_message(channel, outcome)
                return
            try:
                loop.call_soon_threadsafe(deliver, outcome, error)
            except RuntimeError:  # the loop is closed
                if outcome is not None:
                    self._stash_message(channel, outcome)

        threading.Thread(target=wait, name="memd-receive-async", daemon=True).start()
        try:
            return await future
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _receive_in_steps(self, channel: str, ms: int, capacity: int,
                          cancelled: threading.Event) -> _Message:
        deadline = None if ms < 0 else time.monotonic() + ms / 1000
        while True:
            step = _ASYNC_STEP_S if deadline is None else min(_ASYNC_STEP_S, deadline - time.monotonic())
            try:
                message: _Message = self._s.receive(channel, max(0, math.ceil(step * 1000)),
                                                    capacity)
                return message
            except DeadlineExceeded:
                if cancelled.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    raise

    def _stash_message(self, channel: str, message: _Message) -> None:
        with self._stash_lock:
            self._stash.setdefault(channel, []).append(message)

    def _unstash(self, channel: str) -> Optional[_Message]:
        with self._stash_lock:
            queue = self._stash.get(channel)
            if not queue:
                return None
            message = queue.pop(0)
            if not queue:
                del self._stash[channel]
            return message

    # --- the daemon and the session -----------------------------------------
    def stats(self) -> Dict[str, Any]:
        """The daemon's stats: the same JSON document as ``memctl stats --json``."""
        document: Dict[str, Any] = json.loads(self._s.stats_json())
        return document

    @property
    def pool(self) -> PoolInfo:
        """The attached pool: name, size, alignment, max_alloc."""
        return PoolInfo(**self._s.pool_info())

    @property
    def address(self) -> str:
        """The daemon's address this client uses."""
        return self._s.address

    @property
    def session_id(self) -> int:
        """The current session's id (memctl clients); a reconnection opens a new one."""
        return self._s.session_id

    @property
    def connected(self) -> bool:
        """False while the daemon is away and the client reconnects."""
        return self._s.connected

    @property
    def read_only(self) -> bool:
        """True for a reader (``connect(read_only=True)``, or a pool this uid may only read)."""
        return self._s.read_only

    @property
    def reconnects(self) -> int:
        """How many times the client reconnected (daemon restarts survived)."""
        return self._s.reconnects

    @property
    def closed(self) -> bool:
        return self._s.closed

    def close(self) -> None:
        """Gives up this Client. The session ends (and releases everything it
        holds) once no Buffer of it is alive either. Idempotent."""
        self._s.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<memd.Client closed>"
        if os.getpid() != self._s.creator_pid:
            return f"<memd.Client of process {self._s.creator_pid} (fork parent)>"
        return f"<memd.Client {self.address} pool={self.pool.name!r} session={self.session_id}>"
