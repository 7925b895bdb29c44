"""
What every front end shares: L{SendQueue}, the slow-reader accounting of one
connection's output; L{IConnectionTransport}, what a front end uses of its
transport; L{open_connection} and L{describe_peer}, what every stream front
end does with it; and L{AdmittingFactory}, the connection limits at accept.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IConsumer, IPushProducer, ITCPTransport
from twisted.internet.protocol import Protocol, ServerFactory
from typing_extensions import override
from zope.interface import Attribute, implementer

if TYPE_CHECKING:
    from twisted_chat.session.session import SessionContext


class IConnectionTransport(ITCPTransport, IConsumer):
    """
    A connection's transport as a front end uses it, for the type checker
    (a front end declares C{transport: IConnectionTransport}).  Twisted's
    TCP and TLS transports have all of this, though no one Twisted
    interface says so; a UNIX socket or a test transport lacks the TCP
    options, so their callers catch C{AttributeError}.
    """

    disconnecting = Attribute("Whether the connection is being closed.")


@implementer(IPushProducer)
class SendQueue:
    """
    The producer a front end registers (streaming) on its transport, and the
    account of what the connection owes a client that stopped reading.

    The transport pauses it when its send buffer is full: the client stopped
    reading.  From then until it resumes, the front end passes the size of
    each write to L{add}, which counts the bytes (C{queued}) and, past
    C{limit} (C{--sendq}), runs the front end's overflow action once and
    refuses every later write.  While output is stalled the queue also
    pauses C{reader} (the connection's reading), if given, so a client that
    sends but never reads cannot make the server write more than C{limit}
    in answers.  (The overflow action is passed to L{add} rather than kept,
    so the queue holds no reference back to its front end.)

    (A LineReceiver cannot be its own producer: its pauseProducing pauses
    reading.)

    @ivar stalled: whether the transport's buffer is full; the front end
        checks it before each write (an attribute, so no call when not).
    @ivar queued: bytes written since the output stalled; C{-1} once the
        limit was passed (the client is dropped).
    """

    __slots__ = ("stalled", "queued", "limit")
    # The producer of the connection's input, paused while the output is
    # stalled: see ReadingSendQueue (the line front end needs none, and an
    # idle connection's bytes count).
    reader: IPushProducer | None = None

    def __init__(self, limit: int) -> None:
        """
        @param limit: bytes that may be written while stalled.
        """
        self.stalled = False
        self.queued = 0
        self.limit = limit

    def add(self, size: int, overflow: Callable[[int], object]) -> bool:
        """
        Count C{size} bytes written while stalled: C{True} if they may be
        written.  The write that passes the limit calls C{overflow} (with
        the bytes queued; it drops the client and says so in the log) and
        gets C{False}, as does every later one.
        """
        queued = self.queued
        if queued < 0:  # overflowed already
            return False
        queued += size
        if queued > self.limit:
            self.queued = -1
            overflow(queued)
            return False
        self.queued = queued
        return True

    @property
    def overflowed(self) -> bool:
        """Whether the limit was passed (the client is dropped)."""
        return self.queued < 0

    def pauseProducing(self) -> None:
        """The transport's buffer is full."""
        self.stalled = True
        if self.reader is not None:
            self.reader.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport's buffer drained: the count starts again."""
        self.stalled = False
        if self.queued > 0:  # an overflow (-1) stays one
            self.queued = 0
        if self.reader is not None:
            self.reader.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is closing; nothing to do."""


class ReadingSendQueue(SendQueue):
    """A L{SendQueue} that also pauses the connection's reading while stalled."""

    __slots__ = ("reader",)

    def __init__(self, limit: int, reader: IPushProducer | None = None) -> None:
        super().__init__(limit)
        self.reader = reader


class Refusal(Protocol):
    """Tells a connection over the connection limits why (one line), and closes it."""

    transport: IConnectionTransport

    def __init__(self, line: bytes) -> None:
        self._line = line

    @override
    def connectionMade(self) -> None:
        self.transport.write(self._line)
        self.transport.loseConnection()


class AdmittingFactory(ServerFactory[Protocol]):
    """
    A stream front end's factory: each connection first passes the
    connection limits every front end shares (C{--max-clients},
    C{--max-per-ip}); one over them is told why, in the front end's own
    words (L{refusal}), and closed.  An admitted one is counted for the
    metrics under L{kind} and gets its protocol, with C{factory} and
    C{host} set.
    """

    noisy = False  # Listener logs where we listen; no "Starting factory" lines
    kind = ""  # the front end, for the metrics
    # whether the listening socket carries the connection options
    # (L{preset_listener}): accepted sockets inherit them
    sockets_preset = False
    context: SessionContext

    def refusal(self, reason: str) -> bytes:
        """The line telling a refused client C{reason}."""
        raise NotImplementedError

    @override
    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        host = str(getattr(addr, "host", addr))
        refused = self.context.limits.admit(host)
        if refused is not None:
            return Refusal(self.refusal(refused))
        self.context.server.observer.connection_opened(self.kind)
        make = self.protocol
        assert make is not None  # each front end's factory names its protocol
        protocol = make()
        protocol.factory = self
        cast(Any, protocol).host = host
        return protocol


# A peer that vanished (a laptop asleep, a cable pulled) is found within about
# two minutes: keep-alive probes after 60 s of silence, every 10 s, 6 tries;
# and unacknowledged data gives up after 120 s.
DEAD_PEER_OPTIONS = (
    ("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6),
    ("TCP_USER_TIMEOUT", 120_000),
)


def detect_dead_peers(transport: IConnectionTransport) -> None:
    """
    Turn on TCP keep-alive with short timers on C{transport}'s socket; do
    nothing for other transports or where the platform lacks an option.
    """
    try:
        transport.setTcpKeepAlive(True)
    except (AttributeError, OSError):
        return  # not TCP (tests, UNIX sockets)
    sock = getattr(transport, "socket", None)  # a TLS transport passes this on
    if sock is None or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    for name, value in DEAD_PEER_OPTIONS:
        option = getattr(socket, name, None)
        if option is None:
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
        except OSError:
            pass


def preset_listener(port: object) -> bool:
    """
    Give a listening TCP socket (C{port}, a Twisted TCP port) the options
    L{open_connection} sets (no Nagle delay, keep-alive, the dead-peer
    timers), so that every accepted socket has them without six
    C{setsockopt} calls of its own: Linux copies a listener's options to
    the sockets it accepts.  C{False} (nothing set) elsewhere, for a port
    without a TCP socket, or if an option fails.
    """
    sock = getattr(port, "socket", None)
    if not sys.platform.startswith("linux") or sock is None \
            or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in DEAD_PEER_OPTIONS:
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except (OSError, AttributeError):
        return False
    return True


# New connections a listener accepts per reactor turn.  Twisted's own
# number grows by 20 each turn a storm fills it, and each accepted client's
# login costs the next turn a login's work (~0.15 ms): a turn of a thousand
# logins would hold every room's messages back for 150 ms.  The kernel's
# accept queue (tap.LISTEN_BACKLOG) keeps the rest waiting meanwhile.
ACCEPTS_PER_TURN = 64


class _AcceptCap:
    """A Twisted port's C{numberAccepts}, never above L{ACCEPTS_PER_TURN}."""

    def __get__(self, port: Any, owner: Any = None) -> int:
        return min(int(port.__dict__.get("_accepts", ACCEPTS_PER_TURN)), ACCEPTS_PER_TURN)

    def __set__(self, port: Any, value: int) -> None:
        port.__dict__["_accepts"] = value


_capped_classes: dict[type, type] = {}


def cap_accepts(port: object) -> bool:
    """
    Make a Twisted TCP port (one with C{numberAccepts}) accept at most
    L{ACCEPTS_PER_TURN} connections a reactor turn; C{False} for another.
    """
    if "numberAccepts" not in getattr(port, "__dict__", {}):
        return False
    kind = type(port)
    capped = _capped_classes.get(kind)
    if capped is None:
        capped = _capped_classes[kind] = type(
            "Capped" + kind.__name__, (kind,), {"numberAccepts": _AcceptCap()})
    value = port.__dict__.pop("numberAccepts")
    port.__class__ = capped
    cast(Any, port).numberAccepts = value
    return True


class _LazyRepr:
    """
    A Twisted TCP server connection's C{repstr} (its C{repr}), made when
    asked instead of kept: Twisted formats and keeps it for every
    connection (about 80 bytes of an idle one's memory), and only a
    C{repr} of the transport (a debugger, a traceback) reads it.
    """

    def __get__(self, transport: Any, owner: Any = None) -> str:
        if transport is None:
            return "repstr"
        return "<%s #%s on %s>" % (type(transport.protocol).__name__, transport.sessionno,
                                   transport.server._realPortNumber)

    def __set__(self, transport: Any, value: str) -> None:
        """Twisted's C{Server.__init__} sets it: nothing kept."""


def _no_descriptor() -> int:
    """A closed connection's C{fileno()}, as Twisted's C{FileDescriptor.fileno}."""
    return -1


class _SocketFileno:
    """
    A Twisted TCP connection's C{fileno}: its socket's, looked up when
    called.  Twisted keeps the socket's bound C{fileno} per connection
    (about 70 bytes of an idle one's memory) and deletes it with the
    socket; after that it is C{-1}, as Twisted's own.  The look-up costs a
    reactor event (not a recipient) a dictionary get.
    """

    def __get__(self, transport: Any, owner: Any = None) -> Callable[[], int]:
        if transport is None:
            return _no_descriptor
        sock = transport.__dict__.get("socket")
        return sock.fileno if sock is not None else _no_descriptor

    def __set__(self, transport: Any, value: object) -> None:
        """Twisted's C{Connection.__init__} sets the socket's: nothing kept."""

    def __delete__(self, transport: Any) -> None:
        """Twisted deletes it with the socket: C{-1} from then on."""


_lean_transports: dict[type, type] = {}


def lean_transports(port: object) -> bool:
    """
    Make a Twisted TCP port (one whose C{transport} is a C{tcp.Server}
    class) build connections that keep no C{repr} string (L{_LazyRepr})
    and no bound C{fileno} (L{_SocketFileno}); C{False} for another port.
    """
    from twisted.internet import tcp

    kind = getattr(port, "transport", None)
    if not (isinstance(kind, type) and issubclass(kind, tcp.Server)):
        return False
    if kind in _lean_transports.values():  # made lean already
        return True
    lean = _lean_transports.get(kind)
    if lean is None:
        lean = _lean_transports[kind] = type("Lean" + kind.__name__, (kind,),
                                             {"repstr": _LazyRepr(), "fileno": _SocketFileno()})
    cast(Any, port).transport = lean
    return True


def open_connection(transport: IConnectionTransport, sendq: int,
                    preset: bool = False) -> SendQueue:
    """
    Set up a stream front end's new connection: no Nagle delay, dead peers
    found within about two minutes (unless C{preset}: its listener gave it
    those, L{preset_listener}), and a L{SendQueue} of C{sendq} bytes
    registered as the transport's producer (returned).
    """
    if not preset:
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass  # not TCP (tests, UNIX sockets)
        detect_dead_peers(transport)
    queue = SendQueue(sendq)
    transport.registerProducer(queue, True)
    return queue


def describe_peer(transport: IConnectionTransport) -> str:
    """C{host:port} of the client on C{transport}, for the log."""
    client = getattr(transport, "client", None)
    if type(client) is tuple:  # a TCP server connection's (host, port, ...): no address object
        return "%s:%s" % (client[0], client[1])
    peer: IAddress = transport.getPeer()  # a UNIXAddress on a UNIX socket
    if isinstance(peer, IPv4Address | IPv6Address):
        return "%s:%s" % (peer.host, peer.port)
    return str(peer)
