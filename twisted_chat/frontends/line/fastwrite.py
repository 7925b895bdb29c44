"""
The per-turn direct send of the line protocol: the one module that reaches
into Twisted's internals to write.

Twisted's C{transport.write} buffers and asks the reactor to watch the
socket for writability, so a write to an idle connection costs two
C{epoll_ctl} calls and a reactor dispatch before the C{send}.  Room fan-out
writes to many idle connections, so instead a connection's output of one
reactor turn is gathered and, at the end of the turn, sent with one
C{socket.send} when Twisted holds nothing unsent for it (L{send_now}).
Anything not sent (a full socket buffer, an error) goes to
C{transport.write}, so ordering, slow-reader back-pressure and error
handling stay Twisted's own.

This reads private fields of C{twisted.internet.tcp.Connection}
(C{dataBuffer}, C{_tempDataLen}); L{can_send_directly} checks they exist, and
C{ChatConfig.direct_send} (env C{TWISTED_CHAT_DIRECT_SEND=0}) turns the
whole path off: every write then goes to C{transport.write}.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import tcp
from twisted.internet.interfaces import IReactorTime

# What a transport must have for a direct send that never overtakes data
# Twisted still holds.
_FIELDS = ("socket", "dataBuffer", "_tempDataLen", "connected", "disconnecting")


class Flushable(Protocol):
    """A connection with output gathered for the end of the turn."""

    def flush(self) -> None:
        """Send the output gathered this turn."""


def can_send_directly(transport: object) -> bool:
    """
    Whether C{transport} is a plain TCP connection whose own buffer we can
    see (so a direct C{send} never overtakes data Twisted still holds).
    TLS, UNIX and test transports are written to through C{write}.
    """
    return isinstance(transport, tcp.Connection) and all(
        hasattr(transport, name) for name in _FIELDS
    )


def send_now(transport: Any, data: bytes) -> None:
    """
    Send C{data} on C{transport} (one for which L{can_send_directly}):
    straight to the socket if Twisted holds nothing unsent, the rest (or
    all of it) through C{transport.write}.
    """
    if (transport.dataBuffer or transport._tempDataLen or not transport.connected
            or transport.disconnecting):
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        transport.write(data)  # Twisted's write path reports the error
        return
    if sent < len(data):
        transport.write(data[sent:])


class TurnFlusher:
    """
    Flushes each marked connection once, at the end of the reactor turn in
    which it was first marked (L{mark}), or at the end of the next turn
    (L{mark_next}: a new connection's greeting, which the answer to a
    pipelining client's login then joins: one C{send} instead of two).
    """

    __slots__ = ("_clock", "_dirty", "_next", "_scheduled")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._dirty: list[Flushable] = []
        self._next: list[Flushable] = []
        self._scheduled = False

    def mark(self, connection: Flushable) -> None:
        """C{connection} has output to flush at the end of this turn."""
        self._dirty.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._clock.callLater(0, self.flush)

    def mark_next(self, connection: Flushable) -> None:
        """C{connection} has output to flush at the end of the next turn."""
        self._next.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Flush every connection marked since the last flush."""
        self._scheduled = False
        dirty = self._dirty
        if self._next:  # they waited a turn: flushed at the end of this one
            self._dirty, self._next = self._next, []
            self._scheduled = True
            self._clock.callLater(0, self.flush)
        else:
            self._dirty = []
        for connection in dirty:
            connection.flush()
