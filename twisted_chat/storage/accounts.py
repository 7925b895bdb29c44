"""
Registered accounts: a name (unique case-insensitively), a password hash
(never the password), an operator flag and when it was created.

They live in the C{--db} file, in their own table next to the history's
(the history's schema version is not touched: the table is created when
missing, so a database of any earlier version gains it on first use), read
through on every login (no cache: a change by C{chat-admin} counts at the
next login), each write one short transaction.  The server and
C{chat-admin} share the file through SQLite's WAL and a busy timeout.
C{:memory:} keeps accounts in memory only (L{MemoryAccounts}).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

ACCOUNTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    hash TEXT NOT NULL,
    operator INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""

# How long a statement waits for another process's transaction, in seconds
# (each is one short statement): chat-admin waits for the server ...
BUSY_TIMEOUT = 5.0
# ... and the server, which reads and writes accounts on the reactor thread,
# waits less, then answers "try again later".
SERVER_BUSY_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class Account:
    """
    One registered account.

    @ivar name: as registered (its case kept; unique ignoring case).
    @ivar hash: the password's hash in PHC form (C{$argon2id$...}).
    @ivar operator: whether it is a server operator.
    @ivar created: when it was created (seconds since the epoch).
    """

    name: str
    hash: str
    operator: bool = False
    created: float = 0.0

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return "Account(%r, operator=%r)" % (self.name, self.operator)


def connect_shared(path: str, busy_timeout: float, schema: Iterable[str]) -> sqlite3.Connection:
    """
    Open the C{--db} file C{path} as the server and C{chat-admin} share it:
    autocommit, WAL, waiting C{busy_timeout} seconds for another process's
    statement; the tables of C{schema} are created when missing.

    @raise sqlite3.Error: if the file cannot be used.
    """
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    db.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        db.execute("PRAGMA journal_mode = WAL")
    for statement in schema:
        db.execute(statement)
    return db


class AccountExists(Exception):
    """An account of that name (in any case) exists already."""


class NoSuchAccount(Exception):
    """No account has that name."""


class AccountError(Exception):
    """The accounts table cannot be used (one line: the path and why)."""


class AccountStore(Protocol):
    """Where accounts are kept; every call reads or writes through at once."""

    def get(self, name: str) -> Account | None:
        """The account called C{name} (any case), or C{None}."""

    def add(self, name: str, hash: str, operator: bool = False) -> Account:
        """Create it. @raise AccountExists: if the name is taken (any case)."""

    def set_hash(self, name: str, hash: str) -> None:
        """Replace its password hash. @raise NoSuchAccount: if there is none."""

    def set_operator(self, name: str, operator: bool) -> None:
        """Set its operator flag. @raise NoSuchAccount: if there is none."""

    def delete(self, name: str) -> None:
        """Remove it. @raise NoSuchAccount: if there is none."""

    def all(self) -> list[Account]:
        """Every account, by name."""

    def close(self) -> None:
        """Release the store."""


class MemoryAccounts:
    """Accounts kept in memory only (C{--db :memory:}, and tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._accounts: dict[str, Account] = {}

    def get(self, name: str) -> Account | None:
        return self._accounts.get(name.casefold())

    def add(self, name: str, hash: str, operator: bool = False) -> Account:
        if name.casefold() in self._accounts:
            raise AccountExists(name)
        account = Account(name, hash, operator, self._clock())
        self._accounts[name.casefold()] = account
        return account

    def _change(self, name: str, **changes: object) -> None:
        key = name.casefold()
        account = self._accounts.get(key)
        if account is None:
            raise NoSuchAccount(name)
        self._accounts[key] = replace(account, **changes)  # type: ignore[arg-type]

    def set_hash(self, name: str, hash: str) -> None:
        self._change(name, hash=hash)

    def set_operator(self, name: str, operator: bool) -> None:
        self._change(name, operator=operator)

    def delete(self, name: str) -> None:
        if self._accounts.pop(name.casefold(), None) is None:
            raise NoSuchAccount(name)

    def all(self) -> list[Account]:
        return sorted(self._accounts.values(), key=lambda a: a.name.casefold())

    def close(self) -> None:
        pass


class SQLiteAccounts:
    """
    Accounts in the SQLite file C{path}.  The connection opens on first
    use (so a daemon opens it after twistd forked) in WAL mode with a busy
    timeout; each call is one statement in its own transaction.
    """

    def __init__(self, path: str, busy_timeout: float = BUSY_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._db: sqlite3.Connection | None = None

    def check(self) -> None:
        """Open (creating the table if missing) and close: refuse a bad file now."""
        self._connect()
        self.close()

    def _connect(self) -> sqlite3.Connection:
        db = self._db
        if db is not None:
            return db
        try:
            db = connect_shared(self.path, self._busy_timeout, (ACCOUNTS_SCHEMA,))
        except sqlite3.Error as e:
            raise AccountError("cannot use the accounts in %s: %s" % (self.path, e)) from None
        self._db = db
        return db

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._connect().execute(sql, args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise AccountError("cannot use the accounts in %s: %s" % (self.path, e)) from None

    def get(self, name: str) -> Account | None:
        row = self._run("SELECT name, hash, operator, created FROM accounts WHERE name = ?",
                        (name,)).fetchone()
        return Account(row[0], row[1], bool(row[2]), row[3]) if row else None

    def add(self, name: str, hash: str, operator: bool = False) -> Account:
        created = self._clock()
        try:
            self._run("INSERT INTO accounts (name, hash, operator, created) VALUES (?, ?, ?, ?)",
                      (name, hash, int(operator), created))
        except sqlite3.IntegrityError:
            raise AccountExists(name) from None
        return Account(name, hash, operator, created)

    def _update(self, sql: str, args: tuple[object, ...], name: str) -> None:
        if self._run(sql, args).rowcount == 0:
            raise NoSuchAccount(name)

    def set_hash(self, name: str, hash: str) -> None:
        self._update("UPDATE accounts SET hash = ? WHERE name = ?", (hash, name), name)

    def set_operator(self, name: str, operator: bool) -> None:
        self._update("UPDATE accounts SET operator = ? WHERE name = ?",
                     (int(operator), name), name)

    def delete(self, name: str) -> None:
        self._update("DELETE FROM accounts WHERE name = ?", (name,), name)

    def all(self) -> list[Account]:
        rows = self._run("SELECT name, hash, operator, created FROM accounts"
                         " ORDER BY name").fetchall()
        return [Account(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


def open_accounts(path: str) -> MemoryAccounts | SQLiteAccounts:
    """The account store of the C{--db} C{path} (C{:memory:}: in memory only)."""
    if path == ":memory:":
        return MemoryAccounts()
    return SQLiteAccounts(path, busy_timeout=SERVER_BUSY_TIMEOUT)
