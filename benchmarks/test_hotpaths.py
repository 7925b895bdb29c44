"""
Micro-benchmarks of the hot paths, with pytest-benchmark; not part of the
normal test run (pytest's testpaths is tests/).  Run:

    python -m pytest benchmarks/test_hotpaths.py --benchmark-only

Each benchmark drives the real protocol objects through StringTransports
and a task.Clock: no sockets, no reactor.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport

from tests.helpers import PEER, World
from twisted_chat.commands import parse
from twisted_chat.config import ChatConfig
from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver, Counts

CONFIG = ChatConfig(passcode=b"x", db=":memory:", rate=0, max_per_ip=1_000_000,
                    max_clients=1_000_000)


def test_parse_line(benchmark) -> None:
    """Parse one command line."""
    command = benchmark(parse, "/msg bob are you there?")
    assert command.name == "msg"


def test_dispatch_line(benchmark) -> None:
    """One message line from the socket to a room of two.

    Split, decode, parse, dispatch, fan out.
    """
    world = World(config=CONFIG)
    alice, _ = world.login("alice")
    _, bob_out = world.login("bob")
    data = b"hello there, how is everyone doing today?\r\n"

    def one() -> None:
        alice.dataReceived(data)
        bob_out.clear()

    benchmark(one)
    world.clock.advance(0)


def test_fanout_100(benchmark, observer: ChatObserver = NULL_OBSERVER) -> None:
    """Fan one message out to a room of 100 StringTransports."""
    world = World(config=CONFIG, observer=observer)
    sender, _ = world.login("sender")
    outs = [world.login("u%d" % i)[1] for i in range(99)]
    data = b"bm 1 2 3 a typical chat message of moderate length\r\n"
    rounds = [0]

    def one() -> None:
        sender.dataReceived(data)
        rounds[0] += 1
        if rounds[0] % 200 == 0:  # keep the transports' buffers small
            for out in outs:
                out.clear()
            world.clock.advance(0)

    benchmark(one)
    expected = b"sender: bm 1 2 3 a typical chat message of moderate length\r\n"
    assert outs[0].value().endswith(expected) \
        or rounds[0] % 200 == 0


def test_fanout_100_metrics(benchmark) -> None:
    """The same with --metrics on: counting costs once per event, not per recipient."""
    test_fanout_100(benchmark, Counts())


def test_dispatch_line_metrics(benchmark) -> None:
    """One message line to a room of two with --metrics on."""
    world = World(config=CONFIG, observer=Counts())
    alice, _ = world.login("alice")
    _, bob_out = world.login("bob")
    data = b"hello there, how is everyone doing today?\r\n"

    def one() -> None:
        alice.dataReceived(data)
        bob_out.clear()

    benchmark(one)
    world.clock.advance(0)


def test_login(benchmark) -> None:
    """A whole login: connect, passcode, name, lobby, then disconnect."""
    world = World(config=CONFIG)
    counter = [0]

    def one() -> None:
        counter[0] += 1
        protocol = world.factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"x\r\nu%d\r\n" % counter[0])
        protocol.connectionLost(None)

    benchmark(one)
    assert world.server.members == {}


def test_telnet_line(benchmark) -> None:
    """One message line from a telnet client (its commands removed in C), to a room of two."""
    world = World(config=CONFIG)
    alice, _ = world.login("alice")
    _, bob_out = world.login("bob")
    alice.dataReceived(b"\xff\xfb\x00")  # it answered DO BINARY: the telnet path is on
    data = b"hello there, how is everyone doing today?\xff\xf1\r\n"

    def one() -> None:
        alice.dataReceived(data)
        bob_out.clear()

    benchmark(one)
    world.clock.advance(0)


class _LeanWebSocketTransport:
    """Records the text messages sent, unparsed (a parse per message would dominate)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sendTextMessage = self.sent.append


def test_fanout_100_mixed(benchmark) -> None:
    """Fan one message out to a room of 50 telnet and 50 browser members."""
    import json

    from twisted_chat.frontends.web.site import ChatWebFactory, ChatWebSocket

    world = World(config=CONFIG)
    sender, _ = world.login("sender")
    outs = [world.login("u%d" % i)[1] for i in range(49)]
    factory = ChatWebFactory(world.context)
    transports = []
    for n in range(50):
        socket = ChatWebSocket(factory, "192.0.2.9:%d" % n, "192.0.2.9")
        transport = _LeanWebSocketTransport()
        socket.negotiationStarted(transport)
        socket.negotiationFinished()
        login = {"type": "login", "passcode": "x", "name": "w%d" % n}
        socket.textMessageReceived(json.dumps(login))
        transports.append(transport)
    data = b"bm 1 2 3 a typical chat message of moderate length\r\n"
    rounds = [0]

    def one() -> None:
        sender.dataReceived(data)
        rounds[0] += 1
        if rounds[0] % 200 == 0:  # keep the buffers small
            for out in outs:
                out.clear()
            for transport in transports:
                transport.sent.clear()
            world.clock.advance(0)

    benchmark(one)
    assert '"text": "bm 1 2 3' in transports[0].sent[-1] or rounds[0] % 200 == 0
