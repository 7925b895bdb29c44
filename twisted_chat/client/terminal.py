"""
Interactive mode: the full-screen urwid interface on Twisted's reactor.

L{ChatView} is the widget tree and what its keys do (no main loop, so tests
drive it directly); L{TerminalUI} runs it on urwid's Twisted event loop.
This is the only module of the client that imports urwid (the C{tui} extra).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urwid
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from typing_extensions import override

from twisted_chat.client.status import STAMP, Echo, Status, line_kind
from twisted_chat.text import clean

if TYPE_CHECKING:
    from twisted_chat.client.protocol import InputSink

SCROLLBACK = 5000
"""Lines the terminal interface keeps."""

_SPEAKER = re.compile(r"(?P<name>[A-Za-z0-9_.\-]{1,20}): ")

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
    stamped = STAMP.match(line)
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


if TYPE_CHECKING:
    # urwid >= 3 types Frame as generic; subscripting it at run time would
    # break urwid 2.6.
    _Frame = urwid.Frame[urwid.ListBox[int], None, urwid.Pile]
else:
    _Frame = urwid.Frame


class _ChatFrame(_Frame):
    """The top widget: a L{urwid.Frame} whose keys L{ChatView} handles."""

    def __init__(self, view: ChatView, body: urwid.ListBox[int], footer: urwid.Pile) -> None:
        """@param view: handles every key."""
        super().__init__(body, footer=footer, focus_part="footer")
        self._view = view

    @override
    def keypress(  # type: ignore[override]  # a box widget: size is (cols, rows), as in Frame
        self, size: tuple[int, int], key: str
    ) -> str | None:
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
        self._walker: urwid.SimpleFocusListWalker[urwid.Text] = urwid.SimpleFocusListWalker([])
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
        focus = self._walker.focus
        return not self._walker or focus is None or focus >= len(self._walker) - 1

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
        if text.strip() and (not self._history or self._history[-1] != text):
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


# The size used when the terminal reports none and $COLUMNS/$LINES do not say.
DEFAULT_SIZE = (80, 24)


def usable_size(cols: int, rows: int, environ: Any = None) -> tuple[int, int]:
    """
    C{(cols, rows)} as the terminal reported them, each one that is not a
    positive number replaced by C{$COLUMNS} / C{$LINES}, or else 80 x 24.
    Serial consoles, C{docker exec} without a size and bare ptys report
    0 x 0, and urwid would draw nothing.
    """
    if environ is None:
        environ = os.environ

    def pick(value: int, name: str, default: int) -> int:
        if value > 0:
            return value
        text = environ.get(name, "").strip()
        return int(text) if text.isdigit() and int(text) > 0 else default

    return pick(cols, "COLUMNS", DEFAULT_SIZE[0]), pick(rows, "LINES", DEFAULT_SIZE[1])


class SizedScreen(urwid.display.raw.Screen):
    """The raw terminal screen, with a usable size when the terminal reports none."""

    def get_cols_rows(self) -> tuple[int, int]:
        cols, rows = usable_size(*super().get_cols_rows())
        self.maxrow = rows  # urwid's raw screen keeps the row count it drew for
        return cols, rows


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
        screen = self._screen if self._screen is not None else SizedScreen()
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
