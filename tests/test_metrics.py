"""
The metrics: what the observer counts for known activity (driven through the
line front end's fakes and a Clock), the C{/metrics} and C{/health}
resources, the reactor's tick timer and the history store's flush times.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from tests.helpers import FakeParticipant, World, fired
from twisted_chat.config import ChatConfig
from twisted_chat.domain.events import Entry, Notice
from twisted_chat.domain.server import LOBBY, ChatServer, departure
from twisted_chat.metrics.observer import NULL_OBSERVER, Buckets, Counts, NullObserver
from twisted_chat.metrics.prometheus import (
    HealthResource,
    MetricsResource,
    TickTimer,
    build_metrics_site,
    build_registry,
)
from twisted_chat.storage.history import MemoryHistory, SQLiteHistory


def scrape(world: World, counts: Counts, ticks: Buckets | None = None,
           accept: str | None = None) -> dict[str, float]:
    """Render C{/metrics} for C{world} and parse it: sample name + labels -> value."""
    registry = build_registry(counts, world.server, world.history, world.context.limits,
                              world.context.deadlines, ticks or Buckets())
    request = DummyRequest([b""])
    if accept is not None:
        request.requestHeaders.setRawHeaders(b"accept", [accept.encode()])
    body = b"".join([MetricsResource(registry).render_GET(request)])
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            labels = ",".join("%s=%s" % item for item in sorted(sample.labels.items()))
            samples["%s{%s}" % (sample.name, labels)] = sample.value
    return samples


class RecordingObserver(NullObserver):
    """Remembers each delivery call."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def delivered(self, event: object, count: int) -> None:
        self.calls.append((type(event).__name__, count))


class CountsTests(SynchronousTestCase):
    """L{Counts} fed by a whole server without sockets: counts match the activity."""

    def setUp(self) -> None:
        self.counts = Counts()
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=1, burst=2),
                           observer=self.counts)

    def test_messages_and_deliveries(self) -> None:
        """Two users log in; three messages in their room of two are three deliveries."""
        alice, _ = self.world.login("alice")
        self.world.login("bob")
        before = scrape(self.world, self.counts)
        self.assertEqual(before["chat_logins_total{result=ok}"], 2)
        self.assertEqual(before["chat_users_online{}"], 2)
        self.assertEqual(before["chat_connections{frontend=line}"], 2)
        self.assertEqual(before["chat_messages_total{kind=message}"], 0)
        self.world.clock.advance(10)  # a full flood bucket
        alice.dataReceived(b"one\r\n")
        alice.dataReceived(b"two\r\n")
        self.world.clock.advance(1)
        alice.dataReceived(b"three\r\n")
        after = scrape(self.world, self.counts)
        self.assertEqual(after["chat_messages_total{kind=message}"], 3)
        self.assertEqual(after["chat_deliveries_total{kind=message}"]
                         - before["chat_deliveries_total{kind=message}"], 3)
        # bob's arrival was told to alice: one notice
        self.assertEqual(after["chat_deliveries_total{kind=notice}"], 1)
        self.assertEqual(after["chat_flood_dropped_lines_total{}"], 0)

    def test_room_of_many_counts_once_per_event(self) -> None:
        """A room event to N members is one delivery call adding N (the sender excluded)."""
        recorder = RecordingObserver()
        server = ChatServer(MemoryHistory(), Clock(), observer=recorder)
        members = []
        for i in range(5):
            member = fired(server.claim("u%d" % i, FakeParticipant()))
            server.join(member, LOBBY)
            members.append(member)
        recorder.calls.clear()
        server.say(members[0], "hello")
        self.assertEqual(recorder.calls, [("Message", 4)])
        server.message(members[0], "u1", "psst")
        self.assertEqual(recorder.calls[-1], ("Private", 1))
        recorder.calls.clear()
        server.remove(members[0], "quit")
        self.assertEqual(recorder.calls, [("Notice", 4)])

    def test_actions_and_private(self) -> None:
        """/me counts as an action, /msg to a person as private (one delivery)."""
        alice, _ = self.world.login("alice")
        self.world.login("bob")
        alice.dataReceived(b"/me waves\r\n")
        self.world.clock.advance(5)
        alice.dataReceived(b"/msg bob hi\r\n")
        self.assertEqual(self.counts.messages, {"message": 0, "action": 1, "private": 1})
        self.assertEqual(self.counts.deliveries["private"], 1)
        self.assertEqual(self.counts.deliveries["message"], 1)

    def test_flood_drops(self) -> None:
        """Each line the flood limit drops is counted."""
        alice, _ = self.world.login("alice")
        alice.dataReceived(b"a\r\nb\r\nc\r\nd\r\ne\r\n")  # a burst of 2
        self.assertEqual(self.counts.lines_dropped, 3)
        self.assertEqual(self.counts.messages["message"], 2)

    def test_login_results(self) -> None:
        """Wrong passcodes, bad and taken names, login timeouts and lockouts are counted."""
        self.world.login("alice")
        protocol, _ = self.world.connect()
        protocol.dataReceived(b"nope\r\nx\r\nALICE\r\nb@d name\r\ncarol\r\n")
        _, _ = self.world.connect()
        self.world.clock.advance(self.world.config.login_timeout + 1)
        for _ in range(2):  # with the first, three wrong passcodes lock the address out
            protocol, _ = self.world.connect()
            protocol.dataReceived(b"nope\r\n")
        self.world.connect()
        self.assertEqual(self.counts.logins, {
            "ok": 2, "wrong_passcode": 3, "bad_name": 1, "name_taken": 1,
            "locked_out": 1, "timed_out": 1, "wrong_password": 0})

    def test_disconnects_by_reason(self) -> None:
        """Quit, a closed connection and the shutdown are each counted once, by reason."""
        alice, _ = self.world.login("alice")
        bob, _ = self.world.login("bob")
        carol, carol_out = self.world.login("carol")
        alice.dataReceived(b"/quit bye\r\n")
        alice.connectionLost(None)  # type: ignore[arg-type]
        bob.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(self.counts.disconnects,
                         {"quit": 1, "closed": 1, "idle_timeout": 0, "shutdown": 0})
        self.assertEqual(self.counts.connections["line"], 1)
        self.assertEqual(self.counts.connections_opened["line"], 3)
        self.world.server.shutdown()
        carol.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(self.counts.disconnects["shutdown"], 1)
        self.assertEqual(self.counts.connections["line"], 0)

    def test_departure_reasons(self) -> None:
        """The session's reasons map onto a few fixed words, never free text."""
        self.assertEqual([departure(why) for why in (
            "quit", "quit (off to bed)", "timed out (idle)", "disconnected", "anything")],
            ["quit", "quit", "idle_timeout", "closed", "closed"])

    def test_send_queue_overflow(self) -> None:
        """A client that stops reading and passes the sendq is counted as dropped."""
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", sendq=4096, rate=0),
                      observer=self.counts)
        alice, _ = world.login("alice")
        _, bob_out = world.login("bob")
        bob_out.producer.pauseProducing()
        for _ in range(100):
            alice.dataReceived(b"x" * 100 + b"\r\n")
        world.clock.advance(0)
        self.assertEqual(self.counts.send_queue_overflows["line"], 1)

    def test_refused_connections(self) -> None:
        """Connections past --max-per-ip are counted as refused, and not as open."""
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", max_per_ip=1),
                      observer=self.counts)
        world.connect()
        world.connect()
        samples = scrape(world, self.counts)
        self.assertEqual(samples["chat_connections_refused_total{reason=per_ip}"], 1)
        self.assertEqual(samples["chat_connections{frontend=line}"], 1)
        self.assertEqual(samples["chat_logins_pending{}"], 1)

    def test_null_observer_is_the_default(self) -> None:
        """Without an observer the server runs on the null one, which counts nothing."""
        server = ChatServer(MemoryHistory(), Clock())
        self.assertIs(server.observer, NULL_OBSERVER)
        self.assertIs(server.bus.observer, NULL_OBSERVER)


class ResourceTests(SynchronousTestCase):
    """C{/metrics} and C{/health}, rendered with twisted.web's test request."""

    def test_exposition(self) -> None:
        """The text format parses; counters end in _total; no name of a user or room shows."""
        counts = Counts()
        world = World(observer=counts)
        alice, _ = world.login("alice_secret_name")
        alice.dataReceived(b"/join secretroom\r\n")
        registry = build_registry(counts, world.server, world.history, world.context.limits,
                                  world.context.deadlines, Buckets())
        request = DummyRequest([b""])
        body = MetricsResource(registry).render_GET(request)
        self.assertIn(b"text/plain", request.responseHeaders.getRawHeaders(b"content-type")[0])
        text = body.decode()
        self.assertNotIn("alice_secret_name", text)
        self.assertNotIn("secretroom", text)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        self.assertEqual(families["chat_rooms"].samples[0].value, 2)
        for family in families.values():
            if family.type == "counter":
                self.assertTrue(all(s.name.endswith(("_total", "_created"))
                                    for s in family.samples), family.name)
        self.assertIn("process_cpu_seconds", families)
        self.assertIn("python_twisted_reactor_tick_time_seconds", families)

    def test_openmetrics_when_asked(self) -> None:
        """A scraper asking for OpenMetrics gets it (prometheus_client's encoder)."""
        counts = Counts()
        world = World(observer=counts)
        registry = build_registry(counts, world.server, world.history, world.context.limits,
                                  world.context.deadlines, process=False)
        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(
            b"accept", [b"application/openmetrics-text; version=1.0.0"])
        body = MetricsResource(registry).render_GET(request)
        self.assertIn(b"openmetrics", request.responseHeaders.getRawHeaders(b"content-type")[0])
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_health(self) -> None:
        """/health answers ok."""
        request = DummyRequest([b""])
        self.assertEqual(HealthResource().render_GET(request), b"ok\n")

    def test_site_routes(self) -> None:
        """The metrics site has /metrics and /health, and nothing else."""
        counts = Counts()
        world = World(observer=counts)
        registry = build_registry(counts, world.server, world.history, world.context.limits,
                                  world.context.deadlines, process=False)
        site = build_metrics_site(registry)
        for path, kind in ((b"metrics", MetricsResource), (b"health", HealthResource)):
            request = DummyRequest([path])
            self.assertIsInstance(site.getResourceFor(request), kind)
        self.assertNotIsInstance(site.getResourceFor(DummyRequest([b"other"])),
                                 (MetricsResource, HealthResource))


class _Poller:
    def __init__(self) -> None:
        self.registered: list[int] = []

    def poll(self, *args: Any) -> list[Any]:
        return []

    def register(self, fd: int, flags: int) -> None:
        self.registered.append(fd)


class _Reactor:
    def __init__(self) -> None:
        self._poller = _Poller()


class TickTimerTests(SynchronousTestCase):
    """The reactor's tick: the time between two polls."""

    def test_time_between_polls(self) -> None:
        """Each poll after the first observes the time since the previous poll returned."""
        now = [100.0]
        reactor = _Reactor()
        original = reactor._poller
        timer = TickTimer(reactor, timer=lambda: now[0])
        timer.startService()
        reactor._poller.register(7, 1)  # the rest of the poller passes through
        self.assertEqual(original.registered, [7])
        reactor._poller.poll(1.0)
        now[0] += 0.003  # one turn's work
        reactor._poller.poll(1.0)
        now[0] += 0.2
        reactor._poller.poll(1.0)
        self.assertEqual(timer.ticks.count, 2)
        self.assertAlmostEqual(timer.ticks.sum, 0.203)
        self.assertEqual(dict(timer.ticks.cumulative())["0.005"], 1)
        self.assertEqual(dict(timer.ticks.cumulative())["0.25"], 2)
        timer.stopService()
        self.assertIs(reactor._poller, original)

    def test_reactor_without_poller(self) -> None:
        """A reactor without a poller is left alone."""
        reactor = object()
        timer = TickTimer(reactor)
        timer.startService()
        timer.stopService()
        self.assertEqual(timer.ticks.count, 0)


class BucketsTests(SynchronousTestCase):
    """L{Buckets}: a histogram as plain numbers."""

    def test_cumulative(self) -> None:
        """Counts are cumulative per upper bound, ending with +Inf."""
        buckets = Buckets((0.1, 1.0))
        for value in (0.05, 0.1, 0.5, 7.0):
            buckets.observe(value)
        self.assertEqual(buckets.cumulative(), [("0.1", 2), ("1.0", 3), ("+Inf", 4)])
        self.assertAlmostEqual(buckets.sum, 7.65)


class HistoryMetricsTests(SynchronousTestCase):
    """The history store's queue and flush times."""

    def test_queue_and_flush(self) -> None:
        """Queued messages show until the flush, which reports its time and rows."""
        clock = Clock()
        times = iter([1.0, 1.25])
        store = SQLiteHistory(":memory:", clock, timer=lambda: next(times))
        counts = Counts()
        store.observer = counts
        for i in range(3):
            store.append(Entry("lobby", "alice", "m%d" % i, 1.0 + i))
        self.assertEqual(store.queued, 3)
        store.flush()
        self.assertEqual(store.queued, 0)
        self.assertEqual(counts.history_rows_written, 3)
        self.assertEqual(counts.history_flushes.count, 1)
        self.assertAlmostEqual(counts.history_flushes.sum, 0.25)
        store.close()

    def test_kinds(self) -> None:
        """Deliveries are named by event class; unknown classes are 'other'."""
        counts = Counts()
        counts.delivered(Notice("lobby", "x", 0, ""), 2)
        counts.delivered(object(), 5)
        self.assertEqual(counts.deliveries,
                         {"message": 0, "notice": 2, "private": 0, "other": 5})
