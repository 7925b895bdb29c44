"""
C{--metrics}: what L{Counts} counted and the server's state, in
Prometheus's exposition format at C{/metrics}, and C{ok} at C{/health}.

prometheus_client provides the registry, the metric families and the
exposition (text or OpenMetrics, as the scraper asks), and the
C{process_*} metrics.  Scrapes are answered by our own small resource on
the reactor thread, not by prometheus_client's Twisted resource, which
renders each scrape in the reactor's thread pool: there it would read the
chat's tables while the reactor changes them, and wait behind (or hold up)
whatever else uses the pool.  On the reactor a scrape reads a few integers
and lengths: microseconds, and never a torn count.

Everything is read at scrape time (L{ChatCollector}): the hot paths only
add to plain integers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from typing_extensions import override

from twisted_chat import __version__
from twisted_chat.domain.server import ChatServer
from twisted_chat.interfaces import History
from twisted_chat.limits import ConnectionLimits, Deadlines
from twisted_chat.metrics.observer import Buckets, Counts


class TickTimer(Service):
    """
    Measures the reactor's tick: the time from one return of its poller
    (C{epoll_wait}, C{poll}) to the next call, i.e. everything one turn
    of the loop does (reading sockets, every C{dataReceived}, fan-out,
    timed calls) and nothing of the time it waits for work.  Wrapping the
    poller (as Synapse does) sees all of a turn: wrapping
    C{runUntilCurrent} would miss the I/O callbacks where the chat does its
    work, and a C{LoopingCall} lag probe only notices a stall it happens
    to be due during, while waking an idle server up every interval.  The
    cost is two clock reads and a bisect per turn.

    A reactor without a C{_poller} (select) has no tick time: the
    histogram stays empty and the start-up log says so.
    """

    log = Logger()

    def __init__(self, reactor: Any, timer: Callable[[], float] = time.perf_counter) -> None:
        self.ticks = Buckets()
        self._reactor = reactor
        self._timer = timer
        self._original: Any = None

    @override
    def startService(self) -> None:
        super().startService()
        poller = getattr(self._reactor, "_poller", None)
        if poller is None or not hasattr(poller, "poll"):
            self.log.info("the reactor's tick time is not measured on {reactor}",
                          reactor=type(self._reactor).__name__)
            return
        self._original = poller
        self._reactor._poller = _TimedPoller(poller, self.ticks, self._timer)

    @override
    def stopService(self) -> None:
        super().stopService()
        if self._original is not None:
            self._reactor._poller, self._original = self._original, None


class _TimedPoller:
    """A poller that times what happens between two of its polls."""

    __slots__ = ("_poller", "_ticks", "_timer", "_returned", "register", "modify", "unregister")

    def __init__(self, poller: Any, ticks: Buckets, timer: Callable[[], float]) -> None:
        self._poller = poller
        self._ticks = ticks
        self._timer = timer
        self._returned: float | None = None
        # called for each reader and writer added or removed: bound here, not
        # looked up through __getattr__ each time
        self.register = getattr(poller, "register", None)
        self.modify = getattr(poller, "modify", None)
        self.unregister = getattr(poller, "unregister", None)

    def poll(self, *args: Any) -> Any:
        returned = self._returned
        if returned is not None:
            self._ticks.observe(self._timer() - returned)
        try:
            return self._poller.poll(*args)
        finally:
            self._returned = self._timer()

    def __getattr__(self, name: str) -> Any:  # close, fileno, ...
        return getattr(self._poller, name)


def _histogram(name: str, help_text: str, buckets: Buckets) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, help_text, buckets=buckets.cumulative(),
                                 sum_value=buckets.sum)


def _labelled(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str,
              help_text: str, label: str, values: dict[str, int]) -> Metric:
    family = kind(name, help_text, labels=[label])
    for value, count in values.items():
        family.add_metric([value], count)
    return family


class ChatCollector(Collector):
    """Reads L{Counts} and the server's tables when Prometheus scrapes."""

    def __init__(self, counts: Counts, server: ChatServer, history: History,
                 limits: ConnectionLimits, logging_in: Deadlines[Any],
                 ticks: Buckets | None = None) -> None:
        self._counts = counts
        self._server = server
        self._history = history
        self._limits = limits
        self._logging_in = logging_in
        self._ticks = ticks

    def collect(self) -> Iterator[Metric]:
        counts = self._counts
        info = GaugeMetricFamily("chat_build_info", "The running twisted-chat's version.",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _labelled(GaugeMetricFamily, "chat_connections",
                        "Connections open now, by front end.", "frontend", counts.connections)
        yield _labelled(CounterMetricFamily, "chat_connections_accepted",
                        "Connections accepted, by front end.", "frontend",
                        counts.connections_opened)
        yield _labelled(CounterMetricFamily, "chat_connections_refused",
                        "Connections refused by --max-clients (full) or --max-per-ip (per_ip).",
                        "reason", self._limits.refused)
        yield GaugeMetricFamily("chat_users_online", "Members logged in now.",
                                value=len(self._server.members))
        yield GaugeMetricFamily("chat_rooms", "Rooms that exist now (the lobby included).",
                                value=len(self._server.rooms))
        yield GaugeMetricFamily("chat_logins_pending",
                                "Connections that have not finished logging in.",
                                value=len(self._logging_in))
        yield _labelled(CounterMetricFamily, "chat_logins",
                        "Login steps by result (ok, wrong_passcode, wrong_password, bad_name,"
                        " name_taken, locked_out, timed_out).", "result", counts.logins)
        yield _labelled(CounterMetricFamily, "chat_disconnects",
                        "Members gone offline, by reason (quit, closed, idle_timeout,"
                        " shutdown).", "reason", counts.disconnects)
        yield _labelled(CounterMetricFamily, "chat_messages",
                        "Messages sent by members, by kind (message, action, private).",
                        "kind", counts.messages)
        yield _labelled(CounterMetricFamily, "chat_deliveries",
                        "Events handed to members by the fan-out (a room event to N members"
                        " counts N), by kind.", "kind", counts.deliveries)
        yield CounterMetricFamily("chat_flood_dropped_lines",
                                  "Lines dropped by the flood limit (--rate, --burst).",
                                  value=counts.lines_dropped)
        yield _labelled(CounterMetricFamily, "chat_sendq_overflows",
                        "Clients dropped for not reading their output (--sendq), by front end.",
                        "frontend", counts.send_queue_overflows)
        yield GaugeMetricFamily("chat_history_queued_messages",
                                "Messages waiting to be written to the history database.",
                                value=getattr(self._history, "queued", 0))
        yield GaugeMetricFamily("chat_history_unsaved_messages",
                                "Messages kept only in memory since the history database"
                                " failed (lost at restart; see the log).",
                                value=getattr(self._history, "unsaved", 0))
        yield CounterMetricFamily("chat_history_written_messages",
                                  "Messages written to the history database.",
                                  value=counts.history_rows_written)
        yield _histogram("chat_history_flush_seconds",
                         "Time each write of queued messages to the database took.",
                         counts.history_flushes)
        if self._ticks is not None:
            yield _histogram("python_twisted_reactor_tick_time_seconds",
                             "Time each turn of the reactor's loop spent working"
                             " (between two polls).", self._ticks)


def build_registry(counts: Counts, server: ChatServer, history: History,
                   limits: ConnectionLimits, logging_in: Deadlines[Any],
                   ticks: Buckets | None = None, process: bool = True) -> CollectorRegistry:
    """A registry of the chat's metrics (and, with C{process}, C{process_*} and C{python_info})."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ChatCollector(counts, server, history, limits, logging_in, ticks))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """C{/metrics}: the registry, rendered on the reactor thread."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        accept = request.getHeader("accept")
        encoder, content_type = choose_encoder(accept or "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return encoder(self._registry)


class HealthResource(Resource):
    """C{/health}: C{ok} while the reactor answers."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return b"ok\n"


class _Root(Resource):
    """Only C{/metrics} and C{/health}."""

    def getChild(self, path: bytes, request: Request) -> IResource:  # noqa: N802
        return notFound()

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"twisted-chat metrics: see /metrics and /health\n"


class _MetricsSite(Site):
    """A site that does not log each scrape (one every 15 s would flood the log)."""

    noisy = False

    @override
    def log(self, request: Any) -> None:
        pass


def build_metrics_site(registry: CollectorRegistry) -> Site:
    """The C{--metrics} site: C{/metrics} and C{/health}; anything else is 404."""
    root = _Root()
    root.putChild(b"metrics", MetricsResource(registry))
    root.putChild(b"health", HealthResource())
    site = _MetricsSite(root)
    site.displayTracebacks = False
    return site
