"""
Limits that protect the server as a whole: connections per address and in
total, passcode guessing per address, and deadlines (login and idle
timeouts) kept with one shared sweep instead of a timer per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from typing import Protocol

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

K = TypeVar("K", bound=Hashable)


class Watched(Protocol):
    """A front end whose output a L{SendQueueWatch} watches."""

    stalled: bool
    queued: int


@implementer(IPushProducer)
class SendQueueWatch:
    """
    The producer a front end registers on its transport.  The transport
    pauses it when its send buffer is full, which is how we learn a client
    stopped reading: the front end then counts what it still sends
    (C{queued}) and drops the client past its sendq.  (A LineReceiver cannot
    be its own producer: its pauseProducing pauses reading.)
    """

    __slots__ = ("_front",)

    def __init__(self, front: Watched) -> None:
        self._front = front

    def pauseProducing(self) -> None:
        self._front.stalled = True

    def resumeProducing(self) -> None:
        self._front.stalled = False
        self._front.queued = 0

    def stopProducing(self) -> None:
        pass


class Deadlines(Generic[K]):
    """
    Calls C{expired(key)} for each key not touched for C{timeout} seconds.

    Keys are kept in the order of their deadlines (every key gets the same
    timeout, so a touched key moves to the end), and one periodic sweep, run
    only while there are keys, pops expired keys from the front: the cost is
    per expiry, never per connection per tick.
    """

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float,
        expired: Callable[[K], object],
        interval: float = 1.0,
    ) -> None:
        self._clock = clock
        self.timeout = timeout
        self._expired = expired
        self._interval = interval
        self._pending: dict[K, float] = {}
        self._sweeper: LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def touch(self, key: K) -> None:
        """(Re)start C{key}'s clock."""
        pending = self._pending
        pending.pop(key, None)
        pending[key] = self._clock.seconds() + self.timeout
        if self._sweeper is None:
            self._sweeper = LoopingCall(self._sweep)
            self._sweeper.clock = self._clock
            self._sweeper.start(self._interval, now=False)

    def discard(self, key: K) -> None:
        """Forget C{key}."""
        self._pending.pop(key, None)
        if not self._pending:
            self._stop()

    def _stop(self) -> None:
        if self._sweeper is not None:
            sweeper, self._sweeper = self._sweeper, None
            sweeper.stop()

    def _sweep(self) -> None:
        now = self._clock.seconds()
        expired = []
        for key, deadline in self._pending.items():
            if deadline > now:
                break
            expired.append(key)
        for key in expired:
            del self._pending[key]
        if not self._pending:
            self._stop()
        for key in expired:
            self._expired(key)

    def clear(self) -> list[K]:
        """Forget every key and stop sweeping; return the keys."""
        keys = list(self._pending)
        self._pending.clear()
        self._stop()
        return keys


class ConnectionLimits:
    """
    Counts connections per address and in total, and refuses those past the
    limits.  Addresses in C{exempt} count towards the total only.
    """

    log = Logger()
    LOG_EVERY = 60.0  # seconds between log lines about one address's refusals

    def __init__(self, clock: IReactorTime, max_clients: int, max_per_ip: int,
                 exempt: frozenset[str] = frozenset()) -> None:
        self._clock = clock
        self.max_clients = max_clients
        self.max_per_ip = max_per_ip
        self._exempt = exempt
        self._per_ip: dict[str, int] = {}
        self.total = 0
        # host -> (when its refusals were last logged, refusals since then)
        self._refusals: dict[str, tuple[float, int]] = {}

    def admit(self, host: str) -> str | None:
        """
        Count a new connection from C{host}; or, past a limit, count nothing
        and return why it is refused.
        """
        if self.total >= self.max_clients:
            self._refused(host, "the server is full (%d connections)" % self.total)
            return "the server is full; try again later"
        count = self._per_ip.get(host, 0)
        if count >= self.max_per_ip and host not in self._exempt:
            self._refused(host, "%d connections from it already" % count)
            return "too many connections from your address (at most %d)" % self.max_per_ip
        self._per_ip[host] = count + 1
        self.total += 1
        return None

    def _refused(self, host: str, why: str) -> None:
        """Log a refusal, at most once a minute per address (a connect loop must not flood the log)."""
        now = self._clock.seconds()
        last, count = self._refusals.get(host, (float("-inf"), 0))
        if now - last < self.LOG_EVERY:
            self._refusals[host] = (last, count + 1)
            return
        self.log.warn("refused a connection from {host}: {why}{more}", host=host, why=why,
                      more=" (and %d more since the last report)" % count if count else "")
        self._refusals[host] = (now, 0)
        if len(self._refusals) > 10_000:
            self._refusals = {h: v for h, v in self._refusals.items()
                              if now - v[0] < self.LOG_EVERY}

    def release(self, host: str) -> None:
        """A connection from C{host} that was admitted has closed."""
        count = self._per_ip.get(host, 0)
        if count <= 1:
            self._per_ip.pop(host, None)
        else:
            self._per_ip[host] = count - 1
        self.total = max(0, self.total - 1)

    def count(self, host: str) -> int:
        """How many connections from C{host} are open."""
        return self._per_ip.get(host, 0)


class PasscodeLockout:
    """
    After C{attempts} wrong passcodes from one address within C{window}
    seconds, refuses that address for C{ban} seconds.
    """

    log = Logger()
    MAX_TRACKED = 10_000

    def __init__(self, clock: IReactorTime, attempts: int = 3, window: float = 60.0,
                 ban: float = 60.0) -> None:
        self._clock = clock
        self._attempts = attempts
        self._window = window
        self._ban = ban
        self._failures: dict[str, list[float]] = {}
        self._banned: dict[str, float] = {}

    def remaining(self, host: str) -> float:
        """Seconds until C{host} may try again (0 when it may now)."""
        until = self._banned.get(host)
        if until is None:
            return 0.0
        left = until - self._clock.seconds()
        if left <= 0:
            del self._banned[host]
            return 0.0
        return left

    def failed(self, host: str) -> None:
        """Record a wrong passcode from C{host}."""
        now = self._clock.seconds()
        recent = [t for t in self._failures.get(host, ()) if now - t < self._window]
        recent.append(now)
        if len(recent) >= self._attempts:
            self._failures.pop(host, None)
            self._banned[host] = now + self._ban
            self.log.warn(
                "{count} wrong passcodes from {host} within {window:.0f}s;"
                " refusing it for {ban:.0f}s",
                count=len(recent), host=host, window=self._window, ban=self._ban,
            )
        else:
            self._failures[host] = recent
        if len(self._failures) + len(self._banned) > self.MAX_TRACKED:
            self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        self._failures = {
            host: times for host, times in self._failures.items()
            if now - times[-1] < self._window
        }
        self._banned = {host: until for host, until in self._banned.items() if until > now}
