"""
Tests for L{twisted_chat.fired} and the login's use of it: Deferreds that
fired already are read directly; the rest go the Deferred way.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.server import _reads_at_once
from twisted_chat.fired import NOT_YET, result_now
from twisted_chat.storage.history import MemoryHistory


class ResultNowTests(SynchronousTestCase):
    def test_fired_value(self) -> None:
        self.assertEqual(result_now(succeed(3)), 3)
        self.assertIsNone(result_now(succeed(None)))

    def test_not_fired(self) -> None:
        self.assertIs(result_now(Deferred()), NOT_YET)

    def test_failure_is_left_to_errbacks(self) -> None:
        d: Deferred[int] = fail(ValueError("no"))
        self.assertIs(result_now(d), NOT_YET)
        self.failureResultOf(d, ValueError)  # still there for the Deferred way

    def test_paused(self) -> None:
        """A Deferred waiting on another Deferred has no result yet."""
        inner: Deferred[int] = Deferred()
        d = succeed(1)
        d.addCallback(lambda _: inner)
        self.assertIs(result_now(d), NOT_YET)
        inner.callback(2)
        self.assertEqual(result_now(d), 2)


class ReadsAtOnceTests(SynchronousTestCase):
    def test_memory_history(self) -> None:
        history = MemoryHistory()
        self.assertEqual(_reads_at_once(history), history.recent_now)

    def test_overridden_recent(self) -> None:
        """A store whose recent() is its own (it may answer later) is read through it."""

        class Later(MemoryHistory):
            def recent(self, room: str, limit: int) -> Deferred[list]:  # type: ignore[type-arg]
                return Deferred()

        self.assertIsNone(_reads_at_once(Later()))

    def test_no_recent_now(self) -> None:
        self.assertIsNone(_reads_at_once(object()))  # type: ignore[arg-type]
