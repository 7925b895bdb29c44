"""Tests for L{twisted_chat.limits} and the limits as clients see them."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_chat.config import ChatConfig
from twisted_chat.limits import ConnectionLimits, Deadlines, PasscodeLockout, SendQueueWatch

from .helpers import World, lines

try:
    from twisted.internet.testing import EventLoggingObserver
except ImportError:  # pragma: no cover
    from twisted.test.proto_helpers import EventLoggingObserver


class DeadlinesTests(SynchronousTestCase):
    """L{Deadlines}: one sweep, cost per expiry."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.expired: list[str] = []
        self.deadlines: Deadlines[str] = Deadlines(self.clock, 10, self.expired.append)

    def test_expiry_and_touch(self) -> None:
        self.deadlines.touch("a")
        self.clock.advance(5)
        self.deadlines.touch("b")
        self.clock.advance(4)
        self.deadlines.touch("a")  # a moves behind b
        self.clock.advance(1)
        self.assertEqual(self.expired, [])
        self.clock.advance(5)
        self.assertEqual(self.expired, ["b"])
        self.clock.advance(4)
        self.assertEqual(self.expired, ["b", "a"])
        self.assertEqual(self.clock.getDelayedCalls(), [])  # no sweep when empty

    def test_discard_stops_sweep(self) -> None:
        self.deadlines.touch("a")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.deadlines.discard("a")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(self.expired, [])

    def test_one_timer_for_many(self) -> None:
        for i in range(1000):
            self.deadlines.touch(str(i))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.deadlines.clear(), [str(i) for i in range(1000)])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SendQueueWatchTests(SynchronousTestCase):
    """L{SendQueueWatch} tells its front end when the transport's buffer is full."""

    def test_pause_and_resume(self) -> None:
        class Front:
            stalled = False
            queued = 0

        front = Front()
        watch = SendQueueWatch(front)
        self.assertTrue(verifyObject(IPushProducer, watch))
        watch.pauseProducing()
        front.queued = 5000
        self.assertTrue(front.stalled)
        watch.resumeProducing()
        self.assertEqual((front.stalled, front.queued), (False, 0))
        watch.stopProducing()


class ConnectionLimitsTests(SynchronousTestCase):
    """L{ConnectionLimits} counts per address and in total."""

    def test_per_ip(self) -> None:
        limits = ConnectionLimits(Clock(), max_clients=100, max_per_ip=2)
        self.assertIsNone(limits.admit("a"))
        self.assertIsNone(limits.admit("a"))
        self.assertIn("too many connections", limits.admit("a"))
        self.assertIsNone(limits.admit("b"))
        limits.release("a")
        self.assertIsNone(limits.admit("a"))
        self.assertEqual((limits.count("a"), limits.total), (2, 3))

    def test_total(self) -> None:
        limits = ConnectionLimits(Clock(), max_clients=2, max_per_ip=5)
        limits.admit("a")
        limits.admit("b")
        self.assertIn("full", limits.admit("c"))
        limits.release("b")
        self.assertIsNone(limits.admit("c"))

    def test_exempt(self) -> None:
        limits = ConnectionLimits(Clock(), max_clients=10, max_per_ip=1, exempt=frozenset({"127.0.0.1"}))
        for _ in range(5):
            self.assertIsNone(limits.admit("127.0.0.1"))
        full = ConnectionLimits(Clock(), 1, 1, frozenset({"x"}))
        self.assertIsNone(full.admit("x"))
        self.assertIn("full", full.admit("x"))  # exempt from the per-address limit, not the total

    def test_refusals_logged_once_a_minute(self) -> None:
        """A connect loop from one address cannot flood the log."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        clock = Clock()
        limits = ConnectionLimits(clock, max_clients=100, max_per_ip=1)
        limits.admit("a")
        for _ in range(500):
            limits.admit("a")
        clock.advance(60)
        limits.admit("a")
        from twisted.logger import formatEvent
        messages = [formatEvent(e) for e in logged if e.get("host") == "a"]
        self.assertEqual(messages, [
            "refused a connection from a: 1 connections from it already",
            "refused a connection from a: 1 connections from it already"
            " (and 499 more since the last report)",
        ])

    def test_release_forgets(self) -> None:
        limits = ConnectionLimits(Clock(), 10, 10)
        limits.admit("a")
        limits.release("a")
        self.assertEqual(limits._per_ip, {})


class LockoutTests(SynchronousTestCase):
    """L{PasscodeLockout}: 3 wrong within a minute, then a minute out."""

    def test_lockout(self) -> None:
        clock = Clock()
        lockout = PasscodeLockout(clock, attempts=3, window=60, ban=60)
        lockout.failed("a")
        clock.advance(30)
        lockout.failed("a")
        self.assertEqual(lockout.remaining("a"), 0)
        clock.advance(29)
        lockout.failed("a")
        self.assertEqual(lockout.remaining("a"), 60)
        self.assertEqual(lockout.remaining("b"), 0)
        clock.advance(60)
        self.assertEqual(lockout.remaining("a"), 0)

    def test_spread_out_failures_forgiven(self) -> None:
        clock = Clock()
        lockout = PasscodeLockout(clock)
        for _ in range(10):
            lockout.failed("a")
            clock.advance(31)
        self.assertEqual(lockout.remaining("a"), 0)


def connect_from(world: World, host: str) -> tuple[object, StringTransport]:
    address = IPv4Address("TCP", host, 40000)
    protocol = world.factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


class ClientLimitTests(SynchronousTestCase):
    """What a client over a limit sees."""

    def test_per_ip_refused_with_error(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", max_per_ip=2))
        first, _ = connect_from(world, "198.51.100.1")
        connect_from(world, "198.51.100.1")
        _, refused = connect_from(world, "198.51.100.1")
        self.assertEqual(lines(refused), ["ERROR too many connections from your address (at most 2)"])
        self.assertTrue(refused.disconnecting)
        _, other = connect_from(world, "198.51.100.2")
        self.assertEqual(lines(other)[-1], "Passcode:")
        first.connectionLost(Failure(ConnectionError()))
        _, again = connect_from(world, "198.51.100.1")
        self.assertEqual(lines(again)[-1], "Passcode:")

    def test_max_clients(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", max_clients=3))
        for i in range(3):
            connect_from(world, "198.51.100.%d" % i)
        _, refused = connect_from(world, "198.51.100.9")
        self.assertEqual(lines(refused), ["ERROR the server is full; try again later"])

    def test_passcode_guessing_locks_address(self) -> None:
        """Three wrong passcodes from one address within a minute lock it out for a minute."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        world = World()
        for guess in (b"a\r\n", b"b\r\n"):
            protocol, _ = connect_from(world, "203.0.113.5")
            protocol.dataReceived(guess)
        protocol, transport = connect_from(world, "203.0.113.5")
        transport.clear()
        protocol.dataReceived(b"c\r\nx\r\n")
        self.assertEqual(lines(transport), [
            "ERROR wrong passcode", "Passcode:",
            "ERROR too many wrong passcodes from your address; try again in 60 s",
        ])
        self.assertTrue(transport.disconnecting)
        _, refused = connect_from(world, "203.0.113.5")
        self.assertEqual(lines(refused)[-1],
                         "ERROR too many wrong passcodes from your address; try again in 60 s")
        _, elsewhere = connect_from(world, "203.0.113.6")
        self.assertEqual(lines(elsewhere)[-1], "Passcode:")
        self.assertTrue(any(e["log_level"] == LogLevel.warn and e.get("host") == "203.0.113.5"
                            and "refusing it" in e["log_format"] for e in logged))
        world.clock.advance(60)
        protocol, transport = connect_from(world, "203.0.113.5")
        protocol.dataReceived(b"x\r\nalice\r\n")
        self.assertIn("Welcome, alice!", "\n".join(lines(transport)))


class IdleTimeoutTests(SynchronousTestCase):
    """The idle timeout, off by default."""

    def test_off_by_default(self) -> None:
        world = World()
        _, transport = world.login("alice")
        world.clock.advance(86400)
        self.assertFalse(transport.disconnecting)
        self.assertIsNone(world.context.idle)

    def test_idle_disconnect(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", idle_timeout=300))
        alice, alice_out = world.login("alice")
        _, bob_out = world.login("bob")
        lines(alice_out)
        world.clock.advance(200)
        alice.dataReceived(b"still here\r\n")
        world.clock.advance(200)
        self.assertFalse(alice_out.disconnecting)
        self.assertTrue(bob_out.disconnecting)  # bob said nothing for 400 s
        self.assertEqual(lines(bob_out)[-1], "ERROR disconnected after 300 s without a line")
        self.assertTrue(lines(alice_out)[-1].endswith("*** bob timed out (idle) ***"))
        self.assertNotIn("bob", world.server.members)
