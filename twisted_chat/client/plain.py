"""
Plain mode: lines in, lines out, through L{StandardIO}.  The mode for piped
input or output and for C{--plain}; it needs nothing beyond Twisted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from twisted_chat.client.status import Echo, Status
from twisted_chat.text import decode

if TYPE_CHECKING:
    from twisted_chat.client.protocol import InputSink


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
        # mypy reads the Windows StandardIO of twisted.internet.stdio, which
        # takes no descriptors; the one chosen at run time here does.
        self._stdio = StandardIO(  # type: ignore[call-arg]
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
