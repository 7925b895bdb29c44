"""
Tests for the terminal interface L{twisted_chat.client.terminal}: the widget tree of
L{ChatView} driven with C{keypress} and C{render}, and L{TerminalUI} on
urwid's Twisted event loop with a fake screen and L{MemoryReactorClock}.
"""

from __future__ import annotations

import io
import time
from typing import Any

import urwid
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from urwid.display.common import BaseScreen

from twisted_chat.client.app import choose_ui
from twisted_chat.client.config import ClientConfig
from twisted_chat.client.protocol import ChatClientProtocol
from twisted_chat.client.status import Echo, Status
from twisted_chat.client.terminal import ChatView, TerminalUI

SIZE = (40, 8)
EPOCH = time.strftime("[%H:%M:%S]", time.localtime(0))  # local echo stamps use local time


class RecordingSink:
    """An L{InputSink} that records what the interface sends it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.quits = 0
        self.ended = 0

    def line_entered(self, text: str) -> None:
        self.lines.append(text)

    def input_ended(self) -> None:
        self.ended += 1

    def quit_requested(self) -> None:
        self.quits += 1


def rows(widget: urwid.Widget, size: tuple[int, int] = SIZE) -> list[str]:
    """The rendered rows of C{widget} as text, trailing blanks removed."""
    canvas = widget.render(size, focus=True)
    return [row.decode("utf-8").rstrip() for row in canvas.text]


def attributes(widget: urwid.Widget, size: tuple[int, int] = SIZE) -> list[list[tuple[Any, str]]]:
    """For each rendered row, its runs of (attribute, text)."""
    canvas = widget.render(size, focus=True)
    return [
        [(attr, text.decode("utf-8").rstrip()) for attr, _, text in row] for row in canvas.content()
    ]


def type_text(view: ChatView, text: str, size: tuple[int, int] = SIZE) -> None:
    """Press one key per character of C{text}."""
    for char in text:
        view.keypress(size, char)


class ChatViewTests(SynchronousTestCase):
    """L{ChatView}: what the person sees and types."""

    def setUp(self) -> None:
        urwid.set_encoding("utf8")
        self.sink = RecordingSink()
        self.view = ChatView(self.sink, server="127.0.0.1:8080", clock=lambda: 0.0)

    def test_typing_survives_incoming(self) -> None:
        """A half-typed line stays intact while messages arrive, and is sent whole."""
        type_text(self.view, "hello wor")
        for n in range(30):
            self.view.show("[10:00:%02d] bob: message %d" % (n, n))
            self.assertEqual(rows(self.view.widget)[-1], "> hello wor")
        type_text(self.view, "ld")
        self.view.keypress(SIZE, "enter")
        self.assertEqual(self.sink.lines, ["hello world"])
        self.assertEqual(rows(self.view.widget)[-1], ">")

    def test_newest_visible(self) -> None:
        """The message pane follows the newest line, with the status bar above the input."""
        for n in range(30):
            self.view.show("[10:00:00] bob: message %d" % n)
        screen = rows(self.view.widget)
        self.assertEqual(screen[5], "[10:00:00] bob: message 29")
        self.assertIn("127.0.0.1:8080", screen[6])
        self.assertEqual(len(screen), SIZE[1])

    def test_scroll_back(self) -> None:
        """Page up shows older lines and stays there while new ones arrive."""
        for n in range(30):
            self.view.show("line %d" % n)
        self.view.keypress(SIZE, "page up")
        self.view.keypress(SIZE, "page up")
        older = rows(self.view.widget)
        self.assertNotIn("line 29", older)
        self.view.show("line 30")
        self.assertEqual(rows(self.view.widget)[:6], older[:6])
        for _ in range(10):
            self.view.keypress(SIZE, "page down")
        self.assertEqual(rows(self.view.widget)[5], "line 30")

    def test_history(self) -> None:
        """Up and down walk through what was entered, keeping the draft."""
        for line in ["one", "two"]:
            type_text(self.view, line)
            self.view.keypress(SIZE, "enter")
        type_text(self.view, "dra")
        self.view.keypress(SIZE, "up")
        self.assertEqual(self.view.input.edit_text, "two")
        self.view.keypress(SIZE, "up")
        self.view.keypress(SIZE, "up")
        self.assertEqual(self.view.input.edit_text, "one")
        self.view.keypress(SIZE, "down")
        self.assertEqual(self.view.input.edit_text, "two")
        self.view.keypress(SIZE, "down")
        self.assertEqual(self.view.input.edit_text, "dra")

    def test_wide_characters(self) -> None:
        """CJK and emoji take two columns each and wrap without breaking rows."""
        self.view.show("[10:00:00] bob: 日本語 🎉 ok")
        self.assertEqual(rows(self.view.widget, (30, 6))[0], "[10:00:00] bob: 日本語 🎉 ok")
        screen = rows(self.view.widget, (20, 6))
        self.assertEqual(screen[:2], ["[10:00:00] bob: 日本", "語 🎉 ok"])
        type_text(self.view, "ça 🎉", (20, 6))
        self.assertEqual(rows(self.view.widget, (20, 6))[-1], "> ça 🎉")

    def test_resize(self) -> None:
        """The same view renders at any size, the input line always last."""
        type_text(self.view, "abc")
        self.view.show("[10:00:00] bob: something long enough to wrap around")
        for size in [(80, 24), (12, 4), (40, 8), (6, 3)]:
            screen = rows(self.view.widget, size)
            self.assertEqual(len(screen), size[1])
            self.assertEqual(screen[-1], "> abc")

    def test_colours(self) -> None:
        """Our name, private messages, notices and errors are coloured."""
        self.view.update_status(Status("alice", "lobby", 2))
        self.view.show("[10:00:00] alice: from me")
        self.view.show("[10:00:01] [PRIVATE] bob: psst")
        self.view.show("[10:00:02] *** carol joined #lobby ***")
        self.view.show("ERROR slow down")
        self.view.sent(Echo("typed"))
        self.view.sent(Echo("waves", action=True))
        runs = attributes(self.view.widget, (60, 9))
        self.assertEqual(runs[0][:2], [("stamp", "[10:00:00]"), ("own", "alice")])
        self.assertEqual(runs[1][1], ("private", "[PRIVATE] bob: psst"))
        self.assertEqual(runs[2][1][0], "notice")
        self.assertEqual(runs[3][0], ("error", "ERROR slow down"))
        self.assertEqual(runs[4][0:3], [("stamp", EPOCH), ("own", "alice"), (None, ": typed")])
        self.assertEqual(runs[5][1], ("action", "* alice waves"))

    def test_status_bar(self) -> None:
        """The status bar shows name, room, user count and server."""
        self.view.update_status(Status("alice", "general", 3))
        status = rows(self.view.widget, (80, 8))[6]
        self.assertIn("alice  #general  3 users  127.0.0.1:8080", status)
        attr, text = attributes(self.view.widget, (80, 8))[6][1]
        self.assertEqual(text, "alice")
        self.assertIn("status own", repr(attr))  # a LayeredAttr over "status"

    def test_ask_secret(self) -> None:
        """A passcode question masks what is typed and keeps it out of history."""
        asking = self.view.ask("Passcode:", True)
        type_text(self.view, "abc")
        self.assertEqual(rows(self.view.widget)[-1], "Passcode: ***")
        self.view.keypress(SIZE, "enter")
        self.assertEqual(self.successResultOf(asking), "abc")
        self.assertEqual(self.sink.lines, [])
        self.assertEqual(rows(self.view.widget)[-1], ">")
        self.view.keypress(SIZE, "up")
        self.assertEqual(self.view.input.edit_text, "")

    def test_ask_cancelled(self) -> None:
        """Cancelling a question restores the input line."""
        asking = self.view.ask("Username:", False)
        type_text(self.view, "bo")
        asking.cancel()
        self.failureResultOf(asking)
        self.assertEqual(rows(self.view.widget)[-1], ">")

    def test_quit_keys(self) -> None:
        """Ctrl-C quits; Ctrl-D quits on an empty line only."""
        self.view.keypress(SIZE, "ctrl c")
        self.assertEqual(self.sink.quits, 1)
        type_text(self.view, "x")
        self.view.keypress(SIZE, "ctrl d")
        self.assertEqual(self.sink.quits, 1)
        self.view.keypress(SIZE, "backspace")
        self.view.keypress(SIZE, "ctrl d")
        self.assertEqual(self.sink.quits, 2)


class FakeScreen(BaseScreen):
    """An urwid screen that records frames and lets the test press keys."""

    def __init__(self, size: tuple[int, int] = SIZE) -> None:
        super().__init__()
        self.size = size
        self.frames: list[list[str]] = []
        self.press: Any = None
        self.signal_keys: dict[str, Any] = {}

    def get_cols_rows(self) -> tuple[int, int]:
        return self.size

    def draw_screen(self, size: tuple[int, int], canvas: urwid.Canvas) -> None:
        self.frames.append([row.decode("utf-8").rstrip() for row in canvas.text])

    def hook_event_loop(self, event_loop: Any, callback: Any) -> None:
        self.press = callback

    def unhook_event_loop(self, event_loop: Any) -> None:
        self.press = None

    def tty_signal_keys(self, **keys: Any) -> None:
        self.signal_keys.update(keys)


class TerminalUITests(SynchronousTestCase):
    """L{TerminalUI} with the protocol, on urwid's Twisted event loop."""

    def setUp(self) -> None:
        urwid.set_encoding("utf8")
        self.reactor = MemoryReactorClock()
        self.screen = FakeScreen()
        self.ui = TerminalUI(self.reactor, server="127.0.0.1:8080", screen=self.screen)
        self.protocol = ChatClientProtocol(self.ui, ClientConfig(passcode="x"), self.reactor)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 8080))
        self.ui.start(self.protocol)
        self.addCleanup(self.ui.stop)
        self.protocol.makeConnection(self.transport)

    def settle(self) -> list[str]:
        """Run the reactor's due calls; return the last frame drawn."""
        self.reactor.advance(0)
        self.reactor.advance(0.01)
        return self.screen.frames[-1]

    def test_session(self) -> None:
        """Log in by typing a name, chat while messages arrive, leave with Ctrl-C."""
        self.assertTrue(self.screen.started)
        self.assertEqual(self.screen.signal_keys, {"intr": "undefined", "quit": "undefined"})
        self.protocol.dataReceived(b"Welcome to twisted-chat.\r\nPasscode:\r\nUsername:\r\n")
        self.assertEqual(self.transport.value(), b"x\r\n")
        self.assertEqual(self.settle()[-1], "Username:")
        self.screen.press(list("alice") + ["enter"], [])
        self.assertEqual(self.transport.value(), b"x\r\nalice\r\n")
        self.transport.clear()
        self.protocol.dataReceived(
            b"Welcome, alice! You are in #lobby. Type /help for commands.\r\n"
            b"Users in #lobby (2): alice, bob\r\n"
        )
        self.screen.press(list("typing"), [])
        self.protocol.dataReceived(b"[10:00:00] bob: \x1b[2Jhi \x1b]0;pwned\x07alice\r\n")
        frame = self.settle()
        self.assertEqual(frame[-1], "> typing")
        self.assertIn("[10:00:00] bob: hi alice", frame)
        self.assertIn("alice  #lobby  2 users", frame[-2])
        self.screen.press(["enter"], [])
        self.assertEqual(self.transport.value(), b"typing\r\n")
        self.transport.clear()
        self.screen.press(["ctrl c"], [])
        self.assertEqual(self.transport.value(), b"/quit\r\n")
        self.protocol.dataReceived(b"Goodbye!\r\n")
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(self.protocol.finished))
        self.successResultOf(self.ui.stop())
        self.assertFalse(self.screen.started)

    def test_resize(self) -> None:
        """After a window resize the next frame has the new size."""
        self.protocol.dataReceived(b"Welcome to twisted-chat.\r\n")
        self.screen.size = (20, 5)
        self.screen.press(["window resize"], [])
        frame = self.settle()
        self.assertEqual(len(frame), 5)
        self.assertTrue(all(len(row) <= 20 for row in frame))


class ChooseUITests(SynchronousTestCase):
    """L{choose_ui} with urwid installed."""

    def test_terminal(self) -> None:
        """A terminal gets the full-screen interface, with the server in its status bar."""
        stderr = io.StringIO()
        ui = choose_ui(MemoryReactorClock(), ClientConfig(port=6697, tls=True), True, stderr)
        self.assertIsInstance(ui, TerminalUI)
        assert isinstance(ui, TerminalUI)
        self.assertIn("127.0.0.1:6697 (TLS)", rows(ui.view.widget, (80, 4))[-2])
        self.assertEqual(stderr.getvalue(), "")
