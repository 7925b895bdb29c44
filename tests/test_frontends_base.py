"""Tests for L{twisted_chat.frontends.base}: the send queue every front end uses."""

from __future__ import annotations

import json
import socket
import sys
from unittest import SkipTest

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IPushProducer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_chat.config import ChatConfig
from twisted_chat.frontends.base import (
    ACCEPTS_PER_TURN,
    DEAD_PEER_OPTIONS,
    AdmittingFactory,
    ReadingSendQueue,
    SendQueue,
    cap_accepts,
    describe_peer,
    lean_transports,
    open_connection,
    preset_listener,
)
from twisted_chat.frontends.web.site import ChatWebFactory, frame_size
from twisted_chat.service import Listener

from . import test_web as web_tests
from .helpers import World


class Reader:
    """A stand-in for the connection's reading side."""

    def __init__(self) -> None:
        self.paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


class SendQueueTests(SynchronousTestCase):
    """L{SendQueue} learns from the transport when the client stopped reading."""

    def setUp(self) -> None:
        self.overflows: list[int] = []
        self.queue = SendQueue(100)
        self.overflow = self.overflows.append

    def test_pause_and_resume(self) -> None:
        queue = self.queue
        self.assertTrue(verifyObject(IPushProducer, queue))
        self.assertFalse(queue.stalled)
        queue.pauseProducing()
        self.assertTrue(queue.stalled)
        self.assertTrue(queue.add(60, self.overflow))
        self.assertEqual(queue.queued, 60)
        queue.resumeProducing()
        self.assertEqual((queue.stalled, queue.queued), (False, 0))
        queue.stopProducing()

    def test_overflow_once(self) -> None:
        """Past the limit the overflow action runs once; every later write is refused."""
        queue = self.queue
        queue.pauseProducing()
        self.assertTrue(queue.add(100, self.overflow))  # up to the limit is fine
        self.assertFalse(queue.add(1, self.overflow))
        self.assertEqual(self.overflows, [101])
        self.assertTrue(queue.overflowed)
        self.assertFalse(queue.add(1, self.overflow))
        queue.resumeProducing()
        self.assertFalse(queue.add(1, self.overflow))  # a dropped client stays dropped
        self.assertEqual(self.overflows, [101])

    def test_count_restarts_on_resume(self) -> None:
        """Only what is written during one stall counts toward the limit."""
        queue = self.queue
        for _ in range(5):
            queue.pauseProducing()
            self.assertTrue(queue.add(80, self.overflow))
            queue.resumeProducing()
        self.assertEqual(self.overflows, [])

    def test_reader_paused_while_stalled(self) -> None:
        """The connection's reading stops while its output is stalled (issue 11)."""
        reader = Reader()
        queue = ReadingSendQueue(100, reader)
        queue.pauseProducing()
        self.assertTrue(reader.paused)
        queue.resumeProducing()
        self.assertFalse(reader.paused)


class WebSendQueueTests(SynchronousTestCase):
    """The browser's send queue counts bytes, as the line protocol's does."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0, sendq=2000))
        self.browser = web_tests.Browser(ChatWebFactory(self.world.context))
        self.browser.login("web")
        self.bob, _ = self.world.login("bob")
        self.browser.transport.take()

    def test_bytes_not_characters(self) -> None:
        """A stalled browser's backlog counts each frame's UTF-8 bytes and header."""
        queue = self.browser.protocol.send_queue
        queue.pauseProducing()
        self.bob.dataReceived("é".encode() * 100 + b"\r\n")
        [sent] = self.browser.transport.take()
        text = json.dumps(sent, ensure_ascii=False)
        self.assertEqual(queue.queued, len(text.encode()) + 4)  # 126-65535 bytes: 4-byte header
        self.assertGreater(queue.queued, len(text) + 90)  # é is two bytes

    def test_dropped_past_the_sendq(self) -> None:
        """Past --sendq bytes (not characters) the browser is dropped; nothing more is sent."""
        queue = self.browser.protocol.send_queue
        queue.pauseProducing()
        line = "é".encode() * 300 + b"\r\n"  # about 700 bytes a message, 400 characters
        self.bob.dataReceived(line * 3)
        self.assertEqual(len(self.browser.transport.take()), 2)  # 3 x 400 characters < 2000
        self.assertTrue(queue.overflowed)
        self.assertTrue(self.browser.transport.transport.disconnected)  # aborted
        self.bob.dataReceived(line)
        self.assertEqual(self.browser.transport.take(), [])

    def test_frame_size(self) -> None:
        self.assertEqual(frame_size(""), 2)
        self.assertEqual(frame_size("x" * 125), 127)
        self.assertEqual(frame_size("x" * 126), 130)
        self.assertEqual(frame_size("é" * 63), 130)
        self.assertEqual(frame_size("x" * 65536), 65546)


@pytest.mark.e2e
class PresetListenerTests(SynchronousTestCase):
    """
    L{preset_listener} gives the listening socket the options every
    connection needs, and an accepted socket has them without setting any.
    """

    def test_accepted_socket_inherits(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("Linux copies a listener's options to accepted sockets")
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = type("Port", (), {"socket": listener})()
        self.assertTrue(preset_listener(port))
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        accepted, _ = listener.accept()
        self.addCleanup(accepted.close)
        self.assertTrue(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        self.assertTrue(accepted.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        for name, value in DEAD_PEER_OPTIONS:
            self.assertEqual(accepted.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)),
                             value, name)

    def test_not_tcp(self) -> None:
        """A port without a TCP socket is left alone (each connection sets its own)."""
        self.assertFalse(preset_listener(object()))
        unix = socket.socket(socket.AF_UNIX)
        self.addCleanup(unix.close)
        self.assertFalse(preset_listener(type("Port", (), {"socket": unix})()))

    def test_listener_presets(self) -> None:
        """
        A L{Listener} presets its TCP port's socket and tells its factory,
        whose connections then set no options of their own.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = type("Port", (), {"socket": listener,
                                 "getHost": lambda self: IPv4Address("TCP", "127.0.0.1", 1)})()
        endpoint = type("Endpoint", (), {"listen": lambda self, factory: succeed(port)})()
        factory = AdmittingFactory()
        Listener(endpoint, factory, "line protocol").privilegedStartService()
        self.assertIs(factory.sockets_preset, sys.platform.startswith("linux"))

        calls: list[str] = []
        transport = type("Transport", (), {
            "setTcpNoDelay": lambda self, on: calls.append("nodelay"),
            "setTcpKeepAlive": lambda self, on: calls.append("keepalive"),
            "registerProducer": lambda self, producer, streaming: None})()
        open_connection(transport, 100, preset=True)
        self.assertEqual(calls, [])
        open_connection(transport, 100)
        self.assertEqual(calls, ["nodelay", "keepalive"])


class AcceptCapTests(SynchronousTestCase):
    """L{cap_accepts}: a login storm is taken a bounded number of connections a turn."""

    def test_capped(self) -> None:
        from twisted.internet import tcp

        port = tcp.Port(0, AdmittingFactory(), interface="127.0.0.1")
        port.numberAccepts = 100  # as startListening sets it
        self.assertTrue(cap_accepts(port))
        self.assertIsInstance(port, tcp.Port)
        self.assertEqual(port.numberAccepts, ACCEPTS_PER_TURN)
        port.numberAccepts += 20  # what Port.doRead does after a full turn
        self.assertEqual(port.numberAccepts, ACCEPTS_PER_TURN)
        port.numberAccepts = 3  # fewer waited: Twisted lowers it
        self.assertEqual(port.numberAccepts, 3)
        self.assertFalse(cap_accepts(object()))


class LeanTransportTests(SynchronousTestCase):
    """L{lean_transports}: a port's connections keep no repr string, yet have the same repr."""

    def test_lean(self) -> None:
        from twisted.internet import tcp

        port = tcp.Port(0, AdmittingFactory(), interface="127.0.0.1")
        port._realPortNumber = 4321
        self.assertTrue(lean_transports(port))
        kind = port.transport
        self.assertTrue(issubclass(kind, tcp.Server))
        self.assertIsNot(kind, tcp.Server)
        connection = kind.__new__(kind)
        connection.protocol = AdmittingFactory()
        connection.sessionno = 7
        connection.server = port
        connection.repstr = "<kept?>"  # what Server.__init__ does: not kept
        self.assertNotIn("repstr", vars(connection))
        self.assertEqual(repr(connection), "<AdmittingFactory #7 on 4321>")
        sock = type("Socket", (), {"fileno": lambda self: 9})()
        connection.socket = sock
        connection.fileno = sock.fileno  # what Connection.__init__ does: not kept
        self.assertNotIn("fileno", vars(connection))
        self.assertEqual(connection.fileno(), 9)
        del connection.socket, connection.fileno  # what connectionLost does
        self.assertEqual(connection.fileno(), -1)
        self.assertTrue(lean_transports(port))  # again: the same class
        self.assertIs(port.transport, kind)
        self.assertFalse(lean_transports(object()))


class DescribePeerTests(SynchronousTestCase):
    """L{describe_peer}: C{host:port}, read from a TCP connection's own tuple when it has one."""

    def test_tcp_server_tuple(self) -> None:
        """The same text as the transport's getPeer() gives, IPv4 and IPv6."""
        from twisted.internet import tcp

        for client, kind, expected in [
            (("10.1.2.3", 4567), IPv4Address, "10.1.2.3:4567"),
            (("::1", 4567, 0, 0), IPv6Address, "::1:4567"),
        ]:
            server = tcp.Server.__new__(tcp.Server)
            server.client = client
            server._addressType = kind
            peer = server.getPeer()
            self.assertEqual("%s:%s" % (peer.host, peer.port), expected)
            self.assertEqual(describe_peer(server), expected)

    def test_other_transports(self) -> None:
        from twisted.internet.testing import StringTransport

        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 99))
        self.assertEqual(describe_peer(transport), "192.0.2.1:99")
