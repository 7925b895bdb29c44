"""Tests for L{twisted_chat.storage.history}."""

from __future__ import annotations

import os
import sqlite3

import pytest
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.events import Entry
from twisted_chat.interfaces import History
from twisted_chat.storage import history
from twisted_chat.storage.history import (
    FLUSH_DELAY,
    GIVE_UP_AFTER,
    INDEX_BUSY_LIMIT,
    MIGRATIONS,
    RETRY_DELAY,
    SCHEMA_VERSION,
    WATCH_INTERVAL,
    HistoryError,
    MemoryHistory,
    SearchTooSlow,
    SearchUnavailable,
    SQLiteHistory,
)

from .helpers import fired, temp_dir


def flush_calls(clock: Clock, store: SQLiteHistory) -> list[IDelayedCall]:
    """What C{store} has scheduled on C{clock}, but its file watcher (always there)."""
    return [call for call in clock.getDelayedCalls() if call is not store._watching]


class HistoryContract:
    """What every L{History} must do; mixed into a TestCase per store."""

    clock: Clock

    def make(self) -> History:
        raise NotImplementedError

    def test_empty(self) -> None:
        self.assertEqual(fired(self.make().recent("lobby", 10)), [])

    def test_recent_in_order(self) -> None:
        """The newest C{limit} entries of the room, oldest first."""
        store = self.make()
        for i in range(30):
            store.append(Entry("lobby" if i % 2 else "dev", "alice", "m%d" % i, 1000.0 + i))
        recent = fired(store.recent("lobby", 3))
        self.assertEqual([e.text for e in recent], ["m25", "m27", "m29"])
        self.assertEqual(recent[-1], Entry("lobby", "alice", "m29", 1029.0, False))

    def test_action_kept(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "waves", 5.0, True))
        self.assertTrue(fired(store.recent("lobby", 1))[0].action)

    def test_limit_zero(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "x", 5.0))
        self.assertEqual(fired(store.recent("lobby", 0)), [])

    def test_unicode_round_trip(self) -> None:
        store = self.make()
        store.append(Entry("lobby", "bob", "日本語 🎉 \ufffd", 5.0))
        self.assertEqual(fired(store.recent("lobby", 1))[0].text, "日本語 🎉 \ufffd")

    # -- search -------------------------------------------------------------

    def filled(self) -> History:
        store = self.make()
        texts = [
            "Deploy tonight after lunch",
            "the deployment failed",
            "lunch?",
            "café crème at noon",
            "Ship it: deploy v2.0 -- now",
            "don't deploy on fridays",
            "private_thing in snake_case",
        ]
        for i, text in enumerate(texts):
            store.append(Entry("lobby", "alice", text, 100.0 + i))
            store.append(Entry("dev", "bob", "deploy in dev %d" % i, 100.5 + i))
        return store

    def found(self, store: History, words: str, limit: int = 20) -> list[str]:
        return [e.text for e in fired(store.search("lobby", words, limit))]

    def test_search_room_only_oldest_first(self) -> None:
        """Matches come from the room asked about, oldest first."""
        self.assertEqual(self.found(self.filled(), "deploy"), [
            "Deploy tonight after lunch",
            "the deployment failed",
            "Ship it: deploy v2.0 -- now",
            "don't deploy on fridays",
        ])

    def test_search_newest_limit(self) -> None:
        """With more matches than C{limit}, the newest ones."""
        self.assertEqual(self.found(self.filled(), "deploy", 2),
                         ["Ship it: deploy v2.0 -- now", "don't deploy on fridays"])

    def test_search_every_word_case_insensitive(self) -> None:
        self.assertEqual(self.found(self.filled(), "LUNCH deploy"), ["Deploy tonight after lunch"])

    def test_search_prefix(self) -> None:
        """Each word matches as the start of a word, not inside one."""
        store = self.filled()
        self.assertEqual(self.found(store, "deployme"), ["the deployment failed"])
        self.assertEqual(self.found(store, "ploy"), [])

    def test_search_diacritics_folded(self) -> None:
        store = self.filled()
        self.assertEqual(self.found(store, "CAFE creme"), ["café crème at noon"])
        self.assertEqual(self.found(store, "crème"), ["café crème at noon"])

    def test_search_punctuated_words(self) -> None:
        """Words with punctuation match the same letters and digits in order."""
        store = self.filled()
        self.assertEqual(self.found(store, "don't"), ["don't deploy on fridays"])
        self.assertEqual(self.found(store, "v2.0"), ["Ship it: deploy v2.0 -- now"])
        self.assertEqual(self.found(store, "snake_case"), ["private_thing in snake_case"])
        self.assertEqual(self.found(store, "it:"), ["Ship it: deploy v2.0 -- now"])

    def test_search_syntax_is_text(self) -> None:
        """FTS5 operators and quotes are words like any other, never errors."""
        store = self.filled()
        for words in ('"', '"deploy', 'deploy"', "AND", "deploy OR lunch", "NOT lunch",
                      "-lunch", "*", "lunch*", "^deploy", "NEAR(deploy lunch)", "text:lunch",
                      "{text}:lunch", "(lunch)", "+lunch", "''"):
            self.found(store, words)  # no exception
        self.assertEqual(self.found(store, "-lunch"), ["Deploy tonight after lunch", "lunch?"])
        self.assertEqual(self.found(store, "deploy OR lunch"), [])
        self.assertEqual(self.found(store, '"deploy'), self.found(store, "deploy"))

    def test_search_nothing(self) -> None:
        store = self.filled()
        self.assertEqual(self.found(store, "zebra"), [])
        self.assertEqual(self.found(store, "-- ::"), [])
        self.assertEqual(fired(store.search("nowhere", "deploy", 20)), [])
        self.assertEqual(self.found(store, "deploy", 0), [])


class MemoryHistoryTests(HistoryContract, SynchronousTestCase):
    """The contract for L{MemoryHistory}."""

    def make(self) -> History:
        return MemoryHistory()


class SQLiteHistoryTests(HistoryContract, SynchronousTestCase):
    """The contract for L{SQLiteHistory}, plus what only a database does."""

    def setUp(self) -> None:
        self.clock = Clock()

    def make(self, path: str = ":memory:", **kwargs: float) -> SQLiteHistory:
        store = SQLiteHistory(path, self.clock, **kwargs)
        self.addCleanup(store.close)
        return store

    def path(self) -> str:
        return os.path.join(temp_dir(self), "h.db")

    def peek(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        return db

    def test_batched(self) -> None:
        """Appends wait L{FLUSH_DELAY} and go in one write."""
        path = self.path()
        store = self.make(path)
        store.append(Entry("lobby", "a", "1", 1.0))
        store.append(Entry("lobby", "a", "2", 2.0))
        self.assertEqual(len(flush_calls(self.clock, store)), 1)
        peek = self.peek(path)
        self.assertEqual(peek.execute("SELECT count(*) FROM messages").fetchone(), (0,))
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(peek.execute("SELECT count(*) FROM messages").fetchone(), (2,))
        self.assertEqual(flush_calls(self.clock, store), [])

    def test_big_batch(self) -> None:
        """More than one INSERT's worth of rows in one flush, in order."""
        store = self.make()
        for i in range(history.INSERT_ROWS * 2 + 7):
            store.append(Entry("lobby", "a", "m%d" % i, float(i)))
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual([e.text for e in fired(store.recent("lobby", 2))], ["m406", "m405"][::-1])
        self.assertEqual(store._db.execute("SELECT count(*) FROM messages").fetchone(), (407,))

    def test_reads_see_queued(self) -> None:
        """A read right after an append sees it (the queue is written first)."""
        store = self.make()
        store.append(Entry("lobby", "a", "just now", 1.0))
        self.assertEqual([e.text for e in fired(store.recent("lobby", 5))], ["just now"])
        self.assertEqual([e.text for e in fired(store.search("lobby", "now", 5))], ["just now"])

    def test_survives_reopen(self) -> None:
        """What was appended is there after closing and opening the file again."""
        path = self.path()
        store = SQLiteHistory(path, self.clock)
        store.append(Entry("lobby", "alice", "remember me", 7.0))
        store.close()
        again = self.make(path)
        self.assertEqual(fired(again.recent("lobby", 5)),
                         [Entry("lobby", "alice", "remember me", 7.0)])

    def test_close_writes_everything(self) -> None:
        """Every message accepted before close() is in the file, none lost, none twice."""
        path = self.path()
        store = SQLiteHistory(path, self.clock)
        sent = [Entry("room%d" % (i % 3), "u%d" % (i % 7), "message %d" % i, 1e9 + i, i % 5 == 0)
                for i in range(1000)]
        for entry in sent[:600]:
            store.append(entry)
        self.clock.advance(FLUSH_DELAY)  # some written before...
        for entry in sent[600:]:
            store.append(entry)  # ...and some still queued at close
        store.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        rows = self.peek(path).execute(
            "SELECT room, sender, text, sent, action FROM messages ORDER BY id").fetchall()
        self.assertEqual([Entry(r, s, t, w, bool(a)) for r, s, t, w, a in rows], sent)
        again = self.make(path)
        self.assertEqual([e.text for e in fired(again.search("room1", "message 997", 5))],
                         ["message 997"])

    @pytest.mark.e2e  # forks a child process
    def test_fork_then_open(self) -> None:
        """
        As twistd runs it: checked (created) before the fork with no
        connection left open, opened after it in the child, which writes:
        SQLite connections must not cross a fork.
        """
        path = self.path()
        store = SQLiteHistory(path, self.clock, connect=False)
        store.check()
        self.assertFalse(store.opened)
        pid = os.fork()
        if pid == 0:  # the child: reports by exit status, never returns to the runner
            code = 1
            try:
                store.open()
                store.append(Entry("lobby", "child", "written after the fork", 1.0))
                store.close()
                code = 0 if store._unsaved == 0 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual([e.sender for e in fired(self.make(path).recent("lobby", 5))],
                         ["child"])

    def test_check_leaves_nothing_open(self) -> None:
        """check() creates and migrates the file and closes it; open() is the one that stays."""
        path = self.path()
        store = SQLiteHistory(path, self.clock, connect=False)
        store.check()
        self.assertFalse(store.opened)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(
            self.peek(path).execute("SELECT version FROM schema_version").fetchall(),
            [(SCHEMA_VERSION,)])
        store.append(Entry("lobby", "early", "before open", 1.0))
        self.clock.advance(FLUSH_DELAY)  # not open yet: it stays queued
        self.assertEqual(self.peek(path).execute("SELECT count(*) FROM messages").fetchone(),
                         (0,))
        store.open()
        self.addCleanup(store.close)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(self.peek(path).execute("SELECT sender FROM messages").fetchall(),
                         [("early",)])

    def test_check_refuses_bad_path(self) -> None:
        """A directory that does not exist: HistoryError from check(), before any fork."""
        store = SQLiteHistory(os.path.join(self.path(), "no", "such.db"), self.clock,
                              connect=False)
        error = self.assertRaises(HistoryError, store.check)
        self.assertIn("cannot use history database", str(error))

    def test_close_unopened(self) -> None:
        """Closing a store never opened (a service built, not started) logs nothing."""
        store = SQLiteHistory(self.path(), self.clock, connect=False)
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        store.close()
        self.assertEqual(len(logged), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_append_after_close(self) -> None:
        """A late append is kept in memory, not an error about a closed database."""
        store = SQLiteHistory(":memory:", self.clock)
        store.close()
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        store.append(Entry("lobby", "a", "late", 1.0))
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(len(logged), 0)
        self.assertEqual(fired(store.recent("lobby", 1))[0].text, "late")

    def test_schema_version_and_wal(self) -> None:
        path = self.path()
        self.make(path)
        peek = self.peek(path)
        self.assertEqual(peek.execute("SELECT version FROM schema_version").fetchall(),
                         [(SCHEMA_VERSION,)])
        self.assertEqual(peek.execute("PRAGMA journal_mode").fetchone(), ("wal",))
        names = {n for (n,) in peek.execute("SELECT name FROM sqlite_master")}
        self.assertTrue({"messages", "messages_fts", "search_state",
                         "messages_fts_delete", "messages_fts_update"} <= names, names)
        self.assertNotIn("messages_fts_insert", names)

    def test_index_follows_changes(self) -> None:
        """Rows deleted or edited by hand (e.g. with the sqlite3 shell) leave the index too."""
        path = self.path()
        store = self.make(path)
        store.append(Entry("lobby", "a", "secret password", 1.0))
        store.append(Entry("lobby", "a", "typo here", 2.0))
        store.flush()
        peek = self.peek(path)
        peek.execute("DELETE FROM messages WHERE text = 'secret password'")
        peek.execute("UPDATE messages SET text = 'fixed here' WHERE text = 'typo here'")
        peek.commit()
        self.assertEqual(fired(store.search("lobby", "secret", 5)), [])
        self.assertEqual(fired(store.search("lobby", "typo", 5)), [])
        self.assertEqual([e.text for e in fired(store.search("lobby", "fixed", 5))], ["fixed here"])

    def old_database(self, version: int, *statements: str) -> str:
        """A database file as an older program left it: C{version}, then C{statements}."""
        path = self.path()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()
        return path

    def test_migrates_version_1(self) -> None:
        """A version 1 database gets the search index, with its old messages in it."""
        path = self.old_database(
            1, *MIGRATIONS[0],
            "INSERT INTO messages (room, sender, text, sent) VALUES"
            " ('lobby', 'old', 'from before search', 5.0)")
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        store = self.make(path)
        self.assertEqual([e.sender for e in fired(store.search("lobby", "before", 5))], ["old"])
        self.assertEqual(self.peek(path).execute("SELECT version FROM schema_version").fetchall(),
                         [(3,)])
        self.assertEqual([formatEvent(e) for e in logged],
                         ["history database %s migrated from schema version 1 to 3" % path])

    def test_migrates_version_2(self) -> None:
        """
        Version 2 indexed with an insert trigger; version 3 indexes in bulk,
        with its old messages in a new index.
        """
        path = self.old_database(
            2, *MIGRATIONS[0],
            "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
            " content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
            "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
            " INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text); END",
            "INSERT INTO messages (room, sender, text, sent) VALUES"
            " ('lobby', 'old', 'said under version two', 5.0)")
        store = self.make(path)
        store.append(Entry("lobby", "new", "said under version three", 6.0))
        self.assertEqual([e.sender for e in fired(store.search("lobby", "said", 5))],
                         ["old", "new"])
        peek = self.peek(path)
        self.assertEqual(peek.execute("SELECT version FROM schema_version").fetchall(), [(3,)])
        names = {n for (n,) in peek.execute("SELECT name FROM sqlite_master")}
        self.assertNotIn("messages_fts_insert", names)
        # The index holds each row once: a hand delete leaves it consistent.
        peek.execute("DELETE FROM messages WHERE sender = 'old'")
        peek.commit()
        self.assertEqual(peek.execute(
            "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')").fetchall(), [])
        self.assertEqual([e.sender for e in fired(store.search("lobby", "said", 5))], ["new"])

    def test_newer_schema_refused(self) -> None:
        path = self.old_database(99)
        error = self.assertRaises(HistoryError, SQLiteHistory, path, self.clock)
        self.assertIn("newer", str(error))

    def test_missing_directory(self) -> None:
        path = os.path.join(temp_dir(self), "no", "such", "dir", "h.db")
        error = self.assertRaises(HistoryError, SQLiteHistory, path, self.clock)
        self.assertIn("cannot use history database %s: unable to open" % path, str(error))


class BusyCPU:
    """A process CPU clock for L{SQLiteHistory}: busy or idle, as the test says."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.busy = True
        self.used = 0.0
        self.seen = clock.seconds()

    def __call__(self) -> float:
        now = self.clock.seconds()
        self.used += (now - self.seen) * (1.0 if self.busy else INDEX_BUSY_LIMIT / 2)
        self.seen = now
        return self.used


class SpareTimeIndexTests(SynchronousTestCase):
    """
    Indexing for search waits for spare CPU time; a search never misses a
    message the index has not caught up with.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.cpu = BusyCPU(self.clock)
        self.path = os.path.join(temp_dir(self), "h.db")
        self.store = SQLiteHistory(self.path, self.clock, cpu=self.cpu)
        self.addCleanup(self.store.close)
        self.peek = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(self.peek.close)

    def indexed_through(self) -> int:
        return self.peek.execute("SELECT indexed_through FROM search_state").fetchone()[0]

    def say(self, count: int, start: int = 0) -> None:
        for i in range(start, start + count):
            self.store.append(Entry("lobby", "a", "busy message %d" % i, float(i)))
        self.clock.advance(FLUSH_DELAY)

    def test_busy_stores_without_indexing(self) -> None:
        """A busy server stores every message and leaves indexing for later."""
        self.say(10)
        self.assertEqual(self.peek.execute("SELECT count(*) FROM messages").fetchone(), (10,))
        self.assertEqual(self.indexed_through(), 0)
        # It keeps looking for a quiet moment; when one comes, the rest is indexed.
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(self.indexed_through(), 0)
        self.cpu.busy = False
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(self.indexed_through(), 10)
        self.assertEqual(flush_calls(self.clock, self.store), [])

    def test_spare_time_indexes_in_chunks(self) -> None:
        """A long backlog is indexed a chunk per flush, so no flush takes long."""
        self.patch(history, "INDEX_ROWS", 4)
        self.say(10)
        self.cpu.busy = False
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(self.indexed_through(), 4)
        self.clock.pump([FLUSH_DELAY] * 2)
        self.assertEqual(self.indexed_through(), 10)
        self.assertEqual(flush_calls(self.clock, self.store), [])

    def test_backlog_indexed_after_restart(self) -> None:
        """What a busy run left unindexed is indexed in the next run's spare time."""
        self.say(10)
        self.store.close()
        self.cpu.busy = False
        again = SQLiteHistory(self.path, self.clock, cpu=self.cpu)
        self.addCleanup(again.close)
        self.assertEqual(self.indexed_through(), 0)
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(self.indexed_through(), 10)

    def test_search_catches_up(self) -> None:
        """/search indexes whatever is left first, so it finds everything."""
        self.say(10)
        found = fired(self.store.search("lobby", "busy 7", 5))
        self.assertEqual([e.text for e in found], ["busy message 7"])
        self.assertEqual(self.indexed_through(), 10)

    def test_search_out_of_time(self) -> None:
        """A backlog too long to index within a search's budget: a clear error, try later."""
        self.say(10)
        self.patch(history, "SEARCH_BUDGET", -1.0)
        error = self.failureResultOf(self.store.search("lobby", "busy", 5), SearchTooSlow).value
        self.assertEqual(
            str(error), "search is still indexing the last 10 messages; try again in a moment")

    def test_search_while_locked(self) -> None:
        """
        When it cannot index (another process holds the database), /search
        matches the rows not indexed yet one by one.
        """
        self.say(10)
        self.peek.execute("BEGIN IMMEDIATE")
        found = fired(self.store.search("lobby", "message 3", 5))
        self.peek.execute("ROLLBACK")
        self.assertEqual([e.text for e in found], ["busy message 3"])
        self.assertEqual(self.indexed_through(), 0)

    def test_hand_edits_before_indexing(self) -> None:
        """Rows deleted or edited by hand before they are indexed leave the index sound."""
        self.say(3)
        self.peek.execute("DELETE FROM messages WHERE text = 'busy message 0'")
        self.peek.execute("UPDATE messages SET text = 'edited' WHERE text = 'busy message 1'")
        self.assertEqual([e.text for e in fired(self.store.search("lobby", "busy", 5))],
                         ["busy message 2"])
        self.assertEqual([e.text for e in fired(self.store.search("lobby", "edited", 5))],
                         ["edited"])
        self.assertEqual(self.peek.execute(
            "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')").fetchall(), [])


class CheckpointTests(SynchronousTestCase):
    """WAL checkpoints happen off the reactor thread."""

    def setUp(self) -> None:
        self.path = os.path.join(temp_dir(self), "h.db")

    def rows_in_database_file(self) -> int:
        """Rows in the main file alone, without what is still only in the WAL."""
        db = sqlite3.connect("file:%s?immutable=1" % self.path, uri=True)
        try:
            return db.execute("SELECT count(*) FROM messages").fetchone()[0]
        finally:
            db.close()

    def test_thread_checkpoints(self) -> None:
        store = SQLiteHistory(self.path, Clock())
        self.addCleanup(store.close)
        self.assertEqual(store._db.execute("PRAGMA wal_autocheckpoint").fetchone(), (0,))
        checkpointer = store._checkpointer
        for i in range(50):
            store.append(Entry("lobby", "a", "m%d" % i, float(i)))
        checkpointer.done.clear()
        store.flush()  # asks the thread
        self.assertTrue(checkpointer.done.wait(10))
        self.assertEqual(self.rows_in_database_file(), 50)
        store.close()
        self.assertFalse(checkpointer._thread.is_alive())

    def test_big_wal_checkpointed_in_flush(self) -> None:
        """If the thread cannot keep up (a flood on a busy machine), the flush checkpoints."""
        store = SQLiteHistory(self.path, Clock())
        self.addCleanup(store.close)
        store._checkpointer.stop()
        self.patch(history, "WAL_LIMIT", 0)
        store.append(Entry("lobby", "a", "m", 1.0))
        store.flush()
        self.assertEqual(self.rows_in_database_file(), 1)


class NoFTS5Tests(SynchronousTestCase):
    """
    An SQLite without FTS5: search is off, everything else works, and the
    index appears when a build with FTS5 opens the database.  (This build
    has FTS5; the probe is patched, so the missing module itself is not.)
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = os.path.join(temp_dir(self), "h.db")

    def open(self, fts5: bool) -> SQLiteHistory:
        self.patch(history, "_fts5_available", lambda: fts5)
        store = SQLiteHistory(self.path, self.clock)
        self.addCleanup(store.close)
        return store

    def test_search_off_history_on(self) -> None:
        """One log line at start-up; /search gets an ERROR; the rest works."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        store = self.open(fts5=False)
        warnings = [formatEvent(e) for e in logged if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("/search is off: this server's SQLite", warnings[0])
        self.assertFalse(store.searchable)
        store.append(Entry("lobby", "a", "hello", 1.0))
        self.assertEqual(fired(store.recent("lobby", 5))[0].text, "hello")
        error = self.failureResultOf(store.search("lobby", "hello", 5), SearchUnavailable).value
        self.assertEqual(str(error), "search is not available: this server's SQLite has no FTS5")

    def test_moves_between_builds(self) -> None:
        """Triggers go without FTS5 (inserts keep working) and come back with it."""
        store = self.open(fts5=True)
        store.append(Entry("lobby", "a", "indexed early", 1.0))
        store.close()
        store = self.open(fts5=False)
        names = {n for (n,) in store._db.execute("SELECT name FROM sqlite_master")}
        self.assertNotIn("messages_fts_insert", names)
        store.append(Entry("lobby", "a", "written without the index", 2.0))
        store.close()
        store = self.open(fts5=True)
        self.assertTrue(store.searchable)
        self.assertEqual([e.text for e in fired(store.search("lobby", "written", 5))],
                         ["written without the index"])
        self.assertEqual([e.text for e in fired(store.search("lobby", "indexed", 5))],
                         ["indexed early"])


class FaultTests(SynchronousTestCase):
    """
    A database that is locked, read-only, corrupt or full: a clear error at
    start-up, or a logged error mid-run while chat goes on.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = os.path.join(temp_dir(self), "h.db")
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def make(self, **kwargs: float) -> SQLiteHistory:
        store = SQLiteHistory(self.path, self.clock, **kwargs)
        self.addCleanup(store.close)
        return store

    def messages(self) -> list[str]:
        """What was logged at warn level or above."""
        return [formatEvent(e) for e in self.logged if e["log_level"] >= LogLevel.warn]

    def other_process(self) -> sqlite3.Connection:
        """Another connection to the file (SQLite locks per connection as per process)."""
        db = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(db.close)
        return db

    def test_locked_at_startup(self) -> None:
        """Start-up waits C{busy_timeout} for a lock, then fails clearly."""
        SQLiteHistory(self.path, self.clock).close()
        other = self.other_process()
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        error = self.assertRaises(HistoryError, SQLiteHistory, self.path, self.clock,
                                  busy_timeout=0.01)
        self.assertEqual(str(error),
                         "cannot use history database %s: database is locked" % self.path)

    def test_locked_mid_run_is_retried(self) -> None:
        """Messages wait in memory (and are shown) while another process writes."""
        store = self.make()
        other = self.other_process()
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO messages (room, sender, text, sent)"
                      " VALUES ('lobby', 'x', 'y', 0)")
        store.append(Entry("lobby", "a", "held 1", 1.0))
        self.clock.advance(FLUSH_DELAY)  # locked: no wait, no error
        store.append(Entry("lobby", "a", "held 2", 2.0))
        self.clock.advance(RETRY_DELAY)  # still locked
        self.assertEqual([e.text for e in fired(store.recent("lobby", 5))], ["held 1", "held 2"])
        self.assertEqual([e.text for e in fired(store.search("lobby", "held", 5))],
                         ["held 1", "held 2"])
        self.assertEqual(len(self.messages()), 1)
        self.assertIn("is locked by another process", self.messages()[0])
        other.execute("COMMIT")
        self.clock.advance(RETRY_DELAY)
        self.assertIn("writable again; wrote 2 held messages", formatEvent(self.logged[-1]))
        self.assertEqual([e.text for e in fired(store.recent("lobby", 5))],
                         ["y", "held 1", "held 2"])
        self.assertIsNone(store._fallback)

    def test_locked_too_long(self) -> None:
        """A lock that lasts: logged error, history in memory until restart."""
        store = self.make()
        other = self.other_process()
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO messages (room, sender, text, sent)"
                      " VALUES ('lobby', 'x', 'y', 0)")
        store.append(Entry("lobby", "a", "kept", 1.0))
        self.clock.pump([FLUSH_DELAY] + [RETRY_DELAY] * int(GIVE_UP_AFTER / RETRY_DELAY + 1))
        self.assertIsNotNone(store._fallback)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIn("failed (database is locked); keeping history in memory", self.messages()[-1])
        store.append(Entry("lobby", "a", "later", 2.0))
        self.assertEqual([e.text for e in fired(store.recent("lobby", 5))], ["kept", "later"])

    def test_locked_at_shutdown_waits(self) -> None:
        """Closing waits briefly for a lock rather than dropping what is queued."""
        store = SQLiteHistory(self.path, self.clock)
        other = self.other_process()
        other.execute("BEGIN IMMEDIATE")
        store.append(Entry("lobby", "a", "last words", 1.0))
        self.clock.advance(FLUSH_DELAY)
        other.execute("COMMIT")  # released before close: close writes them
        store.close()
        self.assertEqual(self.other_process().execute("SELECT text FROM messages").fetchall(),
                         [("last words",)])

    def test_read_only_at_startup(self) -> None:
        """
        A read-only file.  We run as root, so chmod would not stop writes;
        SQLite opens a file it may not write read-only, which C{mode=ro}
        does exactly.
        """
        SQLiteHistory(self.path, self.clock).close()
        self.patch(history, "_connect", lambda path: sqlite3.connect(
            "file:%s?mode=ro" % path, uri=True, isolation_level=None))
        error = self.assertRaises(HistoryError, SQLiteHistory, self.path, self.clock)
        self.assertTrue(str(error).startswith("cannot use history database %s: " % self.path))
        self.assertRegex(str(error), "readonly|unable to open")

    def test_read_only_mid_run(self) -> None:
        """Writes refused mid-run (query_only gives SQLite's own read-only error)."""
        store = self.make()
        store.append(Entry("lobby", "a", "saved", 1.0))
        store.flush()
        store._db.execute("PRAGMA query_only = ON")
        store.append(Entry("lobby", "a", "not saved", 2.0))
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(len(self.messages()), 1)
        self.assertIn("failed (attempt to write a readonly database); keeping history in memory",
                      self.messages()[0])
        self.assertEqual([e.text for e in fired(store.recent("lobby", 5))], ["not saved"])
        store.close()
        self.assertIn("1 messages said since the history database failed were not saved",
                      self.messages()[-1])

    def test_corrupt_header(self) -> None:
        with open(self.path, "wb") as f:
            f.write(b"this is not an sqlite file at all" * 100)
        error = self.assertRaises(HistoryError, SQLiteHistory, self.path, self.clock)
        self.assertEqual(str(error), "cannot use history database %s: file is not a database"
                         % self.path)

    def test_corrupt_pages(self) -> None:
        """
        Damage inside the file that start-up does not read (here the room
        index) shows mid-run: logged, and chat goes on in memory.
        """
        store = SQLiteHistory(self.path, self.clock)
        for i in range(2000):
            store.append(Entry("lobby", "a", "message number %d with some text" % i, float(i)))
        store.close()
        db = sqlite3.connect(self.path)
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'messages_room'").fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
        db.close()
        with open(self.path, "r+b") as f:
            f.seek((root - 1) * size)
            f.write(b"\xff" * size)
        store = self.make()
        self.assertEqual(fired(store.recent("lobby", 5)), [])
        self.assertIn("database disk image is malformed", self.messages()[-1])
        store.append(Entry("lobby", "a", "still chatting", 1.0))
        self.assertEqual(fired(store.recent("lobby", 5))[0].text, "still chatting")

    def test_full_at_startup(self) -> None:
        """
        No room for the schema.  PRAGMA max_page_count makes SQLite report
        SQLITE_FULL exactly as it does for ENOSPC (a real full filesystem is
        in test_history_e2e).
        """
        def tiny(path: str) -> sqlite3.Connection:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA max_page_count = 2")
            return db

        self.patch(history, "_connect", tiny)
        error = self.assertRaises(HistoryError, SQLiteHistory, self.path, self.clock)
        self.assertEqual(str(error), "cannot use history database %s: database or disk is full"
                         % self.path)

    def test_full_mid_run(self) -> None:
        store = self.make()
        (pages,) = store._db.execute("PRAGMA page_count").fetchone()
        store._db.execute("PRAGMA max_page_count = %d" % pages)
        for i in range(500):
            store.append(Entry("lobby", "a", "filling the disk %d " % i + "x" * 200, float(i)))
        self.clock.advance(FLUSH_DELAY)
        self.assertEqual(len(self.messages()), 1)
        self.assertIn("failed (database or disk is full)", self.messages()[0])
        self.assertEqual(len(fired(store.recent("lobby", 200))), 200)
        self.assertEqual(len(fired(store.search("lobby", "filling", 20))), 20)


class DeletedFileTests(SynchronousTestCase):
    """
    The database file deleted, moved away or replaced while the server runs
    (issue 11 item 11): noticed within L{WATCH_INTERVAL}, logged once, and
    history goes on in a file at the path.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = os.path.join(temp_dir(self), "h.db")
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.store = SQLiteHistory(self.path, self.clock)
        self.addCleanup(self.store.close)

    def errors(self) -> list[str]:
        return [formatEvent(e) for e in self.logged if e["log_level"] >= LogLevel.error]

    def say(self, *texts: str) -> None:
        for text in texts:
            self.store.append(Entry("lobby", "a", text, 1.0))
        self.clock.advance(FLUSH_DELAY)
        if self.store._checkpointer is not None:  # its thread has opened the file
            self.store._checkpointer.done.wait(10)

    def stored(self) -> list[str]:
        """What a new run of the server would find in the file at the path."""
        db = sqlite3.connect(self.path)
        try:
            return [text for (text,) in db.execute("SELECT text FROM messages ORDER BY id")]
        finally:
            db.close()

    def test_deleted_file_recreated(self) -> None:
        """rm chat.db: one error within seconds, then all history is in a new file there."""
        self.say("before")
        os.unlink(self.path)
        self.say("meanwhile")  # into the unlinked file, until noticed
        self.assertEqual(self.errors(), [])
        self.clock.advance(WATCH_INTERVAL)
        self.assertEqual(self.errors(), [
            "history database %s was deleted or moved away while the server runs;"
            " writing all history to a new %s" % (self.path, self.path)])
        self.assertTrue(os.path.exists(self.path))
        self.assertFalse(os.path.exists(self.path + ".recovered"))
        self.say("after")
        self.assertEqual(self.stored(), ["before", "meanwhile", "after"])
        self.assertEqual([e.text for e in fired(self.store.search("lobby", "after", 5))], ["after"])
        self.assertIsNone(self.store._fallback)
        self.clock.advance(WATCH_INTERVAL * 3)
        self.assertEqual(len(self.errors()), 1)  # said once
        self.store.close()
        self.assertEqual(self.stored(), ["before", "meanwhile", "after"])

    def test_recreated_file_keeps_permissions(self) -> None:
        """A private database stays private when it is recreated."""
        os.chmod(self.path, 0o600)
        self.store.close()
        self.store = SQLiteHistory(self.path, self.clock)
        self.addCleanup(self.store.close)
        self.say("secret")
        os.unlink(self.path)
        self.clock.advance(WATCH_INTERVAL)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_all_files_deleted(self) -> None:
        """rm chat.db*: the WAL went too, and nothing is lost either."""
        self.say("one", "two")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)
        self.clock.advance(WATCH_INTERVAL)
        self.say("three")
        self.store.close()
        self.assertEqual(self.stored(), ["one", "two", "three"])

    def test_replaced_file_used(self) -> None:
        """mv other.db chat.db: logged, and the new file is used (as a restart would)."""
        self.say("old")
        other = os.path.join(os.path.dirname(self.path), "other.db")
        SQLiteHistory(other, Clock()).close()
        os.rename(other, self.path)
        self.clock.advance(WATCH_INTERVAL)
        self.assertIn("was replaced by another file", self.errors()[0])
        self.say("new")
        self.store.close()
        self.assertEqual(self.stored(), ["new"])

    def test_unusable_replacement_falls_back_to_memory(self) -> None:
        """A file that is no database put there: history goes on in memory, said in the log."""
        self.say("old")
        os.unlink(self.path)
        with open(self.path, "w") as f:
            f.write("not a database " * 100)
        self.clock.advance(WATCH_INTERVAL)
        self.assertIsNotNone(self.store._fallback)
        self.assertIn("keeping history in memory", self.errors()[-1])
        self.say("kept")
        self.assertEqual([e.text for e in fired(self.store.recent("lobby", 5))], ["kept"])

    def test_no_watching_after_close(self) -> None:
        self.store.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])
