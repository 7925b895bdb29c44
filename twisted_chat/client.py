"""
The console client: C{chat-client} and C{python -m twisted_chat.client}.

It logs in from its options (asking for what is missing), then relays lines
both ways.  On a terminal it runs a full-screen urwid interface on Twisted's
reactor; with piped input or output it is a plain line-in, line-out filter.

The pieces, from the wire outwards:

  - L{ChatClientProtocol}: a L{LineReceiver} with a small login state machine.
    It knows nothing about terminals; it talks to a L{ChatUI}.
  - L{track}: a pure function that follows name, room and user count from the
    lines the server sends, for the status bar.
  - L{PlainUI} (stdin/stdout through L{StandardIO}) and L{TerminalUI} (urwid,
    built around the widget tree of L{ChatView}): the two L{ChatUI}s.
  - L{run_client} connects them; L{main} parses options and runs the reactor.

This module imports nothing from the server; only L{twisted_chat.text}.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

import urwid
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from twisted_chat.errors import BadName
from twisted_chat.text import check_name, clean, decode, strip_telnet

PROGRAM = "chat-client"
QUIT_TIMEOUT = 5.0
"""Seconds to wait for the server to close after C{/quit} before hanging up."""
CONNECT_TIMEOUT = 10.0
GREETING_TIMEOUT = 10.0
"""Seconds to wait for the server's first line before giving up."""
PACE = (4.0, 8)
"""
Lines a second, and burst, that the client sends at most: below the server's
default flood limit (5 a second, burst 10), so piped input is not dropped.
"""
SCROLLBACK = 5000
"""Lines the terminal interface keeps."""

_log = Logger()
_PASSCODE = "passcode"
_NAME = "name"
_PROMPTS = {"Passcode:": _PASSCODE, "Username:": _NAME}


class ClientError(Exception):
    """
    Why the client stopped unsuccessfully; C{str(error)} is the one line the
    user sees on stderr.
    """


@dataclass(frozen=True)
class ClientConfig:
    """Everything the command line says, checked."""

    host: str = "127.0.0.1"
    port: int = 8080
    name: str | None = None
    passcode: str | None = None
    tls: bool = False
    ca: str | None = None
    plain: bool = False


@dataclass(frozen=True)
class Status:
    """What the status bar shows: who we are, where, with how many people."""

    name: str | None = None
    room: str | None = None
    users: int | None = None


# ---------------------------------------------------------------------------
# Following the conversation: status tracking, local echo, line kinds


_WELCOME = re.compile(r"Welcome, (?P<name>[^!\s]+)! You are in #(?P<room>[\w-]+)")
_NOW_IN = re.compile(r"You are now in #(?P<room>[\w-]+)")
_USERS_IN = re.compile(r"Users in #(?P<room>[\w-]+) \((?P<count>\d+)\)")
_STAMP = re.compile(r"(?P<stamp>\[[0-9: -]+\] )(?P<rest>.*)\Z", re.DOTALL)
_JOINED = re.compile(r"\*\*\* (?P<who>\S+) joined #(?P<room>[\w-]+)")
_GONE = re.compile(
    r"\*\*\* (?P<who>\S+) (?:has )?(?:left|quit|disconnected|timed out|was disconnected)\b"
)
_SPEAKER = re.compile(r"(?P<name>[A-Za-z0-9_.\-]{1,20}): ")
_SHORTCUT_ECHO = {":)": "[feeling happy]", ":(": "[feeling sad]"}
_SILENT_SHORTCUTS = (":mytime", ":+1hr", ":users", ":exit", ":msg")


def track(status: Status, line: str) -> Status:
    """
    Return C{status} updated by one line from the server.

    Only a few well-known lines matter; anything else leaves it unchanged.
    """
    match = _WELCOME.match(line)
    if match:
        return Status(match["name"], match["room"].lower(), None)
    match = _NOW_IN.match(line)
    if match:
        return replace(status, room=match["room"].lower(), users=None)
    match = _USERS_IN.match(line)
    if match:
        if status.room is None or match["room"].lower() == status.room:
            return replace(status, room=match["room"].lower(), users=int(match["count"]))
        return status
    stamped = _STAMP.match(line)
    if stamped is None or status.users is None:
        return status
    rest = stamped["rest"]
    match = _JOINED.match(rest)
    if match:
        if match["room"].lower() == status.room and match["who"] != status.name:
            return replace(status, users=status.users + 1)
        return status
    match = _GONE.match(rest)
    if match and match["who"] != status.name:
        return replace(status, users=max(1, status.users - 1))
    return status


@dataclass(frozen=True)
class Echo:
    """Our own message as the room sees it (the server sends no echo)."""

    text: str
    action: bool = False
    """True for C{/me}: shown as C{* name text}."""


def echo_for(line: str) -> Echo | None:
    """
    Return what the room will see when we send C{line}, or C{None} when it is
    a command or shortcut the server answers itself.
    """
    if not line.strip():
        return None
    if line.startswith("\\"):
        return Echo(line[1:]) if line[1:].strip() else None
    if line.startswith("/"):
        command, _, rest = line.partition(" ")
        if command.lower() == "/me" and rest.strip():
            return Echo(rest, action=True)
        return None
    stripped = line.strip()
    if stripped in _SHORTCUT_ECHO:
        return Echo(_SHORTCUT_ECHO[stripped])
    lowered = stripped.lower()
    if any(lowered == s or lowered.startswith(s + " ") for s in _SILENT_SHORTCUTS):
        return None
    return Echo(line)


def is_quit(line: str) -> bool:
    """True when sending C{line} asks the server to end the session."""
    word = line.strip().split(" ", 1)[0]
    return word.lower() == "/quit" or line.strip() == ":Exit"


def line_kind(line: str) -> str:
    """
    Classify a server line for colouring: C{error}, C{private}, C{notice},
    C{action}, C{message} or C{info}.
    """
    if line.startswith("ERROR "):
        return "error"
    stamped = _STAMP.match(line)
    if stamped is None:
        return "notice" if line.startswith("***") else "info"
    rest = stamped["rest"]
    if rest.startswith("[PRIVATE"):
        return "private"
    if rest.startswith("***"):
        return "notice"
    if rest.startswith("* "):
        return "action"
    return "message"


# ---------------------------------------------------------------------------
# The seams between protocol and interface


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


# ---------------------------------------------------------------------------
# The protocol


class ChatClientProtocol(LineReceiver):
    """
    The client side of the line protocol of SPEC section 2.

    Login: answers C{Passcode:} and C{Username:} from L{ClientConfig}, or asks
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
        self._attempts = {_PASSCODE: 0, _NAME: 0}
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
            self.transport.loseConnection()

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
            self.transport.loseConnection()

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
        given = self._config.passcode if kind == _PASSCODE else self._config.name
        if attempt == 0 and given is not None:
            self._answer(kind, "option", given)
            return
        if attempt > 0 and self._answered is not None and not self._may_retry(*self._answered):
            self._fail("login failed: %s" % (self._last_error or "%s refused" % kind))
            return
        self._prompt_kind = kind
        if self.ui.interactive:
            self._asking = self.ui.ask(prompt, kind == _PASSCODE)
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
            self.transport.loseConnection()
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
        self.transport.loseConnection()

    # -- helpers --------------------------------------------------------------

    def _write(self, text: str) -> None:
        self.transport.write(text.encode("utf-8", "replace") + b"\r\n")

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
    if not reason.check(SSLError):
        return None
    details = []
    for item in reason.value.args[0] if reason.value.args else ():
        if isinstance(item, tuple) and item:
            details.append(str(item[-1]))
    return ", ".join(details) or str(reason.value)


# ---------------------------------------------------------------------------
# Plain mode: lines in, lines out


@implementer(IHalfCloseableProtocol)
class _StdioLines(LineReceiver):
    """Standard input and output of L{PlainUI}."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, ui: PlainUI) -> None:
        """@param ui: told about each input line and the end of input."""
        self._ui = ui
        self.closed: Deferred[None] = Deferred()

    @override
    def lineReceived(self, line: bytes) -> None:
        """Pass one line of standard input on."""
        self._ui.input_line(decode(line.rstrip(b"\r")))

    def readConnectionLost(self) -> None:
        """End of file on standard input."""
        if self._buffer:  # a last line without a newline still counts
            data, self._buffer = self._buffer, b""
            self.lineReceived(data)
        self._ui.input_finished()

    def writeConnectionLost(self) -> None:
        """Standard output closed under us (a closed pipe): stop writing."""
        self._ui.output_lost()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Both directions are closed."""
        if not self.closed.called:
            self.closed.callback(None)


class PlainUI:
    """
    Line in, line out: every server line on standard output (cleaned, no
    colour), every line of standard input to the server.

    It uses L{StandardIO}, so nothing blocks the reactor and no thread runs.
    """

    interactive = False

    def __init__(self, reactor: Any, stdin: int = 0, stdout: int = 1) -> None:
        """
        @param reactor: an L{IReactorFDSet} for L{StandardIO}.
        @param stdin: file descriptor to read lines from.
        @param stdout: file descriptor to write lines to.
        """
        self._reactor = reactor
        self._fds = (stdin, stdout)
        self._sink: InputSink | None = None
        self._stdio: Any = None
        self._lines: _StdioLines | None = None
        self._output = True

    def start(self, sink: InputSink) -> None:
        """Start reading standard input."""
        from twisted.internet.stdio import StandardIO

        self._sink = sink
        self._lines = _StdioLines(self)
        self._stdio = StandardIO(
            self._lines, stdin=self._fds[0], stdout=self._fds[1], reactor=self._reactor
        )

    def input_line(self, text: str) -> None:
        """A line arrived on standard input."""
        if self._sink is not None:
            self._sink.line_entered(text)

    def input_finished(self) -> None:
        """Standard input reached its end."""
        if self._sink is not None:
            self._sink.input_ended()

    def output_lost(self) -> None:
        """Nobody reads our output any more; leave."""
        self._output = False
        if self._sink is not None:
            self._sink.quit_requested()

    def show(self, line: str) -> None:
        """Write one server line."""
        if self._stdio is not None and self._output:
            self._stdio.write(line.encode("utf-8", "replace") + b"\n")

    def note(self, text: str) -> None:
        """Plain output is the conversation only: notes are not shown."""

    def sent(self, echo: Echo) -> None:
        """No local echo: the input already is the transcript of what we said."""

    def ask(self, prompt: str, secret: bool) -> Deferred[str]:
        """Never called: plain mode answers prompts with input lines."""
        raise NotImplementedError("plain mode does not ask")

    def update_status(self, status: Status) -> None:
        """There is no status bar."""

    def stop(self) -> Deferred[None]:
        """Flush standard output, then release both descriptors."""
        if self._stdio is None or self._lines is None:
            return succeed(None)
        stdio, self._stdio = self._stdio, None
        stdio.loseConnection()
        closed = self._lines.closed
        # A reader that never drains our output must not keep us alive.
        closed.addTimeout(5, self._reactor, lambda result, timeout: None)
        return closed


# ---------------------------------------------------------------------------
# Interactive mode: urwid


PALETTE = [
    ("status", "white", "dark blue"),
    ("status own", "yellow,bold", "dark blue"),
    ("stamp", "dark gray", ""),
    ("name", "light cyan", ""),
    ("own", "yellow,bold", ""),
    ("private", "light magenta", ""),
    ("notice", "dark green", ""),
    ("action", "light cyan", ""),
    ("error", "light red,bold", ""),
    ("info", "light gray", ""),
    ("note", "dark gray", ""),
    ("caption", "light blue,bold", ""),
]


def markup(line: str, own_name: str | None) -> list[Any]:
    """
    Return urwid text markup for one server line: timestamps dimmed, your
    own name highlighted, private messages, notices and errors coloured.
    """
    line = line.expandtabs(4)
    kind = line_kind(line)
    if kind in ("error", "info"):
        return [(kind, line)]
    stamped = _STAMP.match(line)
    if stamped is None:
        return [(kind, line)]
    parts: list[Any] = [("stamp", stamped["stamp"])]
    rest = stamped["rest"]
    if kind != "message":
        parts.append((kind, rest))
        return parts
    speaker = _SPEAKER.match(rest)
    if speaker is None:
        parts.append(rest)
        return parts
    name = speaker["name"]
    mine = own_name is not None and name.lower() == own_name.lower()
    parts.append(("own" if mine else "name", name))
    parts.append(rest[len(name) :])
    return parts


class _ChatFrame(urwid.Frame):
    """The top widget: a L{urwid.Frame} whose keys L{ChatView} handles."""

    def __init__(self, view: ChatView, body: urwid.Widget, footer: urwid.Widget) -> None:
        """@param view: handles every key."""
        super().__init__(body, footer=footer, focus_part="footer")
        self._view = view

    @override
    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        """Let the view decide."""
        return self._view.keypress(size, key)


class ChatView:
    """
    The widget tree of the terminal interface and what its keys do: a
    scrolling message pane, a status bar and an input line with history.

    It has no main loop, so tests drive it with C{keypress} and C{render}.
    """

    def __init__(
        self,
        sink: InputSink | None = None,
        server: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        @param sink: receives entered lines and quit requests.
        @param server: C{host:port} for the status bar.
        @param clock: seconds since the epoch, for the stamps of local echo.
        """
        self.sink = sink
        self.status = Status()
        self._server = server
        self._clock = clock
        self._history: list[str] = []
        self._history_pos = 0
        self._draft = ""
        self._asking: Deferred[str] | None = None
        self._walker = urwid.SimpleFocusListWalker([])
        self.messages = urwid.ListBox(self._walker)
        self._status_text = urwid.Text("", wrap="ellipsis")
        self.input = urwid.Edit(("caption", "> "))
        self.widget = _ChatFrame(
            self,
            self.messages,
            urwid.Pile([urwid.AttrMap(self._status_text, "status"), self.input]),
        )
        self._render_status()

    # -- output ---------------------------------------------------------------

    def show(self, line: str) -> None:
        """Append a server line to the message pane."""
        self._append(markup(line, self.status.name))

    def note(self, text: str) -> None:
        """Append a line from the client itself."""
        self._append([("note", "-- %s" % text)])

    def sent(self, echo: Echo) -> None:
        """Echo our own message the way the others see it."""
        stamp = time.strftime("[%H:%M:%S] ", time.localtime(self._clock()))
        name = self.status.name or "me"
        text = clean(echo.text).expandtabs(4)
        if echo.action:
            self._append([("stamp", stamp), ("action", "* %s %s" % (name, text))])
        else:
            self._append([("stamp", stamp), ("own", name), ": " + text])

    def update_status(self, status: Status) -> None:
        """Redraw the status bar."""
        self.status = status
        self._render_status()

    def set_server(self, server: str) -> None:
        """Say in the status bar where we are connected."""
        self._server = server
        self._render_status()

    def ask(self, prompt: str, secret: bool) -> Deferred[str]:
        """Turn the input line into a prompt; the next Enter answers it."""
        if self._asking is not None:
            self._asking.cancel()
        self._asking = Deferred(self._cancel_ask)
        self.input.set_caption(("caption", prompt + " "))
        self.input.set_mask("*" if secret else None)
        self.input.set_edit_text("")
        return self._asking

    def _cancel_ask(self, asking: Deferred[str]) -> None:
        if self._asking is asking:
            self._asking = None
            self._reset_input()

    def _reset_input(self) -> None:
        self.input.set_caption(("caption", "> "))
        self.input.set_mask(None)
        self.input.set_edit_text("")

    def _append(self, parts: list[Any]) -> None:
        at_end = self._at_end()
        self._walker.append(urwid.Text(parts))
        if len(self._walker) > SCROLLBACK:
            del self._walker[: len(self._walker) - SCROLLBACK]
        if at_end:
            self._walker.set_focus(len(self._walker) - 1)

    def _at_end(self) -> bool:
        return not self._walker or self._walker.focus >= len(self._walker) - 1

    def _render_status(self) -> None:
        status = self.status
        parts: list[Any] = [" "]
        parts.append(("status own", status.name) if status.name else "not logged in")
        if status.room:
            parts.append("  #" + status.room)
        if status.users is not None:
            parts.append("  %d user%s" % (status.users, "" if status.users == 1 else "s"))
        if self._server:
            parts.append("  " + self._server)
        parts.append("   PgUp/PgDn scroll, Ctrl-C quits")
        self._status_text.set_text(parts)

    # -- input ----------------------------------------------------------------

    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        """Handle one key: editing, history, scrolling, enter, quit."""
        cols, rows = size
        if key == "enter":
            self._enter()
        elif key in ("ctrl c",) or (key == "ctrl d" and not self.input.edit_text):
            if self.sink is not None:
                self.sink.quit_requested()
        elif key in ("page up", "page down"):
            (head, foot), _ = self.widget.frame_top_bottom(size, True)
            self.messages.keypress((cols, max(1, rows - head - foot)), key)
        elif key in ("up", "down") and self._asking is None:
            self._browse_history(-1 if key == "up" else 1)
        else:
            return self.input.keypress((cols,), key)
        return None

    def _enter(self) -> None:
        text = self.input.edit_text
        if self._asking is not None:
            asking, self._asking = self._asking, None
            self._reset_input()
            asking.callback(text)
            return
        self.input.set_edit_text("")
        if text.strip():
            if not self._history or self._history[-1] != text:
                self._history.append(text)
        self._history_pos = len(self._history)
        self._draft = ""
        self._walker.set_focus(max(0, len(self._walker) - 1))
        if self.sink is not None:
            self.sink.line_entered(text)

    def _browse_history(self, step: int) -> None:
        if not self._history:
            return
        if self._history_pos == len(self._history):
            self._draft = self.input.edit_text
        position = min(max(self._history_pos + step, 0), len(self._history))
        self._history_pos = position
        text = self._draft if position == len(self._history) else self._history[position]
        self.input.set_edit_text(text)
        self.input.set_edit_pos(len(text))


class TerminalUI:
    """
    The full-screen interface: a L{ChatView} on urwid's Twisted event loop.
    """

    interactive = True
    log = Logger()

    def __init__(self, reactor: Any, server: str = "", screen: Any = None) -> None:
        """
        @param reactor: the running reactor, shared with urwid.
        @param server: C{host:port} for the status bar.
        @param screen: an urwid screen; the raw terminal by default.
        """
        self._reactor = reactor
        self.view = ChatView(server=server, clock=reactor.seconds)
        self._screen = screen
        self._loop: Any = None
        self._draw_call: IDelayedCall | None = None

    def start(self, sink: InputSink) -> None:
        """Take over the terminal."""
        import logging

        # urwid reports callback errors through logging; its last-resort
        # handler would write them over the screen.
        logging.getLogger("urwid").addHandler(logging.NullHandler())
        logging.getLogger("urwid").propagate = False
        self.view.sink = sink
        screen = self._screen if self._screen is not None else urwid.display.raw.Screen()
        self._loop = urwid.MainLoop(
            self.view.widget,
            PALETTE,
            screen=screen,
            handle_mouse=False,  # leave mouse selection to the terminal
            event_loop=urwid.TwistedEventLoop(reactor=self._reactor, manage_reactor=False),
        )
        self._loop.start()
        # Ctrl-C and Ctrl-\ arrive as keys, so leaving is always a clean /quit.
        if hasattr(screen, "tty_signal_keys"):
            screen.tty_signal_keys(intr="undefined", quit="undefined")

    def _changed(self) -> None:
        if self._loop is not None and self._draw_call is None:
            self._draw_call = self._reactor.callLater(0, self._draw)

    def _draw(self) -> None:
        self._draw_call = None
        if self._loop is not None:
            self._loop.draw_screen()

    def show(self, line: str) -> None:
        """Add a server line."""
        self.view.show(line)
        self._changed()

    def note(self, text: str) -> None:
        """Add a line from the client itself."""
        self.view.note(text)
        self._changed()

    def sent(self, echo: Echo) -> None:
        """Echo our own message."""
        self.view.sent(echo)
        self._changed()

    def ask(self, prompt: str, secret: bool) -> Deferred[str]:
        """Ask in the input line."""
        asking = self.view.ask(prompt, secret)
        self._changed()
        return asking

    def update_status(self, status: Status) -> None:
        """Update the status bar."""
        self.view.update_status(status)
        self._changed()

    def stop(self) -> Deferred[None]:
        """Restore the terminal."""
        loop, self._loop = self._loop, None
        if self._draw_call is not None and self._draw_call.active():
            self._draw_call.cancel()
        self._draw_call = None
        if loop is not None:
            loop.stop()
        return succeed(None)


# ---------------------------------------------------------------------------
# Putting it together


def client_endpoint(reactor: Any, config: ClientConfig) -> IStreamClientEndpoint:
    """The endpoint for C{config}: TCP, wrapped in TLS with C{--tls}."""
    endpoint: IStreamClientEndpoint = HostnameEndpoint(
        reactor, config.host, config.port, timeout=CONNECT_TIMEOUT
    )
    if config.tls:
        from twisted.internet.endpoints import wrapClientTLS
        from twisted.internet.ssl import Certificate, optionsForClientTLS

        trust = None
        if config.ca is not None:
            trust = Certificate.loadPEM(Path(config.ca).read_bytes())
        endpoint = wrapClientTLS(optionsForClientTLS(config.host, trustRoot=trust), endpoint)
    return endpoint


def _describe_connect_error(failure: Failure) -> str:
    """One short phrase for why connecting failed."""
    from twisted.internet import error

    reason = failure.value
    if isinstance(reason, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, error.TimeoutError):
        return "timed out"
    if isinstance(reason, error.DNSLookupError):
        return "no such host"
    text = str(reason).strip().rstrip(".")
    return text or type(reason).__name__


async def run_client(
    reactor: Any,
    config: ClientConfig,
    ui: ChatUI,
    endpoint: IStreamClientEndpoint | None = None,
    stderr: IO[str] | None = None,
    quit_timeout: float = QUIT_TIMEOUT,
) -> int:
    """
    Connect, chat until the session ends, restore the terminal, and return
    the exit status; a failure is reported as one line on C{stderr}.
    """
    stderr = stderr if stderr is not None else sys.stderr
    if endpoint is None:
        endpoint = client_endpoint(reactor, config)
    protocol = ChatClientProtocol(ui, config, reactor, quit_timeout)
    where = "%s:%d" % (config.host, config.port)

    def shutting_down() -> Deferred[None]:
        # SIGINT or SIGTERM: say goodbye properly before the reactor stops.
        protocol.quit_requested()
        waiting: Deferred[None] = Deferred()
        protocol.finished.addBoth(lambda _: waiting.called or waiting.callback(None))
        waiting.addTimeout(quit_timeout, reactor, lambda result, timeout: None)
        return waiting

    trigger = reactor.addSystemEventTrigger("before", "shutdown", shutting_down)
    message: str | None = None
    code = 0
    try:
        ui.start(protocol)
        ui.note("connecting to %s%s" % (where, " with TLS" if config.tls else ""))
        protocol.connecting = connectProtocol(endpoint, protocol)
        try:
            await protocol.connecting
        except CancelledError:
            if protocol.failure_message is not None:
                message, code = protocol.failure_message, 1
            return code
        except Exception:
            message = "cannot connect to %s: %s" % (where, _describe_connect_error(Failure()))
            code = 1
            return code
        ui.note("connected to %s" % where)
        try:
            await protocol.finished
        except ClientError as error:
            message, code = str(error), 1
        return code
    except Exception as error:  # a bug: still one line, never a traceback
        _log.failure("chat-client failed")
        message, code = "internal error: %s" % (error,), 1
        return code
    finally:
        try:
            reactor.removeSystemEventTrigger(trigger)
        except (ValueError, KeyError, NotImplementedError):
            pass
        await ui.stop()
        if message is not None:
            stderr.write("%s: %s\n" % (PROGRAM, message))
            stderr.flush()


# ---------------------------------------------------------------------------
# Command line


class UsageError(Exception):
    """A bad command line; C{str(error)} says what is wrong."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Terminal client for twisted-chat. Full-screen on a terminal; "
        "line in, line out when input or output is piped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server host (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="server port (default %(default)s)")
    parser.add_argument("--name", "--username", dest="name", help="your username")
    parser.add_argument("--passcode", help="the server passcode (visible in ps; see --passcode-file)")
    parser.add_argument(
        "--passcode-file",
        metavar="PATH",
        help="read the passcode from this file (one trailing newline is stripped)",
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca", metavar="FILE", help="trust this PEM certificate (with --tls)")
    parser.add_argument(
        "--plain", action="store_true", help="line mode even on a terminal (no full-screen UI)"
    )
    return parser


def parse_args(argv: Sequence[str]) -> ClientConfig:
    """
    Turn the command line into a L{ClientConfig}.

    @raise UsageError: for anything argparse accepts but we do not.
    @raise SystemExit: from argparse itself (bad syntax, C{--help}).
    """
    args = _parser().parse_args(list(argv))
    if args.passcode is not None and args.passcode_file is not None:
        raise UsageError("use --passcode or --passcode-file, not both")
    passcode = args.passcode
    if args.passcode_file is not None:
        try:
            passcode = Path(args.passcode_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError("cannot read passcode file: %s" % (error,)) from None
        if passcode.endswith("\r\n"):
            passcode = passcode[:-2]
        elif passcode.endswith("\n"):
            passcode = passcode[:-1]
    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.ca is not None and not args.tls:
        raise UsageError("--ca only makes sense with --tls")
    if args.ca is not None and not Path(args.ca).is_file():
        raise UsageError("--ca: no such file: %s" % args.ca)
    if args.name is not None:
        try:
            check_name(args.name)
        except BadName as error:
            raise UsageError("--name: %s" % (error,)) from None
    return ClientConfig(
        host=args.host,
        port=args.port,
        name=args.name,
        passcode=passcode,
        tls=args.tls,
        ca=args.ca,
        plain=args.plain,
    )


def _is_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _start(reactor: Any, config: ClientConfig) -> Deferred[None]:
    where = "%s:%d" % (config.host, config.port)
    ui: ChatUI
    if config.plain or not _is_terminal():
        ui = PlainUI(reactor)
    else:
        ui = TerminalUI(reactor, server=where + (" (TLS)" if config.tls else ""))

    def finish(code: int) -> None:
        if code:
            raise SystemExit(code)

    return defer.ensureDeferred(run_client(reactor, config, ui)).addCallback(finish)


def main(argv: Sequence[str] | None = None) -> int:
    """
    The C{chat-client} console script.

    @return: the exit status: 0 after C{/quit}, 1 when the session failed,
        2 for a bad command line.
    """
    from twisted.internet.task import react

    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        sys.stderr.write("%s: error: %s\n" % (PROGRAM, error))
        return 2
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 2
    try:
        react(_start, (config,))
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
