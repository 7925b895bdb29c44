"""
The client side of the line protocol: L{ChatClientProtocol}, a
L{LineReceiver} with a small login state machine.  It knows nothing about
terminals; it talks to a L{ChatUI}, which sends what the user does back
through an L{InputSink}.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat.client.config import ClientConfig
from twisted_chat.client.status import Echo, Status, echo_for, is_quit, track
from twisted_chat.text import clean, decode, strip_telnet

QUIT_TIMEOUT = 5.0
"""Seconds to wait for the server to close after C{/quit} before hanging up."""
GREETING_TIMEOUT = 10.0
"""Seconds to wait for the server's first line before giving up."""
PACE = (4.0, 8)
"""
Lines a second, and burst, that the client sends at most: below the server's
default flood limit (5 a second, burst 10), so piped input is not dropped.
"""

_PASSCODE = "passcode"
_NAME = "name"
_PASSWORD = "password"
_PROMPTS = {"Passcode:": _PASSCODE, "Username:": _NAME, "Password:": _PASSWORD}


class ClientError(Exception):
    """
    Why the client stopped unsuccessfully; C{str(error)} is the one line the
    user sees on stderr.
    """


class ChatUI(Protocol):
    """
    What L{ChatClientProtocol} needs from an interface.

    An interface sends what the user does back through an L{InputSink}.
    """

    interactive: bool
    """True when the user can be asked again (a person at a terminal)."""

    def start(self, sink: InputSink) -> None:
        """Start taking input, passing it to C{sink}."""

    def show(self, line: str) -> None:
        """Display one line from the server, already cleaned."""

    def note(self, text: str) -> None:
        """Display something the client itself has to say."""

    def sent(self, echo: Echo) -> None:
        """The user's message went to the room (for a local echo)."""

    def ask(self, prompt: str, secret: bool) -> Deferred[str]:
        """Ask the person for a value; only called when C{interactive}."""

    def update_status(self, status: Status) -> None:
        """The name, room or user count changed."""

    def stop(self) -> Deferred[None]:
        """Give the terminal back (flushing output); safe to call twice."""


class InputSink(Protocol):
    """Where an interface sends what the user did."""

    def line_entered(self, text: str) -> None:
        """The user entered a line."""

    def input_ended(self) -> None:
        """No more input will come (end of file on stdin)."""

    def quit_requested(self) -> None:
        """The user wants to leave (Ctrl-C, Ctrl-D)."""


class ChatClientProtocol(LineReceiver):
    """
    The client side of the line protocol of SPEC section 2.

    Login: answers C{Passcode:}, C{Username:} and C{Password:} from L{ClientConfig}, or asks
    the interface (interactive) or uses the next input line (plain).  A
    passcode given as an option that the server refuses ends the client; so
    does any refusal in plain mode.  Interactively a refused name, or a typed
    passcode, is asked for again.

    Then every server line goes to the interface, cleaned, and every input
    line to the server.  Lines entered before the login finished wait and go
    in order afterwards.

    C{finished} fires with C{None} when the session ended as the user wanted
    (the server said C{Goodbye!}, or a quit timed out), or fails with a
    L{ClientError} saying what went wrong.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20
    log = Logger()

    def __init__(
        self,
        ui: ChatUI,
        config: ClientConfig,
        clock: IReactorTime,
        quit_timeout: float = QUIT_TIMEOUT,
        pace: tuple[float, int] | None = PACE,
    ) -> None:
        """
        @param ui: where lines are shown and questions asked.
        @param config: the name and passcode to log in with, if given.
        @param clock: for the quit timeout and pacing.
        @param quit_timeout: seconds to wait for the server to hang up after
            C{/quit} before hanging up ourselves.
        @param pace: most lines a second and burst to send, or C{None} for
            no limit.
        """
        self.ui = ui
        self.finished: Deferred[None] = Deferred()
        self.status = Status()
        self.connecting: Deferred[Any] | None = None
        self._config = config
        self._clock = clock
        self._quit_timeout = quit_timeout
        self._state = "connecting"
        self._queue: deque[str] = deque()
        self._attempts = {_PASSCODE: 0, _NAME: 0, _PASSWORD: 0}
        self._awaiting: str | None = None  # plain mode: which answer the next input is
        self._asking: Deferred[str] | None = None
        self._last_error: str | None = None
        self._answered: tuple[str, str] | None = None  # (kind, where it came from)
        self._prompt_kind: str | None = None
        self._failure: str | None = None
        self._goodbye = False
        self._quitting = False
        self._input_done = False
        self._shutdown_seen = False
        self._quit_call: IDelayedCall | None = None
        self._pace = pace
        self._tokens = float(pace[1]) if pace else 0.0
        self._tokens_at = clock.seconds()
        self._pace_call: IDelayedCall | None = None
        self._greeting_call: IDelayedCall | None = None

    @property
    def failure_message(self) -> str | None:
        """Why the client decided to give up, if it did."""
        return self._failure

    @property
    def logged_in(self) -> bool:
        """True between the welcome and the end of the connection."""
        return self._state == "chat"

    # -- Twisted callbacks -------------------------------------------------

    @override
    def connectionMade(self) -> None:
        """Wait for the server's prompts."""
        self._state = "login"
        self.connecting = None
        self._greeting_call = self._clock.callLater(GREETING_TIMEOUT, self._no_greeting)
        if self._quitting:  # the user gave up while we were connecting
            self._connection.loseConnection()

    @override
    def lineReceived(self, line: bytes) -> None:
        """Handle one line from the server."""
        if self._state == "login":  # the greeting ends with telnet offers
            line = strip_telnet(line)
        text = clean(decode(line.rstrip(b"\r")))
        if self._greeting_call is not None and self._greeting_call.active():
            self._greeting_call.cancel()
        if self._state == "login":
            self._login_line(text)
        elif self._state == "chat":
            self._chat_line(text)

    @override
    def lineLengthExceeded(self, line: bytes) -> None:
        """A server line of more than a mebibyte is not a chat server."""
        self._fail("the server sent a line longer than %d bytes" % self.MAX_LENGTH)

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Decide how the session ended and fire C{finished}."""
        state, self._state = self._state, "closed"
        self._cancel_timers()
        if self.finished.called:
            return
        if self._failure is not None:
            self.finished.errback(ClientError(self._failure))
        elif self._goodbye or self._quitting:
            self.finished.callback(None)
        elif state == "login":
            tls = _tls_problem(reason)
            if tls is not None:
                message = "TLS handshake with the server failed: %s" % tls
            elif self._last_error is not None:
                message = "login failed: %s" % self._last_error
            else:
                message = "the server closed the connection during login"
            self.finished.errback(ClientError(message))
        elif self._shutdown_seen:
            self.finished.errback(ClientError("the server shut down"))
        else:
            self.finished.errback(ClientError("connection to the server lost"))

    # -- InputSink ------------------------------------------------------------

    def line_entered(self, text: str) -> None:
        """Send a line the user typed, or keep it until we are logged in."""
        if self._state == "closed" or self._quitting:
            return
        if self._awaiting is not None and not self._queue:
            self._answer_from_input(text)
        else:
            self._queue.append(text)
            self._flush()

    def input_ended(self) -> None:
        """
        Standard input is exhausted: leave once everything before it was
        sent (an explicit C{/quit} already did).
        """
        self._input_done = True
        if self._awaiting is not None and not self._queue:
            self._fail("input ended before a %s was given" % self._awaiting)
            return
        self._flush()

    def quit_requested(self) -> None:
        """Leave politely: C{/quit} when logged in, hang up otherwise."""
        if self._state == "closed":
            return
        if self._state == "chat":
            if not self._quitting:
                self._queue.clear()
                self._send_chat("/quit")
            return
        self._quitting = True
        if self._asking is not None:
            self._asking.cancel()
        if self._state == "connecting":
            if self.connecting is not None:
                self.connecting.cancel()
        else:
            self._connection.loseConnection()

    # -- login ----------------------------------------------------------------

    def _login_line(self, text: str) -> None:
        kind = _PROMPTS.get(text)
        if kind is not None:
            self._prompted(kind, text)
        elif text.startswith("ERROR "):
            self._last_error = text[len("ERROR ") :]
            self.ui.show(text)
            if self._answered is not None and not self._may_retry(*self._answered):
                # Fail now rather than wait for a prompt we could not answer.
                self._fail("login failed: %s" % self._last_error)
        elif text.startswith("Welcome, "):
            self._state = "chat"
            self._awaiting = None
            self._set_status(track(self.status, text))
            self.ui.show(text)
            self._flush()
        else:
            self.ui.show(text)

    def _prompted(self, kind: str, prompt: str) -> None:
        attempt = self._attempts[kind]
        self._attempts[kind] += 1
        given = {_PASSCODE: self._config.passcode, _NAME: self._config.name,
                 _PASSWORD: self._config.password}[kind]
        if attempt == 0 and given is not None:
            self._answer(kind, "option", given)
            return
        if attempt > 0 and self._answered is not None and not self._may_retry(*self._answered):
            self._fail("login failed: %s" % (self._last_error or "%s refused" % kind))
            return
        self._prompt_kind = kind
        if self.ui.interactive:
            self._asking = self.ui.ask(prompt, kind in (_PASSCODE, _PASSWORD))
            self._asking.addCallbacks(self._asked, self._ask_failed)
        else:
            self.ui.show(prompt)
            self._awaiting = kind
            if self._queue:
                self._answer_from_input(self._queue.popleft())
            elif self._input_done:
                self._fail("input ended before a %s was given" % kind)

    def _may_retry(self, kind: str, source: str) -> bool:
        """Can a refused answer of C{kind} that came from C{source} be retried?"""
        if not self.ui.interactive:
            return False
        return kind == _NAME or source == "asked"

    def _answer(self, kind: str, source: str, text: str) -> None:
        self._answered = (kind, source)
        self._write(text)

    def _asked(self, answer: str) -> None:
        self._asking = None
        if self._state == "login":
            self._answer(self._prompt_kind or _NAME, "asked", answer)

    def _ask_failed(self, failure: Failure) -> None:
        self._asking = None
        failure.trap(CancelledError)

    def _answer_from_input(self, text: str) -> None:
        kind, self._awaiting = self._awaiting or _NAME, None
        self._answer(kind, "input", text)

    # -- chatting -------------------------------------------------------------

    def _chat_line(self, text: str) -> None:
        self.ui.show(text)
        self._set_status(track(self.status, text))
        if text == "Goodbye!":
            # The server closes next; closing our side too saves waiting on a
            # TLS close_notify exchange.
            self._goodbye = True
            self._connection.loseConnection()
        elif text.startswith("*** Server shutting down"):
            self._shutdown_seen = True

    def _send_chat(self, text: str) -> None:
        if not text.strip():
            return
        self._write(text)
        if is_quit(text):
            self._quitting = True
            self._quit_call = self._clock.callLater(self._quit_timeout, self._hang_up)
            return
        echo = echo_for(text)
        if echo is not None:
            self.ui.sent(echo)

    def _flush(self) -> None:
        """Send waiting lines, as fast as the pace allows."""
        if self._state != "chat" or self._pace_call is not None:
            return
        while not self._quitting:
            if self._queue and not self._queue[0].strip():
                self._queue.popleft()  # the server ignores blank lines anyway
                continue
            if not self._queue and not self._input_done:
                return
            wait = self._token_wait()
            if wait > 0:
                self._pace_call = self._clock.callLater(wait, self._paced)
                return
            # Piped input without /quit: leave once it has all been sent.
            self._send_chat(self._queue.popleft() if self._queue else "/quit")

    def _token_wait(self) -> float:
        """Take a token and return 0, or return how long until one is due."""
        if self._pace is None:
            return 0.0
        rate, burst = self._pace
        now = self._clock.seconds()
        self._tokens = min(float(burst), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate

    def _paced(self) -> None:
        self._pace_call = None
        self._flush()

    def _no_greeting(self) -> None:
        self._greeting_call = None
        hint = "" if self._config.tls else "; if it is a TLS port, use --tls"
        self._fail("the server sent nothing for %d seconds%s" % (GREETING_TIMEOUT, hint))

    def _hang_up(self) -> None:
        self._quit_call = None
        self._connection.loseConnection()

    # -- helpers --------------------------------------------------------------

    @property
    def _connection(self) -> ITransport:
        """The transport, for what only happens once connected."""
        assert self.transport is not None, "not connected"
        return self.transport

    def _write(self, text: str) -> None:
        self._connection.write(text.encode("utf-8", "replace") + b"\r\n")

    def _set_status(self, status: Status) -> None:
        if status != self.status:
            self.status = status
            self.ui.update_status(status)

    def _fail(self, message: str) -> None:
        if self._failure is None:
            self._failure = message
        if self._state == "connecting":
            if self.connecting is not None:
                self.connecting.cancel()
        elif self.transport is not None:
            self.transport.loseConnection()

    def _cancel_timers(self) -> None:
        if self._greeting_call is not None and self._greeting_call.active():
            self._greeting_call.cancel()
        self._greeting_call = None
        if self._pace_call is not None and self._pace_call.active():
            self._pace_call.cancel()
        self._pace_call = None
        if self._quit_call is not None and self._quit_call.active():
            self._quit_call.cancel()
        self._quit_call = None
        if self._asking is not None:
            self._asking.cancel()


def _tls_problem(reason: Failure) -> str | None:
    """Describe a TLS failure in C{reason}, or return C{None}."""
    try:
        from OpenSSL.SSL import Error as SSLError
    except ImportError:  # no TLS support installed, so no TLS failure either
        return None
    if not reason.check(SSLError) or reason.value is None:
        return None
    details = []
    for item in reason.value.args[0] if reason.value.args else ():
        if isinstance(item, tuple) and item:
            details.append(str(item[-1]))
    return ", ".join(details) or str(reason.value)
