"""
Tests for the terminal client L{twisted_chat.client}: options, the login state
machine and relay of L{ChatClientProtocol}, status tracking, and L{run_client},
all without sockets (L{StringTransport}, L{Clock}, L{MemoryReactorClock}).
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import tempfile
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.client.app import TUI_HINT, choose_ui, main, run_client
from twisted_chat.client.config import ClientConfig, UsageError, parse_args
from twisted_chat.client.plain import PlainUI
from twisted_chat.client.protocol import (
    GREETING_TIMEOUT,
    QUIT_TIMEOUT,
    ChatClientProtocol,
    ClientError,
)
from twisted_chat.client.status import Echo, Status, echo_for, is_quit, line_kind, track
from twisted_chat.client.terminal import SizedScreen, usable_size

SERVER = IPv4Address("TCP", "127.0.0.1", 8080)
# What the server sends first: its greeting (ending with the telnet offers) and prompt.
GREETING = b"Welcome to twisted-chat.\xff\xfd\x00\r\nPasscode:\r\n"
WELCOME = b"Welcome, alice! You are in #lobby. Type /help for commands.\r\n"


class FakeUI:
    """A L{ChatUI} that records everything it is told."""

    def __init__(self, interactive: bool = False) -> None:
        self.interactive = interactive
        self.lines: list[str] = []
        self.notes: list[str] = []
        self.echoes: list[Echo] = []
        self.asks: list[tuple[str, bool, Deferred[str]]] = []
        self.statuses: list[Status] = []
        self.sink: Any = None
        self.stopped = 0

    def start(self, sink: Any) -> None:
        self.sink = sink

    def show(self, line: str) -> None:
        self.lines.append(line)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def sent(self, echo: Echo) -> None:
        self.echoes.append(echo)

    def ask(self, prompt: str, secret: bool) -> Deferred[str]:
        asking: Deferred[str] = Deferred()
        self.asks.append((prompt, secret, asking))
        return asking

    def update_status(self, status: Status) -> None:
        self.statuses.append(status)

    def stop(self) -> Deferred[None]:
        self.stopped += 1
        return succeed(None)


def connect(
    ui: FakeUI | None = None, pace: tuple[float, int] | None = None, **config: Any
) -> tuple[ChatClientProtocol, StringTransport, FakeUI, Clock]:
    """A client protocol connected to a L{StringTransport}."""
    ui = ui if ui is not None else FakeUI()
    clock = Clock()
    protocol = ChatClientProtocol(ui, ClientConfig(**config), clock, pace=pace)
    transport = StringTransport(peerAddress=SERVER)
    protocol.makeConnection(transport)
    return protocol, transport, ui, clock


def sent(transport: StringTransport) -> list[bytes]:
    """The lines written so far, then forget them."""
    data = transport.value()
    transport.clear()
    return data.split(b"\r\n")[:-1]


def login(**config: Any) -> tuple[ChatClientProtocol, StringTransport, FakeUI, Clock]:
    """A client protocol that has logged in as alice."""
    config.setdefault("name", "alice")
    config.setdefault("passcode", "x")
    protocol, transport, ui, clock = connect(**config)
    protocol.dataReceived(GREETING + b"Username:\r\n" + WELCOME)
    transport.clear()
    return protocol, transport, ui, clock


class LoginTests(SynchronousTestCase):
    """The login dialogue of L{ChatClientProtocol}."""

    def test_answers_prompts_from_options(self) -> None:
        """Passcode and name from the options answer the prompts, which are not shown."""
        protocol, transport, ui, _ = connect(name="alice", passcode="x")
        protocol.dataReceived(GREETING)
        self.assertEqual(sent(transport), [b"x"])
        protocol.dataReceived(b"Username:\r\n")
        self.assertEqual(sent(transport), [b"alice"])
        self.assertFalse(protocol.logged_in)
        protocol.dataReceived(WELCOME)
        self.assertTrue(protocol.logged_in)
        self.assertEqual(
            ui.lines,
            [
                "Welcome to twisted-chat.",
                "Welcome, alice! You are in #lobby. Type /help for commands.",
            ],
        )
        self.assertEqual(ui.statuses[-1], Status("alice", "lobby", None))

    def test_one_byte_at_a_time(self) -> None:
        """The dialogue works however the server's bytes are split."""
        protocol, transport, ui, _ = connect(name="alice", passcode="x")
        for byte in GREETING + b"Username:\r\n" + WELCOME:
            protocol.dataReceived(bytes([byte]))
        self.assertEqual(sent(transport), [b"x", b"alice"])
        self.assertTrue(protocol.logged_in)

    def test_open_server(self) -> None:
        """Without a C{Passcode:} prompt the passcode is never sent."""
        protocol, transport, _, _ = connect(name="alice", passcode="x")
        protocol.dataReceived(b"Welcome to twisted-chat.\r\nUsername:\r\n" + WELCOME)
        self.assertEqual(sent(transport), [b"alice"])
        self.assertTrue(protocol.logged_in)

    def test_lines_wait_for_login(self) -> None:
        """Lines entered before the welcome are sent after it, in order."""
        protocol, transport, _, _ = connect(name="alice", passcode="x")
        protocol.line_entered("one")
        protocol.line_entered("two")
        protocol.dataReceived(GREETING + b"Username:\r\n")
        self.assertEqual(sent(transport), [b"x", b"alice"])
        protocol.dataReceived(WELCOME)
        self.assertEqual(sent(transport), [b"one", b"two"])

    def test_wrong_passcode_option_fails(self) -> None:
        """A passcode from the options that the server refuses ends the client."""
        protocol, transport, ui, _ = connect(ui=FakeUI(interactive=True), name="a", passcode="y")
        protocol.dataReceived(GREETING + b"ERROR wrong passcode\r\nPasscode:\r\n")
        self.assertEqual(sent(transport), [b"y"])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(ui.asks, [])
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "login failed: wrong passcode")

    def test_wrong_passcode_without_reprompt(self) -> None:
        """The client does not wait for a prompt it could not answer anyway."""
        protocol, transport, _, _ = connect(name="a", passcode="y")
        protocol.dataReceived(GREETING + b"ERROR wrong passcode\r\n")
        self.assertTrue(transport.disconnecting)

    def test_typed_passcode_asked_again(self) -> None:
        """Interactively, a passcode the person typed is asked for again."""
        protocol, transport, ui, _ = connect(ui=FakeUI(interactive=True), name="alice")
        protocol.dataReceived(GREETING)
        [(prompt, secret, asking)] = ui.asks
        self.assertEqual((prompt, secret), ("Passcode:", True))
        asking.callback("nope")
        self.assertEqual(sent(transport), [b"nope"])
        protocol.dataReceived(b"ERROR wrong passcode\r\nPasscode:\r\n")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(ui.asks), 2)
        ui.asks[1][2].callback("x")
        protocol.dataReceived(b"Username:\r\n")
        self.assertEqual(sent(transport), [b"x", b"alice"])
        self.assertIn("ERROR wrong passcode", ui.lines)

    def test_too_many_attempts(self) -> None:
        """When the server gives up, its reason is the client's message."""
        protocol, _, ui, _ = connect(ui=FakeUI(interactive=True))
        protocol.dataReceived(GREETING)
        ui.asks[0][2].callback("nope")
        protocol.dataReceived(b"ERROR too many attempts\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "login failed: too many attempts")

    def test_taken_name_plain_fails(self) -> None:
        """With piped input a taken name ends the client with the server's reason."""
        protocol, transport, _, _ = connect(name="alice", passcode="x")
        protocol.dataReceived(GREETING + b"Username:\r\n")
        protocol.dataReceived(b"ERROR the name alice is taken; pick another\r\nUsername:\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "login failed: the name alice is taken; pick another")

    def test_taken_name_interactive_asked_again(self) -> None:
        """Interactively a taken name, even one from the options, is asked for again."""
        protocol, transport, ui, _ = connect(
            ui=FakeUI(interactive=True), name="alice", passcode="x"
        )
        protocol.dataReceived(GREETING + b"Username:\r\n")
        protocol.dataReceived(b"ERROR the name alice is taken; pick another\r\nUsername:\r\n")
        self.assertFalse(transport.disconnecting)
        [(prompt, secret, asking)] = ui.asks
        self.assertEqual((prompt, secret), ("Username:", False))
        asking.callback("alice2")
        self.assertEqual(sent(transport), [b"x", b"alice", b"alice2"])

    def test_plain_answers_from_input(self) -> None:
        """In plain mode missing answers are the first input lines, like telnet."""
        protocol, transport, ui, _ = connect()
        for line in ["x", "bob", "hi"]:
            protocol.line_entered(line)
        protocol.dataReceived(GREETING + b"Username:\r\n")
        self.assertEqual(sent(transport), [b"x", b"bob"])
        self.assertEqual(ui.lines, ["Welcome to twisted-chat.", "Passcode:", "Username:"])
        protocol.dataReceived(b"Welcome, bob! You are in #lobby.\r\n")
        self.assertEqual(sent(transport), [b"hi"])

    def test_plain_input_ends_before_answer(self) -> None:
        """Input that ends before a needed answer ends the client."""
        protocol, transport, _, _ = connect(name="bob")
        protocol.dataReceived(GREETING)
        protocol.input_ended()
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "input ended before a passcode was given")

    def test_closed_during_login(self) -> None:
        """A server that hangs up during login is reported."""
        protocol, _, _, _ = connect(name="a", passcode="x")
        protocol.dataReceived(GREETING)
        protocol.connectionLost(Failure(ConnectionLost()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "the server closed the connection during login")

    def test_silent_server(self) -> None:
        """A server that says nothing (a TLS port, say) is given up on, with a hint."""
        protocol, transport, _, clock = connect(name="a", passcode="x")
        clock.advance(GREETING_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(
            str(error.value),
            "the server sent nothing for 10 seconds; if it is a TLS port, use --tls",
        )

    def test_quit_during_login(self) -> None:
        """Leaving before the welcome hangs up and counts as success."""
        protocol, transport, ui, _ = connect(ui=FakeUI(interactive=True))
        protocol.dataReceived(GREETING)
        protocol.quit_requested()
        self.assertTrue(transport.disconnecting)
        self.assertTrue(ui.asks[0][2].called)  # the question was cancelled
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(protocol.finished))


class ChatTests(SynchronousTestCase):
    """L{ChatClientProtocol} after login."""

    def test_lines_are_cleaned(self) -> None:
        """Terminal escapes and control characters in server lines never reach the UI."""
        protocol, _, ui, _ = login()
        protocol.dataReceived(
            b"[10:00:00] bob: \x1b[31mred\x1b[0m \x1b]0;owned\x07ok\x07\x08 \xff\r\n"
        )
        self.assertEqual(ui.lines[-1], "[10:00:00] bob: red ok \ufffd")

    def test_relay(self) -> None:
        """Entered lines go to the server with CRLF; messages are echoed locally."""
        protocol, transport, ui, _ = login()
        protocol.line_entered("héllo 🎉")
        protocol.line_entered("/join general")
        protocol.line_entered("/me waves")
        protocol.line_entered("   ")
        self.assertEqual(transport.value(), "héllo 🎉\r\n/join general\r\n/me waves\r\n".encode())
        self.assertEqual(ui.echoes, [Echo("héllo 🎉"), Echo("waves", action=True)])

    def test_goodbye(self) -> None:
        """After C{/quit} and C{Goodbye!} the session ends successfully."""
        protocol, transport, _, _ = login()
        protocol.line_entered("/quit")
        self.assertEqual(sent(transport), [b"/quit"])
        protocol.line_entered("ignored")
        protocol.dataReceived(b"Goodbye!\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(protocol.finished))
        self.assertEqual(transport.value(), b"")

    def test_quit_timeout(self) -> None:
        """A server that does not hang up after C{/quit} is hung up on."""
        protocol, transport, _, clock = login()
        protocol.quit_requested()
        self.assertEqual(sent(transport), [b"/quit"])
        clock.advance(QUIT_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(protocol.finished))

    def test_server_gone(self) -> None:
        """A connection lost without C{/quit} is a failure."""
        protocol, _, _, clock = login()
        protocol.connectionLost(Failure(ConnectionLost()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "connection to the server lost")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_server_shutdown(self) -> None:
        """The server's shutdown notice makes the reason clear."""
        protocol, _, _, _ = login()
        protocol.dataReceived(b"*** Server shutting down ***\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "the server shut down")

    def test_input_end_sends_quit(self) -> None:
        """At the end of piped input the client sends C{/quit} after every line."""
        protocol, transport, _, _ = connect(name="alice", passcode="x")
        protocol.line_entered("hi")
        protocol.input_ended()
        protocol.dataReceived(GREETING + b"Username:\r\n" + WELCOME)
        self.assertEqual(sent(transport), [b"x", b"alice", b"hi", b"/quit"])

    def test_input_end_after_quit(self) -> None:
        """Input that said C{/quit} itself gets no second one."""
        protocol, transport, _, _ = login()
        protocol.line_entered("hi")
        protocol.line_entered("/QUIT see you")
        protocol.input_ended()
        self.assertEqual(sent(transport), [b"hi", b"/QUIT see you"])

    def test_pace(self) -> None:
        """A burst of input is spread out below the server's flood limit."""
        protocol, transport, _, clock = login(pace=(4.0, 3))
        for n in range(5):
            protocol.line_entered("line %d" % n)
        self.assertEqual(sent(transport), [b"line 0", b"line 1", b"line 2"])
        clock.advance(0.25)
        self.assertEqual(sent(transport), [b"line 3"])
        clock.advance(0.25)
        self.assertEqual(sent(transport), [b"line 4"])
        clock.advance(10)
        protocol.line_entered("later")
        self.assertEqual(sent(transport), [b"later"])

    def test_status(self) -> None:
        """Room and user count follow the server's lines."""
        protocol, _, ui, _ = login()
        protocol.dataReceived(b"Users in #lobby (2): alice, bob\r\n")
        protocol.dataReceived(b"[10:00:00] *** carol joined #lobby ***\r\n")
        self.assertEqual(protocol.status, Status("alice", "lobby", 3))
        self.assertEqual(ui.statuses[-1], Status("alice", "lobby", 3))


class TrackTests(SynchronousTestCase):
    """L{track} follows name, room and user count."""

    def test_welcome(self) -> None:
        """The welcome line names us and our room."""
        status = track(Status(), "Welcome, alice! You are in #lobby. Type /help for commands.")
        self.assertEqual(status, Status("alice", "lobby", None))

    def test_counts(self) -> None:
        """Users lines set the count; joins and leaves in our room change it."""
        status = Status("alice", "lobby", None)
        status = track(status, "Users in #lobby (3): alice, bob, carol")
        self.assertEqual(status.users, 3)
        status = track(status, "[10:30:15] *** dave joined #lobby ***")
        self.assertEqual(status.users, 4)
        status = track(status, "[10:30:15] *** dave left #lobby ***")
        status = track(status, "[10:30:16] *** bob quit (going home) ***")
        status = track(status, "[10:30:17] *** carol disconnected ***")
        self.assertEqual(status.users, 1)
        self.assertEqual(track(status, "[10:30:18] *** x left #lobby ***").users, 1)

    def test_join(self) -> None:
        """Moving rooms resets the count until the next Users line."""
        status = Status("alice", "lobby", 3)
        status = track(status, "You are now in #General.")
        self.assertEqual(status, Status("alice", "general", None))
        status = track(status, "[10:30:15] *** bob joined #general ***")
        self.assertIsNone(status.users)
        status = track(status, "Users in #general (2): alice, bob")
        self.assertEqual(status.users, 2)

    def test_other_lines(self) -> None:
        """Messages that look like notices, and other rooms' users, change nothing."""
        status = Status("alice", "lobby", 2)
        for line in [
            "[10:30:15] bob: *** eve joined #lobby ***",
            "Users in #general (9): a, b",
            "Users online (5): a, b, c, d, e",
            "[10:30:15] *** alice joined #lobby ***",
            "random text",
            "",
        ]:
            self.assertEqual(track(status, line), status, line)


class EchoTests(SynchronousTestCase):
    """L{echo_for}, L{is_quit} and L{line_kind}."""

    def test_echo(self) -> None:
        """Messages echo as the room sees them; commands do not echo."""
        self.assertEqual(echo_for("hello"), Echo("hello"))
        self.assertEqual(echo_for("\\/join x"), Echo("/join x"))
        self.assertEqual(echo_for("/me waves"), Echo("waves", action=True))
        for line in ["/join x", ":mytime", ":Msg bob hi", ":Users", "  ", "/me"]:
            self.assertIsNone(echo_for(line), line)

    def test_shortcuts_not_echoed(self) -> None:
        """The server shows what a shortcut said (C{You said: ...}); the client adds nothing."""
        for line in [":)", ":(", " :) ", ":MyTime", ":+1hr"]:
            self.assertIsNone(echo_for(line), line)

    def test_shortcut_lookalikes_echoed(self) -> None:
        """A line that only starts like a shortcut is a message, echoed as one."""
        for line in [":) hi", ":mytime please", ":(("]:
            self.assertEqual(echo_for(line), Echo(line))

    def test_is_quit(self) -> None:
        """C{/quit}, with a reason or in capitals, and C{:Exit} end the session."""
        for line in ["/quit", "/QUIT bye", ":Exit", " /quit "]:
            self.assertTrue(is_quit(line), line)
        for line in ["/quitter", "quit", "\\/quit"]:
            self.assertFalse(is_quit(line), line)

    def test_line_kind(self) -> None:
        """Errors, private messages, notices and actions are told apart."""
        self.assertEqual(line_kind("ERROR slow down"), "error")
        self.assertEqual(line_kind("[10:30:26] [PRIVATE] bob: hi"), "private")
        self.assertEqual(line_kind("[10:30:26] [PRIVATE to bob] hi"), "private")
        self.assertEqual(line_kind("[10:30:15] *** bob joined #lobby ***"), "notice")
        self.assertEqual(line_kind("*** Server shutting down ***"), "notice")
        self.assertEqual(line_kind("[10:30:15] * bob waves"), "action")
        self.assertEqual(line_kind("[2026-01-02 10:30:15] bob: hi"), "message")
        self.assertEqual(line_kind("Users in #lobby (1): bob"), "info")


class ScreenSizeTests(SynchronousTestCase):
    """A terminal that reports no size still gets a screen (issue 12 item 17)."""

    def test_reported_size_kept(self) -> None:
        self.assertEqual(usable_size(120, 40, {"COLUMNS": "10", "LINES": "5"}), (120, 40))

    def test_environment_then_default(self) -> None:
        """0 x 0 becomes $COLUMNS x $LINES, or 80 x 24 when they are missing or bad."""
        self.assertEqual(usable_size(0, 0, {"COLUMNS": "100", "LINES": "30"}), (100, 30))
        self.assertEqual(usable_size(0, 0, {}), (80, 24))
        self.assertEqual(usable_size(0, -1, {"COLUMNS": "0", "LINES": "x"}), (80, 24))
        self.assertEqual(usable_size(132, 0, {"LINES": " 50 "}), (132, 50))

    def test_screen_falls_back(self) -> None:
        """The screen the client draws on answers 80 x 24 where urwid's would say 0 x 0."""
        import urwid

        self.patch(urwid.display.raw.Screen, "get_cols_rows", lambda screen: (0, 0))
        self.patch(os, "environ", {})
        screen = SizedScreen()
        self.assertEqual(screen.get_cols_rows(), (80, 24))
        self.assertEqual(screen.maxrow, 24)
        self.patch(os, "environ", {"COLUMNS": "90", "LINES": "20"})
        self.assertEqual(SizedScreen().get_cols_rows(), (90, 20))


class OptionsTests(SynchronousTestCase):
    """L{parse_args} and the usage errors of L{main}."""

    def passcode_file(self, content: bytes) -> str:
        """A temporary file holding C{content}."""
        fd, path = tempfile.mkstemp(prefix="twisted-chat-test-")
        os.write(fd, content)
        os.close(fd)
        self.addCleanup(os.remove, path)
        return path

    def test_defaults(self) -> None:
        """Without options the client goes to 127.0.0.1:8080 in the clear."""
        self.assertEqual(parse_args([]), ClientConfig("127.0.0.1", 8080))

    def test_username_alias(self) -> None:
        """C{--username} is C{--name}."""
        self.assertEqual(parse_args(["--username", "bob"]).name, "bob")
        self.assertEqual(parse_args(["--name", "bob"]).name, "bob")

    def test_passcode_file(self) -> None:
        """One trailing newline of the passcode file is stripped."""
        config = parse_args(["--passcode-file", self.passcode_file(b"s3cret \n\n")])
        self.assertEqual(config.passcode, "s3cret \n")
        config = parse_args(["--passcode-file", self.passcode_file(b"s3cret\r\n")])
        self.assertEqual(config.passcode, "s3cret")

    def test_usage_errors(self) -> None:
        """Contradictory or invalid options are usage errors."""
        path = self.passcode_file(b"x")
        for argv in [
            ["--passcode", "x", "--passcode-file", path],
            ["--passcode-file", path + ".missing"],
            ["--ca", path],
            ["--port", "0"],
            ["--name", "no spaces"],
        ]:
            self.assertRaises(UsageError, parse_args, argv)

    def test_main_usage_error(self) -> None:
        """C{main} returns 2 for a bad command line, before connecting."""
        self.assertEqual(main(["--passcode", "x", "--passcode-file", "/dev/null"]), 2)
        self.assertEqual(main(["--port", "notanumber"]), 2)


def _urwid_or_client(name: str) -> bool:
    return name == "urwid" or name.startswith(("urwid.", "twisted_chat.client."))


def without_urwid(case: SynchronousTestCase) -> None:
    """
    Until C{case} ends, importing urwid fails as it does without the C{tui}
    extra, and the client's modules are forgotten so that they are imported
    again under that condition.
    """
    saved = {name: module for name, module in sys.modules.items() if _urwid_or_client(name)}
    for name in saved:
        del sys.modules[name]
    sys.modules["urwid"] = None  # type: ignore[assignment]

    def restore() -> None:
        for name in [name for name in sys.modules if _urwid_or_client(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        package = sys.modules["twisted_chat.client"]
        for name, module in saved.items():
            if name.startswith("twisted_chat.client."):
                setattr(package, name.rpartition(".")[2], module)

    case.addCleanup(restore)


class ChooseUITests(SynchronousTestCase):
    """L{choose_ui}: full screen on a terminal, plain otherwise or without urwid."""

    def test_plain_when_piped(self) -> None:
        """Input or output that is not a terminal gets plain mode, silently."""
        stderr = io.StringIO()
        ui = choose_ui(MemoryReactorClock(), ClientConfig(), False, stderr)
        self.assertIsInstance(ui, PlainUI)
        self.assertEqual(stderr.getvalue(), "")

    def test_plain_option(self) -> None:
        """C{--plain} gets plain mode even on a terminal, silently."""
        stderr = io.StringIO()
        ui = choose_ui(MemoryReactorClock(), ClientConfig(plain=True), True, stderr)
        self.assertIsInstance(ui, PlainUI)
        self.assertEqual(stderr.getvalue(), "")

    def test_terminal_without_urwid(self) -> None:
        """
        Without urwid the client still imports and runs; a terminal gets plain
        mode and one line on stderr saying how to get the full-screen one.
        """
        without_urwid(self)
        app = importlib.import_module("twisted_chat.client.app")
        plain = importlib.import_module("twisted_chat.client.plain")
        stderr = io.StringIO()
        ui = app.choose_ui(MemoryReactorClock(), ClientConfig(), True, stderr)
        self.assertIsInstance(ui, plain.PlainUI)
        self.assertEqual(
            stderr.getvalue(), "chat-client: urwid is not installed, so plain mode; %s\n" % TUI_HINT
        )
        self.assertIn("pip install 'twisted-chat[tui]'", stderr.getvalue())
        self.assertIsNone(sys.modules["urwid"])

    def test_without_urwid_piped(self) -> None:
        """Without urwid, piped input or output gets plain mode with nothing said."""
        without_urwid(self)
        app = importlib.import_module("twisted_chat.client.app")
        stderr = io.StringIO()
        app.choose_ui(MemoryReactorClock(), ClientConfig(), False, stderr)
        self.assertEqual(stderr.getvalue(), "")


class FakeEndpoint:
    """A client endpoint that connects to a L{StringTransport}, or fails."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.protocol: Any = None
        self.transport = StringTransport(peerAddress=SERVER)

    def connect(self, factory: Factory) -> Deferred[Protocol]:
        if self.error is not None:
            return fail(self.error)
        self.protocol = factory.buildProtocol(SERVER)
        self.protocol.makeConnection(self.transport)
        return succeed(self.protocol)


class RunClientTests(SynchronousTestCase):
    """L{run_client} turns how a session ended into an exit status."""

    def run_client(
        self, endpoint: FakeEndpoint, **config: Any
    ) -> tuple[Deferred[int], FakeUI, io.StringIO]:
        ui = FakeUI()
        stderr = io.StringIO()
        result = defer.ensureDeferred(
            run_client(MemoryReactorClock(), ClientConfig(**config), ui, endpoint, stderr)
        )
        return result, ui, stderr

    def test_refused(self) -> None:
        """An unreachable server: status 1 and one line on stderr."""
        result, ui, stderr = self.run_client(FakeEndpoint(ConnectionRefusedError()))
        self.assertEqual(self.successResultOf(result), 1)
        self.assertEqual(
            stderr.getvalue(), "chat-client: cannot connect to 127.0.0.1:8080: connection refused\n"
        )
        self.assertEqual(ui.stopped, 1)

    def test_quit(self) -> None:
        """A session that ends with C{Goodbye!}: status 0 and nothing on stderr."""
        endpoint = FakeEndpoint()
        result, ui, stderr = self.run_client(endpoint, name="alice", passcode="x")
        endpoint.protocol.dataReceived(GREETING + b"Username:\r\n" + WELCOME)
        ui.sink.line_entered("/quit")
        self.assertNoResult(result)
        endpoint.protocol.dataReceived(b"Goodbye!\r\n")
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(result), 0)
        self.assertEqual(stderr.getvalue(), "")
        self.assertEqual(ui.stopped, 1)

    def test_wrong_passcode(self) -> None:
        """A refused login: status 1 and the reason on one line."""
        endpoint = FakeEndpoint()
        result, _, stderr = self.run_client(endpoint, name="alice", passcode="y")
        endpoint.protocol.dataReceived(GREETING + b"ERROR wrong passcode\r\nPasscode:\r\n")
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(result), 1)
        self.assertEqual(stderr.getvalue(), "chat-client: login failed: wrong passcode\n")
