"""
Tests for the per-turn output flush of the line protocol (fastwrite), on a
real C{tcp.Server} over a loopback connection driven by a MemoryReactorClock:
real kernel send semantics (partial sends, full buffers), no reactor loop.
Each test also runs with the direct send switched off (L{PlainWriteTests}).
"""

from __future__ import annotations

import os
import socket
from typing import Any
from unittest import SkipTest

import pytest
from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.config import ChatConfig
from twisted_chat.frontends.line.fastwrite import TurnFlusher, can_send_directly
from twisted_chat.frontends.line.protocol import ChatLineProtocol
from twisted_chat.tap import Options, config_from_options

from .helpers import PEER, ServerProcess, World, log_in, only


class _Port:
    """What tcp.Server needs of the listening port that accepted it."""

    _realPortNumber = 8080


class TurnClock:
    """A clock whose calls run one reactor turn at a time (L{turn})."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def callLater(self, delay: float, f: Any, *args: Any) -> None:  # noqa: N802
        self.calls.append((f, args))

    def turn(self) -> None:
        """End one reactor turn: run what was scheduled before it ended."""
        calls, self.calls = self.calls, []
        for f, args in calls:
            f(*args)


@pytest.mark.e2e  # real loopback sockets
class FlushTests(SynchronousTestCase):
    """Output to plain TCP connections is written once per reactor turn."""

    direct = True  # ChatConfig.direct_send

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0,
                                             sendq=200_000, direct_send=self.direct))
        self.reactor = MemoryReactorClock()
        self.peers: list[socket.socket] = []

    def connect(
        self, name: str, rcvbuf: int | None = None,
    ) -> tuple[ChatLineProtocol, tcp.Server, socket.socket]:
        """A logged-in member on a real tcp.Server; returns the client's socket too."""
        listener = socket.create_server(("127.0.0.1", 0))
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
        listener.close()
        if rcvbuf is not None:
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
        ours.setblocking(False)
        theirs.settimeout(5)
        self.addCleanup(theirs.close)
        protocol = self.world.factory.buildProtocol(PEER)
        transport = tcp.Server(ours, protocol, ("127.0.0.1", 40000), _Port(), 1, self.reactor)
        self.addCleanup(self.close, transport)
        protocol.makeConnection(transport)
        self.assertEqual(protocol._flusher is not None, self.direct)
        protocol.dataReceived(b"x\r\n" + name.encode() + b"\r\n")
        self.turn()
        self.drain(theirs)
        return protocol, transport, theirs

    def close(self, transport: tcp.Server) -> None:
        if transport.connected:
            transport.connectionLost(Failure(ConnectionDone()))

    def turn(self) -> None:
        """End the reactor turn: run the flush, and let Twisted write what it buffered."""
        self.world.clock.advance(0)
        for writer in list(self.reactor.getWriters()):
            writer.doWrite()

    def drain(self, sock: socket.socket) -> bytes:
        sock.setblocking(False)
        data = b""
        for _ in range(10_000):
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        sock.settimeout(5)
        return data

    def test_one_send_per_turn(self) -> None:
        """Several events in one turn arrive together, after the turn, in order."""
        alice, _, _ = self.connect("alice")
        _, bob_transport, bob_sock = self.connect("bob")
        self.drain(bob_sock)
        alice.dataReceived(b"one\r\ntwo\r\nthree\r\n")
        self.assertEqual(self.drain(bob_sock), b"")  # nothing before the turn ends
        self.world.clock.advance(0)
        data = self.drain(bob_sock)
        self.assertEqual([line[11:] for line in data.decode().split("\r\n")[:-1]],
                         ["alice: one", "alice: two", "alice: three"])
        self.assertNotIn(bob_transport, self.reactor.getWriters())  # no epoll round trip

    def test_greeting_joins_the_answer(self) -> None:
        """
        A client that sent its login before the greeting went out gets the
        greeting and the answer with one C{send}.
        """
        if not self.direct:
            raise SkipTest("Twisted's own write path")
        clock = TurnClock()
        self.world.factory.flusher = TurnFlusher(clock)
        listener = socket.create_server(("127.0.0.1", 0))
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
        listener.close()
        ours.setblocking(False)
        self.addCleanup(theirs.close)
        protocol = self.world.factory.buildProtocol(PEER)
        transport = tcp.Server(ours, protocol, ("127.0.0.1", 40000), _Port(), 1, self.reactor)
        self.addCleanup(self.close, transport)
        sends: list[bytes] = []

        class Counting:
            def send(self, data: bytes) -> int:
                sends.append(data)
                return ours.send(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(ours, name)

        transport.socket = Counting()
        protocol.makeConnection(transport)
        clock.turn()
        self.assertEqual(sends, [])
        protocol.dataReceived(b"x\r\nalice\r\n")
        clock.turn()
        self.assertEqual(len(sends), 1)
        self.assertIn(b"Welcome to twisted-chat.", sends[0])
        self.assertIn(b"Welcome, alice!", sends[0])
        self.assertIn(b"Welcome, alice!", self.drain(theirs))

    def test_partial_send_falls_back_in_order(self) -> None:
        """
        What the socket does not take goes to Twisted's buffer, and later
        output queues behind it.
        """
        alice, _, _ = self.connect("alice")
        bob, bob_transport, bob_sock = self.connect("bob", rcvbuf=4096)
        line = b"x" * 900 + b"\r\n"
        for _ in range(40):
            alice.dataReceived(line)
        self.world.clock.advance(0)
        self.assertTrue(bob_transport._tempDataLen or bob_transport.dataBuffer)
        alice.dataReceived(b"last\r\n")
        self.world.clock.advance(0)
        received = b""
        for _ in range(1000):
            received += self.drain(bob_sock)
            if received.endswith(b"alice: last\r\n"):
                break
            for writer in list(self.reactor.getWriters()):
                writer.doWrite()
        lines = received.decode().split("\r\n")[:-1]
        self.assertEqual(len(lines), 41)
        self.assertTrue(all(line.endswith("alice: " + "x" * 900) for line in lines[:40]))
        self.assertTrue(lines[-1].endswith("alice: last"))

    def test_slow_reader_cut_off(self) -> None:
        """A client that never reads is aborted past the sendq; the others get everything."""
        alice, _, _ = self.connect("alice")
        slow, slow_transport, _ = self.connect("slow", rcvbuf=4096)
        _, _, fast_sock = self.connect("fast")
        self.drain(fast_sock)
        received = b""
        for _ in range(400):
            alice.dataReceived(b"y" * 1000 + b"\r\n")
            self.turn()
            received += self.drain(fast_sock)
        self.assertTrue(slow_transport._aborting or slow_transport.disconnected)
        self.assertEqual(received.count(b"alice: " + b"y" * 1000 + b"\r\n"), 400)

    def test_close_flushes_first(self) -> None:
        """Output sent in the turn a connection is closed is written before it closes."""
        alice, alice_transport, alice_sock = self.connect("alice")
        alice.dataReceived(b"/quit\r\n")
        self.assertTrue(alice_transport.disconnecting)
        for writer in list(self.reactor.getWriters()):
            writer.doWrite()
        self.assertEqual(self.drain(alice_sock), b"Goodbye!\r\n")

    def test_other_transports_write_at_once(self) -> None:
        """Transports without a visible socket buffer (TLS, tests) are written to directly."""
        protocol = self.world.factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        self.assertIsNone(protocol._flusher)
        self.assertEqual(transport.value(),
                         b"Welcome to twisted-chat.\xff\xfd\x00\r\nPasscode:\r\n")


class PlainWriteTests(FlushTests):
    """
    With C{direct_send} off, every write goes to C{transport.write}: the
    same output, in the same order, with the same slow-reader bound.
    """

    direct = False

    def test_one_send_per_turn(self) -> None:
        """Each event goes to Twisted at once, which writes it when the socket is writable."""
        self.assertIsNone(self.world.factory.flusher)
        alice, _, _ = self.connect("alice")
        _, bob_transport, bob_sock = self.connect("bob")
        self.drain(bob_sock)
        sent: list[bytes] = []
        real_send = socket.socket.send
        self.patch(socket.socket, "send", lambda sock, data: sent.append(data) or 0)
        alice.dataReceived(b"one\r\ntwo\r\n")
        self.world.clock.advance(0)
        self.assertEqual(sent, [])  # no direct send, not even at the end of the turn
        self.assertIn(bob_transport, self.reactor.getWriters())  # Twisted's own path
        self.patch(socket.socket, "send", real_send)
        self.turn()  # the reactor finds the socket writable
        data = self.drain(bob_sock)
        self.assertEqual([line[11:] for line in data.decode().split("\r\n")[:-1]],
                         ["alice: one", "alice: two"])


class SwitchTests(SynchronousTestCase):
    """C{TWISTED_CHAT_DIRECT_SEND=0} turns the direct send off; it is on by default."""

    def config(self) -> ChatConfig:
        options = Options()
        options.parseOptions(["--db", ":memory:"])
        return config_from_options(options)

    def test_default_on(self) -> None:
        self.patch(os, "environ", {k: v for k, v in os.environ.items()
                                   if k != "TWISTED_CHAT_DIRECT_SEND"})
        self.assertTrue(self.config().direct_send)
        self.assertIsNotNone(World(config=self.config()).factory.flusher)

    def test_env_off(self) -> None:
        self.patch(os, "environ", {**os.environ, "TWISTED_CHAT_DIRECT_SEND": "0"})
        self.assertFalse(self.config().direct_send)
        self.assertIsNone(World(config=self.config()).factory.flusher)

    def test_only_tcp_connections(self) -> None:
        """Transports without a visible socket buffer never take the direct path."""
        self.assertFalse(can_send_directly(StringTransport()))
        self.assertFalse(can_send_directly(object()))


@pytest.mark.e2e  # starts twistd
class PlainWriteEndToEndTests(SynchronousTestCase):
    """A real server with C{TWISTED_CHAT_DIRECT_SEND=0} delivers everything, in order."""

    def test_burst_in_order(self) -> None:
        self.patch(os, "environ", {**os.environ, "TWISTED_CHAT_DIRECT_SEND": "0"})
        server = ServerProcess(self, "--db", ":memory:", "--rate", "0")
        alice, bob = log_in(self, server.port, "alice", "bob")
        alice.read_until("*** bob joined #lobby ***")
        bob.send(*("line %d" % n for n in range(200)))
        said = only(alice.read_until("bob: line 199"), r"bob: line \d+$")
        self.assertEqual([line.split(": ", 1)[1] for line in said],
                         ["line %d" % n for n in range(200)])
        self.assertNotIn("Traceback", server.output())


class Recorder:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


class TurnFlusherTests(SynchronousTestCase):
    """L{TurnFlusher}: this turn's and the next turn's output."""

    def test_this_turn(self) -> None:
        clock = TurnClock()
        flusher = TurnFlusher(clock)
        connection = Recorder()
        flusher.mark(connection)
        clock.turn()
        self.assertEqual(connection.flushes, 1)
        self.assertEqual(clock.calls, [])

    def test_next_turn(self) -> None:
        """A greeting waits one turn, so a pipelined login's answer joins it."""
        clock = TurnClock()
        flusher = TurnFlusher(clock)
        greeted, other = Recorder(), Recorder()
        flusher.mark_next(greeted)
        flusher.mark(other)
        clock.turn()
        self.assertEqual((greeted.flushes, other.flushes), (0, 1))
        clock.turn()
        self.assertEqual((greeted.flushes, other.flushes), (1, 1))
        clock.turn()
        self.assertEqual(clock.calls, [])
