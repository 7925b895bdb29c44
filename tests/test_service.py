"""Tests for the service's graceful shutdown, L{twisted_chat.service}."""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.events import Entry
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.service import ChatService

from .helpers import World, fired, lines


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

    def test_history_written_before_close(self) -> None:
        """Closing the store is the last step, after clients are gone."""
        self.history.append(Entry("lobby", "a", "b", 1.0))
        self.successResultOf(self.service.stopService())
        self.assertEqual(len(fired(self.history.recent("lobby", 5))), 1)
