"""
Where moderation lives between restarts: claims, ops, topics, bans, mutes
and the moderation log, in the C{--db} SQLite file beside the accounts
(L{SQLiteModeration}), or in memory for C{--db :memory:}
(L{MemoryModeration}).

Both take L{twisted_chat.domain.moderation.Change} values as the domain
applies them (L{record}: the state tables and one log row) and give back
the changes that rebuild the state (L{load}).  The SQLite store works on
the reactor thread, one short transaction per change (a moderation action
is rare); its connection opens on first use, so a daemon opens it after
twistd forked.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

from twisted.logger import Logger

from twisted_chat.domain.moderation import LOGGED_KINDS, Change
from twisted_chat.storage.accounts import SERVER_BUSY_TIMEOUT, connect_shared

# The memory store keeps this many log entries (the newest).
MEMORY_LOG = 10_000

# room "" is the server (server-wide bans and mutes).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rooms (
        room TEXT PRIMARY KEY,
        owner TEXT,
        topic TEXT,
        topic_by TEXT,
        topic_when REAL
    )""",
    """CREATE TABLE IF NOT EXISTS room_ops (
        room TEXT NOT NULL,
        account TEXT NOT NULL,
        PRIMARY KEY (room, account)
    )""",
    *("""CREATE TABLE IF NOT EXISTS %s (
        room TEXT NOT NULL,
        target TEXT NOT NULL,
        by TEXT NOT NULL,
        created REAL NOT NULL,
        until REAL,
        reason TEXT NOT NULL,
        PRIMARY KEY (room, target)
    )""" % table for table in ("bans", "mutes")),  # the same columns
    """CREATE TABLE IF NOT EXISTS modlog (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        room TEXT,
        target TEXT NOT NULL,
        until REAL,
        reason TEXT NOT NULL
    )""",
)


class ModerationError(Exception):
    """The moderation tables cannot be used (one line: the path and why)."""


def _logged(change: Change) -> bool:
    """Whether C{change} goes into the moderation log (all but the silent C{forget})."""
    return change.kind != "forget"


class _Tables:
    """The state as plain tables (the memory store; the SQLite store's shape)."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[Any]] = {}  # room -> [owner, topic, by, when]
        self.ops: set[tuple[str, str]] = set()
        self.bans: dict[tuple[str, str], Change] = {}
        self.mutes: dict[tuple[str, str], Change] = {}

    def apply(self, change: Change) -> None:
        kind, room = change.kind, change.room or ""
        if kind in ("ban", "mute"):
            (self.bans if kind == "ban" else self.mutes)[room, change.target] = change
        elif kind in ("unban", "unmute"):
            (self.bans if kind == "unban" else self.mutes).pop((room, change.target), None)
        elif kind == "op":
            self.ops.add((room, change.target.casefold()))
        elif kind == "deop":
            self.ops.discard((room, change.target.casefold()))
        elif kind in ("claim", "unclaim", "topic", "forget"):
            row = self.rooms.setdefault(room, [None, None, None, None])
            if kind == "claim":
                row[0] = change.target.casefold()
            elif kind == "unclaim":
                row[0] = None
                self.ops = {(r, a) for r, a in self.ops if r != room}
            elif kind == "topic":
                row[1:] = [change.reason, change.by, change.when] if change.reason \
                    else [None, None, None]
            elif row[0] is None:  # forget: an unclaimed room's topic
                row[1:] = [None, None, None]
            if row == [None, None, None, None]:
                del self.rooms[room]

    def changes(self) -> list[Change]:
        out: list[Change] = []
        for room, (owner, topic, by, when) in self.rooms.items():
            if owner is not None:
                out.append(Change("claim", room, owner))
            if topic is not None:
                out.append(Change("topic", room, "", by or "", None, topic, when or 0.0))
        for room, account in sorted(self.ops):
            out.append(Change("op", room, account))
        for table in (self.bans, self.mutes):
            for change in table.values():
                out.append(Change(change.kind, change.room or None, change.target, change.by,
                                  change.until, change.reason, change.when))
        return out


class MemoryModeration:
    """Moderation kept in memory only (C{--db :memory:}, and tests)."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._log: deque[Change] = deque(maxlen=MEMORY_LOG)

    def load(self) -> list[Change]:
        return self._tables.changes()

    def record(self, change: Change) -> None:
        if change.kind not in LOGGED_KINDS:
            self._tables.apply(change)
        if _logged(change):
            self._log.append(change)

    def modlog(self, limit: int) -> list[Change]:
        return list(self._log)[-limit:] if limit > 0 else []

    def close(self) -> None:
        pass


class SQLiteModeration:
    """
    Moderation in the SQLite file C{path} (the C{--db} file: tables
    C{rooms}, C{room_ops}, C{bans}, C{mutes}, C{modlog}; room C{""} in
    C{bans} and C{mutes} is server-wide).  A write that fails is logged;
    the server goes on with the state it holds.
    """

    log = Logger()

    def __init__(self, path: str, busy_timeout: float = SERVER_BUSY_TIMEOUT) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None

    def check(self) -> None:
        """Open (creating the tables if missing) and close: refuse a bad file now."""
        self._connect()
        self.close()

    def _connect(self) -> sqlite3.Connection:
        db = self._db
        if db is not None:
            return db
        try:
            db = connect_shared(self.path, self._busy_timeout, SCHEMA)
        except sqlite3.Error as e:
            raise ModerationError("cannot use the moderation tables in %s: %s"
                                  % (self.path, e)) from None
        self._db = db
        return db

    def load(self) -> list[Change]:
        """
        The changes that rebuild the state.

        @raise ModerationError: if the tables cannot be read.
        """
        try:
            db = self._connect()
            out: list[Change] = []
            for room, owner, topic, by, when in db.execute(
                    "SELECT room, owner, topic, topic_by, topic_when FROM rooms"):
                if owner is not None:
                    out.append(Change("claim", room, owner))
                if topic is not None:
                    out.append(Change("topic", room, "", by or "", None, topic, when or 0.0))
            for room, account in db.execute("SELECT room, account FROM room_ops ORDER BY room"):
                out.append(Change("op", room, account))
            for kind, table in (("ban", "bans"), ("mute", "mutes")):
                for room, target, by, created, until, reason in db.execute(
                        "SELECT room, target, by, created, until, reason FROM %s"
                        " ORDER BY created" % table):
                    out.append(Change(kind, room or None, target, by, until, reason, created))
            return out
        except sqlite3.Error as e:
            raise ModerationError("cannot read the moderation tables in %s: %s"
                                  % (self.path, e)) from None

    def record(self, change: Change) -> None:
        """L{write} C{change}; a failure is logged (the server goes on)."""
        try:
            self.write(change)
        except ModerationError:
            self.log.failure("storing the moderation change {change} failed", change=change)

    def write(self, change: Change) -> None:
        """
        Keep C{change} (the state tables and a log row, one transaction).

        @raise ModerationError: if it could not be written.
        """
        try:
            db = self._connect()
            with db:  # one transaction: the state and its log row
                db.execute("BEGIN")
                self._apply(db, change)
                if _logged(change):
                    db.execute(
                        "INSERT INTO modlog (time, actor, action, room, target, until, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (change.when, change.by, change.kind, change.room, change.target,
                         change.until, change.reason))
        except sqlite3.Error as e:
            raise ModerationError("cannot write the moderation tables in %s: %s"
                                  % (self.path, e)) from e

    def _apply(self, db: sqlite3.Connection, change: Change) -> None:
        kind, room = change.kind, change.room or ""
        if kind in ("ban", "mute"):
            db.execute("INSERT OR REPLACE INTO %s (room, target, by, created, until, reason)"
                       " VALUES (?, ?, ?, ?, ?, ?)" % ("bans" if kind == "ban" else "mutes"),
                       (room, change.target, change.by, change.when, change.until,
                        change.reason))
        elif kind in ("unban", "unmute"):
            db.execute("DELETE FROM %s WHERE room = ? AND target = ?"
                       % ("bans" if kind == "unban" else "mutes"), (room, change.target))
        elif kind == "op":
            db.execute("INSERT OR IGNORE INTO room_ops (room, account) VALUES (?, ?)",
                       (room, change.target.casefold()))
        elif kind == "deop":
            db.execute("DELETE FROM room_ops WHERE room = ? AND account = ?",
                       (room, change.target.casefold()))
        elif kind == "claim":
            db.execute("INSERT OR IGNORE INTO rooms (room) VALUES (?)", (room,))
            db.execute("UPDATE rooms SET owner = ? WHERE room = ?",
                       (change.target.casefold(), room))
        elif kind == "unclaim":
            db.execute("UPDATE rooms SET owner = NULL WHERE room = ?", (room,))
            db.execute("DELETE FROM room_ops WHERE room = ?", (room,))
        elif kind == "topic":
            db.execute("INSERT OR IGNORE INTO rooms (room) VALUES (?)", (room,))
            if change.reason:
                db.execute("UPDATE rooms SET topic = ?, topic_by = ?, topic_when = ?"
                           " WHERE room = ?", (change.reason, change.by, change.when, room))
            else:
                db.execute("UPDATE rooms SET topic = NULL, topic_by = NULL, topic_when = NULL"
                           " WHERE room = ?", (room,))
        elif kind == "forget":
            db.execute("UPDATE rooms SET topic = NULL, topic_by = NULL, topic_when = NULL"
                       " WHERE room = ? AND owner IS NULL", (room,))
        else:
            return
        db.execute("DELETE FROM rooms WHERE room = ? AND owner IS NULL AND topic IS NULL",
                   (room,))

    def modlog(self, limit: int) -> list[Change]:
        """The last C{limit} log entries, oldest first."""
        try:
            rows = self._connect().execute(
                "SELECT time, actor, action, room, target, until, reason FROM modlog"
                " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        except sqlite3.Error as e:
            raise ModerationError("cannot read the moderation log in %s: %s"
                                  % (self.path, e)) from None
        return [Change(action, room, target, actor, until, reason, when)
                for when, actor, action, room, target, until, reason in reversed(rows)]

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


def open_moderation(path: str) -> MemoryModeration | SQLiteModeration:
    """The moderation store of the C{--db} C{path} (C{:memory:}: in memory only)."""
    if path == ":memory:":
        return MemoryModeration()
    return SQLiteModeration(path)
