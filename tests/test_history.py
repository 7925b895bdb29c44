"""Tests for L{twisted_chat.history}."""

from __future__ import annotations

import os
import sqlite3

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.events import Entry
from twisted_chat.history import (
    SCHEMA_VERSION,
    HistoryError,
    MemoryHistory,
    SQLiteHistory,
)
from twisted_chat.interfaces import History

from .helpers import temp_dir


class HistoryContract:
    """What every L{History} must do; mixed into a TestCase per store."""

    clock: Clock

    def make(self) -> History:
        raise NotImplementedError

    def test_empty(self) -> None:
        self.assertEqual(self.make().recent("lobby", 10), [])

    def test_recent_in_order(self) -> None:
        """The newest C{limit} entries of the room, oldest first."""
        store = self.make()
        for i in range(30):
            store.append(Entry("lobby" if i % 2 else "dev", "alice", "m%d" % i, 1000.0 + i))
        recent = store.recent("lobby", 3)
        self.assertEqual([e.text for e in recent], ["m25", "m27", "m29"])
        self.assertEqual(recent[-1], Entry("lobby", "alice", "m29", 1029.0, False))

    def test_action_kept(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "waves", 5.0, True))
        self.assertTrue(store.recent("lobby", 1)[0].action)

    def test_limit_zero(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "x", 5.0))
        self.assertEqual(store.recent("lobby", 0), [])

    def test_unicode_round_trip(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "日本語 🎉 \ufffd", 5.0))
        self.assertEqual(store.recent("lobby", 1)[0].text, "日本語 🎉 \ufffd")


class MemoryHistoryTests(HistoryContract, SynchronousTestCase):
    """The contract for L{MemoryHistory}."""

    def make(self) -> History:
        return MemoryHistory()


class SQLiteHistoryTests(HistoryContract, SynchronousTestCase):
    """The contract for L{SQLiteHistory}, plus what only a database does."""

    def setUp(self) -> None:
        self.clock = Clock()

    def make(self, path: str = ":memory:") -> SQLiteHistory:
        store = SQLiteHistory(path, self.clock)
        self.addCleanup(store.close)
        return store

    def test_batched_per_turn(self) -> None:
        """Appends wait for the end of the reactor turn and go in one write."""
        path = os.path.join(temp_dir(self), "h.db")
        store = self.make(path)
        store.append(Entry("lobby", "a", "1", 1.0))
        store.append(Entry("lobby", "a", "2", 2.0))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        peek = sqlite3.connect(path)
        self.addCleanup(peek.close)
        self.assertEqual(peek.execute("SELECT count(*) FROM messages").fetchone(), (0,))
        self.clock.advance(0)
        self.assertEqual(peek.execute("SELECT count(*) FROM messages").fetchone(), (2,))

    def test_survives_reopen(self) -> None:
        """What was appended is there after closing and opening the file again."""
        path = os.path.join(temp_dir(self), "h.db")
        store = SQLiteHistory(path, self.clock)
        store.append(Entry("lobby", "alice", "remember me", 7.0))
        store.close()
        again = self.make(path)
        self.assertEqual(again.recent("lobby", 5), [Entry("lobby", "alice", "remember me", 7.0)])

    def test_schema_version_and_wal(self) -> None:
        path = os.path.join(temp_dir(self), "h.db")
        self.make(path)
        peek = sqlite3.connect(path)
        self.addCleanup(peek.close)
        self.assertEqual(peek.execute("SELECT version FROM schema_version").fetchall(),
                         [(SCHEMA_VERSION,)])
        self.assertEqual(peek.execute("PRAGMA journal_mode").fetchone(), ("wal",))

    def test_newer_schema_refused(self) -> None:
        path = os.path.join(temp_dir(self), "h.db")
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (99)")
        db.commit()
        db.close()
        error = self.assertRaises(HistoryError, SQLiteHistory, path, self.clock)
        self.assertIn("newer", str(error))

    def test_not_a_database(self) -> None:
        path = os.path.join(temp_dir(self), "h.db")
        with open(path, "wb") as f:
            f.write(b"this is not an sqlite file at all" * 100)
        error = self.assertRaises(HistoryError, SQLiteHistory, path, self.clock)
        self.assertIn(path, str(error))

    def test_missing_directory(self) -> None:
        path = os.path.join(temp_dir(self), "no", "such", "dir", "h.db")
        self.assertRaises(HistoryError, SQLiteHistory, path, self.clock)

    def test_failure_mid_run_falls_back_to_memory(self) -> None:
        """If writing fails, the error is logged and history goes on in memory."""
        store = self.make()
        store.append(Entry("lobby", "a", "before", 1.0))
        self.clock.advance(0)
        store._db.execute("DROP TABLE messages")  # the disk "fails"
        store.append(Entry("lobby", "a", "after", 2.0))
        self.clock.advance(0)
        self.assertEqual([e.text for e in store.recent("lobby", 5)], ["after"])
        self.assertEqual(len(self.flushLoggedErrors()), 0)
