"""
Room history: L{SQLiteHistory} on disk and L{MemoryHistory} for C{--db
:memory:}, for tests, and as the fallback when the database fails mid-run.

Writes never wait for the disk on the fan-out path: L{SQLiteHistory.append}
queues the entry and, L{FLUSH_DELAY} seconds after the first queued one, one
transaction writes everything queued with multi-row C{INSERT}s (WAL with
C{synchronous=NORMAL}: a commit appends to the WAL file and does not fsync).
Reads add the queued entries to what they find, and shutdown writes them out,
so nothing is missed.  WAL checkpoints (copying the WAL into the database file, with an
fsync) run on a low-priority thread of their own, never in a flush.

Search (C{/search}) uses an external-content FTS5 index.  Indexing costs
twice what storing does, so it waits for spare time: a flush indexes the rows
stored since the last one only when the server used less than
L{INDEX_BUSY_LIMIT} of a core since the previous flush.  Under a flood the
index falls behind and chat goes at full speed; a C{/search} first indexes
whatever is left (docs/HISTORY.md).  Triggers keep the index in step with
rows deleted or edited by hand.  Some SQLite builds have no FTS5: then search
is off (one log line at start-up, one C{ERROR} per C{/search}) and
everything else works.

Search words match as prefixes: C{deploy} finds C{deployed}.  Each word is
quoted as an FTS5 string, so nothing a user types is FTS5 syntax; a message
matches when it has every word.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import sys
import threading
import time
import unicodedata
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_chat.commands import MAX_HISTORY
from twisted_chat.domain.events import Entry
from twisted_chat.errors import ChatError
from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver

SCHEMA_VERSION = 3

# Queued messages are written this long after the first of them: batches of
# hundreds under load (about 1 us a message) instead of one per reactor turn
# (13 us at 10 a turn, 65 us one at a time).  A crash (not a shutdown) can
# lose this much.
FLUSH_DELAY = 0.05
# Rows per INSERT statement (5 parameters each).
INSERT_ROWS = 200
# A flush indexes for search only when the process used less than this
# fraction of a core since the previous flush ...
INDEX_BUSY_LIMIT = 0.75
# ... at most this many rows at a time (2 ms of work, 20 ms at worst when
# FTS5 merges segments; 4,000 took 9 and 60 ms) ...
INDEX_ROWS = 1000
# ... coming back this soon while there is spare time and more to index
# (FLUSH_DELAY when the server is busy, so flushes stay big).
INDEX_DELAY = 0.01
# How often the store checks that the file at its path is still its own.
WATCH_INTERVAL = 2.0
# The checkpoint thread copies the WAL into the database at most this often.
CHECKPOINT_INTERVAL = 1.0
# A WAL bigger than this is checkpointed by the flush itself (the thread is
# starved: a flood on a busy machine) ...
WAL_LIMIT = 64 * 1024 * 1024
# ... and once checkpointed, it is cut back to this size.
WAL_KEEP = 16 * 1024 * 1024
# The checkpoint thread's nice value: it gets only CPU nothing else wants.
CHECKPOINT_NICE = 19

# How long start-up waits for a database another process has locked.
STARTUP_BUSY_TIMEOUT = 2.0
# While running, a locked database is retried this often (the reactor never
# waits on the lock: busy_timeout is 0 after start-up) ...
RETRY_DELAY = 1.0
# ... until it has been locked this long or this many messages wait; then
# history goes on in memory until restart.
GIVE_UP_AFTER = 60.0
MAX_QUEUED = 50_000
# The most wall-clock time one /search may spend in either store (the reactor
# waits).  The memory store then answers with what it found so far.
SEARCH_BUDGET = 0.25
# ... checked every this many SQLite VM instructions.
SEARCH_CHECK_STEPS = 1000

Step = str | Callable[[sqlite3.Connection], None]

# The search index: an external-content FTS5 table over messages.text
# (columnsize=0: no per-row token counts, which only ranking uses), how far
# it has got (search_state.indexed_through: rows up to that id are in it),
# and the triggers that keep indexed rows in step when edited by hand.  Rows
# are indexed in bulk (_index_txn), not by an insert trigger.
_SEARCH_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5("
    "text, content='messages', content_rowid='id', columnsize=0,"
    " tokenize='unicode61 remove_diacritics 2')"
)
_INDEXED = "(SELECT indexed_through FROM search_state)"
_SEARCH_TRIGGERS = {
    "messages_fts_delete": """
        CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages
        WHEN old.id <= %s BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
        END""" % _INDEXED,
    "messages_fts_update": """
        CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE ON messages
        WHEN old.id <= %s BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
            INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
        END""" % _INDEXED,
}
# Version 2 indexed every insert with this trigger.
_OLD_TRIGGERS = ("messages_fts_insert",)


@functools.cache
def _fts5_available() -> bool:
    """Whether this process's SQLite can create FTS5 tables (asked once)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


def _search_index_complete(db: sqlite3.Connection) -> bool:
    names = {
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master"
            " WHERE name = 'messages_fts' OR name LIKE 'messages_fts_%'"
        )
    }
    return "messages_fts" in names and names.issuperset(_SEARCH_TRIGGERS)


def _create_search_index_txn(db: sqlite3.Connection) -> None:
    """
    Create whatever part of the search index is missing and index every
    existing message.  Without FTS5, do nothing (search stays off).
    """
    if not _fts5_available() or _search_index_complete(db):
        return
    db.execute(_SEARCH_TABLE)
    db.execute("CREATE TABLE IF NOT EXISTS search_state (indexed_through INTEGER NOT NULL)")
    for statement in _SEARCH_TRIGGERS.values():
        db.execute(statement)
    # Rows written while the index was missing (or never indexed) go in now.
    db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    db.execute("DELETE FROM search_state")
    db.execute("INSERT INTO search_state SELECT coalesce(max(id), 0) FROM messages")


def _bulk_index_txn(db: sqlite3.Connection) -> None:
    """Version 2 to 3: drop the insert trigger; a new index table (columnsize=0)."""
    for name in _OLD_TRIGGERS + tuple(_SEARCH_TRIGGERS):
        db.execute("DROP TRIGGER IF EXISTS %s" % name)
    db.execute("DROP TABLE IF EXISTS messages_fts")
    _create_search_index_txn(db)


def _sync_search_index_txn(db: sqlite3.Connection) -> bool:
    """
    Run at every open, after migrating: make the search index match this
    SQLite.  A database can move between builds with and without FTS5.  With
    FTS5 a missing index is built; without it the triggers are dropped, since
    every insert would fail on them.  Return whether search works.
    """
    if _fts5_available():
        _create_search_index_txn(db)
        return True
    for name in _OLD_TRIGGERS + tuple(_SEARCH_TRIGGERS):
        db.execute("DROP TRIGGER IF EXISTS %s" % name)
    return False


# Forward migrations: MIGRATIONS[n] takes a database at version n to n + 1.
# A step is an SQL statement or a function of the connection.
MIGRATIONS: dict[int, tuple[Step, ...]] = {
    0: (
        """CREATE TABLE messages (
               id INTEGER PRIMARY KEY,
               room TEXT NOT NULL,
               sender TEXT NOT NULL,
               text TEXT NOT NULL,
               sent REAL NOT NULL,
               action INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX messages_room ON messages (room, id)",
    ),
    # Version 2: the full-text index for /search.  It needs FTS5; on a build
    # without it the step does nothing and _sync_search_index_txn builds the
    # index the first time an SQLite with FTS5 opens the database.
    1: (_create_search_index_txn,),
    # Version 3: rows are indexed in bulk when the server has time
    # (search_state), and the index keeps no per-row sizes.
    2: (_bulk_index_txn,),
}


class HistoryError(Exception):
    """The history store cannot be opened or used."""


class SearchUnavailable(ChatError):
    """This server cannot search (its SQLite has no FTS5)."""


class SearchTooSlow(ChatError):
    """A search that would hold up the server for too long."""


# -- matching words, the same way for both stores ------------------------------

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """
    C{text} as search tokens: runs of letters and digits, case-folded and
    without diacritics (what FTS5's C{unicode61 remove_diacritics 2} does).
    """
    if text.isascii():  # no diacritics: skip the per-character pass
        return _TOKEN.findall(text.lower())
    folded = unicodedata.normalize("NFD", text.casefold())
    return _TOKEN.findall("".join(c for c in folded if not unicodedata.combining(c)))


def search_words(words: str) -> list[str]:
    """The whitespace-separated words of C{words} that hold a letter or digit."""
    return [word for word in words.split() if tokens(word)]


def fts_query(words: Sequence[str]) -> str:
    """
    An FTS5 query for messages holding every word, each as a prefix.  Each
    word is an FTS5 string (C{"} doubled), so C{AND}, C{*}, C{:}, C{-} or
    C{"} in it are just text.
    """
    return " ".join('"%s" *' % word.replace('"', '""') for word in words)


def _has_phrase(text_tokens: list[str], phrase: list[str]) -> bool:
    """Whether C{phrase} occurs in C{text_tokens}, its last token as a prefix."""
    *exact, last = phrase
    size = len(phrase)
    for i in range(len(text_tokens) - size + 1):
        if text_tokens[i + size - 1].startswith(last) and text_tokens[i:i + size - 1] == exact:
            return True
    return False


def matcher(words: Sequence[str]) -> Callable[[Entry], bool]:
    """A test of whether an entry's text matches C{words} as L{fts_query} does."""
    phrases = [tokens(word) for word in words]

    def matches(entry: Entry) -> bool:
        text_tokens = tokens(entry.text)
        return all(_has_phrase(text_tokens, phrase) for phrase in phrases)

    return matches


def _newest(entries: Iterable[Entry], limit: int) -> list[Entry]:
    """The last C{limit} of C{entries} (oldest first)."""
    return list(deque(entries, maxlen=limit)) if limit > 0 else []


class Matches(list):  # type: ignore[type-arg]
    """
    What a search found, oldest first: a list, so every store and fake that
    returns a plain list still fits L{History.search}.

    @ivar complete: C{False} when the search stopped at its time budget
        before looking at every message (then these are matches among the
        newest ones only).
    @ivar scanned: how many entries were checked one by one.
    """

    complete = True
    scanned = 0


class MemoryHistory:
    """History kept in memory: the last L{MAX_HISTORY} entries of each room."""

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        """
        @param timer: the clock a search's L{SEARCH_BUDGET} is measured on
            (wall-clock time, since the reactor waits; a fake in tests).
        """
        self._timer = timer
        self._rooms: defaultdict[str, deque[Entry]] = defaultdict(
            lambda: deque(maxlen=MAX_HISTORY)
        )

    def append(self, entry: Entry) -> None:
        """Keep C{entry}."""
        self._rooms[entry.room].append(entry)

    def recent(self, room: str, limit: int) -> Deferred[list[Entry]]:
        """The last C{limit} entries of C{room}, oldest first (at once)."""
        return succeed(self.recent_now(room, limit))

    def recent_now(self, room: str, limit: int) -> list[Entry]:
        """L{recent}'s answer itself."""
        entries = self._rooms.get(room)
        if not entries or limit <= 0:
            return []
        return list(entries)[-limit:]

    def search(self, room: str, words: str, limit: int) -> Deferred[list[Entry]]:
        """L{search_now}'s answer (a L{Matches}), at once."""
        return succeed(self.search_now(room, words, limit))

    def search_now(self, room: str, words: str, limit: int) -> Matches:
        """
        The newest C{limit} kept entries of C{room} with every word, oldest
        first.  Entries are checked newest first, and the search stops after
        L{SEARCH_BUDGET} seconds with what it found (C{complete} is then
        C{False}): matching is Python work on the reactor, as much as
        C{MAX_HISTORY} entries of C{--max-line} bytes each.
        """
        found = Matches()
        terms = search_words(words)
        entries = self._rooms.get(room)
        if not terms or not entries or limit <= 0:
            return found
        match = matcher(terms)
        timer = self._timer
        deadline = timer() + SEARCH_BUDGET
        scanned = 0
        for entry in reversed(entries):
            if timer() > deadline:
                found.complete = False
                break
            scanned += 1
            if match(entry):
                found.append(entry)
                if len(found) == limit:
                    break
        found.reverse()
        found.scanned = scanned
        return found

    def close(self) -> None:
        """Nothing to release."""


# -- SQL -------------------------------------------------------------------------

@contextmanager
def _transaction(db: sqlite3.Connection, mode: str = "") -> Iterator[None]:
    """One explicit transaction (the connection is in autocommit mode)."""
    db.execute("BEGIN %s" % mode)
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise
    db.execute("COMMIT")


def _migrate_txn(db: sqlite3.Connection) -> int:
    """Bring the schema up to L{SCHEMA_VERSION}; return the version found."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    found = version = row[0] if row else 0
    if version > SCHEMA_VERSION:
        raise HistoryError(
            "the database is at schema version %d, newer than this program's %d"
            % (version, SCHEMA_VERSION)
        )
    while version < SCHEMA_VERSION:
        for step in MIGRATIONS[version]:
            if callable(step):
                step(db)
            else:
                db.execute(step)
        version += 1
    # Written even when unchanged: a database we cannot write (read-only
    # file or filesystem, full disk) fails here, at start-up, not mid-run.
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return found


@functools.lru_cache(maxsize=INSERT_ROWS)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO messages (room, sender, text, sent, action) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?)"] * rows
    )


def _insert_txn(db: sqlite3.Connection, entries: list[Entry]) -> int:
    """Insert C{entries}; return the id of the last one."""
    # INSERT_ROWS rows a statement: half the cost of executemany (docs/HISTORY.md).
    last = 0
    for start in range(0, len(entries), INSERT_ROWS):
        chunk = entries[start:start + INSERT_ROWS]
        rowid = db.execute(
            _insert_sql(len(chunk)),
            [v for e in chunk for v in (e.room, e.sender, e.text, e.when, int(e.action))],
        ).lastrowid
        assert rowid is not None  # None only before a first row is inserted
        last = rowid
    return last


def _indexed_through(db: sqlite3.Connection) -> int:
    """The id up to which rows are in the search index."""
    indexed: int = db.execute("SELECT indexed_through FROM search_state").fetchone()[0]
    return indexed


def _index_txn(db: sqlite3.Connection, start: int, newest: int) -> int:
    """
    Put the next chunk of rows after C{start} (at most L{INDEX_ROWS}, none
    after C{newest}) in the search index, with one statement (FTS5 writes a
    segment per statement).  Return the id indexed through.
    """
    through = min(newest, start + INDEX_ROWS)
    db.execute(
        "INSERT INTO messages_fts (rowid, text)"
        " SELECT id, text FROM messages WHERE id > ? AND id <= ?",
        (start, through),
    )
    db.execute("UPDATE search_state SET indexed_through = ?", (through,))
    return through


def _recent_txn(db: sqlite3.Connection, room: str, limit: int) -> list[Entry]:
    rows = db.execute(
        "SELECT room, sender, text, sent, action FROM messages"
        " WHERE room = ? ORDER BY id DESC LIMIT ?",
        (room, limit),
    ).fetchall()
    return [Entry(r, s, t, w, bool(a)) for r, s, t, w, a in reversed(rows)]


def _scan_txn(
    db: sqlite3.Connection, room: str, after: int, match: Callable[[Entry], bool],
    timer: Callable[[], float], deadline: float,
) -> list[Entry]:
    """The entries of C{room} after id C{after} that C{match}, oldest first."""
    found = []
    rows = db.execute(
        "SELECT room, sender, text, sent, action FROM messages"
        " WHERE room = ? AND id > ? ORDER BY id", (room, after))
    for count, (r, s, t, w, a) in enumerate(rows):
        if count % 1000 == 999 and timer() > deadline:
            raise SearchTooSlow("that search took too long; try again in a moment")
        entry = Entry(r, s, t, w, bool(a))
        if match(entry):
            found.append(entry)
    return found


def _search_txn(db: sqlite3.Connection, room: str, query: str, limit: int) -> list[Entry]:
    # Descending rowid lets FTS5 walk its lists newest first and stop early.
    rows = db.execute(
        "SELECT m.room, m.sender, m.text, m.sent, m.action"
        " FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
        " WHERE messages_fts MATCH ? AND m.room = ?"
        " ORDER BY messages_fts.rowid DESC LIMIT ?",
        (query, room, limit),
    ).fetchall()
    return [Entry(r, s, t, w, bool(a)) for r, s, t, w, a in reversed(rows)]


# How a connection runs once the database is open: a lock is retried later,
# never waited for; commits do not fsync (WAL); the checkpoint thread
# checkpoints; the WAL file is cut back after a flood.
_RUNNING = ("busy_timeout = 0", "synchronous = NORMAL", "wal_autocheckpoint = 0",
            "journal_size_limit = %d" % WAL_KEEP)


def _run_with(db: sqlite3.Connection, pragmas: Iterable[str]) -> None:
    for pragma in pragmas:
        db.execute("PRAGMA " + pragma)


def _connect(path: str) -> sqlite3.Connection:
    """Open C{path} in autocommit mode (transactions are explicit)."""
    return sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=INSERT_ROWS + 32
    )


def _lower_priority(nice: int) -> None:
    """
    Give the calling thread nice value C{nice}.  Only Linux gives each
    thread its own; elsewhere this would slow the whole process, so it does
    nothing.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


class Checkpointer:
    """
    WAL checkpoints on a thread of their own at the lowest CPU priority.
    Copying the WAL into the database file and the fsync after it never
    hold up the reactor: SQLite lets go of the GIL while it works, and a
    passive checkpoint never blocks the reactor's writes.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self.done = threading.Event()  # set after each checkpoint (for tests)
        # Started by the first request: twistd forks to daemonize after
        # building the service, and a thread does not survive a fork.
        self._thread = threading.Thread(target=self._run, name="chat-checkpoints", daemon=True)

    def request(self) -> None:
        """Checkpoint soon (at most once per L{CHECKPOINT_INTERVAL})."""
        if self._thread.ident is None:
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        _lower_priority(CHECKPOINT_NICE)
        try:
            # Never creates the file: one deleted meanwhile is the store's to notice.
            db = sqlite3.connect("file:%s?mode=rw" % urllib.parse.quote(self._path),
                                 uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the reactor's connection checkpoints when the WAL grows too big
        try:
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # tried again next time; faults that matter show up in writes
                self.done.set()
                self._stopping.wait(CHECKPOINT_INTERVAL)
        finally:
            db.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting for a checkpoint under way."""
        self._stopping.set()
        self._wanted.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)


def _identity(path: str) -> tuple[int, int]:
    """The device and inode of the file at C{path}."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _companions(path: str) -> dict[str, tuple[int, int]]:
    """The device and inode of each of the -wal and -shm files of C{path} that exist."""
    found = {}
    for name in (path + "-wal", path + "-shm"):
        try:
            found[name] = _identity(name)
        except FileNotFoundError:
            pass
    return found


def _is_busy(error: sqlite3.Error) -> bool:
    """Whether C{error} means another connection holds a lock (worth retrying)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error)


class SQLiteHistory:
    """
    History in an SQLite file (WAL, synchronous=NORMAL).

    Faults while the server runs never reach the chat: a database another
    process has locked is retried every L{RETRY_DELAY} seconds with the
    messages held in memory (and shown by reads); any other failure (or a
    lock that lasts) is logged once and history goes on in memory until
    restart.

    @ivar searchable: whether C{/search} works (the SQLite has FTS5).
    @ivar opened: whether it has been opened (L{open}; after L{close} too).
    """

    log = Logger()

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        busy_timeout: float = STARTUP_BUSY_TIMEOUT,
        cpu: Callable[[], float] | None = None,
        timer: Callable[[], float] = time.monotonic,
        connect: bool = True,
    ) -> None:
        """
        Open (creating or migrating) the database at C{path}, now or (not
        C{connect}) when L{open} is called.

        @param busy_timeout: how long to wait for a database another process
            has locked before giving up.
        @param cpu: the CPU seconds this process has used (L{time.process_time});
            with it, indexing for search waits for spare time.  Without it,
            every flush indexes what it wrote.
        @param timer: the clock a search's L{SEARCH_BUDGET} is measured on.
        @param connect: open it now (else L{open} does).
        @raise HistoryError: (with C{connect}) see L{open}.
        """
        self.path = path
        self._clock = clock
        self._timer = timer
        self._pending: list[Entry] = []
        self._call: IDelayedCall | None = None
        self._fallback: MemoryHistory | None = None
        self._locked_since: float | None = None
        self._closed = False
        self._unsaved = 0  # messages kept only in memory since a failure
        self._cpu = cpu
        self._measured = (clock.seconds(), cpu() if cpu else 0.0)
        self._checkpointer: Checkpointer | None = None
        self._watching: IDelayedCall | None = None
        self._busy_timeout = busy_timeout
        self._db: sqlite3.Connection  # while opened
        self.opened = False
        self.searchable = False
        self._stored = self._indexed = 0
        self.observer: ChatObserver = NULL_OBSERVER  # told each flush's time
        if connect:
            self.open()

    @property
    def queued(self) -> int:
        """Messages waiting to be written (held in memory while the file is locked)."""
        return len(self._pending)

    @property
    def unsaved(self) -> int:
        """Messages kept only in memory since the database failed (lost at restart)."""
        return self._unsaved

    def check(self) -> None:
        """
        Open, create or migrate the database and close it again: whether
        L{open} will work, asked before twistd forks to daemonize (an
        SQLite connection must not cross a fork: the child would not
        inherit its locks).

        @raise HistoryError: if it cannot be used.
        """
        self._open(self._busy_timeout)
        self.opened = False
        self._db.close()

    def open(self) -> None:
        """
        Open the database (the service does, when it starts).

        @raise HistoryError: if it cannot be opened, is not a database, or is
            read-only, full, locked or from a newer program.
        """
        if self.opened or self._closed:
            return
        self._open(self._busy_timeout)
        if not self.searchable:
            self.log.warn(
                "/search is off: this server's SQLite {version} has no FTS5",
                version=sqlite3.sqlite_version,
            )
        if self.path != ":memory:":
            self._checkpointer = Checkpointer(self.path)
            self._watching = self._clock.callLater(WATCH_INTERVAL, self._watch)
        self._index_later()  # what the last run left unindexed
        if self._pending and self._call is None:  # appended before opening
            self._call = self._clock.callLater(FLUSH_DELAY, self.flush)

    def _open(self, busy_timeout: float) -> int:
        """
        Connect to L{path}, migrate it and read where storing and indexing
        have got; return the schema version found.

        @raise HistoryError: if that fails (nothing is left open).
        """
        path = self.path
        try:
            db = _connect(path)
        except sqlite3.Error as e:
            raise HistoryError("cannot use history database %s: %s" % (path, e)) from e
        try:
            db.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
            if path != ":memory:":
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise sqlite3.OperationalError("cannot switch to WAL mode (got %s)" % mode)
            with _transaction(db, "IMMEDIATE"):
                found = _migrate_txn(db)
                self.searchable = _sync_search_index_txn(db)
                # The newest stored row, and the newest in the search index.
                self._stored = db.execute(
                    "SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
                self._indexed = _indexed_through(db) if self.searchable else 0
            _run_with(db, _RUNNING)
            # Which file this is, to notice it deleted or replaced (L{_watch}),
            # and which -wal and -shm files go with it.
            self._identity = self._companions = None
            if path != ":memory:":
                self._identity = _identity(path)
                self._companions = _companions(path)
                self._mode = os.stat(path).st_mode & 0o777
        except (sqlite3.Error, HistoryError, OSError) as e:
            db.close()
            raise HistoryError("cannot use history database %s: %s" % (path, e)) from e
        self._db = db
        self.opened = True
        if found == 0:
            self.log.info("history database {path} created", path=path)
        elif found != SCHEMA_VERSION:
            self.log.info(
                "history database {path} migrated from schema version {found} to {version}",
                path=path, found=found, version=SCHEMA_VERSION,
            )
        return found

    # -- the file going away ----------------------------------------------

    def _watch(self) -> None:
        """
        Every L{WATCH_INTERVAL} seconds: is the file at L{path} still ours?
        Deleted or moved away, history would go on into a file no one can
        find, lost at restart; replaced, a restart would use the other one.
        """
        self._watching = None
        if self._closed or self._fallback is not None:
            return
        try:
            now = _identity(self.path)
        except FileNotFoundError:
            now = None
        except OSError:
            now = self._identity  # cannot tell (a permission changed): carry on
        if now != self._identity:
            self._file_changed(missing=now is None)
        if not self._closed and self._fallback is None:
            self._watching = self._clock.callLater(WATCH_INTERVAL, self._watch)

    def _file_changed(self, missing: bool) -> None:
        """
        The file at L{path} is not ours any more.  Deleted (or moved away):
        copy all of history, from the file we still have open, to a new file
        at L{path} and go on there, so nothing is lost.  Replaced by another
        file: go on in that one, as a restart would.  Either way one error
        in the log; if that fails too, history goes on in memory.
        """
        if missing:
            self.log.error(
                "history database {path} was deleted or moved away while the server runs;"
                " writing all history to a new {path}", path=self.path)
        else:
            self.log.error(
                "history database {path} was replaced by another file while the server runs;"
                " using the new file from now on (as a restart would); messages stored"
                " since the replacement stay in the old file", path=self.path)
        self.flush()
        if self._fallback is not None or self._pending:  # it failed, or is locked
            return
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        copy = self.path + ".recovered"
        try:
            if missing:
                if os.path.exists(copy):
                    os.unlink(copy)
                self._db.execute("VACUUM INTO ?", (copy,))
                os.chmod(copy, self._mode)  # history may be private
            # The old file's -wal and -shm must not meet the new database (SQLite
            # would apply the old WAL to it).  Closing removes them only when it
            # can checkpoint, which SQLite refuses for a file that has moved.
            self._db.close()
            for name, identity in (self._companions or {}).items():
                if _companions(self.path).get(name) == identity:
                    os.unlink(name)
            if missing:
                os.link(copy, self.path)  # never over a file put there meanwhile
                os.unlink(copy)
            self._open(0.0)
        except (sqlite3.Error, OSError, HistoryError) as e:
            self._fail(sqlite3.OperationalError(str(e)), [])
            return
        self._checkpointer = Checkpointer(self.path)
        self.log.info("history database {path} is in use again, with {count} messages",
                      path=self.path, count=self._stored)

    # -- writing ----------------------------------------------------------

    def append(self, entry: Entry) -> None:
        """Queue C{entry}; it is written within L{FLUSH_DELAY} seconds."""
        if self._fallback is not None:
            self._fallback.append(entry)
            self._unsaved += 1
            return
        self._pending.append(entry)
        if self._call is None:
            self._call = self._clock.callLater(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """
        Write every queued entry in one transaction and, if the server has
        time, index for search what is not indexed yet.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        if self._fallback is not None or not self.opened:  # failed, or not open yet
            return
        pending = self._pending
        index = self.searchable and self._spare_time()
        if not pending and not (index and self._indexed < self._stored):
            self._index_later(index)
            return
        # Both change only once the transaction has committed.
        stored, indexed = self._stored, self._indexed
        started = self._timer()
        try:
            with _transaction(self._db):
                if pending:
                    stored = _insert_txn(self._db, pending)
                if index and indexed < stored:
                    indexed = _index_txn(self._db, indexed, stored)
        except sqlite3.Error as e:
            if _is_busy(e) and self._still_waiting(e):
                return
            self._pending = []
            self._fail(e, pending)
            return
        self._pending = []
        self._stored, self._indexed = stored, indexed
        self.observer.history_flushed(self._timer() - started, len(pending))
        self._checkpoint()
        self._index_later(index)
        if self._locked_since is not None:
            self._locked_since = None
            self.log.info(
                "history database {path} is writable again; wrote {count} held messages",
                path=self.path, count=len(pending),
            )

    def _spare_time(self) -> bool:
        """Whether this process used less than L{INDEX_BUSY_LIMIT} of a core since last asked."""
        if self._cpu is None:
            return True
        now, cpu = self._clock.seconds(), self._cpu()
        then, cpu_then = self._measured
        self._measured = (now, cpu)
        return now > then and (cpu - cpu_then) / (now - then) < INDEX_BUSY_LIMIT

    def _index_later(self, spare: bool = False) -> None:
        """Come back to index what is left, if the next message does not."""
        if self._call is None and not self._closed and self._indexed < self._stored:
            self._call = self._clock.callLater(INDEX_DELAY if spare else FLUSH_DELAY, self.flush)

    def _checkpoint(self) -> None:
        """Ask the thread for a checkpoint; do it here if the WAL has outgrown it."""
        if self._checkpointer is None:
            return
        self._checkpointer.request()
        try:
            big = os.path.getsize(self.path + "-wal") > WAL_LIMIT
        except OSError:
            return
        if big:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as e:
                self.log.warn("checkpoint of {path} failed: {error}", path=self.path, error=str(e))

    def _still_waiting(self, error: sqlite3.Error) -> bool:
        """
        The database is locked: keep what is queued and try again later,
        unless that has gone on too long.  Return whether we wait.
        """
        now = self._clock.seconds()
        if self._locked_since is None:
            self._locked_since = now
            self.log.warn(
                "history database {path} is locked by another process ({error});"
                " holding messages in memory and retrying",
                path=self.path, error=str(error),
            )
        elif now - self._locked_since >= GIVE_UP_AFTER or len(self._pending) > MAX_QUEUED:
            return False
        if not self._closed:
            self._call = self._clock.callLater(RETRY_DELAY, self.flush)
        return True

    def _fail(self, error: sqlite3.Error, pending: list[Entry]) -> MemoryHistory:
        """Keep history in memory from now on: the store that does, now."""
        if self._watching is not None and self._watching.active():
            self._watching.cancel()
        self._watching = None
        self.log.error(
            "history database {path} failed ({error}); keeping history in memory"
            " until restart",
            path=self.path,
            error=str(error),
        )
        self._fallback = fallback = MemoryHistory(self._timer)
        for entry in pending:
            fallback.append(entry)
        self._unsaved += len(pending)
        return fallback

    # -- reading ----------------------------------------------------------

    def _read(self, read: Callable[[], list[Entry]]) -> list[Entry] | MemoryHistory:
        """
        Run C{read} against the database; return the memory history to ask
        instead if history is in memory now.  It does not write out the
        queue (a join storm would make a commit of each join): callers add
        the queued entries, all newer than any stored one.
        """
        if self._fallback is not None:
            return self._fallback
        try:
            return read()
        except sqlite3.Error as e:
            if _is_busy(e):  # the messages are safe; this one read shows what is held
                return []
            fallback = self._fail(e, self._pending)
            self._pending = []
            return fallback

    def recent(self, room: str, limit: int) -> Deferred[list[Entry]]:
        """
        The last C{limit} entries of C{room}, oldest first, at once (an
        indexed read of at most L{MAX_HISTORY} rows: cheaper than a hop to
        a thread and back).
        """
        try:
            return succeed(self.recent_now(room, limit))
        except Exception:
            return fail()

    def recent_now(self, room: str, limit: int) -> list[Entry]:
        """L{recent}'s answer itself."""
        if limit <= 0:
            return []
        stored = self._read(lambda: _recent_txn(self._db, room, limit))
        if isinstance(stored, MemoryHistory):
            return stored.recent_now(room, limit)
        # While the file is locked, the newest messages are still queued.
        return _newest(stored + [e for e in self._pending if e.room == room], limit)

    def search(self, room: str, words: str, limit: int) -> Deferred[list[Entry]]:
        """
        L{search_now}'s answer, at once: it runs on the reactor, bounded by
        L{SEARCH_BUDGET} and the server's search allowances
        (docs/HISTORY.md says why not on a thread).  Its errors
        (L{SearchUnavailable}, L{SearchTooSlow}) are the Deferred's.
        """
        try:
            return succeed(self.search_now(room, words, limit))
        except Exception:
            return fail()

    def search_now(self, room: str, words: str, limit: int) -> list[Entry]:
        """
        The newest C{limit} entries of C{room} holding every one of C{words}
        (each as a prefix), oldest first.

        @raise SearchUnavailable: if this SQLite has no FTS5.
        @raise SearchTooSlow: if SQLite took longer than L{SEARCH_BUDGET}.
        """
        terms = search_words(words)
        if self._fallback is None and not self.searchable:
            raise SearchUnavailable("search is not available: this server's SQLite has no FTS5")
        if not terms or limit <= 0:
            return []
        match = matcher(terms)
        stored = self._read(lambda: self._search(room, terms, match, limit))
        if isinstance(stored, MemoryHistory):
            return stored.search_now(room, words, limit)
        return _newest(stored + [e for e in self._pending if e.room == room and match(e)], limit)

    def _catch_up(self, deadline: float) -> bool:
        """
        Index what spare time has not, until C{deadline}.  Return whether
        the index is complete (not if time ran out or another process
        holds the database).
        """
        while self._indexed < self._stored:
            if self._timer() > deadline:
                return False
            try:
                with _transaction(self._db):
                    through = _index_txn(self._db, self._indexed, self._stored)
            except sqlite3.Error as e:
                if _is_busy(e):
                    return False
                raise
            self._indexed = through
        return True

    def _search(
        self, room: str, terms: list[str], match: Callable[[Entry], bool], limit: int
    ) -> list[Entry]:
        deadline = self._timer() + SEARCH_BUDGET
        complete = self._catch_up(deadline)
        indexed = self._indexed
        if not complete and self._timer() > deadline:
            raise SearchTooSlow(
                "search is still indexing the last %d messages; try again in a moment"
                % (self._stored - indexed)
            )
        found = self._search_index(room, fts_query(terms), limit, deadline)
        if complete:
            return found
        # Rows not indexed yet are matched one by one.
        return _newest(
            found + _scan_txn(self._db, room, indexed, match, self._timer, deadline), limit)

    def _search_index(self, room: str, query: str, limit: int, deadline: float) -> list[Entry]:
        stopped = []

        def check() -> int:
            if self._timer() > deadline:
                stopped.append(True)
                return 1
            return 0

        self._db.set_progress_handler(check, SEARCH_CHECK_STEPS)
        try:
            return _search_txn(self._db, room, query, limit)
        except sqlite3.OperationalError:
            if stopped:
                raise SearchTooSlow(
                    "that search took too long; use longer or more words"
                ) from None
            raise
        finally:
            self._db.set_progress_handler(None, 0)

    # -- the end ----------------------------------------------------------

    def close(self) -> None:
        """Write out what is queued and close the database."""
        if self._closed:
            return
        self._closed = True
        if self._watching is not None and self._watching.active():
            self._watching.cancel()
        self._watching = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if not self.opened:  # never opened: what was appended stays in memory
            if self._pending:
                self._fail(sqlite3.OperationalError("the database was never opened"),
                           self._pending)
                self._pending = []
        else:
            self._close_db()
        if self._unsaved:
            self.log.error(
                "{count} messages said since the history database failed were not saved",
                count=self._unsaved,
            )
        if self._fallback is None:  # anything appended after closing stays in memory
            self._fallback = MemoryHistory(self._timer)

    def _close_db(self) -> None:
        try:
            if self._pending and self._locked_since is not None:
                # Stopping: now it is worth waiting a little for the lock.
                self._db.execute("PRAGMA busy_timeout = %d" % int(STARTUP_BUSY_TIMEOUT * 1000))
            self.flush()
            if self._pending:  # still locked
                self._fail(sqlite3.OperationalError("database is locked"), self._pending)
                self._pending = []
            self._db.close()
        except sqlite3.Error as e:
            self.log.error("closing {path} failed: {error}", path=self.path, error=str(e))
