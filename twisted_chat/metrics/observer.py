"""
The observer seam: the domain, the sessions, the front ends and the history
store tell a L{ChatObserver} what happened, and it counts.  The default,
L{NULL_OBSERVER}, does nothing; L{Counts} keeps plain integers that
L{twisted_chat.metrics.prometheus} reads at scrape time.  Nothing here
imports Prometheus, and nothing is called per recipient: a room event to N
members is one call with N.

Every label value is one of a few fixed words (a front end, a kind, a
result, a reason): never a user's or a room's name.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Protocol


class ChatObserver(Protocol):
    """Told what happens, on the reactor thread; each call must be cheap."""

    def connection_opened(self, frontend: str) -> None:
        """A connection to C{frontend} (C{"line"}, C{"web"}, C{"irc"}) was accepted."""

    def connection_closed(self, frontend: str) -> None:
        """An accepted connection to C{frontend} ended."""

    def send_queue_overflowed(self, frontend: str) -> None:
        """A client of C{frontend} stopped reading and was dropped (C{--sendq})."""

    def login(self, result: str) -> None:
        """
        A login step ended: C{ok}, C{wrong_passcode}, C{wrong_password}, C{bad_name},
        C{name_taken}, C{locked_out}, C{banned} (C{/gban}) or C{timed_out}.
        """

    def disconnected(self, reason: str) -> None:
        """
        A logged-in member went offline: C{quit}, C{closed} (the connection
        ended), C{idle_timeout} or C{shutdown}.
        """

    def message(self, kind: str) -> None:
        """A member sent a message: C{message}, C{action} (C{/me}) or C{private}."""

    def delivered(self, event: object, count: int) -> None:
        """C{event} (a room or private event) was handed to C{count} members."""

    def line_dropped(self) -> None:
        """The flood limit dropped a line."""

    def history_flushed(self, seconds: float, rows: int) -> None:
        """The history store wrote C{rows} messages in C{seconds}."""


class NullObserver:
    """Counts nothing: the default, so nothing outside metrics/ needs Prometheus."""

    __slots__ = ()

    def connection_opened(self, frontend: str) -> None:
        pass

    def connection_closed(self, frontend: str) -> None:
        pass

    def send_queue_overflowed(self, frontend: str) -> None:
        pass

    def login(self, result: str) -> None:
        pass

    def disconnected(self, reason: str) -> None:
        pass

    def message(self, kind: str) -> None:
        pass

    def delivered(self, event: object, count: int) -> None:
        pass

    def line_dropped(self) -> None:
        pass

    def history_flushed(self, seconds: float, rows: int) -> None:
        pass


NULL_OBSERVER = NullObserver()

# The label values each count starts with (shown as 0 before anything happens,
# so a rate() over them is defined from the first scrape).
FRONTENDS = ("line", "web", "irc")
LOGIN_RESULTS = ("ok", "wrong_passcode", "bad_name", "name_taken", "locked_out", "timed_out",
                 "wrong_password")
DISCONNECT_REASONS = ("quit", "closed", "idle_timeout", "shutdown")
MESSAGE_KINDS = ("message", "action", "private")
DELIVERY_KINDS = ("message", "notice", "private", "other")

# Seconds; the history flush and the reactor's tick are both mostly well under 1 ms.
TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Buckets:
    """
    A histogram as plain numbers: a count per upper bound (not cumulative)
    plus one for everything above the last, and the sum.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = TIME_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one C{value}."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many values were observed."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """C{(le, count)} pairs as Prometheus wants them, ending with C{+Inf}."""
        out = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


def _table(keys: Sequence[str]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


class Counts:
    """
    A L{ChatObserver} keeping plain integers (no locks: everything runs on
    the reactor thread, scrapes included).  An unknown label value is
    counted under its own name, so a new front end needs no change here.
    """

    def __init__(self) -> None:
        self.connections = _table(FRONTENDS)
        self.connections_opened = _table(FRONTENDS)
        self.send_queue_overflows = _table(FRONTENDS)
        self.logins = _table(LOGIN_RESULTS)
        self.disconnects = _table(DISCONNECT_REASONS)
        self.messages = _table(MESSAGE_KINDS)
        # by event class: a type() and a dict lookup per event, named at scrape time
        self.deliveries_by_type: dict[type, int] = {}
        self.lines_dropped = 0
        self.history_flushes = Buckets()
        self.history_rows_written = 0

    def connection_opened(self, frontend: str) -> None:
        self.connections[frontend] = self.connections.get(frontend, 0) + 1
        self.connections_opened[frontend] = self.connections_opened.get(frontend, 0) + 1

    def connection_closed(self, frontend: str) -> None:
        self.connections[frontend] = max(0, self.connections.get(frontend, 0) - 1)

    def send_queue_overflowed(self, frontend: str) -> None:
        self.send_queue_overflows[frontend] = self.send_queue_overflows.get(frontend, 0) + 1

    def login(self, result: str) -> None:
        self.logins[result] = self.logins.get(result, 0) + 1

    def disconnected(self, reason: str) -> None:
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def message(self, kind: str) -> None:
        self.messages[kind] = self.messages.get(kind, 0) + 1

    def delivered(self, event: object, count: int) -> None:
        table = self.deliveries_by_type
        kind = type(event)
        table[kind] = table.get(kind, 0) + count

    def line_dropped(self) -> None:
        self.lines_dropped += 1

    def history_flushed(self, seconds: float, rows: int) -> None:
        self.history_flushes.observe(seconds)
        self.history_rows_written += rows

    @property
    def deliveries(self) -> dict[str, int]:
        """Deliveries by kind (L{DELIVERY_KINDS}): the event classes, named."""
        out = _table(DELIVERY_KINDS)
        for kind, count in self.deliveries_by_type.items():
            name = kind.__name__.lower()
            key = name if name in out else "other"
            out[key] += count
        return out
