"""Exceptions of the memd package.

Every failure is an exception, never an error code. A refusal by the daemon
(or by libmemd) raises the MemdError subclass for its status code, carrying
the daemon's message (``str(e)``), the code's name (``e.code``, e.g.
``"NOT_FOUND"``) and its number (``e.status``, google.rpc.Code numbering).

Subclasses also derive from the builtin exception that fits, so generic code
works: InvalidArgument is a ValueError, DeadlineExceeded a TimeoutError,
NotFound a LookupError, PermissionDenied a PermissionError, Unavailable a
ConnectionError. Release while a view exists raises the builtin BufferError.
"""

from __future__ import annotations

__all__ = [
    "MemdError", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "Timeout",
    "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "OutOfMemory",
    "FailedPrecondition", "ForkError", "Aborted", "OutOfRange", "Unimplemented", "Internal",
    "Unavailable", "DataLoss", "Unauthenticated",
]


class MemdError(Exception):
    """Base class of every memd error.

    Attributes:
        code: the status code's name, e.g. ``"RESOURCE_EXHAUSTED"``.
        status: its number (google.rpc.Code / absl::StatusCode).
    """

    code: str = "UNKNOWN"
    status: int = 2

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.code


class Cancelled(MemdError):
    """The operation was cancelled (CANCELLED)."""
    code, status = "CANCELLED", 1


class Unknown(MemdError):
    """An error the daemon did not classify (UNKNOWN)."""
    code, status = "UNKNOWN", 2


class InvalidArgument(MemdError, ValueError):
    """A value out of its limits; the message names both (INVALID_ARGUMENT)."""
    code, status = "INVALID_ARGUMENT", 3


class DeadlineExceeded(MemdError, TimeoutError):
    """A wait ran out: receive found no message in time (DEADLINE_EXCEEDED)."""
    code, status = "DEADLINE_EXCEEDED", 4


class NotFound(MemdError, LookupError):
    """No such pool, or a handle never issued or already freed (NOT_FOUND)."""
    code, status = "NOT_FOUND", 5


class AlreadyExists(MemdError):
    """ALREADY_EXISTS."""
    code, status = "ALREADY_EXISTS", 6


class PermissionDenied(MemdError, PermissionError):
    """The pool's owner, group and mode, or admin rights, refuse this process (PERMISSION_DENIED)."""
    code, status = "PERMISSION_DENIED", 7


class ResourceExhausted(MemdError):
    """Pool full, a quota reached, or a channel still full after the send's timeout
    (RESOURCE_EXHAUSTED). ``OutOfMemory`` is the same class."""
    code, status = "RESOURCE_EXHAUSTED", 8


class FailedPrecondition(MemdError):
    """The session does not hold the handle, or the pool is gone after a daemon
    restart (FAILED_PRECONDITION)."""
    code, status = "FAILED_PRECONDITION", 9


class ForkError(FailedPrecondition):
    """A fork child used a Client (or a Buffer of one) its parent connected,
    or called memd.connect() after its parent had connected.

    A session belongs to the process that connected, and gRPC (memd's
    transport) cannot start again in a child forked after it ran. Start worker
    processes with multiprocessing's "spawn" or "forkserver" method (or fork
    before the first memd.connect()) and connect in them. The parent's session
    is not touched."""


class Aborted(MemdError):
    """ABORTED."""
    code, status = "ABORTED", 10


class OutOfRange(MemdError):
    """OUT_OF_RANGE."""
    code, status = "OUT_OF_RANGE", 11


class Unimplemented(MemdError):
    """The daemon does not know the operation (UNIMPLEMENTED)."""
    code, status = "UNIMPLEMENTED", 12


class Internal(MemdError):
    """INTERNAL."""
    code, status = "INTERNAL", 13


class Unavailable(MemdError, ConnectionError):
    """The daemon cannot be reached (not running, wrong address, restarting) (UNAVAILABLE)."""
    code, status = "UNAVAILABLE", 14


class DataLoss(MemdError):
    """DATA_LOSS."""
    code, status = "DATA_LOSS", 15


class Unauthenticated(MemdError):
    """UNAUTHENTICATED."""
    code, status = "UNAUTHENTICATED", 16


Timeout = DeadlineExceeded
OutOfMemory = ResourceExhausted

_BY_STATUS = {cls.status: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented,
    Internal, Unavailable, DataLoss, Unauthenticated)}


def _from_status(status: int, message: str, kind: str = "status") -> MemdError:
    """The exception for a status (called by the C++ binding)."""
    cls = ForkError if kind == "fork" else _BY_STATUS.get(status, Unknown)
    error = cls(message)
    if cls is Unknown and status != Unknown.status:
        error.status = status
    return error
