"""
The browser front end: the page at C{/} (package data in C{static/}), and a
JSON WebSocket at C{/ws} whose connections drive a L{ChatSession} exactly as
telnet connections do, so browser and telnet users share rooms, commands,
limits and history.  docs/PROTOCOL.md documents the JSON messages.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any, cast
from urllib.parse import urlsplit

from twisted.internet.interfaces import IAddress, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import _websocket_impl as _ws  # the wire layer; Twisted pinned in setup.cfg
from twisted.web import http
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol, datetimeToLogString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.websocket import WebSocketResource, WebSocketTransport
from typing_extensions import override
from wsproto import ConnectionType
from wsproto.events import AcceptConnection, Message, Ping, Pong
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from twisted_chat.commands import Command
from twisted_chat.domain.events import Error, Event, Prompt
from twisted_chat.domain.server import Member
from twisted_chat.errors import ChatError, Flooding, LineTooLong, NotLoggedIn
from twisted_chat.frontends.base import IConnectionTransport, ReadingSendQueue
from twisted_chat.frontends.web.render import Ack, json_text, to_json
from twisted_chat.limits import Deadlines
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.session.session import ChatSession, SessionContext

# Seconds between the shared pings; a connection that has not answered the
# previous ping by the next one is dropped (so within two intervals).
PING_INTERVAL = 30.0

# Lines a paused session may have waiting before more are refused.
MAX_HELD = 100

# Control frames (ping, pong) a socket may send: a second, and saved up.
# Browsers only answer our pings; past this the socket is closed.
CONTROL_RATE = 2.0
CONTROL_BURST = 20

# Seconds from accepting an HTTP connection (or finishing a response on it)
# until the next request's headers must be complete.
HEADER_TIMEOUT = 10.0

# Access-log lines written a minute; the rest are summed up once a minute.
ACCESS_LOG_LINES = 20
ACCESS_LOG_WINDOW = 60.0
ACCESS_LOG_HOSTS = 10_000  # distinct addresses counted in one summary

# The largest client id of a line: JavaScript's largest exact integer.
MAX_LINE_ID = 2**53 - 1

# The page and its assets: name -> content type.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class BadMessage(ChatError):
    """A WebSocket message that is not one the protocol knows."""

    code = "bad_message"


def _error(error: ChatError) -> Error:
    """The event for C{error}, with its code."""
    return Error(str(error), error.code)


def frame_size(text: str) -> int:
    """
    The bytes of the WebSocket frame that carries C{text} from the server
    (unmasked): its UTF-8 length and the header.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


def frame_limit(max_line: int) -> int:
    """
    The longest frame read at all: room for a C{max_line}-byte line, escaped
    by JSON, plus its envelope.  Longer frames are refused unparsed.
    """
    return 2 * max_line + 256


_SURROGATE = re.compile("[\ud800-\udfff]")


def _as_text(value: str) -> str:
    """
    C{value} with each lone surrogate (JSON allows C{"\\ud800"}; a pair is
    already one character) made U+FFFD, as telnet's invalid UTF-8 is.
    """
    if value.isascii():
        return value
    return _SURROGATE.sub("\ufffd", value)


def _line(message: dict[str, Any], field: str, max_line: int, required: bool = True) -> str:
    """
    The string C{message[field]}, checked like a telnet line.

    @raise BadMessage: if it is missing, not a string, has a line break, or
        is longer than C{max_line} bytes.
    """
    value = message.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadMessage(
            "a %s message needs a %r string field" % (message["type"], field)
        )
    value = _as_text(value)
    if "\n" in value or "\r" in value:
        raise BadMessage("one line at a time: %r may not contain line breaks" % field)
    if len(value.encode("utf-8")) > max_line:
        raise LineTooLong("line too long (max %d bytes)" % max_line)
    return value


def _line_id(message: dict[str, Any]) -> int | None:
    """
    The optional client C{id} of a C{say} or C{command}, or C{None}.

    @raise BadMessage: if it is there but not a whole number from 0 to
        L{MAX_LINE_ID}.
    """
    value = message.get("id")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_LINE_ID:
        raise BadMessage('"id" must be a whole number from 0 to %d' % MAX_LINE_ID)
    return value


def normalize_origin(origin: str) -> str | None:
    """
    C{scheme://host[:port]} in lower case, without a default port, or
    C{None} if C{origin} is not a web origin.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        return None
    if ":" in host:  # IPv6
        host = "[%s]" % host
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return "%s://%s" % (scheme, host)
    return "%s://%s:%d" % (scheme, host, port)


# Connection states.
OPENING, LOGIN, CHAT, CLOSED = range(4)


class ChatWebSocket:
    """
    One browser connection: a C{WebSocketProtocol} for Twisted and the
    L{Frontend} of a L{ChatSession}.

    The page's messages become the session's typed calls: C{login} is
    L{ChatSession.log_in}, C{say} a C{say} L{Command} (literal text, never
    parsed), C{command} a typed line (L{ChatSession.text}).  This front end
    sends the C{prompt} events the page expects itself: the first at open,
    C{username} once the passcode passed, and the refused field again
    after an error (a registered name without a password: the error
    C{password_required}, then the C{password} prompt).  Every event the
    session or the domain sends becomes one JSON text message.  A line sent
    with an C{id} is answered with an L{Ack} carrying it, or, when it was
    refused, with the errors it caused carrying it.
    """

    __slots__ = (
        "_factory", "_peer", "_host", "_transport", "_session", "_state",
        "_paused", "_held", "_ping_pending",
        "send_queue", "_control", "_line_id", "_line_failed",
    )
    log = Logger()

    def __init__(self, factory: ChatWebFactory, peer: str, host: str) -> None:
        """
        @param peer: C{host:port} of the browser, for the log.
        @param host: its address, for the per-address limits.  (Its TCP
            connection was counted by L{ChatSite}; the WebSocket is not
            counted again.)
        """
        self._factory = factory
        self._peer = peer
        self._host = host
        self._control = TokenBucket(factory.context.clock, CONTROL_RATE, CONTROL_BURST)
        self._transport: WebSocketTransport | None = None
        self._session: ChatSession | None = None
        self._state = OPENING
        self._paused = False
        # What came while the session held input:
        # (kind, text or (passcode, name, password), id).
        self._held: list[tuple[str, Any, int | None]] = []
        self._ping_pending = False
        # slow-reader accounting: our producer on the TCP transport (see buildProtocol)
        self.send_queue = ReadingSendQueue(factory.sendq)
        self._line_id: int | None = None  # the id of the line being handled
        self._line_failed = False  # it caused an error

    # -- Twisted's WebSocketProtocol --------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        """The HTTP upgrade began; C{transport} sends our messages."""
        self._transport = transport

    def negotiationFinished(self) -> None:
        """The WebSocket is open: start the session (it sends the first prompt)."""
        if self._state != OPENING:
            return
        self._state = LOGIN
        self._factory.heartbeat.add(self)
        session = self._session = ChatSession(self._factory.context, self)
        if session.start():
            self._write(Prompt("passcode" if session.needs_passcode else "username"))

    def textMessageReceived(self, message: str) -> None:
        """One JSON message from the page."""
        self._ping_pending = False  # any message shows the browser is alive
        if self._state not in (LOGIN, CHAT):
            return
        try:
            self._message_received(message)
        except ChatError as e:
            self._write(_error(e))

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        """Binary frames are not part of the protocol."""
        self._ping_pending = False
        if self._state in (LOGIN, CHAT):
            self._write(_error(BadMessage("binary messages are not accepted; send JSON text")))

    def pongReceived(self, payload: bytes) -> None:
        """The browser answered a ping."""
        self._ping_pending = False

    def connectionLost(self, reason: Failure) -> None:
        """The connection is gone: free the name, tell the room."""
        self._state = CLOSED
        self._factory.heartbeat.discard(self)
        if self._session is not None:
            self._session.connection_lost()

    # -- messages -------------------------------------------------------------

    def _message_received(self, message: str) -> None:
        max_line = self._factory.max_line
        limit = frame_limit(max_line)
        # a character is at least one byte: only a short frame needs encoding
        if len(message) > limit or len(message.encode("utf-8", "surrogatepass")) > limit:
            raise LineTooLong("line too long (max %d bytes)" % max_line)
        try:
            parsed = json.loads(message)
        except (ValueError, RecursionError):
            raise BadMessage("that is not JSON; send one JSON object per message") from None
        if not isinstance(parsed, dict):
            raise BadMessage('send a JSON object, like {"type": "say", "text": "hi"}')
        kind = parsed.get("type")
        if kind == "say" or kind == "command":
            line_id = _line_id(parsed)
            try:
                text = _line(parsed, "text", max_line)
                self._feed(kind, text, line_id)
            except ChatError as e:
                self._write(_error(e), None if line_id is None else {"id": line_id})
        elif kind == "login":
            name = _line(parsed, "name", max_line)
            passcode = _line(parsed, "passcode", max_line, required=False)
            password = _line(parsed, "password", max_line) if "password" in parsed else None
            self._log_in(passcode, name, password or None)
        elif isinstance(kind, str) and len(kind) <= 20 and kind.isprintable():
            raise BadMessage("unknown message type %r (use login, say or command)" % kind)
        else:
            raise BadMessage('a message needs a "type": login, say or command')

    def _feed(self, kind: str, text: str, line_id: int | None) -> None:
        """Hand a C{say} or C{command} to the session, or hold it while input is paused."""
        if self._state != CHAT:
            raise NotLoggedIn('log in first (send {"type": "login", ...})')
        if self._paused:
            self._hold(kind, text, line_id)
            return
        self._hand(kind, text, line_id)

    def _hold(self, kind: str, what: Any, line_id: int | None) -> None:
        if len(self._held) >= MAX_HELD:
            raise Flooding("too many messages at once; this one was dropped")
        self._held.append((kind, what, line_id))

    def _hand(self, kind: str, text: str, line_id: int | None) -> None:
        """
        Give the session C{text}: a C{say} is said literally, a C{command}
        is a typed line.  With an C{id}, say whether it was taken: the
        session refuses a line synchronously, by sending an L{Error} (tagged
        with the id in L{send}) or, for a flood past its once-a-second
        warning, by dropping it (counted in C{dropped}).
        """
        session = cast(ChatSession, self._session)  # set before any message is read
        if line_id is None:
            self._take(session, kind, text)
            return
        dropped = session.dropped
        self._line_id, self._line_failed = line_id, False
        try:
            self._take(session, kind, text)
        finally:
            self._line_id = None
        if self._line_failed:
            return
        if session.dropped != dropped:
            self._write(_error(Flooding("slow down; this line was dropped")), {"id": line_id})
        else:
            self._write(Ack(line_id))

    @staticmethod
    def _take(session: ChatSession, kind: str, text: str) -> None:
        if kind == "say":
            session.command(Command("say", text))
        else:
            session.text(text)

    def _log_in(self, passcode: str, name: str, password: str | None = None) -> None:
        """
        Log in with the page's passcode, name and (for a registered name)
        password (once the passcode passed, only the name and password are
        used).  A login that comes while the last one is being checked
        waits for its answer.
        """
        if self._paused:
            self._hold("login", (passcode, name, password), None)
            return
        session = cast(ChatSession, self._session)
        d = session.log_in(passcode.encode("utf-8", "surrogateescape"), name,
                           authenticated=self._authenticated, password=password)
        d.addCallbacks(self._logged_in, self._refused)

    def _authenticated(self) -> None:
        """The passcode passed: the page hears the name is wanted, as it did."""
        if cast(ChatSession, self._session).needs_passcode:
            self._write(Prompt("username"))

    def _logged_in(self, member: Member) -> None:
        if self._state == LOGIN:
            self._state = CHAT

    def _refused(self, failure: Failure) -> None:
        """The session told the page why; ask again for what was refused."""
        failure.trap(ChatError)
        if self._state != LOGIN or cast(ChatSession, self._session).closed:
            return
        error = cast(ChatError, failure.value)
        field = error.field
        if field == "password":
            # A registered name without a password: the session told nothing;
            # the page hears it as an error with its code, then the prompt.
            self._write(_error(error))
            self._write(Prompt("password"))
        elif field:
            self._write(Prompt("passcode" if field == "passcode" else "username"))

    # -- the session's front end ----------------------------------------------

    def send(self, event: Event) -> None:
        """Send C{event} as one JSON text message; drop a browser that stopped reading."""
        if self._state == LOGIN:
            if event.kind == "welcome":  # the page also learns the longest line it may send
                self._write(event, {"max_line": self._factory.max_line})
                return
        elif self._line_id is not None and event.kind == "error":  # caused by that line
            self._line_failed = True
            self._write(event, {"id": self._line_id})
            return
        self._write(event)

    def _write(self, event: Event, extra: dict[str, Any] | None = None) -> None:
        """
        Send C{event}, with the fields of C{extra} added (an error caused by
        a line sent with an id carries it; the welcome carries C{max_line}).
        """
        if self._state == CLOSED or self._transport is None:
            return
        if extra is None:
            text = event._json or json_text(event)  # a room event's memo: no call per recipient
        else:
            text = json.dumps({**to_json(event), **extra}, ensure_ascii=False)
        queue = self.send_queue
        if queue.stalled and not queue.add(frame_size(text), self._overflowed):
            return
        try:
            self._transport.sendTextMessage(text)
        except LocalProtocolError:  # the browser's close frame came first
            self._state = CLOSED

    def close(self, code: int = 1000) -> None:
        """Close the WebSocket (normally, by default), after what was sent."""
        if self._state == CLOSED or self._transport is None:
            return
        self._state = CLOSED
        try:
            self._transport.loseConnection(code)
        except LocalProtocolError:  # already closing
            pass

    # -- the wire (L{_ChatWire}) ----------------------------------------------

    def too_big(self) -> None:
        """The message being received passed the frame limit: say so, close 1009."""
        self._write(_error(LineTooLong("message too long (max %d bytes); closing"
                                       % frame_limit(self._factory.max_line))))
        self.close(1009)

    def control_frame(self) -> bool:
        """
        A ping or pong arrived: whether it is within the control-frame
        allowance.  Past it the browser is told and the socket closed (1008).
        """
        if self._control.take():
            return True
        if self._state != CLOSED:
            self.log.info("{peer} sent too many pings; closing", peer=self._peer)
            self._write(_error(Flooding("too many pings; closing")))
            self.close(1008)
        return False

    def written(self, size: int) -> bool:
        """
        C{size} bytes (a pong) go out besides our messages: count them while
        the output is stalled.  C{False} when that passed the sendq (dropped).
        """
        queue = self.send_queue
        if (queue.stalled and self._state != CLOSED
                and not queue.add(size, self._overflowed)):
            return False
        return self._state != CLOSED

    def _overflowed(self, queued: int) -> None:
        """The browser's backlog passed the sendq: drop it."""
        self._factory.context.server.observer.send_queue_overflowed("web")
        self.log.warn(
            "{peer} stopped reading ({queued} bytes waiting); disconnecting",
            peer=self._peer, queued=queued,
        )
        self._drop()

    def _drop(self) -> None:
        """Close at once, without waiting for a dead or stalled browser."""
        self._state = CLOSED
        transport = self._transport
        if transport is None:  # never opened: nothing to close
            return
        underlying = getattr(transport, "transport", None)
        abort = getattr(underlying, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            try:
                transport.loseConnection(1001)
            except LocalProtocolError:
                pass

    def pause_input(self) -> None:
        """Hold further lines until L{resume_input}."""
        self._paused = True

    def resume_input(self) -> None:
        """Hand the held messages to the session, in order, until it holds input again."""
        self._paused = False
        while self._held and not self._paused and self._state in (LOGIN, CHAT):
            kind, what, line_id = self._held.pop(0)
            try:
                if kind == "login":
                    self._log_in(*what)
                else:
                    self._hand(kind, what, line_id)
            except ChatError as e:
                self._write(_error(e), None if line_id is None else {"id": line_id})

    def describe_peer(self) -> str:
        """C{host:port} of the browser."""
        return self._peer

    def peer_host(self) -> str:
        """The browser's address, for per-address limits."""
        return self._host

    @property
    def last_active(self) -> float | None:
        """When the user last sent a line (C{/whois}), if known."""
        session = self._session
        return session.last_active if session is not None else None

    # -- liveness -------------------------------------------------------------

    def heartbeat(self) -> None:
        """
        Called by the shared L{Heartbeat}: drop the connection if it never
        answered the last ping, else ping it.
        """
        if self._state == CLOSED or self._transport is None:
            return
        if self._ping_pending:
            self.log.info("{peer} did not answer a ping; dropping it", peer=self._peer)
            self._factory.heartbeat.discard(self)
            self._drop()
            return
        self._ping_pending = True
        if not self.written(6):  # a ping frame with no payload
            return
        try:
            self._transport.ping(b"")
        except LocalProtocolError:
            self._state = CLOSED


class Heartbeat:
    """
    Pings every open browser connection each C{interval} seconds with one
    shared L{LoopingCall} (no timer per connection); a connection that did
    not answer the previous ping is dropped, so no ghost user stays online.
    The call runs only while some connection is open.
    """

    def __init__(self, clock: IReactorTime, interval: float = PING_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._sockets: dict[ChatWebSocket, None] = {}
        self._beat: LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, socket: ChatWebSocket) -> None:
        """Watch C{socket}."""
        self._sockets[socket] = None
        if self._beat is None:
            self._beat = LoopingCall(self._sweep)
            self._beat.clock = self._clock
            self._beat.start(self._interval, now=False)

    def discard(self, socket: ChatWebSocket) -> None:
        """Stop watching C{socket}."""
        self._sockets.pop(socket, None)
        if not self._sockets and self._beat is not None:
            beat, self._beat = self._beat, None
            beat.stop()

    def _sweep(self) -> None:
        for socket in list(self._sockets):
            socket.heartbeat()


class ChatWebFactory:
    """
    Builds L{ChatWebSocket}s for L{WebSocketResource}: Twisted's
    C{WebSocketServerFactory}.  Like L{twisted_chat.frontends.line.protocol.ChatLineFactory}
    it holds what the sessions share, not state of its own.
    """

    def __init__(self, context: SessionContext, heartbeat: Heartbeat | None = None) -> None:
        self.context = context
        self.max_line = context.config.max_line
        self.sendq = context.config.sendq
        self.needs_passcode = context.needs_passcode
        self.limits = context.limits
        self.heartbeat = heartbeat if heartbeat is not None else Heartbeat(context.clock)

    def buildProtocol(self, request: Request) -> ChatWebSocket:
        """
        A protocol for the WebSocket upgrading C{request}.  Its connection
        was counted against the limits when it was accepted (L{ChatSite}).
        """
        peer = request.getClientAddress()
        host = str(getattr(peer, "host", peer))
        socket = ChatWebSocket(self, describe_client(request), host)
        transport = request.channel.transport
        # TCP is a producer of what it reads; under TLS, the TCP connection is
        reader = IPushProducer(transport, None) or IPushProducer(
            getattr(transport, "transport", None), None
        )
        socket.send_queue.reader = reader  # a stalled browser is not read either
        request.registerProducer(socket.send_queue, True)
        return socket


class _ChatWire(_ws._WebSocketWireProtocol[ChatWebSocket]):
    """
    Twisted's WebSocket wire protocol, bounded as wsproto's events arrive
    (before Twisted reassembles a message): a message past
    L{frame_limit} closes the socket (1009); pings and pongs spend the
    socket's control-frame allowance; each pong counts toward C{--sendq}.
    """

    _size = 0  # bytes of the message being received so far
    _limit = 0
    _stopped = False

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._stopped:
            return
        conn = self._wsconn
        socket: ChatWebSocket = self._wsp
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, Message):
                chunk = event.data
                size = self._size + len(chunk)
                if size <= self._limit and isinstance(chunk, str) and not chunk.isascii():
                    size = self._size + len(chunk.encode("utf-8", "surrogatepass"))
                if size > self._limit:
                    self._stop()
                    socket.too_big()
                    return
                self._size = 0 if event.message_finished else size
            elif isinstance(event, (Ping, Pong)):
                if not socket.control_frame():
                    self._stop()
                    return
                if isinstance(event, Ping):
                    pong = conn.send(event.response())
                    if not socket.written(len(pong)):
                        self._stop()
                        return
                    self.transport.write(pong)
                    continue
            _ws._handleEvent(event, self)

    def _stop(self) -> None:
        """Read nothing more: the socket is being closed."""
        self._stopped = True
        self._textBuffer.done()
        self._bytesBuffer.done()


def describe_client(request: Request) -> str:
    """C{host:port} of the client that made C{request}."""
    peer = request.getClientAddress()
    host = getattr(peer, "host", None)
    return "%s:%s" % (host, peer.port) if host is not None else str(peer)


def own_origins(request: Request) -> frozenset[str]:
    """
    The origins of pages served from the address C{request} reached:
    that address and port, and C{localhost}, C{127.0.0.1} and C{[::1]} with
    that port.  Never the C{Host} header, which any DNS name (a rebinding
    one) may carry.
    """
    local = request.getHost()
    port = getattr(local, "port", None)
    if port is None:
        return frozenset()
    scheme = "https" if request.isSecure() else "http"
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    host = getattr(local, "host", None)
    if host:
        hosts.append("[%s]" % host if ":" in host else host)
    return frozenset(
        filter(None, (normalize_origin("%s://%s:%d" % (scheme, h, port)) for h in hosts))
    )


class ChatWebSocketResource(WebSocketResource):
    """
    L{WebSocketResource} that first checks the C{Origin} header: only the
    listening address's own origins (L{own_origins}) and the configured ones
    may open a WebSocket, so no other web site (nor a DNS-rebound name) can
    chat in a visitor's name.  A request without C{Origin} does not come
    from a browser page and is let through.
    """

    log = Logger()
    factory: ChatWebFactory

    def __init__(self, factory: ChatWebFactory, origins: tuple[str, ...] = ()) -> None:
        super().__init__(factory)
        self._origins = frozenset(filter(None, map(normalize_origin, origins)))

    def allowed(self, request: Request) -> bool:
        """Whether C{request}'s C{Origin} may open a WebSocket."""
        origin = request.getHeader(b"origin")
        if origin is None:
            return True
        normal = normalize_origin(origin.decode("latin-1"))
        return normal is not None and (normal in self._origins or normal in own_origins(request))

    @override
    def render_GET(self, request: Request) -> bytes | int:
        if not self.allowed(request):
            self.log.warn(
                "refused a WebSocket from {peer}: origin {origin} is not allowed",
                peer=describe_client(request),
                origin=(request.getHeader(b"origin") or b"").decode("latin-1")[:200],
            )
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this origin may not use the chat WebSocket (see --web-origin)\n"
        return self._upgrade(request)

    def _upgrade(self, request: Request) -> bytes | int:
        """
        Twisted's C{WebSocketResource.render_GET}, with L{_ChatWire} (which
        bounds each message as it arrives) as the wire protocol.
        """
        handshake = H11Handshake(ConnectionType.SERVER)
        raw = request.requestHeaders.getAllRawHeaders()
        try:
            handshake.initiate_upgrade_connection(
                [(key, value) for key, values in raw for value in values], request.path
            )
        except RemoteProtocolError:
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"not a WebSocket handshake\n"
        socket = self.factory.buildProtocol(request)
        accept = handshake.send(AcceptConnection())
        connection = handshake.connection
        assert connection is not None, "set by the accept just sent"
        wire = _ChatWire(connection, _ws.serverBootstrap, socket)
        wire._limit = frame_limit(self.factory.max_line)
        request.channel._protocolUpgradeForWebsockets(wire)
        transport = request.channel.transport
        assert transport is not None, "the request came on it"
        transport.write(accept)
        socket.negotiationFinished()
        return NOT_DONE_YET


class _Asset(Resource):
    """One file of the page, served from memory with the security headers."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: str) -> None:
        super().__init__()
        self._body = body
        self._type = content_type.encode()

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        request.setHeader(b"content-type", self._type)
        request.setHeader(b"cache-control", b"no-cache")
        for name, value in _SECURITY_HEADERS:
            request.setHeader(name, value)
        return self._body


class _NotFound(Resource):
    """A plain 404 (Twisted's own page has inline style)."""

    isLeaf = True

    @override
    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return b"not found\n"


class _Root(Resource):
    """C{/}: the page, its assets and C{/ws}; anything else is a 404."""

    @override
    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NotFound()


class _ChatChannel(HTTPChannel):
    """
    An HTTP connection of L{ChatSite}: its address was counted by the
    connection limits (released when it closes, WebSocket or not), its
    request headers must be complete within L{HEADER_TIMEOUT} seconds, and a
    request with a body is refused (413) before any of the body is read.
    """

    site: ChatSite
    transport: IConnectionTransport
    admitted: str | None = None  # the address counted for it
    _refused = False

    @override
    def connectionMade(self) -> None:
        super().connectionMade()
        self.site.header_deadlines.touch(self)

    @override
    def allHeadersReceived(self) -> None:
        self.site.header_deadlines.discard(self)
        if self.length != 0:  # a Content-Length above 0, or chunked (None)
            self._refuse_body()
            return
        super().allHeadersReceived()

    def _refuse_body(self) -> None:
        self._refused = True
        self.length = None  # so the parser goes to rawDataReceived, which drops it
        body = b"request bodies are not accepted here\n"
        self.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.loseConnection()

    @override
    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)

    @override
    def requestDone(self, request: Request) -> None:
        if self.persistent:  # the next request's headers (maybe pipelined: parsed now)
            self.site.header_deadlines.touch(self)
        super().requestDone(request)

    def headers_expired(self) -> None:
        """The request headers were not complete in time."""
        if self.transport is not None:
            self.transport.abortConnection()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._release()
        super().connectionLost(reason)

    def _release(self) -> None:
        self.site.header_deadlines.discard(self)
        if self.admitted is not None:
            host, self.admitted = self.admitted, None
            self.site.limits.release(host)
            self.site.observer.connection_closed("web")

    def _protocolUpgradeForWebsockets(self, protocol: Any) -> None:
        super()._protocolUpgradeForWebsockets(protocol)
        upgraded = self.connectionLost  # the WebSocket's, set by the upgrade

        def connectionLost(reason: Failure = connectionDone) -> None:
            try:
                upgraded(reason)
            finally:
                self._release()

        self.__dict__["connectionLost"] = connectionLost


class _Refused(Protocol):
    """A connection past the limits: one short 503 response, then closed."""

    transport: IConnectionTransport

    def __init__(self, why: str) -> None:
        self._why = why.encode()

    @override
    def connectionMade(self) -> None:
        body = self._why + b"\n"
        self.transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.loseConnection()

    @override
    def dataReceived(self, data: bytes) -> None:
        pass


class ChatSite(Site):
    """
    The C{--web} site: every accepted connection counts against the
    connection limits shared with telnet (one past them gets a 503 and is
    closed), and the access log is bounded (L{ACCESS_LOG_LINES} lines a
    minute, then one summary line a minute).
    """

    access = Logger()

    def __init__(self, root: Resource, context: SessionContext) -> None:
        super().__init__(root, reactor=context.clock)
        self.limits = context.limits
        self.observer = context.server.observer
        self._clock = context.clock
        self.header_deadlines: Deadlines[_ChatChannel] = Deadlines(
            context.clock, HEADER_TIMEOUT, _ChatChannel.headers_expired
        )
        self._window = float("-inf")
        self._logged = 0
        self._unlogged = 0
        self._unlogged_hosts: set[str] = set()
        self._summary: Any = None

    def protocol(self) -> _GenericHTTPChannelProtocol:
        """Twisted's HTTP/1.1-or-2 wrapper around a L{_ChatChannel}."""
        return _GenericHTTPChannelProtocol(_ChatChannel())

    # HTTPFactory is a Factory of HTTP channels; a refused connection gets a plain Protocol
    @override
    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:  # type: ignore[override]
        host = str(getattr(addr, "host", addr))
        why = self.limits.admit(host)
        if why is not None:
            return _Refused(why)
        wrapper: _GenericHTTPChannelProtocol = super().buildProtocol(addr)
        cast(_ChatChannel, wrapper._channel).admitted = host  # made by protocol() above
        self.observer.connection_opened("web")
        return wrapper

    @override
    def log(self, request: http.Request) -> None:
        now = self._clock.seconds()
        if now - self._window >= ACCESS_LOG_WINDOW:
            self._window, self._logged = now, 0
        if self._logged < ACCESS_LOG_LINES:
            self._logged += 1
            self.access.info("{line}", line=self._logFormatter(self._log_time(now), request))
            return
        self._unlogged += 1
        if len(self._unlogged_hosts) < ACCESS_LOG_HOSTS:
            self._unlogged_hosts.add(str(getattr(request.getClientAddress(), "host", "?")))
        if self._summary is None:
            self._summary = self._clock.callLater(
                self._window + ACCESS_LOG_WINDOW - now, self._summarize
            )

    def _log_time(self, now: float) -> str:
        return self._logDateTime or datetimeToLogString(now)

    def _summarize(self) -> None:
        self._summary = None
        hosts = len(self._unlogged_hosts)
        self.access.info(
            "{count} more requests from {hosts}{plus} addresses in the last minute"
            " (not logged one by one)",
            count=self._unlogged, hosts=hosts, plus="+" if hosts >= ACCESS_LOG_HOSTS else "",
        )
        self._unlogged = 0
        self._unlogged_hosts = set()

    @override
    def stopFactory(self) -> None:
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
            self._summarize()
        self.header_deadlines.clear()
        super().stopFactory()


def build_site(
    context: SessionContext,
    origins: tuple[str, ...] = (),
    heartbeat: Heartbeat | None = None,
) -> ChatSite:
    """
    The web site for C{--web}: the page at C{/} and the WebSocket at C{/ws},
    sharing C{context} (and so the rooms) with the line protocol.
    """
    static = files("twisted_chat.frontends.web") / "static"
    root = _Root()
    for name, content_type in ASSETS.items():
        asset = _Asset((static / name).read_bytes(), content_type)
        root.putChild(name.encode(), asset)
        if name == "index.html":
            root.putChild(b"", asset)
    factory = ChatWebFactory(context, heartbeat)
    root.putChild(b"ws", ChatWebSocketResource(factory, origins))
    site = ChatSite(root, context)
    site.noisy = False  # Listener logs where we listen
    site.displayTracebacks = False
    return site
