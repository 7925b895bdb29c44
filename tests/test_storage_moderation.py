"""Tests for L{twisted_chat.storage.moderation}: the state and the log survive a restart."""

from __future__ import annotations

import os
import sqlite3

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.moderation import Change, Moderation
from twisted_chat.storage.moderation import (
    MemoryModeration,
    ModerationError,
    SQLiteModeration,
    open_moderation,
)

from .helpers import temp_dir

NOW = 1_700_000_000.0


def fill(moderation: Moderation) -> None:
    """One of everything, and some of it undone."""
    for change in [
        Change("claim", "den", "Alice", "alice", when=NOW),
        Change("op", "den", "Bob", "alice", when=NOW),
        Change("op", "den", "carol", "alice", when=NOW),
        Change("deop", "den", "carol", "alice", when=NOW),
        Change("topic", "den", "", "alice", None, "dragons", NOW),
        Change("ban", "den", "troll", "alice", NOW + 600, "spam", NOW),
        Change("ban", "den", "sock", "alice", None, "", NOW),
        Change("unban", "den", "sock", "alice", when=NOW),
        Change("mute", "den", "198.51.100.0/24", "alice", None, "", NOW),
        Change("ban", None, "203.0.113.7", "root", None, "flood", NOW),
        Change("mute", None, "eve", "root", NOW + 60, "", NOW),
        Change("topic", "open", "", "bob", None, "temporary", NOW),
        Change("forget", "open", when=NOW),
        Change("kick", "den", "troll", "alice", None, "bye", NOW),
    ]:
        moderation.apply(change)


class StoreTests(SynchronousTestCase):
    """Both stores keep the same state and log."""

    def check_reload(self, first: object, second: object) -> None:
        clock = Clock()
        clock.advance(NOW)
        moderation = Moderation(clock, first)  # type: ignore[arg-type]
        moderation.load()
        fill(moderation)
        moderation.stop()
        again = Moderation(clock, second)  # type: ignore[arg-type]
        again.load()
        self.assertEqual(again.owner("den"), "alice")
        self.assertEqual(again.ops("den"), ["alice", "bob"])
        topic = again.topic("den")
        assert topic is not None
        self.assertEqual((topic.text, topic.by, topic.when), ("dragons", "alice", NOW))
        self.assertIsNone(again.topic("open"))
        self.assertEqual([(b.target, b.until, b.reason) for b in again.bans("den")],
                         [("troll", NOW + 600, "spam")])
        self.assertEqual([b.target for b in again.mutes("den")], ["198.51.100.0/24"])
        self.assertEqual([b.target for b in again.bans(None)], ["203.0.113.7"])
        self.assertEqual([b.target for b in again.mutes(None)], ["eve"])
        self.assertEqual((again.ban_count, again.mute_count), (2, 2))
        log = again.modlog(100)
        self.assertEqual([c.kind for c in log][-3:], ["mute", "topic", "kick"])
        self.assertNotIn("forget", [c.kind for c in log])
        self.assertEqual(log[-1], Change("kick", "den", "troll", "alice", None, "bye", NOW))
        self.assertEqual(len(again.modlog(2)), 2)
        # the expiries still run, on the loaded timer
        clock.advance(600)
        self.assertEqual(again.bans("den"), [])
        self.assertEqual(again.mutes(None), [])
        again.stop()
        third = Moderation(clock, second)  # type: ignore[arg-type]
        third.load()
        self.assertEqual(third.bans("den"), [])
        self.assertEqual([c.reason for c in third.modlog(2)], ["expired", "expired"])
        third.stop()

    def test_memory(self) -> None:
        store = MemoryModeration()
        self.check_reload(store, store)

    def test_sqlite(self) -> None:
        path = os.path.join(temp_dir(self), "chat.db")
        self.check_reload(SQLiteModeration(path), SQLiteModeration(path))
        with sqlite3.connect(path) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.assertTrue({"rooms", "room_ops", "bans", "mutes", "modlog"} <= tables)

    def test_expired_while_stopped(self) -> None:
        """A ban that ran out while the server was down is lifted at start."""
        path = os.path.join(temp_dir(self), "chat.db")
        clock = Clock()
        clock.advance(NOW)
        moderation = Moderation(clock, SQLiteModeration(path))
        moderation.apply(Change("ban", "den", "troll", "alice", NOW + 60, "", NOW))
        moderation.stop()
        clock.advance(3600)
        again = Moderation(clock, SQLiteModeration(path))
        again.load()
        clock.advance(0)
        self.assertEqual(again.bans("den"), [])
        again.stop()

    def test_bad_file(self) -> None:
        path = os.path.join(temp_dir(self), "not-a-db")
        with open(path, "wb") as f:
            f.write(b"this is not SQLite" * 100)
        error = self.assertRaises(ModerationError, SQLiteModeration(path).check)
        self.assertIn(path, str(error))

    def test_open(self) -> None:
        self.assertIsInstance(open_moderation(":memory:"), MemoryModeration)
        self.assertIsInstance(open_moderation("x.db"), SQLiteModeration)

    def test_write_failure_logged_not_raised(self) -> None:
        """A failed write is logged; the change is not lost from memory, nothing raises."""
        path = os.path.join(temp_dir(self), "chat.db")
        store = SQLiteModeration(path)
        store._connect().execute("DROP TABLE bans")  # a broken file, as the reader sees it
        clock = Clock()
        moderation = Moderation(clock, store)
        moderation.apply(Change("ban", "den", "troll", "alice", None, "", NOW))
        self.assertEqual(len(self.flushLoggedErrors(ModerationError)), 1)
        self.assertEqual([b.target for b in moderation.bans("den")], ["troll"])
        self.assertEqual(store.modlog(5), [])  # the transaction was rolled back whole
        store.close()
