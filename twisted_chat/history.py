"""
Room history: L{SQLiteHistory} on disk and L{MemoryHistory} for tests and
as the fallback when the database fails mid-run.

Writes never wait for the disk on the fan-out path: L{SQLiteHistory.append}
queues the entry and one transaction per reactor turn writes everything
queued.  Reads write out the queue first, so they always see every message.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict, deque

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_chat.commands import MAX_HISTORY
from twisted_chat.events import Entry

SCHEMA_VERSION = 1

# Forward migrations: MIGRATIONS[n] takes a database at version n to n + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {
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
}


class HistoryError(Exception):
    """The history store cannot be opened or used."""


class MemoryHistory:
    """History kept in memory: the last L{MAX_HISTORY} entries of each room."""

    def __init__(self) -> None:
        self._rooms: defaultdict[str, deque[Entry]] = defaultdict(
            lambda: deque(maxlen=MAX_HISTORY)
        )

    def append(self, entry: Entry) -> None:
        """Keep C{entry}."""
        self._rooms[entry.room].append(entry)

    def recent(self, room: str, limit: int) -> list[Entry]:
        """The last C{limit} entries of C{room}, oldest first."""
        entries = self._rooms.get(room)
        if not entries or limit <= 0:
            return []
        return list(entries)[-limit:]

    def close(self) -> None:
        """Nothing to release."""


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
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        version += 1
    db.execute("DELETE FROM schema_version")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return found


def _insert_txn(db: sqlite3.Connection, entries: list[Entry]) -> None:
    db.executemany(
        "INSERT INTO messages (room, sender, text, sent, action) VALUES (?, ?, ?, ?, ?)",
        [(e.room, e.sender, e.text, e.when, int(e.action)) for e in entries],
    )


def _recent_txn(db: sqlite3.Connection, room: str, limit: int) -> list[Entry]:
    rows = db.execute(
        "SELECT room, sender, text, sent, action FROM messages"
        " WHERE room = ? ORDER BY id DESC LIMIT ?",
        (room, limit),
    ).fetchall()
    return [Entry(r, s, t, w, bool(a)) for r, s, t, w, a in reversed(rows)]


class SQLiteHistory:
    """
    History in an SQLite file (WAL, synchronous=NORMAL).

    If the database fails while the server runs, the failure is logged once
    and history goes on in memory, so chat never stops for the disk.
    """

    log = Logger()

    def __init__(self, path: str, clock: IReactorTime) -> None:
        """
        Open (creating or migrating) the database at C{path}.

        @raise HistoryError: if it cannot be opened, is not a database, or is
            read-only, locked or from a newer program.
        """
        self.path = path
        self._clock = clock
        self._pending: list[Entry] = []
        self._call: IDelayedCall | None = None
        self._fallback: MemoryHistory | None = None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 1000")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                _migrate_txn(self._db)
        except sqlite3.Error as e:
            raise HistoryError("cannot use history database %s: %s" % (path, e)) from e

    def append(self, entry: Entry) -> None:
        """Queue C{entry}; it is written at the end of this reactor turn."""
        if self._fallback is not None:
            self._fallback.append(entry)
            return
        self._pending.append(entry)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write every queued entry in one transaction."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        pending, self._pending = self._pending, []
        if not pending or self._fallback is not None:
            return
        try:
            with self._db:
                _insert_txn(self._db, pending)
        except sqlite3.Error as e:
            self._fail(e, pending)

    def _fail(self, error: sqlite3.Error, pending: list[Entry]) -> None:
        self.log.error(
            "history database {path} failed ({error}); keeping history in memory"
            " until restart",
            path=self.path,
            error=str(error),
        )
        self._fallback = MemoryHistory()
        for entry in pending:
            self._fallback.append(entry)

    def recent(self, room: str, limit: int) -> list[Entry]:
        """The last C{limit} entries of C{room}, oldest first."""
        if limit <= 0:
            return []
        self.flush()
        if self._fallback is not None:
            return self._fallback.recent(room, limit)
        try:
            return _recent_txn(self._db, room, limit)
        except sqlite3.Error as e:
            self._fail(e, [])
            return []

    def close(self) -> None:
        """Write out what is queued and close the database."""
        self.flush()
        try:
            self._db.close()
        except sqlite3.Error as e:
            self.log.error("closing {path} failed: {error}", path=self.path, error=str(e))
