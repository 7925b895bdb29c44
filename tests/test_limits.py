"""Tests for L{twisted_chat.limits} and the limits as clients see them."""

from __future__ import annotations

import socket
import sys

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.config import ChatConfig
from twisted_chat.limits import (
    ConnectionLimits,
    Deadlines,
    PasscodeLockout,
    RefusalLog,
)
from twisted_chat.session.session import MAX_BAD_NAMES

from . import helpers
from .helpers import LineClient, ServerProcess, World, lines, log_in, only, without_offers

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
        limits = ConnectionLimits(Clock(), max_clients=10, max_per_ip=1,
                                  exempt=frozenset({"127.0.0.1"}))
        for _ in range(5):
            self.assertIsNone(limits.admit("127.0.0.1"))
        full = ConnectionLimits(Clock(), 1, 1, frozenset({"x"}))
        self.assertIsNone(full.admit("x"))
        self.assertIn("full", full.admit("x"))  # exempt from the per-address limit, not the total

    def test_refusals_logged_once_a_minute(self) -> None:
        """A connect loop from one address cannot flood the log: one line, then a summary."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        clock = Clock()
        limits = ConnectionLimits(clock, max_clients=100, max_per_ip=1)
        limits.admit("a")
        for _ in range(500):
            limits.admit("a")
        self.assertEqual(len(logged), 1)
        clock.advance(60)
        limits.admit("a")
        self.assertEqual([formatEvent(e) for e in logged], [
            "refused a connection from a: 1 connections from it already",
            ("refused 499 connections from 1 address in the last 60 s (most from: a 499);"
             " the latest because 1 connections from it already"),
        ])
        clock.advance(60)  # the 501st is summarised a minute after the summary
        self.assertEqual(formatEvent(logged[-1]),
                         "refused 1 connections from 1 address in the last 60 s (most from: a 1);"
                         " the latest because 1 connections from it already")
        clock.advance(600)
        self.assertEqual((len(logged), clock.getDelayedCalls()), (3, []))

    def test_refusals_of_many_addresses_summarised(self) -> None:
        """
        20,000 addresses refused within a minute: two log lines, at most the
        cap of addresses tracked, and O(1) work per refusal.
        """
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        clock = Clock()
        limits = ConnectionLimits(clock, max_clients=1, max_per_ip=1)
        limits.admit("x")
        for i in range(20_000):
            limits.admit("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))
            clock.advance(0.001)
            self.assertLessEqual(limits.refusals.tracked, RefusalLog.MAX_TRACKED)
        self.assertEqual(limits.refusals.tracked, RefusalLog.MAX_TRACKED)
        self.assertEqual(len(logged), 1)
        clock.advance(60)
        self.assertEqual(len(logged), 2)
        self.assertIn("refused 19999 connections from more than 10000 addresses",
                      formatEvent(logged[-1]))
        self.assertEqual(limits.refusals.tracked, 0)

    def test_stop_reports_pending(self) -> None:
        """Stopping logs what was counted and leaves no timer behind."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        clock = Clock()
        log = RefusalLog(clock, "one {host} {why}", "{count} from {addresses}")
        log.note("a", "x")
        log.note("b", "x")
        log.stop()
        self.assertEqual([formatEvent(e) for e in logged], ["one a x", "1 from 1 address"])
        self.assertEqual(clock.getDelayedCalls(), [])
        log.stop()

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

    def test_many_addresses_linear(self) -> None:
        """
        20,000 addresses guessing (each locked out) through a Clock: the
        tables stay under the cap, expiring does work linear in the events
        (not a rebuild of the table per event), and the lockouts are logged
        as one line and a summary.
        """
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        clock = Clock()
        lockout = PasscodeLockout(clock, attempts=3, window=60, ban=60)
        events = 0
        for i in range(20_000):
            host = "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
            for _ in range(3):
                lockout.failed(host)
                events += 1
            clock.advance(0.01)  # 100 addresses a second: 6,000 within a ban
            self.assertLessEqual(len(lockout), PasscodeLockout.MAX_TRACKED)
        self.assertAlmostEqual(lockout.remaining(host), 60 - 0.01)
        # each event looks at one entry that stays plus the ones it expires
        self.assertLessEqual(lockout.steps, 2 * events + 20_000)
        self.assertLess(len(lockout), 6_100)
        clock.advance(120)
        self.assertEqual(len(logged), 5)  # one line, then a summary a minute for 200 s
        self.assertIn("3 wrong passcodes within 60s from 10.0.0.0; refusing it for 60s",
                      formatEvent(logged[0]))
        self.assertEqual(sum(int(formatEvent(e).split("(")[1].split()[0]) for e in logged[1:]),
                         19_999)

    def test_cap(self) -> None:
        """Past the cap the oldest addresses are forgotten first."""
        clock = Clock()
        lockout = PasscodeLockout(clock, max_tracked=100)
        for i in range(300):
            lockout.failed(str(i))
        self.assertEqual(len(lockout), 100)
        self.assertEqual(list(lockout._failures)[:1], ["200"])
        for i in range(200, 300):
            lockout.failed(str(i))
            lockout.failed(str(i))
        self.assertEqual(lockout.remaining("299"), 60)
        self.assertEqual(len(lockout._banned), 100)

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
        self.assertEqual(lines(refused),
                         ["ERROR too many connections from your address (at most 2)"])
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


class PasscodePerConnectionTests(SynchronousTestCase):
    """Several wrong lines on one connection are one mistake for the lockout."""

    def test_curl_does_not_lock_out(self) -> None:
        """Lines sent at once (not HTTP) close the connection but count once."""
        world = World()
        for _ in range(2):
            protocol, transport = connect_from(world, "203.0.113.5")
            protocol.dataReceived(b"a\r\nb\r\nc\r\nd\r\n")
            self.assertEqual(lines(transport)[-1], "ERROR too many attempts")
        protocol, transport = connect_from(world, "203.0.113.5")
        protocol.dataReceived(b"x\r\nalice\r\n")
        self.assertIn("Welcome, alice!", without_offers(transport.value()).decode())

    def test_third_connection_locks_out(self) -> None:
        """The address lockout still comes after three connections guessing wrong."""
        world = World()
        for _ in range(3):
            protocol, _ = connect_from(world, "203.0.113.5")
            protocol.dataReceived(b"a\r\nb\r\n")
        _, refused = connect_from(world, "203.0.113.5")
        self.assertIn("too many wrong passcodes from your address", lines(refused)[-1])


CURL = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n\r\n")


class HTTPAtTelnetPortTests(SynchronousTestCase):
    """An HTTP request to the telnet port gets one clear line and counts for nothing."""

    def test_told_and_not_counted(self) -> None:
        world = World()
        for method in (b"GET", b"HEAD", b"POST", b"OPTIONS", b"GET", b"GET"):
            protocol, transport = connect_from(world, "203.0.113.5")
            transport.clear()
            protocol.dataReceived(method + CURL[3:])
            self.assertEqual(lines(transport), [(
                "ERROR this is the chat's telnet port, not HTTP;"
                 " connect with telnet or chat-client")])
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionError()))
        self.assertEqual(len(world.context.lockout), 0)
        protocol, transport = connect_from(world, "203.0.113.5")
        protocol.dataReceived(b"x\r\nalice\r\n")
        self.assertIn("Welcome, alice!", without_offers(transport.value()).decode())

    def test_points_to_web(self) -> None:
        """With --web the error names the page's address, the local one for 0.0.0.0."""
        world = World()
        world.context.listening["web"] = "http://127.0.0.1:8081/"
        protocol, transport = connect_from(world, "203.0.113.5")
        transport.clear()
        protocol.dataReceived(CURL)
        self.assertEqual(lines(transport), [(
            "ERROR this is the chat's telnet port, not HTTP;"
             " open http://127.0.0.1:8081/ in a browser")])
        world.context.listening["web"] = "https://0.0.0.0:8443/"
        protocol, transport = connect_from(world, "203.0.113.5")
        transport.clear()
        protocol.dataReceived(CURL)
        self.assertEqual(lines(transport), [(
            "ERROR this is the chat's telnet port, not HTTP;"
             " open https://10.0.0.1:8443/ in a browser")])

    def test_open_server(self) -> None:
        """Without a passcode the request line arrives at the Username: prompt."""
        world = World(passcode=None)
        protocol, transport = connect_from(world, "203.0.113.5")
        transport.clear()
        protocol.dataReceived(CURL)
        self.assertEqual(len(lines(transport)), 1)
        self.assertTrue(transport.disconnecting)

    def test_only_first_line(self) -> None:
        """A request line as a second passcode is a wrong passcode like any other."""
        world = World()
        protocol, transport = connect_from(world, "203.0.113.5")
        transport.clear()
        protocol.dataReceived(b"nope\r\nGET / HTTP/1.1\r\n")
        self.assertEqual(lines(transport), ["ERROR wrong passcode", "Passcode:",
                                            "ERROR wrong passcode", "Passcode:"])


class BadNameTests(SynchronousTestCase):
    """Replies at the Username: prompt are bounded."""

    def test_pipelined_bad_names(self) -> None:
        """5,000 bad names in one write draw a bounded reply and a close."""
        world = World()
        protocol, transport = connect_from(world, "203.0.113.5")
        protocol.dataReceived(b"x\r\n")
        transport.clear()
        sent = b"bad name!\r\n" * 5000
        protocol.dataReceived(sent)
        out = lines(transport)
        self.assertEqual(out[-1], "ERROR too many bad names")
        self.assertEqual(len(out), 2 * MAX_BAD_NAMES - 1)
        self.assertLess(sum(len(line) + 2 for line in out), 1024)
        self.assertTrue(transport.disconnecting)

    def test_a_few_tries_allowed(self) -> None:
        """A user may get the name wrong a few times and still log in."""
        world = World()
        world.login("alice")
        protocol, transport = connect_from(world, "203.0.113.5")
        protocol.dataReceived(b"x\r\n" + b"alice\r\n" * (MAX_BAD_NAMES - 1) + b"bob\r\n")
        self.assertIn("Welcome, bob!", without_offers(transport.value()).decode())


@pytest.mark.e2e
class EndToEndTests(SynchronousTestCase):
    """The real twistd on loopback."""

    def test_http_then_login(self) -> None:
        """curl at the telnet port is told where the page is; a login then works."""
        server = ServerProcess(self, "--db", ":memory:", "--web", "tcp:0:interface=127.0.0.1")
        for _ in range(4):  # more than the lockout's three
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as curl:
                curl.sendall(CURL)
                data = b""
                while chunk := curl.recv(4096):
                    data += chunk
            self.assertEqual(without_offers(data).decode().split("\r\n")[2:], [
                "ERROR this is the chat's telnet port, not HTTP;"
                " open http://127.0.0.1:%d/ in a browser" % server.web_port, ""])
        log_in(self, server.port, "alice")
        self.assertNotIn("wrong passcode", server.output())

    def test_descriptor_limit(self) -> None:
        """
        Under a descriptor limit of 64 the server serves what fits, tells the
        rest it is full, and logs no EMFILE recovery.
        """
        limit = 64
        self.patch(helpers, "twistd_command", lambda: [
            sys.executable, "-c",
            "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d));"
            " from twisted.scripts.twistd import run; run()" % (limit, limit)])
        server = ServerProcess(self, "--db", "chat.db", "--limit-exempt", "127.0.0.1")
        fits = limit - 32 - 8
        answers = []
        for _ in range(limit + 16):  # more than the process could hold
            client = LineClient(server.port)
            self.addCleanup(client.close)
            answers.append(client.read_until(lambda line: "Passcode" in line or "ERROR" in line
                                             )[-1])
        self.assertEqual(answers.count("Passcode:"), fits)
        self.assertEqual(answers[fits:],
                         ["ERROR the server is full; try again later"] * (limit + 16 - fits))
        output = server.output()
        self.assertIn("the file descriptor limit (ulimit -n) is 64, so at most %d connections"
                      % fits, output)
        self.assertNotIn("EMFILE", output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(len(only(output.splitlines(), "refused")), 1)
