"""
Password hashing: argon2id through C{argon2-cffi}, off the reactor thread,
at most two hashes at once (each takes 64 MiB and 100-200 ms of CPU with
argon2's default parameters).  The hashes run in two threads of their own
at a lower CPU priority (nice 10, on Linux), so that a login storm takes
the CPU the reactor leaves over instead of delaying chat.  The L{Hasher}
protocol is what the checker and the session use, so tests inject a fast,
synchronous fake.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from twisted_chat.storage.history import _lower_priority

T = TypeVar("T")

# Hashes computed at once, whatever the load: a login storm queues here and
# costs at most two threads (and 128 MiB), never the reactor's time.
MAX_HASHES = 2
# The nice value of the hashing threads (Linux gives each thread its own).
HASH_NICE = 10


class HashThreads:
    """
    Runs functions in L{MAX_HASHES} threads of their own, started on first
    use and stopped when the reactor shuts down; each thread lowers its own
    priority to L{HASH_NICE} before its first hash.
    """

    def __init__(self, reactor: Any = None, size: int = MAX_HASHES) -> None:
        self._reactor = reactor
        self._size = size
        self._pool: ThreadPool | None = None
        self._local = threading.local()

    def _niced(self, f: Callable[..., T], *args: Any) -> T:
        if not getattr(self._local, "niced", False):
            self._local.niced = True
            _lower_priority(HASH_NICE)
        return f(*args)

    def __call__(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        if self._pool is None:
            self._pool = ThreadPool(0, self._size, name="argon2")
            self._pool.start()
            reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        return deferToThreadPool(reactor, self._pool, self._niced, f, *args)


class Hasher(Protocol):
    """Makes and checks password hashes; every answer may come later."""

    def hash(self, password: str) -> Deferred[str]:
        """The hash of C{password} (PHC form, salted)."""

    def verify(self, hash: str, password: str) -> Deferred[bool]:
        """Whether C{password} matches C{hash} (C{False} for a malformed hash too)."""

    def dummy_verify(self, password: str) -> Deferred[bool]:
        """Take as long as L{verify} does, for a name without an account; C{False}."""

    def needs_rehash(self, hash: str) -> bool:
        """Whether C{hash} was made with other parameters than today's."""


class Argon2Hasher:
    """
    argon2id (C{argon2.PasswordHasher}, RFC 9106's parameters by default)
    in L{HashThreads}, at most L{MAX_HASHES} at once (the rest wait in
    line, in order).

    @param run: runs a function in a thread and answers with a Deferred
        (default: a L{HashThreads}; tests pass one that runs at once).
    """

    def __init__(self, hasher: Any = None,
                 run: Callable[..., Deferred[Any]] | None = None,
                 limit: int = MAX_HASHES) -> None:
        if hasher is None:
            from argon2 import PasswordHasher

            hasher = PasswordHasher()
        self._ph = hasher
        self._run = run if run is not None else HashThreads(size=limit)
        self._lock = DeferredSemaphore(limit)
        self._dummy: str | None = None

    def _in_thread(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        return self._lock.run(self._run, f, *args)

    def hash(self, password: str) -> Deferred[str]:
        return self._in_thread(self._ph.hash, password)

    def _verify(self, hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return bool(self._ph.verify(hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        """The hash a name without an account is checked against (made once, in a thread)."""
        if self._dummy is None:
            self._dummy = self._ph.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _real_verify(self, hash: str, password: str) -> bool:
        self._dummy_hash()  # so the first login costs the same, whichever it is
        return self._verify(hash, password)

    def verify(self, hash: str, password: str) -> Deferred[bool]:
        return self._in_thread(self._real_verify, hash, password)

    def _dummy_verify(self, password: str) -> bool:
        self._verify(self._dummy_hash(), password)
        return False

    def dummy_verify(self, password: str) -> Deferred[bool]:
        return self._in_thread(self._dummy_verify, password)

    def needs_rehash(self, hash: str) -> bool:
        try:
            return bool(self._ph.check_needs_rehash(hash))
        except Exception:  # a malformed hash: verify fails it anyway
            return False
