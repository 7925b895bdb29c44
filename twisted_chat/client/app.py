"""
The console client: C{chat-client} and C{python -m twisted_chat.client}.

It logs in from its options (asking for what is missing), then relays lines
both ways.  On a terminal it runs a full-screen urwid interface on Twisted's
reactor; with piped input or output it is a plain line-in, line-out filter.

The pieces, from the wire outwards:

  - L{protocol.ChatClientProtocol}: a L{LineReceiver} with a small login
    state machine.  It knows nothing about terminals; it talks to a
    L{protocol.ChatUI}.
  - L{status.track}: a pure function that follows name, room and user count
    from the lines the server sends, for the status bar.
  - L{plain.PlainUI} (stdin/stdout through L{StandardIO}) and
    L{terminal.TerminalUI} (urwid, built around the widget tree of
    L{terminal.ChatView}): the two L{protocol.ChatUI}s.  Only the terminal
    imports urwid, the C{tui} extra; without it a terminal gets plain mode.
  - L{config.parse_args} reads the command line; L{run_client} connects the
    pieces; L{main} runs the reactor.

The client imports nothing from the server; only L{twisted_chat.text} and
L{twisted_chat.errors}.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.client.config import PROGRAM, ClientConfig, UsageError, parse_args
from twisted_chat.client.plain import PlainUI
from twisted_chat.client.protocol import QUIT_TIMEOUT, ChatClientProtocol, ChatUI, ClientError

CONNECT_TIMEOUT = 10.0
TUI_HINT = "for the full-screen interface: pip install 'twisted-chat[tui]'"

_log = Logger()


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

        def release(result: object) -> None:
            if not waiting.called:
                waiting.callback(None)

        protocol.finished.addBoth(release)
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


def _is_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def choose_ui(
    reactor: Any, config: ClientConfig, terminal: bool, stderr: IO[str] | None = None
) -> ChatUI:
    """
    The interface for C{config}: full-screen when C{terminal} (standard input
    and output are a terminal) and C{--plain} was not given, else plain.

    The full-screen interface needs urwid, the C{tui} extra; without it a
    terminal gets plain mode and one line on C{stderr} saying how to get it.
    """
    if config.plain or not terminal:
        return PlainUI(reactor)
    try:
        from twisted_chat.client.terminal import TerminalUI
    except ImportError as error:
        if (error.name or "").partition(".")[0] != "urwid":
            raise
        stderr = stderr if stderr is not None else sys.stderr
        stderr.write("%s: urwid is not installed, so plain mode; %s\n" % (PROGRAM, TUI_HINT))
        stderr.flush()
        return PlainUI(reactor)
    where = "%s:%d" % (config.host, config.port)
    return TerminalUI(reactor, server=where + (" (TLS)" if config.tls else ""))


def _start(reactor: Any, config: ClientConfig) -> Deferred[None]:
    ui = choose_ui(reactor, config, _is_terminal())

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
        react(_start, (config,))  # always raises SystemExit
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
