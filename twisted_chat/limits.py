"""
Limits that protect the server as a whole: connections per address and in
total, passcode guessing per address, and deadlines (login and idle
timeouts) kept with one shared sweep instead of a timer per connection.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

K = TypeVar("K", bound=Hashable)


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


class RefusalLog:
    """
    Logs refusals (of connections, of addresses locked out) without a line
    per address: the first refusal after a quiet spell is logged at once;
    later ones are counted and summarised at most once every C{every}
    seconds, naming the addresses refused most.

    Each refusal costs O(1).  At most C{max_tracked} addresses are counted
    one by one until the next summary (the rest only in the total), and the
    summary, which looks at each of them once, runs at most once a minute.

    @ivar one: the log format of a single refusal (fields C{host}, C{why}).
    @ivar many: the log format of a summary (fields C{count}, C{addresses},
        C{every}, C{top}, C{why}).
    """

    log = Logger()
    MAX_TRACKED = 10_000

    def __init__(self, clock: IReactorTime, one: str, many: str, every: float = 60.0,
                 max_tracked: int = MAX_TRACKED) -> None:
        self._clock = clock
        self.one = one
        self.many = many
        self._every = every
        self._max_tracked = max_tracked
        self._last = float("-inf")  # when a line was last logged
        self._count = 0
        self._untracked = 0
        self._hosts: dict[str, int] = {}
        self._why = ""
        self._summary: Any = None  # the pending summary's IDelayedCall

    @property
    def tracked(self) -> int:
        """How many addresses are counted one by one until the next summary."""
        return len(self._hosts)

    def note(self, host: str, why: str) -> None:
        """Count one refusal of C{host} because of C{why}."""
        now = self._clock.seconds()
        if self._summary is None and now - self._last >= self._every:
            self._last = now
            self.log.warn(self.one, host=host, why=why)
            return
        self._count += 1
        self._why = why
        hosts = self._hosts
        if host in hosts:
            hosts[host] += 1
        elif len(hosts) < self._max_tracked:
            hosts[host] = 1
        else:
            self._untracked += 1
        if self._summary is None:
            self._summary = self._clock.callLater(self._last + self._every - now, self._report)

    def _report(self) -> None:
        self._summary = None
        self._last = self._clock.seconds()
        hosts, self._hosts = self._hosts, {}
        count, self._count = self._count, 0
        untracked, self._untracked = self._untracked, 0
        top = heapq.nlargest(3, hosts.items(), key=lambda item: item[1])
        addresses = "%d address%s" % (len(hosts), "" if len(hosts) == 1 else "es")
        if untracked:
            addresses = "more than " + addresses
        self.log.warn(self.many, count=count, addresses=addresses, every=self._every,
                      top=", ".join("%s %d" % item for item in top), why=self._why)

    def stop(self) -> None:
        """Log what is pending now instead of later (the server is stopping)."""
        if self._summary is not None:
            self._summary.cancel()
            self._report()


class ConnectionLimits:
    """
    Counts connections per address and in total, and refuses those past the
    limits.  Addresses in C{exempt} count towards the total only.  Refusals
    are logged at most once a minute (L{RefusalLog}).
    """

    def __init__(self, clock: IReactorTime, max_clients: int, max_per_ip: int,
                 exempt: frozenset[str] = frozenset()) -> None:
        self._clock = clock
        self.max_clients = max_clients
        self.max_per_ip = max_per_ip
        self._exempt = exempt
        self._per_ip: dict[str, int] = {}
        self.total = 0
        # refused connections, by why (read by the metrics)
        self.refused = {"full": 0, "per_ip": 0}
        self.refusals = RefusalLog(
            clock, "refused a connection from {host}: {why}",
            "refused {count} connections from {addresses} in the last {every:.0f} s"
            " (most from: {top}); the latest because {why}")

    def admit(self, host: str) -> str | None:
        """
        Count a new connection from C{host}; or, past a limit, count nothing
        and return why it is refused.
        """
        if self.total >= self.max_clients:
            self.refused["full"] += 1
            self.refusals.note(host, "the server is full (%d connections)" % self.total)
            return "the server is full; try again later"
        count = self._per_ip.get(host, 0)
        if count >= self.max_per_ip and host not in self._exempt:
            self.refused["per_ip"] += 1
            self.refusals.note(host, "%d connections from it already" % count)
            return "too many connections from your address (at most %d)" % self.max_per_ip
        self._per_ip[host] = count + 1
        self.total += 1
        return None

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

    Both tables are kept in time order (an address moves to the end when it
    fails again), so expiring is popping from the front: O(1) amortised per
    event however many addresses there are.  Each holds at most
    C{max_tracked} addresses; past that the oldest are forgotten first.
    Lockouts are logged through a L{RefusalLog}: one line, then a summary
    at most once a minute.

    @ivar steps: entries looked at while expiring, for tests of the cost.
    """

    MAX_TRACKED = 10_000

    def __init__(self, clock: IReactorTime, attempts: int = 3, window: float = 60.0,
                 ban: float = 60.0, max_tracked: int = MAX_TRACKED) -> None:
        self._clock = clock
        self._attempts = attempts
        self._window = window
        self._ban = ban
        self._max_tracked = max_tracked
        # host -> times of its recent failures, in the order of the latest failure
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        # host -> end of its ban, in that order (every ban lasts as long)
        self._banned: OrderedDict[str, float] = OrderedDict()
        self.steps = 0
        self.lockouts = RefusalLog(
            clock, "{why} from {host}; refusing it for %.0fs" % ban,
            "locked out {addresses} for %.0f s after repeated wrong passcodes in the last"
            " {every:.0f} s ({count} lockouts; the latest: {why})" % ban)

    def __len__(self) -> int:
        """How many addresses either table holds."""
        return len(self._failures) + len(self._banned)

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
        self._expire(now)
        failures = self._failures
        recent = [t for t in failures.pop(host, ()) if now - t < self._window]
        recent.append(now)
        if len(recent) >= self._attempts:
            banned = self._banned
            banned.pop(host, None)
            banned[host] = now + self._ban
            if len(banned) > self._max_tracked:
                banned.popitem(last=False)
            self.lockouts.note(host, "%d wrong passcodes within %.0fs"
                               % (len(recent), self._window))
        else:
            failures[host] = recent
            if len(failures) > self._max_tracked:
                failures.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Forget failures older than the window and bans that ended."""
        failures, banned, window = self._failures, self._banned, self._window
        while failures:
            self.steps += 1
            host = next(iter(failures))
            if now - failures[host][-1] < window:
                break
            del failures[host]
        while banned:
            self.steps += 1
            host = next(iter(banned))
            if banned[host] > now:
                break
            del banned[host]


class RecentCount:
    """
    Counts events per key within the last C{window} seconds and says when
    a key reached C{limit}: wrong passwords per account (3 a minute from
    anywhere), registrations per address (3 an hour).

    Keys are kept in the order of their latest event, so expiring is
    popping from the front; at most C{max_tracked} keys (the oldest go
    first).
    """

    MAX_TRACKED = 10_000

    def __init__(self, clock: IReactorTime, limit: int, window: float,
                 max_tracked: int = MAX_TRACKED) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._max_tracked = max_tracked
        self._events: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._events)

    def _recent(self, key: str, now: float) -> list[float]:
        events = self._events
        while events:  # forget keys whose latest event left the window
            first = next(iter(events))
            if now - events[first][-1] < self.window:
                break
            del events[first]
        return [t for t in events.get(key, ()) if now - t < self.window]

    def full(self, key: str) -> bool:
        """Whether C{key} had C{limit} events within the window."""
        return len(self._recent(key, self._clock.seconds())) >= self.limit

    def add(self, key: str) -> None:
        """Count one event of C{key}."""
        now = self._clock.seconds()
        recent = self._recent(key, now)
        recent.append(now)
        self._events.pop(key, None)
        self._events[key] = recent[-self.limit:]
        if len(self._events) > self._max_tracked:
            self._events.popitem(last=False)
