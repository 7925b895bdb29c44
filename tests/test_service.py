"""Tests for the service's graceful shutdown, L{twisted_chat.service}."""

from __future__ import annotations

import errno
import os
import subprocess
import traceback

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.events import Entry
from twisted_chat.service import CannotListen, ChatService, HistoryService, Listener
from twisted_chat.storage.history import HistoryError, MemoryHistory, SQLiteHistory

from .helpers import ROOT, World, fired, lines, temp_dir, twistd_command


class RecordingHistory(MemoryHistory):
    """A memory history that records being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


class ShutdownTests(SynchronousTestCase):
    """Stopping the service tells clients, waits for them, then closes history."""

    def setUp(self) -> None:
        self.history = RecordingHistory()
        self.world = World(history=self.history)
        self.service = ChatService(self.world.context, self.history, grace=3.0)
        self.service.startService()

    def test_tells_everyone_and_waits(self) -> None:
        alice, alice_out = self.world.login("alice")
        bob, bob_out = self.world.login("bob")
        pending, pending_out = self.world.connect()
        lines(alice_out)
        d = self.service.stopService()
        self.assertEqual(lines(alice_out), ["*** Server shutting down ***"])
        self.assertEqual(lines(bob_out), ["*** Server shutting down ***"])
        self.assertTrue(alice_out.disconnecting and bob_out.disconnecting)
        self.assertTrue(pending_out.disconnecting)
        self.assertNoResult(d)
        self.assertFalse(self.history.closed)
        alice.connectionLost(Failure(ConnectionError()))
        bob.connectionLost(Failure(ConnectionError()))
        self.successResultOf(d)
        self.assertTrue(self.history.closed)

    def test_gives_up_on_stuck_clients(self) -> None:
        """A client that never goes does not hold the server up past the grace period."""
        self.world.login("stuck")
        d = self.service.stopService()
        self.assertNoResult(d)
        self.world.clock.advance(3)
        self.successResultOf(d)
        self.assertTrue(self.history.closed)

    def test_nobody_online(self) -> None:
        self.successResultOf(self.service.stopService())
        self.assertTrue(self.history.closed)
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_refusal_summary_logged(self) -> None:
        """Refusals counted since the last log line are logged at shutdown, no timer left."""
        limits = self.world.context.limits
        limits.max_clients = 0
        for host in ("a", "b", "b"):
            limits.admit(host)
        self.assertEqual(len(self.world.clock.getDelayedCalls()), 1)
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.successResultOf(self.service.stopService())
        self.assertIn("refused 2 connections from 1 address", formatEvent(logged[0]))
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_history_written_before_close(self) -> None:
        """Closing the store is the last step, after clients are gone."""
        self.history.append(Entry("lobby", "a", "b", 1.0))
        self.successResultOf(self.service.stopService())
        self.assertEqual(len(fired(self.history.recent("lobby", 5))), 1)


class FailingEndpoint:
    """An endpoint whose listen fails with C{error}."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def listen(self, factory: object) -> Deferred[object]:
        return fail(self.error)


class ListenerTests(SynchronousTestCase):
    """A port that cannot be listened on stops start-up with one line."""

    def start(self, error: Exception, where: str = "8080") -> CannotListen:
        listener = Listener(FailingEndpoint(error), Factory(), "line protocol", where=where)
        raised = self.assertRaises(CannotListen, listener.privilegedStartService)
        self.assertIsInstance(raised, SystemExit)  # twistd -n: the line, exit 1
        self.assertIsInstance(raised, Exception)  # a daemon's twistd reports it to the parent
        return raised

    def test_in_use(self) -> None:
        error = CannotListenError("", 8080, OSError(errno.EADDRINUSE, "Address already in use"))
        raised = self.start(error)
        self.assertEqual(str(raised), "twistd chat: cannot listen on 8080: address already in use")
        # what a daemonizing twistd sends its parent fits its 100 bytes
        line = traceback.format_exception_only(CannotListen, raised)[-1].strip()
        self.assertEqual(line, "CannotListen: " + str(raised))

    def test_permission(self) -> None:
        error = CannotListenError("", 80, OSError(errno.EACCES, "Permission denied"))
        self.assertEqual(str(self.start(error, "80")), "twistd chat: cannot listen on 80:"
                         " permission denied (ports below 1024 need root)")

    def test_other(self) -> None:
        self.assertEqual(str(self.start(ValueError("No such thing"), "unix:/x")),
                         "twistd chat: cannot listen on unix:/x: no such thing")

    def test_reports_address(self) -> None:
        """The listened callback gets the address (the web page's URL is built from it)."""
        from twisted.internet.endpoints import TCP4ServerEndpoint
        from twisted.internet.testing import MemoryReactor

        seen: list[object] = []
        reactor = MemoryReactor()
        listener = Listener(TCP4ServerEndpoint(reactor, 8081, interface="127.0.0.1"), Factory(),
                            "web", listened=seen.append)
        listener.privilegedStartService()
        self.assertEqual([a.port for a in seen], [8081])


class OpeningHistory(MemoryHistory):
    """A memory history that records being opened and closed, in order."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def open(self) -> None:
        self.calls.append("open")

    def close(self) -> None:
        self.calls.append("close")


class HistoryServiceTests(SynchronousTestCase):
    """The store is opened when the service starts (after twistd forks), closed last."""

    def test_opened_at_start_closed_at_stop(self) -> None:
        calls: list[str] = []
        history = OpeningHistory(calls)
        world = World(history=history)
        service = ChatService(world.context, history, grace=3.0)
        self.assertEqual(calls, [])  # building opens nothing
        service.startService()
        self.assertEqual(calls, ["open"])
        alice, _ = world.login("alice")
        d = service.stopService()
        self.assertEqual(calls, ["open"])  # not before the clients are gone
        alice.connectionLost(Failure(ConnectionError()))
        self.successResultOf(d)
        self.assertEqual(calls, ["open", "close"])

    def test_sqlite_opened_by_the_service(self) -> None:
        path = os.path.join(temp_dir(self), "chat.db")
        world = World()
        store = SQLiteHistory(path, world.clock, connect=False)
        store.check()  # what build() does before twistd forks: nothing stays open
        self.assertFalse(store.opened)
        service = HistoryService(store)
        service.startService()
        self.assertTrue(store.opened)
        service.stopService()
        self.assertTrue(store._closed)

    def test_open_fails_at_start(self) -> None:
        """A file that went bad between check and start: the start fails (twistd says so)."""
        directory = temp_dir(self)
        path = os.path.join(directory, "chat.db")
        world = World()
        store = SQLiteHistory(path, world.clock, connect=False)
        with open(path, "w") as f:
            f.write("not a database " * 100)
        self.assertRaises(HistoryError, HistoryService(store).startService)


@pytest.mark.e2e  # starts twistd
class RefusedAtStartTests(SynchronousTestCase):
    """A database path that cannot work stops twistd before it forks: one line, exit 1."""

    def start(self, db: str) -> tuple[int, str]:
        directory = temp_dir(self)
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            twistd_command() + ["--pidfile=twistd.pid", "--logfile=twistd.log", "chat",
                                "--db", db, "--port", "tcp:0:interface=127.0.0.1"],
            cwd=directory, env=env, capture_output=True, timeout=60)
        self.assertFalse(os.path.exists(os.path.join(directory, "twistd.pid")))
        return result.returncode, (result.stdout + result.stderr).decode()

    def test_missing_directory_daemon(self) -> None:
        missing = os.path.join(temp_dir(self), "no", "such", "chat.db")
        code, output = self.start(missing)
        self.assertEqual(code, 1, output)
        self.assertIn("twistd chat: cannot use history database %s: unable to open database file"
                      % missing, output)
        self.assertNotIn("Traceback", output)

    def test_not_a_database_daemon(self) -> None:
        path = os.path.join(temp_dir(self), "chat.db")
        with open(path, "w") as f:
            f.write("not a database " * 100)
        code, output = self.start(path)
        self.assertEqual(code, 1, output)
        self.assertIn("twistd chat: cannot use history database %s: file is not a database"
                      % path, output)
        self.assertNotIn("Traceback", output)
