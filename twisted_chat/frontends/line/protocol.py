"""
The line (telnet) front end: bytes to lines and events to bytes, with the
per-connection limits (line length, slow readers) and nothing else.  Events
are rendered by L{render}, telnet options negotiated by L{telnet}, output
sent directly by L{fastwrite}, slow readers counted by L{SendQueue}.
"""

from __future__ import annotations

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat.domain.events import Error, Event
from twisted_chat.errors import ChatError, LineTooLong, TooManyConnections, WrongProtocol
from twisted_chat.frontends.base import (
    AdmittingFactory,
    IConnectionTransport,
    SendQueue,
    describe_peer,
    open_connection,
)
from twisted_chat.frontends.line.fastwrite import TurnFlusher, can_send_directly, send_now
from twisted_chat.frontends.line.render import GREETING, Telnet, wire
from twisted_chat.frontends.line.telnet import HIDDEN_PROMPTS, TelnetOptions
from twisted_chat.frontends.line.telnet import OFFERS as OFFERS  # tests and tools use it
from twisted_chat.session.dialogue import LineDialogue
from twisted_chat.session.session import ChatSession, SessionContext
from twisted_chat.text import TelnetFilter


def _error(error: ChatError) -> Error:
    """The event for C{error}, with its code."""
    return Error(str(error), error.code)


def _ignore(data: bytes) -> None:
    """Drop input (a connection being closed for speaking the wrong protocol)."""


class ChatLineProtocol(LineReceiver):
    """
    One telnet-style connection.  It splits lines itself (LineReceiver's
    splitter drops everything after an over-long line) and hands them,
    decoded, to its L{LineDialogue} (the login prompts), which hands them to
    a L{ChatSession} once logged in; it is the session's participant.
    """

    delimiter = b"\n"
    log = Logger()
    transport: IConnectionTransport
    factory: ChatLineFactory
    session: ChatSession
    dialogue: LineDialogue | None  # None once logged in
    _telnet: TelnetFilter | None = None  # from the first 0xFF byte on
    _options: TelnetOptions | None = None  # once the client negotiated
    _prompt: str | None = None  # the last prompt sent, during login
    _started = False  # whether any data arrived
    _discarding = False
    send_queue: SendQueue  # slow-reader accounting; our producer on the transport
    _flusher: TurnFlusher | None = None  # the factory's, when output is sent directly
    _pending: list[bytes] | None = None  # this turn's output, when _flusher is set
    host = ""  # the client's address, set by the factory

    @override
    def connectionMade(self) -> None:
        transport = self.transport
        self.send_queue = open_connection(transport, self.factory.sendq,
                                          self.factory.sockets_preset)
        if can_send_directly(transport):
            self._flusher = flusher = self.factory.flusher  # None when direct_send is off
            if flusher is not None:
                # The greeting waits a turn: a client that sends its login at
                # once (a script, a reconnect storm) gets it with the answer.
                self._pending = []
                flusher.mark_next(self)
        self.session = ChatSession(self.factory.context, self)
        # The dialogue tells us its prompts (telnet hides input at some), so
        # send() itself, chat's fan-out path, never looks at an event's kind.
        self.dialogue = LineDialogue(self.session, self, self.factory.context.listening,
                                     self._prompted)
        self.send(GREETING)
        self.dialogue.start()

    @override
    def dataReceived(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            if data[:1] == b"\x16" and data[1:2] in (b"", b"\x03"):
                self._tls_hello()
                return
        # Telnet handling costs nothing until the client sends a 0xFF byte.
        if self._telnet is not None or b"\xff" in data:
            data = self._from_telnet(data)
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        held = self.paused  # a local: else mypy thinks no line handled below can pause us
        if held:
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
        dialogue = self.dialogue
        line_received = self.session.text if dialogue is None else dialogue.line_received
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
        if dialogue is not None and dialogue.done:
            self.dialogue = None  # logged in: an idle connection keeps no dialogue
        if start:
            data = data[start:]
        # a line may end in "\r" that is not counted, so allow one more byte
        if len(data) > limit + 1:
            self._too_long()
            self._discarding = True
            data = b""
        self._buffer = data

    def _from_telnet(self, data: bytes) -> bytes:
        """Take telnet commands out of C{data}, answering them."""
        telnet = self._telnet
        if telnet is None:
            telnet = self._telnet = TelnetFilter()
            if self._buffer:  # what came before the first 0xFF: its line ends too
                self._buffer = telnet.feed(self._buffer)
        data = telnet.feed(data)
        if telnet.commands:
            options = self._options
            first = b""
            if options is None:  # it speaks telnet: hide a pending passcode now
                options = self._options = TelnetOptions()
                if self._prompt in HIDDEN_PROMPTS:
                    first = options.hide(True)
            received = options.received
            answers = b"".join([received(verb, option) for verb, option in telnet.commands])
            telnet.commands.clear()
            self._write_telnet(answers + first)
        if b"\n" in data:
            self._prompt = None  # answered
            if self._options is not None and self._options.hidden:
                self._write_telnet(self._options.hide(False))
        return data

    def _write_telnet(self, commands: bytes) -> None:
        if commands:
            ChatLineProtocol.send(self, Telnet(commands))

    def _prompted(self, field: str | None) -> None:
        """The dialogue is about to prompt for C{field} (C{None}: logged in)."""
        self._prompt = field
        if field is not None and self._options is not None:
            self._write_telnet(self._options.hide(field in HIDDEN_PROMPTS))

    def _tls_hello(self) -> None:
        """A TLS client at a plain port: say so in plain text, without a login attempt."""
        self.log.info("{peer} started TLS on a plain-text port", peer=self.describe_peer())
        self.__dict__["dataReceived"] = _ignore
        self.send(_error(WrongProtocol("this is a plain-text port; connect without TLS, or to "
                                       "the server's TLS port")))
        self.session.close()

    def _too_long(self) -> None:
        self.send(_error(LineTooLong("line too long (max %d bytes)" % self.factory.max_line)))

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.limits.release(self.host)
        self.factory.context.server.observer.connection_closed("line")
        self.__dict__.pop("dataReceived", None)
        session = self.__dict__.get("session")
        if session is not None:
            session.connection_lost()

    # -- the session's participant -------------------------------------------

    def send(self, event: Event) -> None:
        """Write C{event}; disconnect a client whose backlog passes the sendq."""
        data = event._line or wire(event)  # a room event's memo: no call per recipient
        pending = self._pending
        if pending is not None:
            pending.append(data)
        elif self.send_queue.stalled:
            self._send_stalled(data)
        elif self._flusher is not None:
            self._pending = [data]
            self._flusher.mark(self)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Send this turn's output: directly if Twisted holds nothing unsent."""
        pending, self._pending = self._pending, None
        if pending:
            send_now(self.transport, pending[0] if len(pending) == 1 else b"".join(pending))

    def _send_stalled(self, data: bytes) -> None:
        """Write C{data} to a client that stopped reading, within the sendq."""
        if self.send_queue.add(len(data), self._overflowed):
            self.transport.write(data)

    def _overflowed(self, queued: int) -> None:
        """The client's backlog passed the sendq: drop it without waiting."""
        self.factory.context.server.observer.send_queue_overflowed("line")
        self.log.warn(
            "{peer} stopped reading ({queued} bytes waiting); disconnecting",
            peer=self.describe_peer(),
            queued=queued,
        )
        self.transport.abortConnection()

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

    @property
    def last_active(self) -> float | None:
        """When the user last sent a line (C{/whois}), if known."""
        return self.session.last_active

    def describe_peer(self) -> str:
        """C{host:port} of the client."""
        return describe_peer(self.transport)


class ChatLineFactory(AdmittingFactory):
    """
    Builds L{ChatLineProtocol}s.  It holds references to what the sessions
    share, not state of its own.
    """

    protocol = ChatLineProtocol
    kind = "line"

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.max_line = context.config.max_line
        self.sendq = context.config.sendq
        self.needs_passcode = context.needs_passcode
        self.limits = context.limits
        # the per-turn direct send (fastwrite), unless configured off
        self.flusher = TurnFlusher(context.clock) if context.config.direct_send else None

    def refusal(self, reason: str) -> bytes:
        return wire(_error(TooManyConnections(reason)))
