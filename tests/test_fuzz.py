"""
Property-based tests: random byte streams, split at random points, from
several users at once, against a whole server without sockets (L{World}).

Whatever arrives, no exception escapes and nothing is logged as an error;
every line sent to any client is strict UTF-8 ending in CRLF with no control
characters in it; and the rooms stay consistent with who is online after
every step.  Hypothesis runs derandomized with no example database, so a run
is the same on every machine.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.commands import parse
from twisted_chat.config import ChatConfig
from twisted_chat.domain.server import LOBBY, Member
from twisted_chat.errors import ChatError
from twisted_chat.frontends.line.protocol import ChatLineProtocol
from twisted_chat.text import TelnetFilter, strip_telnet

from .helpers import World

MAX_LINE = 64
SENDQ = 300  # a few lines: slow readers are cut off within a few steps

# What a server may never send anyone: C0 controls but TAB, DEL, C1 (ESC is C0).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")

NAMES = [b"alice", b"bob", b"Carol", b"ALICE", b"d.e-f_9", b"admin", b"x" * 21, b"b\xc3\xa9"]

COMMANDS = [
    b"/join x", b"/join #Room1", b"/join room1", b"/join bad.room", b"/join", b"/leave",
    b"/rooms", b"/users", b"/users all", b"/users some", b"/help", b"/history", b"/history 3",
    b"/history 0", b"/history 99999999999999999999", b"/me waves", b"/me", b"/quit",
    b"/quit gone \x1b[31mfishing", b"/msg bob hi", b"/msg alice hi", b"/msg #x hi",
    b"/msg room1 hi", b"/msg #nowhere hi", b"/pm carol psst", b"/msg bob", b":)", b":(",
    b":mytime", b":+1hr", b":Users", b":Msg bob hey", b":Msg", b":Exit", b"\\/join x",
    b"\\:)", b"\\", b"/dance", b"/", b"//", b"hello", b" ", b"\t", b"x",
]

NASTY = [
    b"\xff", b"\xff\xff", b"\xff\xfd\x18", b"\xff\xfb", b"\xff\xfa\x18\x01\xff\xf0", b"\xff\xfa",
    b"\xff\xf1", b"\x1b", b"\x1b[2J", b"\x1b[31m", b"\x1b]0;owned\x07", b"\x1b]8;;http://x\x1b\\",
    b"\x1bc", b"\x1b(B", b"\x1bP+q\x1b\\", b"\xc2\x9b31m", b"\xc2\x9d0;t\xc2\x9c", b"\xc2\x85",
    b"\x00", b"\r", b"\x7f", b"\x08", b"\x07", b"\t", b"\xc3\x28", b"\xed\xa0\x80", b"\xf5\x80",
    b"\xe2\x82", b"\xf0\x9f\x8e\x89", b"\xc0\xaf", b"\xef\xbb\xbf", b"\xe2\x80\xae",
]



def one_line(data: bytes) -> bytes:
    """C{data} without line ends (for a telnet client, one 0xFF on, CR is one too)."""
    data = data.replace(b"\n", b"")
    return data.replace(b"\r", b"") if b"\xff" in data else data


fragment = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(NAMES),
    st.sampled_from(NASTY),
    st.binary(max_size=10),
    st.text(max_size=6).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(MAX_LINE - 2, MAX_LINE + 3).map(lambda n: b"y" * n),
)
terminator = st.sampled_from([b"\n", b"\r\n", b"\r\n", b"", b"\r"])
# Mostly well-formed commands and messages, so that users really move
# between rooms, talk and quit; some with nasty bytes inside; some garbage.
command = st.sampled_from(COMMANDS)
dirty_command = st.builds(
    lambda cmd, junk, at: cmd[:at] + junk + cmd[at:],
    command, st.sampled_from(NASTY), st.integers(0, 12),
)
message = st.builds(
    lambda a, junk, b: a + b" " + junk + b" " + b,
    st.sampled_from([b"hi", b"/me", b"\\", b":Msg bob"]), st.sampled_from(NASTY),
    st.sampled_from([b"there", b"", b"\xc3\xa9t\xc3\xa9"]),
)
moving = st.sampled_from([b"/join x", b"/join #Room1", b"/join room1", b"/leave", b"/quit",
                          b"hello", b"/msg #x hi", b"/msg bob hi", b":Exit"])
garbage = st.lists(fragment, max_size=4).map(b"".join)
line = st.builds(
    lambda body, end: body + end,
    st.one_of(command, command, moving, moving, dirty_command, message, garbage),
    terminator,
)
login_line = st.one_of(
    st.just(b"x\r\n"), st.sampled_from(NAMES).map(lambda n: n + b"\r\n"), line
)

# Reply fragments whose presence the statistics report, to show coverage.
MARKERS = ("ERROR line too long", ": hello", "ERROR slow down", "ERROR too many",
           "ERROR wrong passcode", "Goodbye!", "You are now in #", "[PRIVATE]", "] * ",
           "disconnected ***", "ERROR login timed out", "Welcome, ", "--- recent messages")

CONNS = 10  # connection indices are taken modulo the number of connections

send = st.tuples(
    st.just("send"),
    st.integers(0, CONNS),
    st.lists(line, min_size=1, max_size=12),
    st.lists(st.integers(0, 400), max_size=4),
)
STEPS = {
    "send": send,
    "connect": st.tuples(st.just("connect"), st.lists(login_line, max_size=3)),
    "lose": st.tuples(st.just("lose"), st.integers(0, CONNS)),
    "stall": st.tuples(st.just("stall"), st.integers(0, CONNS)),
    "unstall": st.tuples(st.just("unstall"), st.integers(0, CONNS)),
    "tick": st.tuples(st.just("tick"), st.sampled_from([0.05, 0.5, 1.0, 10.0, 31.0])),
}
# Mostly input; now and then a new connection, a drop, a stall or time passing.
step = st.sampled_from(["send"] * 10 + ["connect", "connect", "lose", "stall", "unstall", "tick"]
                       ).flatmap(STEPS.__getitem__)
steps = st.lists(step, min_size=5, max_size=40)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """C{data} cut at the given offsets (taken modulo its length)."""
    if not data:
        return []
    points = sorted({cut % len(data) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@dataclass
class Conn:
    """One connection of the harness."""

    protocol: ChatLineProtocol
    transport: Any
    lost: bool = False
    member_at_loss: Member | None = None
    received: list[str] = field(default_factory=list)


class Harness:
    """
    Drives a L{World} through steps and checks every output and invariant
    after each one.
    """

    def __init__(self, case: SynchronousTestCase, config: ChatConfig) -> None:
        self.case = case
        self.world = World(config=config)
        self.conns: list[Conn] = []

    def connect(self, data: bytes = b"") -> Conn:
        protocol, transport = self.world.connect()
        conn = Conn(protocol, transport)
        self.conns.append(conn)
        if data:
            protocol.dataReceived(data)
        return conn

    def login(self, name: str) -> Conn:
        conn = self.connect(b"x\r\n" + name.encode() + b"\r\n")
        self.case.assertIsNotNone(conn.protocol.session.member, conn.transport.value())
        return conn

    def pick(self, index: int) -> Conn | None:
        live = [conn for conn in self.conns if not conn.transport.disconnecting]
        return live[index % len(live)] if live else None

    def lose(self, conn: Conn) -> None:
        conn.member_at_loss = conn.protocol.session.member
        conn.lost = True
        conn.protocol.connectionLost(Failure(ConnectionError("fuzz")))

    def run(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "connect":
            self.connect(b"".join(action[1]))
        elif kind == "tick":
            self.world.clock.advance(action[1])
        else:
            conn = self.pick(action[1])
            if conn is None:
                return
            if kind == "send":
                data = b"".join(action[2])
                for chunk in split(data, action[3]) or [data]:
                    conn.protocol.dataReceived(chunk)
            elif kind == "lose":
                self.lose(conn)
            elif kind == "stall":
                conn.transport.producer.pauseProducing()
            elif kind == "unstall":
                conn.transport.producer.resumeProducing()
        self.check()
        # The reactor ends a connection the server closed soon after.
        for conn in self.conns:
            if conn.transport.disconnecting and not conn.lost:
                self.lose(conn)
        self.check()

    # -- checks -------------------------------------------------------------

    def check(self) -> None:
        for conn in self.conns:
            self.check_output(conn)
        self.check_rooms()

    def check_output(self, conn: Conn) -> None:
        """
        Everything written, but telnet answers, is whole CRLF lines of strict
        UTF-8 without controls.
        """
        data = strip_telnet(conn.transport.value())
        conn.transport.clear()
        if not data:
            return
        case = self.case
        case.assertTrue(data.endswith(b"\r\n"), data)
        text = data.decode("utf-8")  # strict: raises on anything invalid
        parts = text.split("\r\n")[:-1]
        for part in parts:
            case.assertNotIn("\r", part, data)
            case.assertNotIn("\n", part, data)
            case.assertIsNone(CONTROL.search(part), part)
        conn.received += parts
        for part in parts:  # what was exercised (--hypothesis-show-statistics)
            for marker in MARKERS:
                if marker in part:
                    event(marker)
        if conn.transport.disconnected:
            event("cut off as a slow reader")

    def check_rooms(self) -> None:
        """Rooms agree with who is online, and with the connections."""
        case = self.case
        server = self.world.server
        rooms = server.rooms
        case.assertIs(rooms.get(LOBBY), server.lobby)
        for key, room in rooms.items():
            case.assertEqual(room.name, key)
            if room is not server.lobby:
                case.assertTrue(room.members, "empty room #%s left behind" % key)
            for member in room.members:
                case.assertIs(server.members.get(member.key), member)
                case.assertIs(member.room, room)
        for key, member in server.members.items():
            case.assertEqual(key, member.name.lower())
            case.assertIsNotNone(member.room, member)
            case.assertIs(rooms.get(member.room.name), member.room)
            case.assertEqual(sum(member in room.members for room in rooms.values()), 1)
        online = {id(member.participant): member for member in server.members.values()}
        case.assertEqual(len(online), len(server.members))
        for conn in self.conns:
            member = conn.protocol.session.member
            if conn.lost:
                case.assertIsNone(member)
                gone = conn.member_at_loss
                case.assertNotIn(id(conn.protocol), online)
                if gone is not None:
                    case.assertIsNot(server.members.get(gone.key), gone)
                    case.assertFalse(any(gone in room.members for room in rooms.values()))
            elif member is not None:
                case.assertIs(server.members.get(member.key), member)
                case.assertIs(member.participant, conn.protocol)
        live = {id(conn.protocol) for conn in self.conns if not conn.lost}
        case.assertTrue(set(online) <= live, "a member without a live connection")

    def finish(self) -> None:
        """Everyone goes; the server is empty and no timer is left running."""
        for conn in self.conns:
            if not conn.lost:
                self.lose(conn)
            self.check_output(conn)
        self.check_rooms()
        self.world.clock.advance(3600)
        server = self.world.server
        self.case.assertEqual(server.members, {})
        self.case.assertEqual(list(server.rooms), [LOBBY])
        self.case.assertEqual(server.lobby.members, {})
        self.case.assertEqual(self.world.clock.getDelayedCalls(), [])


def fuzz_config(rate: float) -> ChatConfig:
    """Small limits, so that floods, long lines and slow readers happen often."""
    return ChatConfig(
        passcode=b"x", db=":memory:", max_line=MAX_LINE, rate=rate, burst=3,
        history=5, sendq=SENDQ,
    )


class ErrorLog:
    """Collects log events at error level or with a failure while active."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None or event.get("log_level") in (
            LogLevel.error, LogLevel.critical
        ):
            self.events.append(event)

    def __enter__(self) -> ErrorLog:
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self)


class FuzzTests(SynchronousTestCase):
    """Random traffic from several users never breaks a session or the rooms."""

    def play(self, steps: list[tuple[Any, ...]], rate: float) -> Harness:
        with ErrorLog() as errors:
            harness = Harness(self, fuzz_config(rate))
            for name in ("alice", "bob", "carol"):
                carol = harness.login(name)
            carol.transport.producer.pauseProducing()  # carol starts as a slow reader
            harness.connect()  # one still at the passcode prompt
            harness.check()
            for action in steps:
                harness.run(action)
            harness.finish()
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(errors.events, [])
        return harness

    @FUZZ
    @given(steps)
    def test_random_traffic(self, steps: list[tuple[Any, ...]]) -> None:
        """Random steps with flood control off keep every invariant."""
        self.play(steps, rate=0)

    @FUZZ
    @given(steps)
    def test_random_traffic_with_flood_limit(self, steps: list[tuple[Any, ...]]) -> None:
        """The same with the token bucket on (5/s, burst 3) and the clock moving."""
        self.play(steps, rate=5)

    @settings(FUZZ, max_examples=150)
    @given(st.lists(st.tuples(st.integers(0, 3), st.lists(line, min_size=1, max_size=4)),
                    max_size=12),
           st.lists(st.integers(0, 10_000), max_size=8))
    def test_chunking_does_not_matter(self, script: list[tuple[int, list[bytes]]],
                                      cuts: list[int]) -> None:
        """
        What everyone sees is the same whether input comes whole or cut
        anywhere.  A client that sends telnet commands starts with one (IAC
        NOP here), as telnets do: from then on a bare CR ends a line.
        """
        seen = []
        telnet = {index for index, chunk_lines in script if b"\xff" in b"".join(chunk_lines)}
        for cut in (None, cuts):
            started: set[int] = set()
            with ErrorLog() as errors:
                harness = Harness(self, fuzz_config(rate=5))
                conns = [harness.login(name) for name in ("alice", "bob", "carol")]
                conns.append(harness.connect())
                harness.check()
                for index, chunk_lines in script:
                    conn = conns[index]
                    data = b"".join(chunk_lines)
                    if conn.lost:
                        continue
                    if index in telnet and index not in started:
                        started.add(index)
                        data = b"\xff\xf1" + data
                    pieces = [data] if cut is None else split(data, cuts) or [data]
                    for piece in pieces:
                        conn.protocol.dataReceived(piece)
                    harness.check()
                    # a client the server closes goes away before its next turn
                    for other in conns:
                        if other.transport.disconnecting and not other.lost:
                            harness.lose(other)
                            harness.check()
                harness.finish()
            self.assertEqual(errors.events, [])
            seen.append([conn.received for conn in conns])
        self.assertEqual(seen[0], seen[1])
        self.assertEqual(self.flushLoggedErrors(), [])

    @settings(FUZZ, max_examples=300)
    @given(st.lists(fragment, max_size=5).map(lambda parts: one_line(b"".join(parts))))
    def test_one_bad_line(self, raw: bytes) -> None:
        """
        Any one line from a logged-in user gets at most one ERROR line (and
        then nothing else), and closes the session only if it was a quit.
        """
        with ErrorLog() as errors:
            harness = Harness(self, fuzz_config(rate=0))
            alice = harness.login("alice")
            bob = harness.login("bob")
            harness.check()
            alice.received.clear()
            bob.received.clear()
            alice.protocol.dataReceived(raw + b"\r\n")
            harness.check()
            errors_sent = [text for text in alice.received if text.startswith("ERROR ")]
            if errors_sent:
                self.assertEqual(alice.received, errors_sent[:1])
            text = TelnetFilter().feed(raw)
            try:
                command = parse(text.decode("utf-8", "replace"))
            except ChatError:
                command = None
            quit = command is not None and command.name == "quit"
            too_long = len(text) > MAX_LINE
            if quit and not too_long:
                self.assertTrue(alice.transport.disconnecting)
            else:
                self.assertFalse(alice.transport.disconnecting, alice.received)
            harness.finish()
        self.assertEqual(errors.events, [])
        self.assertEqual(self.flushLoggedErrors(), [])


class ErrorEchoTests(SynchronousTestCase):
    """ERROR lines that quote what the user typed quote it without controls."""

    def test_error_quotes_no_controls(self) -> None:
        """
        C{/join\\x1b}, C{/msg gh\\x1b[2Jost hi} and the like are refused
        without sending the escape back.
        """
        harness = Harness(self, fuzz_config(rate=0))
        alice = harness.login("alice")
        alice.transport.clear()
        alice.protocol.dataReceived(b"/join\x1b[2J\r\n/msg gh\x1b]0;x\x07ost hi\r\n/da\x00nce\r\n")
        out = alice.transport.value().decode("utf-8").split("\r\n")[:-1]
        self.assertEqual(len(out), 3, out)
        for text in out:
            self.assertTrue(text.startswith("ERROR "), text)
            self.assertIsNone(CONTROL.search(text), text)
