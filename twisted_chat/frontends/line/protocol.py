"""
The line (telnet) front end: bytes to lines and events to bytes, with the
per-connection limits (line length, slow readers) and nothing else.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat.domain.events import Error, Event
from twisted_chat.limits import SendQueueWatch
from twisted_chat.session.session import ChatSession, SessionContext
from twisted_chat.text import TelnetFilter

class _Greeting(Event):
    """The first line a line-protocol client sees, encoded once."""

    __slots__ = ()
    wire = b"Welcome to twisted-chat.\r\n"

    def lines(self) -> list[str]:
        return ["Welcome to twisted-chat."]

    def to_json(self) -> dict[str, str]:
        return {"type": "info", "text": "Welcome to twisted-chat."}


GREETING = _Greeting()


class TurnFlusher:
    """
    Writes each plain-TCP connection's output once per reactor turn.

    Twisted's C{transport.write} buffers and asks the reactor to watch the
    socket for writability, so a write to an idle connection costs two
    C{epoll_ctl} calls and a reactor dispatch before the C{send}.  Room
    fan-out writes to many idle connections, so instead a connection's
    events of one turn are gathered and, at the end of the turn, sent with
    one C{send} when Twisted holds nothing unsent for it.  Anything not sent
    (a full socket buffer, an error) goes to C{transport.write}, so ordering,
    slow-reader back-pressure and error handling stay Twisted's own.
    """

    __slots__ = ("_clock", "_dirty", "_scheduled")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._dirty: list[ChatLineProtocol] = []
        self._scheduled = False

    def mark(self, protocol: ChatLineProtocol) -> None:
        """C{protocol} has output to flush at the end of this turn."""
        self._dirty.append(protocol)
        if not self._scheduled:
            self._scheduled = True
            self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Flush every connection marked since the last flush."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for protocol in dirty:
            protocol.flush()


def _can_send_directly(transport: object) -> bool:
    """
    Whether C{transport} is a plain TCP connection whose own buffer we can
    see (so a direct C{send} never overtakes data Twisted still holds).
    """
    return isinstance(transport, tcp.Connection) and all(
        hasattr(transport, name)
        for name in ("socket", "dataBuffer", "_tempDataLen", "connected", "disconnecting")
    )


class _Refusal(Protocol):
    """Tells a connection over the limits why, and closes it."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    @override
    def connectionMade(self) -> None:
        self.transport.write(Error(self._reason).wire)
        self.transport.loseConnection()


class ChatLineProtocol(LineReceiver):
    """
    One telnet-style connection.  It splits lines itself (LineReceiver's
    splitter drops everything after an over-long line) and hands them,
    decoded, to a L{ChatSession}; it is the session's participant.
    """

    delimiter = b"\n"
    log = Logger()
    factory: ChatLineFactory
    session: ChatSession
    _telnet: TelnetFilter | None = None
    _discarding = False
    stalled = False  # set by our SendQueueWatch while the socket buffer is full
    queued = 0  # bytes sent while stalled
    _aborted = False
    _direct = False  # output goes through the factory's TurnFlusher
    _pending: list[bytes] | None = None  # this turn's output, when _direct
    host = ""  # the client's address, set by the factory

    @override
    def connectionMade(self) -> None:
        transport = self.transport
        for option in ("setTcpNoDelay", "setTcpKeepAlive"):
            try:
                getattr(transport, option)(True)
            except (AttributeError, OSError):
                pass  # not TCP (tests, UNIX sockets)
        transport.registerProducer(SendQueueWatch(self), True)
        if _can_send_directly(transport):
            self._direct = True
        self.session = ChatSession(self.factory.context, self)
        self.send(GREETING)
        self.session.start(self.factory.needs_passcode)

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._telnet is not None or b"\xff" in data:
            if self._telnet is None:
                self._telnet = TelnetFilter()
            data = self._telnet.feed(data)
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if self.paused:
            self._buffer = data
            return
        limit = self.factory.max_line
        start = 0
        if self._discarding:  # the rest of an over-long line
            start = data.find(b"\n") + 1
            if not start:
                return
            self._discarding = False
        find = data.find
        line_received = self.session.line_received
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            stop = end - 1 if end > start and data[end - 1] == 13 else end
            if stop - start > limit:
                self._too_long()
            else:
                line_received(data[start:stop].decode("utf-8", "replace"))
            start = end + 1
            if self.paused:
                self._buffer = data[start:]
                return
        if start:
            data = data[start:]
        # a line may end in "\r" that is not counted, so allow one more byte
        if len(data) > limit + 1:
            self._too_long()
            self._discarding = True
            data = b""
        self._buffer = data

    def _too_long(self) -> None:
        self.send(Error("line too long (max %d bytes)" % self.factory.max_line))

    @override
    def connectionLost(self, reason: Failure) -> None:
        self.factory.limits.release(self.host)
        session = self.__dict__.get("session")
        if session is not None:
            session.connection_lost()

    # -- the session's participant -------------------------------------------

    def send(self, event: Event) -> None:
        """Write C{event}; disconnect a client whose backlog passes the sendq."""
        pending = self._pending
        if pending is not None:
            pending.append(event.wire)
        elif self.stalled:
            self._send_stalled(event.wire)
        elif self._direct:
            self._pending = [event.wire]
            self.factory.flusher.mark(self)
        else:
            self.transport.write(event.wire)

    def flush(self) -> None:
        """Send this turn's output: directly if Twisted holds nothing unsent."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        transport = self.transport
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

    def _send_stalled(self, data: bytes) -> None:
        if self._aborted:
            return
        self.queued += len(data)
        if self.queued > self.factory.sendq:
            self._aborted = True
            self.log.warn(
                "{peer} stopped reading ({queued} bytes waiting); disconnecting",
                peer=self.describe_peer(),
                queued=self.queued,
            )
            self.transport.abortConnection()
            return
        self.transport.write(data)

    def close(self) -> None:
        """Close after what was sent is written."""
        if self._pending:
            self.flush()
        transport = self.transport
        if not transport.disconnecting:
            # TLS transports wait for the producer to go before they shut down.
            transport.unregisterProducer()
            transport.loseConnection()

    def pause_input(self) -> None:
        """Hold further lines (LineReceiver's pauseProducing pauses reading)."""
        self.pauseProducing()

    def resume_input(self) -> None:
        """Hand over held lines again, unless the connection is closing."""
        if not self.transport.disconnecting:
            self.resumeProducing()

    def peer_host(self) -> str:
        """The client's address."""
        return self.host

    def describe_peer(self) -> str:
        """C{host:port} of the client."""
        peer: IAddress = self.transport.getPeer()
        host = getattr(peer, "host", None)
        return "%s:%s" % (host, peer.port) if host is not None else str(peer)


class ChatLineFactory(ServerFactory):
    """
    Builds L{ChatLineProtocol}s.  It holds references to what the sessions
    share, not state of its own.
    """

    protocol = ChatLineProtocol
    noisy = False  # Listener logs where we listen; no "Starting factory" lines

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.max_line = context.config.max_line
        self.sendq = context.config.sendq
        self.needs_passcode = context.needs_passcode
        self.limits = context.limits
        self.flusher = TurnFlusher(context.clock)

    @override
    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        host = str(getattr(addr, "host", addr))
        refusal = self.limits.admit(host)
        if refusal is not None:
            return _Refusal(refusal)
        protocol = ChatLineProtocol()
        protocol.factory = self
        protocol.host = host
        return protocol
