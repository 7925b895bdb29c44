"""
The text log observer twistd gets from C{twistd -n chat}
(L{twisted_chat.logs.TurnTextObserver}): twistd's own lines, written once
per reactor turn, and nothing lost when the server stops.
"""

from __future__ import annotations

import io
import signal
import threading
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEventAsClassicLogText
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import LineClient, ServerProcess
from twisted_chat.logs import TurnTextObserver, twistd_logs_to_stdout


class FakeReactor(Clock):
    """A clock that says whether it runs and keeps its system event triggers."""

    def __init__(self) -> None:
        super().__init__()
        self.running = True
        self.triggers: list[tuple[str, str, Any]] = []

    def addSystemEventTrigger(self, phase: str, event: str, f: Any) -> None:  # noqa: N802
        self.triggers.append((phase, event, f))

    def fire(self, phase: str, event: str) -> None:
        for p, e, f in self.triggers:
            if (p, e) == (phase, event):
                f()


class CountingFile(io.StringIO):
    """A text file that counts its writes and flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


def event(log_format: str | None, when: float = 1700000000.25, **fields: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"log_time": when, "log_level": LogLevel.info,
                         "log_namespace": "twisted_chat.session.session.ChatSession"}
    if log_format is not None:
        e["log_format"] = log_format
    e.update(fields)
    return e


class TurnTextObserverTests(SynchronousTestCase):

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.out = CountingFile()
        self.exits: list[Any] = []
        self.observer = TurnTextObserver(self.out, self.reactor, at_exit=self.exits.append)

    def test_same_lines_as_twistd(self) -> None:
        """Every kind of event is written as twistd's own text observer writes it."""
        failure = Failure(ZeroDivisionError("division by zero"))
        events = [
            event("{name} logged in from {peer}", name="alice", peer="127.0.0.1:5000"),
            event("{name} logged in from {peer}", when=1700000001.9999999,
                  name="bob", peer="127.0.0.1:5001"),
            event("room #{room} created by {name}", room="x", name=3),
            event("two\nlines {a!r} {b:>4} {c.real}", a="q", b=7, c=2),
            event("missing {field}"),
            event("{{literal}} braces"),
            event(None),
            event("", ),
            event("system given", log_system="-"),
            event("no level", log_level=None),
            event("a failure in {what}", what="login", log_failure=failure),
            {"log_format": "no time, no namespace"},
        ]
        for e in events:
            self.observer(e)
        self.reactor.advance(0)
        expected = "".join(text for text in map(formatEventAsClassicLogText, events) if text)
        self.assertEqual(self.out.getvalue(), expected)

    def test_once_per_turn(self) -> None:
        """The lines of one reactor turn are written (and flushed) together, at its end."""
        for i in range(5):
            self.observer(event("{name} logged in", name="u%d" % i))
        self.assertEqual(self.out.getvalue(), "")
        self.reactor.advance(0)
        self.assertEqual(self.out.getvalue().count("logged in"), 5)
        self.assertEqual((self.out.writes, self.out.flushes), (1, 1))

    def test_line_logged_while_logging(self) -> None:
        """
        A line logged while the observer handles another (a signal handler,
        such as twistd's SIGTERM, runs in the reactor's thread between any
        two bytecodes) is kept, and does not hang the process.
        """
        import threading

        written: list[str] = []

        def run() -> None:
            reactor = FakeReactor()
            observer = TurnTextObserver(self.out, reactor, at_exit=self.exits.append)
            plain_call_later = reactor.callLater

            def call_later(delay: float, f: Any, *args: Any) -> Any:
                if not written:  # "the signal": inside the observer's locked part
                    written.append("nested")
                    observer(event("Received SIGTERM, shutting down."))
                return plain_call_later(delay, f, *args)

            reactor.callLater = call_later  # type: ignore[method-assign]
            observer(event("{name} left: disconnected", name="u1"))
            reactor.advance(0)
            written.append(self.out.getvalue())

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(10)
        self.assertFalse(thread.is_alive(), "the observer deadlocked")
        self.assertIn("u1 left: disconnected", written[-1])
        self.assertIn("Received SIGTERM", written[-1])

    def test_shutdown_writes_the_rest(self) -> None:
        """What the last turn logged is written when the reactor shuts down."""
        self.observer(event("server shutting down; closing {count} sessions", count=3))
        self.assertEqual(self.out.getvalue(), "")
        self.reactor.fire("after", "shutdown")
        self.assertIn("closing 3 sessions", self.out.getvalue())

    def test_at_exit_writes_the_rest(self) -> None:
        """A line logged after the shutdown trigger is written at exit."""
        self.reactor.fire("after", "shutdown")
        self.observer(event("late"))
        self.assertEqual(self.out.getvalue(), "")
        [flush] = self.exits
        flush()
        self.assertIn("late", self.out.getvalue())

    def test_not_running_writes_at_once(self) -> None:
        """Before the reactor runs and after it stopped, each line is written at once."""
        self.reactor.running = False
        self.observer(event("Main loop terminated."))
        self.assertIn("Main loop terminated.", self.out.getvalue())
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_failure_writes_at_once(self) -> None:
        """A failure is written at once, after what was gathered before it."""
        self.observer(event("first"))
        self.observer(event("it broke", log_failure=Failure(ValueError("x"))))
        text = self.out.getvalue()
        self.assertLess(text.index("first"), text.index("it broke"))
        self.assertIn("ValueError", text)

    def test_logged_during_a_flush(self) -> None:
        """
        A line logged while a flush writes (twistd's SIGTERM handler runs in
        the middle of one) is written by that flush, without waiting for
        itself; it once deadlocked the server on SIGTERM.
        """
        observer, reentered = self.observer, []

        class SignalDuringWrite(CountingFile):
            def write(self, text: str) -> int:
                if not reentered:
                    reentered.append(True)
                    observer(event("Received SIGTERM, shutting down."))
                return super().write(text)

        observer._out = out = SignalDuringWrite()
        self.reactor.running = True
        observer(event("{name} logged in from {peer}", name="alice", peer="127.0.0.1:5000"))
        # on a thread with a bound: the old lock made this wait for itself for ever
        flusher = threading.Thread(target=observer.flush, daemon=True)
        flusher.start()
        flusher.join(5)
        self.assertFalse(flusher.is_alive(), "the flush waited for itself")
        written = out.getvalue().splitlines()
        self.assertEqual(len(written), 2, written)
        self.assertTrue(written[0].endswith("alice logged in from 127.0.0.1:5000"), written)
        self.assertTrue(written[1].endswith("Received SIGTERM, shutting down."), written)

    def test_time_formatted_once_a_second(self) -> None:
        """Each second's stamp is formatted once, and the next second gets its own."""
        self.observer(event("a", when=1700000000.1))
        self.observer(event("b", when=1700000000.9))
        self.observer(event("c", when=1700000001.0))
        self.reactor.advance(0)
        stamps = [line.split(" ")[0] for line in self.out.getvalue().splitlines()]
        self.assertEqual(stamps[0], stamps[1])
        self.assertNotEqual(stamps[1], stamps[2])

    def test_which_twistd_runs(self) -> None:
        """Only C{twistd -n} logging to standard output with its own observer gets ours."""
        base = {"nodaemon": True, "logger": None, "syslog": False, "logfile": ""}
        self.assertTrue(twistd_logs_to_stdout(base))
        self.assertTrue(twistd_logs_to_stdout({**base, "logfile": "-"}))
        self.assertFalse(twistd_logs_to_stdout({**base, "nodaemon": False}))
        self.assertFalse(twistd_logs_to_stdout({**base, "logfile": "chat.log"}))
        self.assertFalse(twistd_logs_to_stdout({**base, "logger": "x.y"}))
        self.assertFalse(twistd_logs_to_stdout({**base, "syslog": True}))
        self.assertFalse(twistd_logs_to_stdout(None))


@pytest.mark.e2e
class StopLosesNothingTests(SynchronousTestCase):

    def test_sigterm(self) -> None:
        """
        Every login, the shutdown line and twistd's last lines are in the log
        of a server stopped with SIGTERM right after the logins.
        """
        server = ServerProcess(self)
        clients = [LineClient(server.port) for _ in range(12)]
        for i, client in enumerate(clients):
            client.login("u%d" % i)
        self.assertEqual(server.stop(signal.SIGTERM), -signal.SIGTERM)
        for client in clients:
            client.close()
        output = server.output()
        for i in range(12):
            self.assertIn("u%d logged in from 127.0.0.1:" % i, output)
        self.assertIn("server shutting down; closing 12 sessions", output)
        self.assertIn("Main loop terminated.", output)
        self.assertTrue(output.rstrip().endswith("Server Shut Down."), output[-500:])
