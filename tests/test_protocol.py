"""Tests for the line protocol and sessions, through StringTransport and Clock."""

from __future__ import annotations

import socket
import time

import pytest
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twisted_chat.config import ChatConfig
from twisted_chat.frontends.line.protocol import ChatLineProtocol
from twisted_chat.text import clock_stamp, strip_telnet, utc_offset, zone_name

from .helpers import PEER, World, lines

try:
    from twisted.internet.testing import EventLoggingObserver
except ImportError:  # pragma: no cover
    from twisted.test.proto_helpers import EventLoggingObserver


class LoginTests(SynchronousTestCase):
    """The login dialogue."""

    def setUp(self) -> None:
        self.world = World()

    def test_prompts(self) -> None:
        """Greeting and exact prompts, each a whole CRLF line."""
        protocol, transport = self.world.connect()
        self.assertEqual(lines(transport), ["Welcome to twisted-chat.", "Passcode:"])
        protocol.dataReceived(b"x\r\n")
        self.assertEqual(lines(transport), ["Username:"])
        protocol.dataReceived(b"alice\n")
        self.assertEqual(lines(transport), [
            "Welcome, alice! You are in #lobby. Type /help for commands.",
            "Times are %s (the server's time zone)."
            % zone_name(utc_offset(self.world.clock.seconds())),
            "Users in #lobby (1): alice",
        ])

    def test_open_server_skips_passcode(self) -> None:
        world = World(passcode=None)
        protocol, transport = world.connect()
        self.assertEqual(lines(transport), ["Welcome to twisted-chat.", "Username:"])
        protocol.dataReceived(b"bob\r\n")
        self.assertIn("Welcome, bob!", lines(transport)[0])

    def test_wrong_passcode_three_strikes(self) -> None:
        """Two wrong passcodes re-prompt; the third closes the connection. All are logged."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        protocol, transport = self.world.connect()
        transport.clear()
        protocol.dataReceived(b"a\r\n")
        self.assertEqual(lines(transport), ["ERROR wrong passcode", "Passcode:"])
        protocol.dataReceived(b"b\r\n")
        self.assertEqual(lines(transport), ["ERROR wrong passcode", "Passcode:"])
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"c\r\n")
        self.assertEqual(lines(transport), ["ERROR too many attempts"])
        self.assertTrue(transport.disconnecting)
        warnings = [e for e in logged if e["log_level"] == LogLevel.warn
                    and e["log_format"].startswith("wrong passcode from")]
        self.assertEqual(len(warnings), 3)
        self.assertEqual(warnings[0]["peer"], "192.0.2.7:40000")
        self.assertFalse(any(str(v) == "x" for e in logged for v in e.values()))

    def test_right_after_wrong(self) -> None:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"nope\r\nx\r\nalice\r\n")
        self.assertIn("Welcome, alice!", "\n".join(lines(transport)))

    def test_bad_names(self) -> None:
        """A bad, reserved or taken name gets ERROR and the prompt again."""
        self.world.login("alice")
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"x\r\n")
        transport.clear()
        for name in (b"ALICE", b"Admin", b"bad name", b"x" * 21, "élan".encode(), b""):
            protocol.dataReceived(name + b"\r\n")
            out = lines(transport)
            self.assertEqual(len(out), 2, out)
            self.assertTrue(out[0].startswith("ERROR "), out)
            self.assertEqual(out[1], "Username:")
        protocol.dataReceived(b"  bob  \r\n")
        self.assertIn("Welcome, bob!", lines(transport)[0])

    def test_pipelined_login(self) -> None:
        """Passcode, name and a message in one packet reach the room."""
        bob, bob_out = self.world.login("bob")
        alice, _ = self.world.connect()
        alice.dataReceived(b"x\r\nalice\r\nhello\r\n/join dev\r\n")
        self.assertEqual(lines(bob_out)[-2:], [
            "[%s] alice: hello" % clock_stamp(self.world.clock.seconds()),
            "[%s] *** alice left #lobby ***" % clock_stamp(self.world.clock.seconds()),
        ])

    def test_dialogue_dropped_after_login(self) -> None:
        """
        Once logged in, lines go straight to the session and the connection
        keeps no dialogue (an idle connection's memory counts).
        """
        bob, bob_out = self.world.login("bob")
        alice, _ = self.world.connect()
        alice.dataReceived(b"x\r\n")
        self.assertIsNotNone(alice.dialogue)
        alice.dataReceived(b"alice\r\n")
        self.assertIsNone(alice.dialogue)
        alice.dataReceived(b"hi\r\n")
        alice.dataReceived(b"again\r\n")
        self.assertEqual([line[11:] for line in lines(bob_out)[-2:]],
                         ["alice: hi", "alice: again"])

    def test_one_byte_at_a_time(self) -> None:
        """Input split into single bytes works the same."""
        bob, bob_out = self.world.login("bob")
        alice, _ = self.world.connect()
        for byte in "x\r\nalice\r\nhé 🎉\r\n".encode():
            alice.dataReceived(bytes([byte]))
        self.assertTrue(lines(bob_out)[-1].endswith("alice: hé 🎉"))

    def test_slow_checker_keeps_pipelined_lines_in_order(self) -> None:
        """While the checker is thinking, later lines wait, then run in order."""
        pending: list[Deferred[object]] = []

        @implementer(ICredentialsChecker)
        class Slow:
            credentialInterfaces = World().portal.listCredentialsInterfaces()

            def requestAvatarId(self, credentials: object) -> Deferred[object]:
                d: Deferred[object] = Deferred()
                pending.append(d)
                return d

        world = World(checker=Slow())
        bob, bob_out = world.connect()
        bob.dataReceived(b"x\r\n")
        pending.pop().callback(b"anon")
        bob.dataReceived(b"bob\r\n")
        alice, alice_out = world.connect()
        alice.dataReceived(b"wrong\r\nx\r\nalice\r\nhi\r\n")
        self.assertTrue(alice.paused)
        pending.pop().errback(Failure(UnauthorizedLogin()))
        pending.pop().callback(b"anon")
        out = lines(alice_out)
        self.assertEqual(out[:6], [
            "Welcome to twisted-chat.", "Passcode:", "ERROR wrong passcode", "Passcode:",
            "Username:", "Welcome, alice! You are in #lobby. Type /help for commands.",
        ])
        self.assertTrue(lines(bob_out)[-1].endswith("alice: hi"))

    def test_login_timeout(self) -> None:
        """A client that has not logged in after 30 s is told and disconnected."""
        _, transport = self.world.connect()
        self.world.clock.advance(29)
        self.assertFalse(transport.disconnecting)
        self.world.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(lines(transport)[-1], "ERROR login timed out")

    def test_no_timeout_after_login(self) -> None:
        _, transport = self.world.login("alice")
        self.world.clock.advance(3600)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_disconnect_during_login(self) -> None:
        """A connection lost at the name prompt frees nothing and stops its timer."""
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"x\r\n")
        protocol.connectionLost(Failure(ConnectionError()))
        self.assertEqual(self.world.server.members, {})
        self.assertEqual(self.world.clock.getDelayedCalls(), [])


class ChatTests(SynchronousTestCase):
    """Talking, once logged in."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0))
        self.alice, self.alice_out = self.world.login("alice")
        self.bob, self.bob_out = self.world.login("bob")
        lines(self.alice_out)
        self.stamp = clock_stamp(self.world.clock.seconds())

    def test_message_and_no_echo(self) -> None:
        self.alice.dataReceived(b"Hello everyone!\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] alice: Hello everyone!" % self.stamp])
        self.assertEqual(lines(self.alice_out), [])

    def test_lf_and_crlf(self) -> None:
        self.alice.dataReceived(b"one\ntwo\r\n")
        self.assertEqual([line[11:] for line in lines(self.bob_out)], ["alice: one", "alice: two"])

    def test_whitespace_only_ignored(self) -> None:
        self.alice.dataReceived(b"\r\n   \r\n\t\r\n\n")
        self.assertEqual(lines(self.bob_out), [])
        self.assertEqual(lines(self.alice_out), [])

    def test_control_characters_removed(self) -> None:
        """Escape sequences and controls never reach others."""
        self.alice.dataReceived(b"\x1b[2J\x1b[31mred\x1b[0m\x07 and\ttab\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] alice: red and\ttab" % self.stamp])

    def test_only_controls_is_blank(self) -> None:
        self.alice.dataReceived(b"\x1b[2J\x07\r\n")
        self.assertEqual(lines(self.bob_out), [])

    def test_telnet_negotiation_stripped(self) -> None:
        self.alice.dataReceived(b"\xff\xfd\x18hi\xff\xfb\x01 there\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] alice: hi there" % self.stamp])

    def test_invalid_utf8(self) -> None:
        self.alice.dataReceived(b"bad \xc3\x28 byte\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] alice: bad \ufffd( byte" % self.stamp])
        self.assertFalse(self.alice_out.disconnecting)

    def test_long_line(self) -> None:
        """An over-long line is refused whole; the lines around it are kept."""
        limit = self.world.config.max_line
        self.alice.dataReceived(b"before\r\n" + b"y" * (limit + 1) + b"\r\nafter\r\n")
        self.assertEqual(lines(self.alice_out), ["ERROR line too long (max %d bytes)" % limit])
        self.assertEqual([line[11:] for line in lines(self.bob_out)],
                         ["alice: before", "alice: after"])

    def test_long_line_in_pieces(self) -> None:
        """A long line that arrives in pieces is refused once and nothing of it is delivered."""
        limit = self.world.config.max_line
        for _ in range(5):
            self.alice.dataReceived(b"z" * limit)
        self.alice.dataReceived(b"zz\r\nnext\r\n")
        self.assertEqual(lines(self.alice_out), ["ERROR line too long (max %d bytes)" % limit])
        self.assertEqual(lines(self.bob_out), ["[%s] alice: next" % self.stamp])

    def test_line_at_limit(self) -> None:
        """Exactly --max-line bytes (without CRLF) is accepted, in any chunking."""
        limit = self.world.config.max_line
        data = b"w" * limit + b"\r\n"
        self.alice.dataReceived(data[:limit + 1])
        self.alice.dataReceived(data[limit + 1:])
        self.assertEqual(lines(self.alice_out), [])
        self.assertEqual(len(lines(self.bob_out)[0]), 11 + len("alice: ") + limit)

    def test_unknown_command(self) -> None:
        self.alice.dataReceived(b"/dance\r\n")
        self.assertEqual(lines(self.alice_out), ["ERROR unknown command /dance (try /help)"])

    def test_errors_keep_session(self) -> None:
        """Every mistake gets one ERROR line and the session goes on."""
        for line in (b"/join", b"/join bad.room", b"/msg ghost hi", b"/msg bob", b"/history x",
                     b"/leave", b"/join lobby", b"/msg #nowhere hi", b"/me", b":Msg bob",
                     b"/msg alice hi"):
            self.alice.dataReceived(line + b"\r\n")
            out = lines(self.alice_out)
            self.assertEqual(len(out), 1, (line, out))
            self.assertTrue(out[0].startswith("ERROR "), (line, out))
        self.alice.dataReceived(b"still here\r\n")
        self.assertEqual(lines(self.bob_out)[-1][11:], "alice: still here")

    def test_help(self) -> None:
        self.alice.dataReceived(b"/help\r\n")
        out = lines(self.alice_out)
        self.assertEqual(out[0], "Commands:")
        self.assertTrue(any(line.strip().startswith("/msg <user> <text>") for line in out))

    def test_join_and_leave(self) -> None:
        self.alice.dataReceived(b"/join #General\r\n")
        self.assertEqual(lines(self.alice_out), ["You are now in #general.",
                                                 "Users in #general (1): alice"])
        self.assertEqual(lines(self.bob_out), ["[%s] *** alice left #lobby ***" % self.stamp])
        self.alice.dataReceived(b"secret room talk\r\n/leave\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] *** alice joined #lobby ***" % self.stamp])
        self.assertEqual(lines(self.alice_out)[:2], ["You are now in #lobby.",
                                                     "Users in #lobby (2): alice, bob"])

    def test_rooms_users(self) -> None:
        self.bob.dataReceived(b"/join dev\r\n")
        self.alice.dataReceived(b"/rooms\r\n/users\r\n/users all\r\n:Users\r\n")
        self.assertEqual(lines(self.alice_out)[-4:], [
            "Rooms (2): #lobby (1), #dev (1)",
            "Users in #lobby (1): alice",
            "Users online (2): alice (#lobby), bob (#dev)",
            "Users online (2): alice (#lobby), bob (#dev)",
        ])

    def test_private_messages(self) -> None:
        self.alice.dataReceived(b"/msg bob I'm good, thanks!\r\n/pm bob two\r\n:Msg bob three\r\n")
        self.assertEqual(lines(self.bob_out), [
            "[%s] [PRIVATE] alice: I'm good, thanks!" % self.stamp,
            "[%s] [PRIVATE] alice: two" % self.stamp,
            "[%s] [PRIVATE] alice: three" % self.stamp,
        ])
        self.assertEqual(lines(self.alice_out)[0],
                         "[%s] [PRIVATE to bob] I'm good, thanks!" % self.stamp)

    def test_me(self) -> None:
        self.alice.dataReceived(b"/me waves\r\n")
        self.assertEqual(lines(self.bob_out), ["[%s] * alice waves" % self.stamp])

    def test_shortcuts(self) -> None:
        self.alice.dataReceived(b":)\r\n:(\r\n:mytime\r\n:+1hr\r\n\\:)\r\n\\/join x\r\n")
        now = self.world.clock.seconds()
        self.assertEqual([line[11:] for line in lines(self.bob_out)], [
            "alice: [feeling happy]",
            "alice: [feeling sad]",
            "alice: " + time.ctime(now),
            "alice: " + time.ctime(now + 3600),
            "alice: :)",
            "alice: /join x",
        ])

    def test_history(self) -> None:
        self.alice.dataReceived(b"one\r\ntwo\r\n")
        self.bob.dataReceived(b"/history\r\n/history 1\r\n")
        out = lines(self.bob_out)[2:]  # after the two live messages
        self.assertEqual(out[0], "--- last 2 messages in #lobby ---")
        self.assertRegex(out[1], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice: one$")
        self.assertTrue(out[2].endswith("] alice: two"))
        self.assertEqual(out[3], "--- end of history ---")
        self.assertEqual(out[4], "--- last message in #lobby ---")
        self.assertTrue(out[5].endswith("] alice: two"))

    def test_quit(self) -> None:
        self.alice.dataReceived(b"/quit gone fishing\r\nignored\r\n")
        self.assertEqual(lines(self.alice_out), ["Goodbye!"])
        self.assertTrue(self.alice_out.disconnecting)
        self.alice.connectionLost(Failure(ConnectionError()))
        self.assertEqual(lines(self.bob_out),
                         ["[%s] *** alice quit (gone fishing) ***" % self.stamp])
        self.assertNotIn("alice", self.world.server.members)

    def test_exit_shortcut(self) -> None:
        self.alice.dataReceived(b":Exit\r\n")
        self.assertEqual(lines(self.alice_out), ["Goodbye!"])
        self.assertEqual(lines(self.bob_out), ["[%s] *** alice quit ***" % self.stamp])

    def test_abrupt_disconnect(self) -> None:
        """The name is free at once and the room sees the user leave."""
        self.alice.connectionLost(Failure(ConnectionError()))
        self.assertEqual(lines(self.bob_out), ["[%s] *** alice disconnected ***" % self.stamp])
        again, out = self.world.login("alice")
        self.assertIs(self.world.server.members["alice"].participant, again)

    def test_bug_keeps_session(self) -> None:
        """An unexpected exception is logged, answered with ERROR, and the session goes on."""
        def broken(*args: object) -> None:
            raise RuntimeError("boom")

        self.patch(self.world.server, "room_list", broken)
        self.alice.dataReceived(b"/rooms\r\nafter\r\n")
        out = lines(self.alice_out)
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith("ERROR "))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(lines(self.bob_out)[-1][11:], "alice: after")


class FloodTests(SynchronousTestCase):
    """The token bucket on every line after login."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=2, burst=3))
        self.alice, self.alice_out = self.world.login("alice")
        self.bob, self.bob_out = self.world.login("bob")
        lines(self.alice_out)

    def test_burst_then_slow_down(self) -> None:
        self.alice.dataReceived(b"1\r\n2\r\n3\r\n4\r\n/rooms\r\n")
        self.assertEqual([line[11:] for line in lines(self.bob_out)],
                         ["alice: 1", "alice: 2", "alice: 3"])
        out = lines(self.alice_out)
        # told once, not once per dropped line
        self.assertEqual(
            out, ["ERROR slow down (at most 2 lines a second); lines are being dropped"])
        self.world.clock.advance(0.5)
        self.alice.dataReceived(b"5\r\n6\r\n")
        self.assertEqual([line[11:] for line in lines(self.bob_out)], ["alice: 5"])
        self.assertEqual(lines(self.alice_out), [])  # within the second: dropped quietly
        self.world.clock.advance(0.5)
        self.alice.dataReceived(b"7\r\n8\r\n9\r\n")
        self.assertEqual([line[11:] for line in lines(self.bob_out)], ["alice: 7"])
        self.assertEqual(len(lines(self.alice_out)), 1)  # a second later: told again
        self.assertFalse(self.alice_out.disconnecting)

    def test_quit_never_held_back(self) -> None:
        self.alice.dataReceived(b"1\r\n2\r\n3\r\n4\r\n/quit\r\n")
        self.assertEqual(lines(self.alice_out)[-1], "Goodbye!")

    def test_off(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0))
        alice, _ = world.login("alice")
        _, bob_out = world.login("bob")
        alice.dataReceived(b"m\r\n" * 500)
        self.assertEqual(len(lines(bob_out)), 500)


class SlowReaderTests(SynchronousTestCase):
    """A client that stops reading is cut off; others are not held up."""

    def test_backlog_bound(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0, sendq=10_000))
        alice, _ = world.login("alice")
        slow, slow_out = world.login("slow")
        fast, fast_out = world.login("fast")
        slow_out.producer.pauseProducing()  # its kernel buffer is full
        slow_out.clear()
        for _ in range(200):
            alice.dataReceived(b"x" * 80 + b"\r\n")
        self.assertTrue(slow_out.disconnected)  # abortConnection, not a polite close
        # what was written before the cut stays within the bound
        self.assertLessEqual(len(slow_out.value()), 10_000)
        self.assertEqual(len(lines(fast_out)), 200)  # others got everything
        slow.connectionLost(Failure(ConnectionError()))
        self.assertNotIn("slow", world.server.members)
        self.assertTrue(lines(fast_out)[-1].endswith("*** slow disconnected ***"))

    def test_resume_resets(self) -> None:
        world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0, sendq=10_000))
        alice, _ = world.login("alice")
        _, out = world.login("reader")
        for _ in range(3):
            out.producer.pauseProducing()
            for _ in range(50):
                alice.dataReceived(b"x" * 80 + b"\r\n")
            out.producer.resumeProducing()
        self.assertFalse(out.disconnected)
        self.assertEqual(len(lines(out)), 150)


class ProtocolTests(SynchronousTestCase):
    """Transport-level details."""

    def test_registers_separate_producer(self) -> None:
        protocol, transport = World().connect()
        self.assertIsInstance(protocol, ChatLineProtocol)
        self.assertIsNot(transport.producer, protocol)
        self.assertTrue(transport.streaming)


class LoggingTests(SynchronousTestCase):
    """Each connection is logged at login (or when it closes without one) and when it ends."""

    def setUp(self) -> None:
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.world = World()

    def messages(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.logged
                if e["log_namespace"].startswith("twisted_chat")]

    def test_login_and_quit(self) -> None:
        alice, _ = self.world.login("alice")
        alice.dataReceived(b"/quit bye\r\n")
        alice.connectionLost(Failure(ConnectionError()))
        self.assertEqual(self.messages(), [
            "alice logged in from 192.0.2.7:40000",
            "alice (192.0.2.7:40000) left: quit (bye)",
        ])

    def test_abrupt(self) -> None:
        alice, _ = self.world.login("alice")
        alice.connectionLost(Failure(ConnectionError()))
        self.assertEqual(self.messages()[-1], "alice (192.0.2.7:40000) left: disconnected")

    def test_never_logged_in(self) -> None:
        for data in (b"", b"x\r\n"):
            protocol, _ = self.world.connect()
            protocol.dataReceived(data)
            protocol.connectionLost(Failure(ConnectionError()))
        self.assertEqual(self.messages(), [
            "192.0.2.7:40000 closed the connection without logging in"] * 2)

    def test_user_text_is_not_format_syntax(self) -> None:
        """A name or reason with braces cannot break or inject into log formatting."""
        alice, _ = self.world.login("alice")
        alice.dataReceived(b"/quit {peer} {0} {name!r}\r\n")
        self.assertEqual(self.messages()[-1],
                         "alice (192.0.2.7:40000) left: quit ({peer} {0} {name!r})")


IAC, WILL, WONT, DO, DONT = b"\xff", b"\xfb", b"\xfc", b"\xfd", b"\xfe"
BINARY, ECHO, SGA, TM = b"\x00", b"\x01", b"\x03", b"\x06"
HIDE, SHOW = IAC + WILL + ECHO, IAC + WONT + ECHO


class TelnetTests(SynchronousTestCase):
    """Option negotiation with telnet clients, and nothing for the others."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0))

    def telnet(self) -> tuple[ChatLineProtocol, StringTransport]:
        """A client that answers the greeting's DO BINARY as inetutils telnet does."""
        protocol, transport = self.world.connect()
        self.assertEqual(transport.value(),
                         b"Welcome to twisted-chat." + IAC + DO + BINARY + b"\r\nPasscode:\r\n")
        transport.clear()
        protocol.dataReceived(IAC + WILL + BINARY)  # the answer is not answered
        self.assertEqual(transport.value(), HIDE)  # it speaks telnet: hide the passcode
        protocol.dataReceived(IAC + DO + ECHO)  # nor is this one
        self.assertEqual(transport.value(), HIDE)
        transport.clear()
        return protocol, transport

    def test_plain_client_gets_no_more_telnet(self) -> None:
        """nc or a script: offers only inside the greeting line; prompts stay exact."""
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"wrong\r\n")
        protocol.dataReceived(b"x\r\nalice\r\n")
        data = transport.value()
        self.assertEqual(data.count(b"\xff"), 1)
        self.assertIn(
            b"\r\nERROR wrong passcode\r\nPasscode:\r\nUsername:\r\nWelcome, alice!", data)
        self.assertNotIn("send", protocol.__dict__)  # after login: the class's own send

    def test_passcode_hidden(self) -> None:
        """WILL ECHO while the passcode is typed, WONT ECHO once its line arrived."""
        protocol, transport = self.telnet()
        protocol.dataReceived(b"wro")
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(b"ng\r\n")
        # WILL ECHO again waits for the answer to WONT ECHO (RFC 1143)
        self.assertEqual(transport.value(),
                         SHOW + b"ERROR wrong passcode\r\nPasscode:\r\n")
        transport.clear()
        protocol.dataReceived(IAC + DONT + ECHO)
        self.assertEqual(transport.value(), HIDE)
        protocol.dataReceived(IAC + DO + ECHO)  # the answer: not answered
        self.assertEqual(transport.value(), HIDE)
        transport.clear()
        protocol.dataReceived(b"x\r\n")
        self.assertEqual(transport.value(), SHOW + b"Username:\r\n")
        transport.clear()
        protocol.dataReceived(IAC + DONT + ECHO + b"alice\n")
        self.assertEqual(lines(transport)[0],
                         "Welcome, alice! You are in #lobby. Type /help for commands.")
        self.assertNotIn("send", protocol.__dict__)

    def test_late_answer_hides_pending_passcode(self) -> None:
        """A client whose answer comes after the prompt gets WILL ECHO then."""
        protocol, transport = self.world.connect()
        transport.clear()
        protocol.dataReceived(IAC + WONT + BINARY)  # a refusal: not answered either
        self.assertEqual(transport.value(), HIDE)

    def test_timing_mark_after_interrupt(self) -> None:
        """
        Ctrl-C: IAC IP then DO TIMING-MARK; telnet shows nothing until
        WILL TIMING-MARK, which it gets, every time, so it hears the room.
        """
        alice, alice_out = self.world.login("alice")
        bob, _ = self.world.login("bob")
        alice_out.clear()
        for command in (b"\xf4", b"\xf3", b"\xed"):  # IP, BRK, SUSP
            alice.dataReceived(IAC + command + IAC + DO + TM)
            self.assertEqual(alice_out.value(), IAC + WILL + TM)
            alice_out.clear()
            bob.dataReceived(b"still there?\r\n")
            self.assertTrue(lines(alice_out)[0].endswith("bob: still there?"))

    def test_split_sequences(self) -> None:
        """A request cut between reads is answered once, when whole."""
        alice, alice_out = self.world.login("alice")
        for byte in IAC + DO + TM + IAC + IAC + b"\r\n":
            alice.dataReceived(bytes([byte]))
        self.assertEqual(alice_out.value(), IAC + WILL + TM)

    def test_unknown_options_refused(self) -> None:
        """Every request gets an answer: unknown ones WONT/DONT; disabling ones nothing."""
        alice, alice_out = self.world.login("alice")
        alice.dataReceived(IAC + DO + b"\x18" + IAC + WILL + b"\x1f" + IAC + DO + SGA
                           + IAC + DO + ECHO + IAC + DONT + b"\x18" + IAC + WONT + b"\x1f"
                           + IAC + WILL + TM)
        self.assertEqual(alice_out.value(), IAC + WONT + b"\x18" + IAC + DONT + b"\x1f"
                         + IAC + WONT + SGA + IAC + WONT + ECHO + IAC + DONT + TM)
        alice_out.clear()
        alice.dataReceived(IAC + DO + SGA)  # asked again: answered again, same way
        self.assertEqual(alice_out.value(), IAC + WONT + SGA)

    def test_binary_both_ways_on_request(self) -> None:
        """DO BINARY is agreed to once; DONT BINARY turns it off, once."""
        alice, alice_out = self.world.login("alice")
        alice.dataReceived(IAC + DO + BINARY + IAC + DO + BINARY)
        self.assertEqual(alice_out.value(), IAC + WILL + BINARY)
        alice_out.clear()
        alice.dataReceived(IAC + DONT + BINARY + IAC + DONT + BINARY)
        self.assertEqual(alice_out.value(), IAC + WONT + BINARY)

    def test_refused_binary_asked_again_later(self) -> None:
        """The client refuses our DO BINARY, later offers it itself: agreed."""
        protocol, transport = self.world.connect()
        protocol.dataReceived(IAC + WONT + BINARY + b"x\r\nalice\r\n")
        transport.clear()
        protocol.dataReceived(IAC + WILL + BINARY)
        self.assertEqual(transport.value(), IAC + DO + BINARY)

    def test_literal_ff_in_binary_mode(self) -> None:
        """IAC IAC is one 0xFF byte: not UTF-8, so it becomes U+FFFD."""
        alice, _ = self.world.login("alice")
        _, bob_out = self.world.login("bob")
        alice.dataReceived(IAC + WILL + BINARY + b"caf\xff\xff\xc3\xa9\r\n")
        self.assertTrue(lines(bob_out)[0].endswith("alice: caf\ufffdé"))

    def test_utf8_without_binary(self) -> None:
        """
        A telnet that refused BINARY sends ă Ś 本 as IP/SUSP/BRK: they are
        mapped back, and every DO TIMING-MARK is answered.
        """
        alice, alice_out = self.world.login("alice")
        _, bob_out = self.world.login("bob")
        alice_out.clear()
        tm = IAC + DO + TM
        alice.dataReceived(b"\xc4" + IAC + b"\xf4" + tm + b" \xc5" + IAC + b"\xed" + tm)
        alice.dataReceived(b" \xe6" + IAC + b"\xf3")
        alice.dataReceived(tm + b"\xac\r\n")
        self.assertTrue(lines(bob_out)[0].endswith("alice: ă Ś 本"))
        self.assertEqual(alice_out.value(), (IAC + WILL + TM) * 3)

    def test_character_mode_line_ends(self) -> None:
        """CR NUL and a bare CR end a line; CR LF split between reads ends one, not two."""
        protocol, transport = self.telnet()
        protocol.dataReceived(b"x\r")
        protocol.dataReceived(b"\n")
        protocol.dataReceived(b"alice\r\x00")
        out = strip_telnet(transport.value()).decode().split("\r\n")
        transport.clear()
        self.assertEqual(out[:2], ["Username:",
                                   "Welcome, alice! You are in #lobby. Type /help for commands."])
        _, bob_out = self.world.login("bob")
        protocol.dataReceived(b"one\rtwo\r\x00three\r\n")
        self.assertEqual([line[11:] for line in lines(bob_out)],
                         ["alice: one", "alice: two", "alice: three"])
        self.assertEqual(lines(transport)[-1:], ["[%s] *** bob joined #lobby ***"
                                                 % clock_stamp(self.world.clock.seconds())])

    def test_long_line_still_refused(self) -> None:
        """The line limit counts bytes after telnet commands are removed."""
        alice, alice_out = self.world.login("alice")
        limit = self.world.config.max_line
        alice.dataReceived(IAC + b"\xf1" + b"y" * (limit + 1) + b"\r\x00")
        self.assertEqual(lines(alice_out), ["ERROR line too long (max %d bytes)" % limit])


class TLSHelloTests(SynchronousTestCase):
    """A TLS client at the plain port is told so, and is not a wrong passcode."""

    HELLO = bytes.fromhex("160301020001") + b"\x00" * 40 + b"\n" + b"\x00" * 40

    def test_told_and_closed(self) -> None:
        world = World()
        for data in (self.HELLO, b"\x16", b"\x16\x03"):
            protocol, transport = world.connect()
            transport.clear()
            protocol.dataReceived(data)
            protocol.dataReceived(b"more\r\n")
            self.assertEqual(lines(transport), [
                ("ERROR this is a plain-text port; connect without TLS, "
                 "or to the server's TLS port")])
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionError()))
        self.assertEqual(world.context.lockout.remaining(PEER.host), 0)
        # a person typing next from the same address is let in
        protocol, transport = world.connect()
        protocol.dataReceived(b"x\r\nalice\r\n")
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.",
                      lines(transport))

    def test_later_0x16_is_text(self) -> None:
        """Only a connection's first bytes are looked at."""
        protocol, transport = World().connect()
        protocol.dataReceived(b"x\r\n")
        protocol.dataReceived(b"\x16\x03\r\n")
        self.assertFalse(transport.disconnecting)


class FakeSocket:
    """Records C{setsockopt} calls."""

    def __init__(self, family: int = socket.AF_INET, refuse: int | None = None) -> None:
        self.family = family
        self.refuse = refuse
        self.options: dict[tuple[int, int], int] = {}

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option == self.refuse:
            raise OSError("not here")
        self.options[(level, option)] = value


class SocketTransport(StringTransport):
    """A StringTransport over a L{FakeSocket}, with TCP's switches."""

    def __init__(self, sock: FakeSocket) -> None:
        super().__init__(peerAddress=PEER)
        self.socket = sock
        self.keepalive = self.nodelay = False

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.keepalive = enabled

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.nodelay = enabled


class DeadPeerTests(SynchronousTestCase):
    """Keep-alive timers find a vanished peer in about two minutes."""

    def connect(self, sock: FakeSocket) -> SocketTransport:
        world = World()
        protocol = world.factory.buildProtocol(PEER)
        transport = SocketTransport(sock)
        protocol.makeConnection(transport)
        return transport

    def test_timers_set(self) -> None:
        transport = self.connect(FakeSocket())
        self.assertTrue(transport.keepalive)
        self.assertTrue(transport.nodelay)
        tcp = socket.IPPROTO_TCP
        expected = {(tcp, socket.TCP_KEEPIDLE): 60, (tcp, socket.TCP_KEEPINTVL): 10,
                    (tcp, socket.TCP_KEEPCNT): 6, (tcp, socket.TCP_USER_TIMEOUT): 120_000}
        self.assertEqual(transport.socket.options, expected)
        idle, interval, count = 60, 10, 6
        self.assertLessEqual(idle + interval * count, 130)  # "about two minutes"

    def test_missing_option_skipped(self) -> None:
        """A platform without an option, or refusing one, gets the others."""
        self.patch(socket, "TCP_USER_TIMEOUT", None)
        del socket.TCP_USER_TIMEOUT
        transport = self.connect(FakeSocket(refuse=socket.TCP_KEEPCNT))
        self.assertEqual(sorted(value for value in transport.socket.options.values()), [10, 60])

    def test_not_tcp(self) -> None:
        """A UNIX socket or a transport without a socket is left alone."""
        transport = self.connect(FakeSocket(family=socket.AF_UNIX))
        self.assertEqual(transport.socket.options, {})
        self.assertIn(b"Passcode:", World().connect()[1].value())

    @pytest.mark.e2e
    def test_real_socket(self) -> None:
        """The options exist and are accepted by this platform's TCP (where Linux)."""
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        from twisted_chat.frontends.base import detect_dead_peers

        class Transport:
            socket = client

            def setTcpKeepAlive(self, enabled: bool) -> None:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(enabled))

        detect_dead_peers(Transport())
        self.assertEqual(client.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            self.assertEqual(client.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), 60)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            self.assertEqual(client.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                             120_000)
