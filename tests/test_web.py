"""
Tests for the browser front end: the JSON WebSocket protocol driven through a
small fake WebSocket transport, and the web site (page, Origin check, real
upgrade) through L{Site} and L{StringTransport}.  No sockets, no sleeps.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
import time
from typing import Any

import pytest
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http
from twisted.web.server import Site
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.events import (
    Request as WSRequest,
)
from wsproto.utilities import LocalProtocolError
from zope.interface import implementer

from twisted_chat.commands import Command
from twisted_chat.config import ChatConfig
from twisted_chat.domain import events
from twisted_chat.frontends.web.site import (
    ACCESS_LOG_LINES,
    ACCESS_LOG_WINDOW,
    CONTROL_BURST,
    HEADER_TIMEOUT,
    PING_INTERVAL,
    Ack,
    ChatWebFactory,
    ChatWebSocket,
    build_site,
    frame_limit,
    normalize_origin,
)
from twisted_chat.tap import Options, build, config_from_options
from twisted_chat.text import utc_offset

from .helpers import ROOT, LineClient, ServerProcess, World, lines

try:
    from twisted.internet.testing import EventLoggingObserver
except ImportError:  # pragma: no cover
    from twisted.test.proto_helpers import EventLoggingObserver


class FakeWebSocketTransport:
    """
    What Twisted hands a WebSocket protocol: it records text messages, pings
    and closes, and (like wsproto) refuses to send once closed.
    """

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.pings = 0
        self.close_code: int | None = None
        self.transport = StringTransport()  # the TCP connection underneath

    def sendTextMessage(self, text: str) -> None:  # noqa: N802
        if self.close_code is not None:
            raise LocalProtocolError("closed")
        text.encode("utf-8")  # a lone surrogate would fail here, as in wsproto
        self.sent.append(json.loads(text))

    def sendBytesMessage(self, data: bytes) -> None:  # noqa: N802
        raise AssertionError("the server never sends binary messages")

    def loseConnection(self, code: int = 1000) -> None:  # noqa: N802
        if self.close_code is not None:
            raise LocalProtocolError("closed twice")
        self.close_code = code

    def ping(self, payload: bytes = b"") -> None:
        self.pings += 1

    @property
    def aborted(self) -> bool:
        return self.transport.disconnected

    def take(self) -> list[dict[str, Any]]:
        """The messages sent so far, then forget them."""
        sent, self.sent = self.sent, []
        return sent


class Browser:
    """One browser connection to a L{World}, through a fake transport."""

    count = 0

    def __init__(self, factory: ChatWebFactory) -> None:
        Browser.count += 1
        self.host = "198.51.100.%d" % (Browser.count % 250 + 1)
        self.protocol = ChatWebSocket(factory, "%s:50000" % self.host, self.host)
        self.transport = FakeWebSocketTransport()
        self.protocol.negotiationStarted(self.transport)
        self.protocol.negotiationFinished()

    def send(self, message: Any) -> list[dict[str, Any]]:
        """Send C{message} (JSON-encoded unless a str); return what came back."""
        text = message if isinstance(message, str) else json.dumps(message)
        self.protocol.textMessageReceived(text)
        return self.transport.take()

    def login(self, name: str, passcode: str = "x") -> list[dict[str, Any]]:
        """Log in; return what came back."""
        return self.send({"type": "login", "passcode": passcode, "name": name})

    def lose(self) -> None:
        """The TCP connection went away."""
        self.protocol.connectionLost(Failure(ConnectionDone()))


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    """The C{type} of each message."""
    return [message["type"] for message in messages]


class WebCase(SynchronousTestCase):
    """A world with a telnet factory and a web factory sharing it."""

    config: ChatConfig | None = None

    def setUp(self) -> None:
        self.world = World(config=self.config)
        self.factory = ChatWebFactory(self.world.context)

    def browser(self) -> Browser:
        return Browser(self.factory)

    def logged_in(self, name: str) -> Browser:
        browser = self.browser()
        sent = browser.login(name)
        self.assertIn("welcome", kinds(sent))
        return browser


class WebLoginTests(WebCase):
    """The login message answers the session's prompts."""

    def test_login(self) -> None:
        """A login with the right passcode and a good name gets the lobby."""
        browser = self.browser()
        self.assertEqual(browser.transport.take(), [{"type": "prompt", "field": "passcode"}])
        sent = browser.login("alice")
        self.assertEqual(kinds(sent), ["prompt", "welcome", "info", "users", "history"])
        self.assertEqual(sent[0], {"type": "prompt", "field": "username"})
        self.assertEqual(sent[1], {"type": "welcome", "name": "alice", "room": "lobby",
                                   "max_line": 1024})
        self.assertEqual(sent[2]["utc_offset"], utc_offset(self.world.clock.seconds()))
        self.assertEqual(sent[3]["users"], [{"name": "alice", "room": "lobby"}])
        self.assertEqual(self.world.server.members["alice"].participant, browser.protocol)

    def test_wrong_passcode_is_not_resent(self) -> None:
        """A wrong passcode gets an error and a prompt; it counts once; a new login works."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        browser = self.browser()
        browser.transport.take()
        sent = browser.login("alice", passcode="nope")
        self.assertEqual(sent, [
            {"type": "error", "text": "wrong passcode", "code": "wrong_passcode"},
            {"type": "prompt", "field": "passcode"},
        ])
        sent = browser.login("alice")
        self.assertIn({"type": "welcome", "name": "alice", "room": "lobby", "max_line": 1024}, sent)
        warnings = [e for e in logged if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["peer"], browser.protocol.describe_peer())
        self.assertFalse(any(v == "nope" for e in logged for v in e.values()))

    def test_too_many_attempts(self) -> None:
        """The third wrong passcode gets an error and a normal close."""
        browser = self.browser()
        browser.login("alice", passcode="a")
        browser.login("alice", passcode="b")
        self.assertIsNone(browser.transport.close_code)
        sent = browser.login("alice", passcode="c")
        self.assertEqual(sent, [{"type": "error", "text": "too many attempts",
                                 "code": "too_many_attempts"}])
        self.assertEqual(browser.transport.close_code, 1000)

    def test_bad_and_taken_names(self) -> None:
        """A bad or taken name gets an error and the prompt; the next login only sends a name."""
        self.world.login("bob")
        browser = self.browser()
        browser.transport.take()
        sent = browser.login("no spaces")
        self.assertEqual(kinds(sent), ["prompt", "error", "prompt"])
        self.assertEqual(sent[0], {"type": "prompt", "field": "username"})
        self.assertEqual(sent[2], {"type": "prompt", "field": "username"})
        sent = browser.login("BOB", passcode="ignored now")
        self.assertEqual(sent[0], {"type": "error", "text": "the name BOB is taken; pick another",
                                   "code": "name_taken"})
        self.assertEqual(sent[1], {"type": "prompt", "field": "username"})
        sent = browser.login("alice", passcode="ignored now")
        self.assertEqual(sent[0]["type"], "welcome")

    def test_open_server(self) -> None:
        """Without a passcode the first prompt asks for the name; the login needs no passcode."""
        self.world = World(passcode=None)
        self.factory = ChatWebFactory(self.world.context)
        browser = self.browser()
        self.assertEqual(browser.transport.take(), [{"type": "prompt", "field": "username"}])
        sent = browser.send({"type": "login", "name": "carol"})
        self.assertEqual(sent[0], {"type": "welcome", "name": "carol", "room": "lobby",
                                   "max_line": 1024})

    def test_checker_answers_later(self) -> None:
        """While the passcode is being checked the name waits; then it is sent once."""
        pending: list[Deferred[Any]] = []

        @implementer(ICredentialsChecker)
        class Slow:
            from twisted_chat.interfaces import IPasscode
            credentialInterfaces = (IPasscode,)

            def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
                d: Deferred[Any] = Deferred()
                pending.append(d)
                return d

        self.world = World(checker=Slow())
        self.factory = ChatWebFactory(self.world.context)
        browser = self.browser()
        browser.transport.take()
        self.assertEqual(browser.login("alice", passcode="wrong"), [])
        pending.pop().errback(UnauthorizedLogin())
        self.assertEqual(kinds(browser.transport.take()), ["error", "prompt"])
        self.assertEqual(pending, [])  # the wrong passcode was not tried again
        self.assertEqual(browser.login("alice"), [])
        pending.pop().callback(object())
        sent = browser.transport.take()
        self.assertEqual(kinds(sent), ["prompt", "welcome", "info", "users", "history"])

    def test_login_while_checking_waits(self) -> None:
        """A second login sent while the first is being checked is held, then tried."""
        pending: list[Deferred[Any]] = []

        @implementer(ICredentialsChecker)
        class Slow:
            from twisted_chat.interfaces import IPasscode
            credentialInterfaces = (IPasscode,)

            def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
                d: Deferred[Any] = Deferred()
                pending.append(d)
                return d

        self.world = World(checker=Slow())
        self.factory = ChatWebFactory(self.world.context)
        browser = self.browser()
        browser.transport.take()
        self.assertEqual(browser.login("alice", passcode="wrong"), [])
        self.assertEqual(browser.login("alice"), [])
        self.assertEqual(len(pending), 1)
        pending.pop().errback(UnauthorizedLogin())
        self.assertEqual(kinds(browser.transport.take()), ["error", "prompt"])
        self.assertEqual(len(pending), 1)  # the held login, checked now
        pending.pop().callback(object())
        self.assertEqual(kinds(browser.transport.take()),
                         ["prompt", "welcome", "info", "users", "history"])

    def test_chat_before_login(self) -> None:
        """Say and command before login get an error; the login still works."""
        browser = self.browser()
        browser.transport.take()
        for kind in ("say", "command"):
            sent = browser.send({"type": kind, "text": "/join #x"})
            self.assertEqual(kinds(sent), ["error"])
            self.assertIn("log in first", sent[0]["text"])
        self.assertEqual(browser.login("alice")[1]["type"], "welcome")

    def test_login_twice(self) -> None:
        """A second login is an error and changes nothing."""
        browser = self.logged_in("alice")
        sent = browser.login("mallory")
        self.assertEqual(sent, [{"type": "error", "text": "you are logged in already",
                                 "code": "already_logged_in"}])
        self.assertIn("alice", self.world.server.members)
        self.assertNotIn("mallory", self.world.server.members)

    def test_login_timeout(self) -> None:
        """A browser that does not log in within 30 s is told and closed."""
        browser = self.browser()
        browser.transport.take()
        self.world.clock.advance(30)
        self.assertEqual(browser.transport.take(),
                         [{"type": "error", "text": "login timed out", "code": "timed_out"}])
        self.assertEqual(browser.transport.close_code, 1000)


class WebChatTests(WebCase):
    """Browser and telnet users in the same rooms."""

    def test_both_ways(self) -> None:
        """A telnet user and a browser user hear each other."""
        bob, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        self.assertEqual(lines(bob_out)[0][11:], "*** alice joined #lobby ***")
        self.assertEqual(alice.send({"type": "say", "text": "hello bob"}), [])
        self.assertEqual(lines(bob_out)[0][11:], "alice: hello bob")
        bob.dataReceived(b"hi alice\r\n")
        self.assertEqual(alice.transport.take(), [{
            "type": "message", "room": "lobby", "from": "bob", "text": "hi alice",
            "time": self.world.clock.seconds(), "action": False,
        }])

    def test_say_is_literal(self) -> None:
        """A say message is text even when it looks like a command or a shortcut."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        for text in ("/join #dev", ":)", "\\o/", "  indented"):
            self.assertEqual(alice.send({"type": "say", "text": text}), [])
            self.assertEqual(lines(bob_out)[0][11:], "alice: " + text)
        self.assertEqual(self.world.server.members["alice"].room.name, "lobby")

    def test_say_is_a_say_command(self) -> None:
        """
        The browser hands the session typed calls: a say is a say Command
        with the text as sent (never a line to parse), a command is a typed
        line, and a login is log_in.
        """
        browser = self.browser()
        calls: list[tuple[str, Any]] = []

        class Spy:
            """The session, recording the calls the browser makes."""

            def __init__(self, session: Any) -> None:
                self._session = session

            def __getattr__(self, name: str) -> Any:
                real = getattr(self._session, name)
                if name not in ("text", "command", "log_in"):
                    return real

                def spy(*args: Any, **kw: Any) -> Any:
                    calls.append((name, args[:2] if name == "log_in" else args[0]))
                    return real(*args, **kw)

                return spy

        browser.protocol._session = Spy(browser.protocol._session)
        browser.login("alice")
        for text in ("/join x", ":)", "\\o/"):
            browser.send({"type": "say", "text": text})
        browser.send({"type": "command", "text": "/rooms"})
        self.assertEqual(calls, [
            ("log_in", (b"x", "alice")),
            ("command", Command("say", "/join x")),
            ("command", Command("say", ":)")),
            ("command", Command("say", "\\o/")),
            ("text", "/rooms"),
        ])

    def test_command(self) -> None:
        """A command message is parsed as typed: /join moves, the old room sees it."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        sent = alice.send({"type": "command", "text": "/join #dev"})
        self.assertEqual(kinds(sent), ["joined", "users", "history"])
        self.assertEqual(sent[0], {"type": "joined", "room": "dev"})
        self.assertEqual(lines(bob_out)[0][11:], "*** alice left #lobby ***")
        sent = alice.send({"type": "command", "text": ":)"})
        self.assertEqual(sent, [{"type": "info", "text": "You said: [feeling happy]"}])
        sent = alice.send({"type": "command", "text": "/nope"})
        self.assertEqual(sent, [{"type": "error", "text": "unknown command /nope (try /help)",
                                 "code": "unknown_command"}])

    def test_notices_name_the_user(self) -> None:
        """Join, leave and disconnect notices carry who and what, for the user list."""
        bob, _ = self.world.login("bob")
        alice = self.logged_in("alice")
        bob.dataReceived(b"/join #dev\r\n")
        bob.dataReceived(b"/leave\r\n")
        bob.connectionLost(Failure(ConnectionDone()))
        notices = [(m["user"], m["change"], m["text"]) for m in alice.transport.take()
                   if m["type"] == "notice"]
        self.assertEqual(notices, [
            ("bob", "left", "bob left #lobby"),
            ("bob", "joined", "bob joined #lobby"),
            ("bob", "offline", "bob disconnected"),
        ])

    def test_private_both_ways(self) -> None:
        """/msg works between a browser and telnet, with the sender's confirmation."""
        bob, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        sent = alice.send({"type": "command", "text": "/msg bob psst"})
        self.assertEqual(kinds(sent), ["private"])
        self.assertEqual((sent[0]["from"], sent[0]["to"]), ("alice", "bob"))
        self.assertEqual(lines(bob_out)[0][11:], "[PRIVATE] alice: psst")
        bob.dataReceived(b"/msg alice back\r\n")
        received = alice.transport.take()
        self.assertEqual([(m["from"], m["to"], m["text"]) for m in received],
                         [("bob", "alice", "back")])

    def test_history_on_join(self) -> None:
        """A browser that logs in sees the lobby's recent messages."""
        bob, _ = self.world.login("bob")
        bob.dataReceived(b"one\r\ntwo\r\n")
        alice = self.browser()
        sent = alice.login("alice")
        history = sent[-1]
        self.assertEqual(history["type"], "history")
        self.assertTrue(history["replay"])
        self.assertEqual([m["text"] for m in history["messages"]], ["one", "two"])

    def test_rate_limit(self) -> None:
        """The session's flood limit holds for browsers too."""
        self.world = World(config=ChatConfig(passcode=b"x", rate=1, burst=2))
        self.factory = ChatWebFactory(self.world.context)
        alice = self.logged_in("alice")
        self.assertEqual(alice.send({"type": "say", "text": "1"}), [])
        self.assertEqual(alice.send({"type": "say", "text": "2"}), [])
        sent = alice.send({"type": "say", "text": "3"})
        self.assertEqual(kinds(sent), ["error"])
        self.assertIn("slow down", sent[0]["text"])

    def test_quit(self) -> None:
        """/quit says goodbye, closes, and the room hears why."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        sent = alice.send({"type": "command", "text": "/quit lunch"})
        self.assertEqual(sent, [{"type": "goodbye"}])
        self.assertEqual(alice.transport.close_code, 1000)
        self.assertEqual(lines(bob_out)[0][11:], "*** alice quit (lunch) ***")
        alice.lose()
        self.assertNotIn("alice", self.world.server.members)

    def test_connection_lost(self) -> None:
        """A dropped browser frees its name at once; the room sees it go."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        alice.lose()
        self.assertEqual(lines(bob_out)[0][11:], "*** alice disconnected ***")
        self.logged_in("alice")

    def test_closed_by_browser_first(self) -> None:
        """Events for a browser whose close frame already came are dropped, not raised."""
        bob, _ = self.world.login("bob")
        alice = self.logged_in("alice")
        carol = self.logged_in("carol")
        alice.transport.close_code = 1000  # wsproto refuses to send from now on
        bob.dataReceived(b"anyone?\r\n")
        self.assertEqual(kinds(carol.transport.take()), ["message"])
        alice.lose()

    def test_shutdown(self) -> None:
        """A stopping server tells browsers and closes them."""
        alice = self.logged_in("alice")
        self.world.server.shutdown()
        self.assertEqual(alice.transport.take(),
                         [{"type": "shutdown", "text": "Server shutting down"}])
        self.assertEqual(alice.transport.close_code, 1000)


class WebMessageTests(WebCase):
    """Bad input gets one error message and loses nothing."""

    def setUp(self) -> None:
        super().setUp()
        self.bob, self.bob_out = self.world.login("bob")
        self.alice = self.logged_in("alice")
        lines(self.bob_out)

    def assert_error(self, message: Any, contains: str, code: str = "bad_message") -> None:
        sent = self.alice.send(message)
        self.assertEqual(kinds(sent), ["error"], sent)
        self.assertEqual(set(sent[0]), {"type", "text", "code"})
        self.assertEqual(sent[0]["code"], code)
        self.assertIn(contains, sent[0]["text"])
        self.assertIsNone(self.alice.transport.close_code)

    def assert_still_chatting(self) -> None:
        self.alice.send({"type": "say", "text": "still here"})
        self.assertEqual(lines(self.bob_out)[-1][11:], "alice: still here")

    def test_bad_json(self) -> None:
        for text in ("nope", "{", "", '{"type": "say", "text": "x"} extra'):
            self.assert_error(text, "not JSON")
        self.assert_error("[" * 1100 + "]" * 1100, "not JSON")  # deeper than Python recurses
        self.assert_still_chatting()

    def test_not_an_object(self) -> None:
        for text in ("[1, 2]", '"say"', "5", "null", "true"):
            self.assert_error(text, "JSON object")
        self.assert_still_chatting()

    def test_unknown_or_missing_type(self) -> None:
        self.assert_error({"type": "dance"}, "unknown message type 'dance'")
        self.assert_error({"text": "hi"}, 'needs a "type"')
        self.assert_error({"type": 5, "text": "hi"}, 'needs a "type"')
        self.assert_error({"type": "x" * 1000}, 'needs a "type"')  # not echoed at length
        self.assert_still_chatting()

    def test_missing_or_wrong_fields(self) -> None:
        self.assert_error({"type": "say"}, "needs a 'text' string field")
        self.assert_error({"type": "say", "text": 5}, "needs a 'text' string field")
        self.assert_error({"type": "command", "text": ["/rooms"]}, "needs a 'text' string")
        self.assert_error({"type": "login", "passcode": 1, "name": "x"}, "'passcode' string")
        self.assert_still_chatting()

    def test_line_breaks_refused(self) -> None:
        """Text with a line break is refused whole: nothing of it is delivered."""
        self.assert_error({"type": "say", "text": "one\ntwo"}, "line breaks")
        self.assert_error({"type": "command", "text": "/join a\r\n/join b"}, "line breaks")
        self.assertEqual(lines(self.bob_out), [])
        self.assert_still_chatting()

    def test_binary_frame(self) -> None:
        self.alice.protocol.bytesMessageReceived(b"\x00\x01")
        sent = self.alice.transport.take()
        self.assertEqual(sent, [{"type": "error", "code": "bad_message",
                                 "text": "binary messages are not accepted; send JSON text"}])
        self.assert_still_chatting()

    def test_long_lines(self) -> None:
        """Text over --max-line bytes is refused like a long telnet line; the limit is kept."""
        limit = self.world.config.max_line
        self.assert_error({"type": "say", "text": "x" * (limit + 1)},
                          "line too long (max %d bytes)" % limit, "line_too_long")
        self.assert_error({"type": "say", "text": "é" * (limit // 2 + 1)}, "line too long",
                          "line_too_long")
        self.assertEqual(lines(self.bob_out), [])
        self.assertEqual(self.alice.send({"type": "say", "text": "y" * limit}), [])
        self.assertEqual(len(lines(self.bob_out)[0]), 11 + len("alice: ") + limit)

    def test_long_frame(self) -> None:
        """A frame too long to hold a line is refused without being parsed."""
        limit = self.world.config.max_line
        frame = '{"type": "say", "text": "%s"}' % ("z" * frame_limit(limit))
        self.assert_error(frame, "line too long (max %d bytes)" % limit, "line_too_long")
        self.assertEqual(lines(self.bob_out), [])
        self.assert_still_chatting()

    def test_lone_surrogate(self) -> None:
        """JSON may carry a lone surrogate; it arrives as U+FFFD, breaking nobody."""
        carol = self.logged_in("carol")
        self.alice.send('{"type": "say", "text": "a\\ud800b"}')
        self.assertEqual(lines(self.bob_out)[-1][11:], "alice: a\ufffdb")
        self.assertEqual(carol.transport.take()[-1]["text"], "a\ufffdb")

    def test_control_characters_cleaned(self) -> None:
        """Escape sequences from a browser never reach a terminal."""
        self.alice.send({"type": "say", "text": "\x1b[2Jboo\x07"})
        self.assertEqual(lines(self.bob_out)[-1][11:], "alice: boo")


class HeartbeatTests(WebCase):
    """One shared ping sweep drops browsers that stopped answering."""

    def test_dead_connection_dropped(self) -> None:
        """A browser that does not answer a ping is dropped at the next sweep; the room sees it."""
        _, bob_out = self.world.login("bob")
        alive = self.logged_in("alice")
        dead = self.logged_in("ghost")
        lines(bob_out)
        self.world.clock.advance(PING_INTERVAL)
        self.assertEqual((alive.transport.pings, dead.transport.pings), (1, 1))
        alive.protocol.pongReceived(b"")
        self.world.clock.advance(PING_INTERVAL)
        self.assertTrue(dead.transport.aborted)
        self.assertFalse(alive.transport.aborted)
        self.assertEqual(alive.transport.pings, 2)
        dead.lose()  # what the abort leads to
        self.assertEqual(lines(bob_out)[-1][11:], "*** ghost disconnected ***")
        self.assertNotIn("ghost", self.world.server.members)

    def test_any_message_counts_as_alive(self) -> None:
        alice = self.logged_in("alice")
        self.world.clock.advance(PING_INTERVAL)
        alice.send({"type": "command", "text": "/rooms"})
        self.world.clock.advance(PING_INTERVAL)
        self.assertFalse(alice.transport.aborted)

    def test_one_timer_for_all(self) -> None:
        """Fifty browsers add no timers beyond one; with none left, none runs."""
        first = self.logged_in("user0")
        timers = len(self.world.clock.getDelayedCalls())
        browsers = [first] + [self.logged_in("user%d" % n) for n in range(1, 50)]
        self.assertEqual(len(self.world.clock.getDelayedCalls()), timers)
        self.assertEqual(len(self.factory.heartbeat), 50)
        for browser in browsers:
            browser.lose()
        self.assertEqual(len(self.factory.heartbeat), 0)
        self.assertEqual(self.world.clock.getDelayedCalls(), [])


# -- through the web site -----------------------------------------------------

HOST = "chat.example:8081"
OWN = "http://192.0.2.1:8081"  # the address SiteClient's connections reach
CLIENT = IPv4Address("TCP", "203.0.113.5", 51000)


class SiteClient:
    """An HTTP client talking to a L{Site} over a L{StringTransport}."""

    def __init__(self, site: Any, client: IPv4Address = CLIENT) -> None:
        self.channel = site.buildProtocol(client)
        self.transport = StringTransport(
            peerAddress=client, hostAddress=IPv4Address("TCP", "192.0.2.1", 8081)
        )
        self.channel.makeConnection(self.transport)

    def get(self, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        """GET C{path}: status, headers (lower-cased) and body."""
        self.channel.dataReceived(
            ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, HOST)).encode()
        )
        response = self.transport.value()
        self.transport.clear()
        head, _, body = response.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, body


class SiteSocket:
    """A WebSocket client (wsproto) talking to a L{Site} over a L{StringTransport}."""

    def __init__(self, site: Any, origin: str | None, host: str = HOST) -> None:
        self.http = SiteClient(site)
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"origin", origin.encode())] if origin is not None else []
        self.http.channel.dataReceived(
            self.ws.send(WSRequest(host=host, target="/ws", extra_headers=headers))
        )
        self.handshake = self._events()
        self._pending = [e for e in self.handshake if isinstance(e, TextMessage)]

    def _events(self) -> list[Any]:
        data = self.http.transport.value()
        self.http.transport.clear()
        self.ws.receive_data(data)
        return list(self.ws.events())

    @property
    def accepted(self) -> bool:
        return any(isinstance(e, AcceptConnection) for e in self.handshake)

    def status(self) -> int | None:
        for event in self.handshake:
            if isinstance(event, RejectConnection):
                return event.status_code
        return None

    def send(self, message: Any) -> list[dict[str, Any]]:
        self.http.channel.dataReceived(self.ws.send(TextMessage(json.dumps(message))))
        return self.messages()

    def messages(self) -> list[dict[str, Any]]:
        events, self._pending = self._pending + self._events(), []
        return [json.loads(e.data) for e in events if isinstance(e, TextMessage)]


class SiteTests(SynchronousTestCase):
    """The page, its headers, the Origin check and a real upgrade."""

    def setUp(self) -> None:
        self.world = World()
        self.site = build_site(self.world.context, ("https://chat.example.com",))

    def test_page(self) -> None:
        """The page has the accessible names, no inline script, and strict headers."""
        status, headers, body = SiteClient(self.site).get("/")
        self.assertEqual(status, 200)
        self.assertEqual(headers[b"content-type"], b"text/html; charset=utf-8")
        self.assertEqual(headers[b"x-content-type-options"], b"nosniff")
        csp = headers[b"content-security-policy"].decode()
        self.assertIn("default-src 'self'", csp)
        self.assertIn("connect-src 'self' ws: wss:", csp)
        self.assertNotIn("unsafe-inline", csp)
        page = body.decode()
        for name in ("Passcode", "Name", "Message"):
            self.assertRegex(page, r"<label for=\"\w+\"[^>]*>%s</label>" % name)
        for region in ("Messages", "Rooms", "Users"):
            self.assertRegex(page, r'<section [^>]*aria-label="%s"' % region)
        self.assertNotRegex(page, r"<script(?![^>]*\bsrc=)")  # every script is a file
        self.assertNotRegex(page, r"\son[a-z]+=")  # no inline event handlers
        self.assertNotRegex(page, r'(src|href)="(https?:)?//')  # nothing from the internet

    def test_assets(self) -> None:
        """The script and style are served with their types; the script never uses innerHTML."""
        client = SiteClient(self.site)
        status, headers, script = client.get("/app.js")
        self.assertEqual((status, headers[b"content-type"]),
                         (200, b"text/javascript; charset=utf-8"))
        self.assertNotIn(b"innerHTML", script)
        self.assertNotIn(b"insertAdjacentHTML", script)
        self.assertNotIn(b"eval(", script)
        status, headers, _ = client.get("/style.css")
        self.assertEqual((status, headers[b"content-type"]), (200, b"text/css; charset=utf-8"))

    def test_not_found(self) -> None:
        status, headers, body = SiteClient(self.site).get("/static/../web.py")
        self.assertEqual((status, body), (404, b"not found\n"))

    def test_own_origin(self) -> None:
        """The listening address's own origin may open the WebSocket, and the session starts."""
        socket = SiteSocket(self.site, OWN)
        self.assertTrue(socket.accepted)
        self.assertEqual(socket.messages(), [{"type": "prompt", "field": "passcode"}])

    def test_allowed_origins(self) -> None:
        """--web-origin origins, default ports and no Origin at all are let through."""
        self.assertTrue(SiteSocket(self.site, "https://chat.example.com").accepted)
        self.assertTrue(SiteSocket(self.site, "HTTPS://Chat.Example.com:443").accepted)
        for local in ("http://localhost:8081", "http://127.0.0.1:8081", "http://[::1]:8081",
                      "HTTP://LocalHost:8081/"):
            self.assertTrue(SiteSocket(self.site, local, host="localhost:8081").accepted, local)
        self.assertTrue(SiteSocket(self.site, None).accepted)

    def test_foreign_origin_refused(self) -> None:
        """Any other origin gets 403 before the upgrade, and is logged."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        for origin in ("http://evil.example", "null", "http://chat.example:8082",
                       "https://chat.example:8081", "http://chat.example.com",
                       "http://192.0.2.1:8082", "http://localhost:8082", "https://192.0.2.1:8081"):
            socket = SiteSocket(self.site, origin)
            self.assertEqual(socket.status(), 403, origin)
            self.assertFalse(socket.accepted)
            body = b"".join(e.data for e in socket.handshake if isinstance(e, RejectData))
            self.assertIn(b"--web-origin", body)
        self.assertEqual(len(self.site.resource.children[b"ws"].factory.heartbeat), 0)
        refusals = [e for e in logged if "origin" in e.get("log_format", "")]
        self.assertEqual(len(refusals), 8)

    def test_dns_rebinding_refused(self) -> None:
        """
        A name rebound to the server's address is not the page's own origin,
        though the Host header carries it: only the listening address counts.
        """
        for name in ("rebind.example:8081", "chat.example:8081"):
            socket = SiteSocket(self.site, "http://" + name, host=name)
            self.assertEqual(socket.status(), 403, name)
        self.assertTrue(SiteSocket(self.site, OWN, host="rebind.example:8081").accepted)

    def test_chat_through_the_site(self) -> None:
        """A browser logs in through a real upgrade and talks with a telnet user."""
        _, bob_out = self.world.login("bob")
        socket = SiteSocket(self.site, OWN)
        socket.messages()
        sent = socket.send({"type": "login", "passcode": "x", "name": "alice"})
        self.assertEqual(kinds(sent), ["prompt", "welcome", "info", "users", "history"])
        socket.send({"type": "say", "text": "hi from the web"})
        self.assertEqual(lines(bob_out)[-1][11:], "alice: hi from the web")
        socket.http.channel.dataReceived(socket.ws.send(BytesMessage(b"\x00")))
        self.assertEqual(kinds(socket.messages()), ["error"])
        socket.http.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(lines(bob_out)[-1][11:], "*** alice disconnected ***")
        self.assertEqual(self.world.context.limits.total, 1)  # bob's

    def test_slow_reader_dropped(self) -> None:
        """A browser whose socket stopped draining is aborted past --sendq; others go on."""
        self.world = World(config=ChatConfig(passcode=b"x", sendq=4096, rate=0))
        self.site = build_site(self.world.context)
        bob, bob_out = self.world.login("bob")
        socket = SiteSocket(self.site, None)
        socket.send({"type": "login", "passcode": "x", "name": "alice"})
        socket.http.transport.producer.pauseProducing()  # the TCP send buffer is full
        for n in range(100):
            bob.dataReceived(b"message %d is long enough to fill a buffer quickly\r\n" % n)
            if socket.http.transport.disconnected:
                break
        self.assertTrue(socket.http.transport.disconnected)
        self.assertLess(n, 99)
        socket.http.channel.connectionLost(Failure(ConnectionDone()))
        self.assertIn("*** alice disconnected ***", lines(bob_out)[-1])


class OriginTests(SynchronousTestCase):
    """normalize_origin."""

    def test_normal_forms(self) -> None:
        self.assertEqual(normalize_origin("HTTP://Example.COM"), "http://example.com")
        self.assertEqual(normalize_origin("https://example.com:443"), "https://example.com")
        self.assertEqual(normalize_origin("http://example.com:8081/"), "http://example.com:8081")
        self.assertEqual(normalize_origin("http://[::1]:8081"), "http://[::1]:8081")

    def test_not_origins(self) -> None:
        for text in ("null", "", "example.com", "ftp://example.com", "http://",
                     "http://example.com/path", "http://example.com:99999"):
            self.assertIsNone(normalize_origin(text), text)


class ProtocolDocumentTests(SynchronousTestCase):
    """docs/PROTOCOL.md documents every JSON message with one example each."""

    def test_every_message_has_an_example(self) -> None:
        with open(os.path.join(ROOT, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("## The WebSocket protocol"):]
        examples = [json.loads(block) for block in
                    re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)]
        documented = [example["type"] for example in examples]
        kinds = {cls.kind for _, cls in inspect.getmembers(events, inspect.isclass)
                 if issubclass(cls, events.Event) and cls.kind != "event"}
        kinds.add(Ack.kind)  # the browser's own event, made in web.py
        self.assertEqual(sorted(documented),
                         sorted(kinds | {"login", "say", "command"}))


class WebOptionsTests(SynchronousTestCase):
    """C{--web} and C{--web-origin}, and the listener C{build} adds."""

    def parse(self, *args: str) -> ChatConfig:
        options = Options()
        options.parseOptions(list(args))
        return config_from_options(options)

    def test_options(self) -> None:
        self.assertIsNone(self.parse().web)
        config = self.parse("--web", "8081", "--web-origin", "HTTPS://Chat.Example.com/",
                            "--web-origin", "http://localhost:3000")
        self.assertEqual(config.web, "tcp:8081")
        self.assertEqual(config.web_origins, ("https://chat.example.com", "http://localhost:3000"))
        self.assertEqual(self.parse("--web", "ssl:8443:privateKey=k.pem").web,
                         "ssl:8443:privateKey=k.pem")

    def test_bad_origin(self) -> None:
        for origin in ("chat.example.com", "*", "https://chat.example.com/path"):
            self.assertRaises(usage.UsageError, self.parse, "--web-origin", origin)

    def test_listener(self) -> None:
        """--web adds a listener for the site next to the line protocol's."""
        reactor = MemoryReactorClock()
        service = build(self.parse("--port", "1234", "--web", "tcp:1235:interface=127.0.0.1",
                                   "--db", ":memory:", "--passcode", "x"), reactor)
        service.privilegedStartService()
        service.startService()
        self.assertEqual([port[0] for port in reactor.tcpServers], [1234, 1235])
        site = reactor.tcpServers[1][1]
        self.assertIsInstance(site, Site)
        status, _, body = SiteClient(site).get("/")
        self.assertEqual(status, 200)
        self.assertIn(b'aria-label="Messages"', body)
        self.successResultOf(service.stopService())


def _wire(socket: SiteSocket) -> Any:
    """The WebSocket wire protocol under C{socket}'s connection (after the upgrade)."""
    return socket.http.channel._channel.dataReceived.__self__


def _close_code(socket: SiteSocket) -> int | None:
    socket.ws.receive_data(socket.http.transport.value())
    socket.http.transport.clear()
    for event in socket.ws.events():
        if isinstance(event, CloseConnection):
            return event.code
    return None


class WebSocketBoundTests(SynchronousTestCase):
    """Each message, ping and pong is bounded as it arrives (issue 11, items 1, 5, 8)."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", sendq=4096))
        self.site = build_site(self.world.context)
        self.limit = frame_limit(self.world.config.max_line)

    def test_fragments_past_the_limit_closed(self) -> None:
        """
        A message sent as fragments, with pings between them, is closed 1009
        once it passes the frame limit, before Twisted holds more of it.
        """
        socket = SiteSocket(self.site, None)
        wire = _wire(socket)
        chunk = "x" * 1000
        sent = 0
        for n in range(1000):  # 1 MB in all, unless closed first
            if socket.http.transport.disconnecting:
                break
            socket.http.channel.dataReceived(
                socket.ws.send(TextMessage(chunk, message_finished=False))
                + socket.ws.send(Ping(b"%d" % n))
            )
            sent += len(chunk)
            self.assertLessEqual(len(wire._textBuffer.data), self.limit)
            self.world.clock.advance(1)  # within the ping allowance
        self.assertTrue(socket.http.transport.disconnecting)
        self.assertLessEqual(sent, self.limit + len(chunk))
        self.assertEqual(wire._textBuffer.data, "")
        self.assertEqual(_close_code(socket), 1009)

    def test_one_huge_frame_closed(self) -> None:
        """A single frame announcing 1 GiB is closed 1009 after about the limit, unparsed."""
        socket = SiteSocket(self.site, None)
        socket.messages()
        wire = _wire(socket)
        # FIN + text, masked, 64-bit length, a zero mask (the payload is plain)
        header = b"\x81\xff" + (1 << 30).to_bytes(8, "big") + b"\0\0\0\0"
        socket.http.channel.dataReceived(header)
        sent = 0
        for _ in range(100):  # 1.6 MB at most
            if socket.http.transport.disconnecting:
                break
            socket.http.channel.dataReceived(b"{" * 16384)
            sent += 16384
        self.assertTrue(socket.http.transport.disconnecting)
        self.assertLessEqual(sent, self.limit + 16384)
        self.assertEqual(wire._textBuffer.data, "")
        self.assertEqual(_close_code(socket), 1009)
        socket.http.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.world.context.limits.total, 0)

    def test_messages_up_to_the_limit_pass(self) -> None:
        """Fragments adding up to a message within the limit are delivered as one."""
        socket = SiteSocket(self.site, None)
        socket.messages()
        text = json.dumps({"type": "login", "passcode": "x", "name": "al" + "i" * 10})
        parts = [text[:5], text[5:20], text[20:]]
        for n, part in enumerate(parts):
            socket.http.channel.dataReceived(
                socket.ws.send(TextMessage(part, message_finished=n == len(parts) - 1))
            )
        self.assertIn("welcome", kinds(socket.messages()))

    def test_ping_flood_closed(self) -> None:
        """Pings past the control-frame allowance close the socket (1008) with a reason."""
        socket = SiteSocket(self.site, None)
        socket.messages()
        socket.http.channel.dataReceived(b"".join(socket.ws.send(Ping(b"p")) for _ in range(200)))
        socket.ws.receive_data(socket.http.transport.value())
        events = list(socket.ws.events())
        pongs = [e for e in events if isinstance(e, Pong)]
        self.assertEqual(len(pongs), CONTROL_BURST)
        texts = [json.loads(e.data) for e in events if isinstance(e, TextMessage)]
        self.assertEqual(texts[-1], {"type": "error", "text": "too many pings; closing",
                                     "code": "flood"})
        self.assertEqual([e.code for e in events if isinstance(e, CloseConnection)], [1008])
        self.assertTrue(socket.http.transport.disconnecting)

    def test_pongs_of_a_stalled_socket_counted(self) -> None:
        """
        A socket that pings but never reads stops being read once its output
        stalls, and the pongs already owed count toward --sendq (4096 here).
        """
        socket = SiteSocket(self.site, None)
        socket.messages()
        transport = socket.http.transport
        transport.producer.pauseProducing()  # the TCP send buffer is full
        self.assertEqual(transport.producerState, "paused")  # we stopped reading
        before = len(transport.value())
        for n in range(100):  # 100 pings of 100 bytes, two a second (the allowance)
            if transport.disconnected:
                break
            socket.http.channel.dataReceived(socket.ws.send(Ping(b"%03d" % n + b"x" * 97)))
            self.world.clock.advance(0.5)
        self.assertTrue(transport.disconnected)
        self.assertLessEqual(len(transport.value()) - before, 4096)
        self.assertLess(n, 99)

    def test_resumed_socket_read_again(self) -> None:
        """Once the output drains, reading resumes and pongs are free again."""
        socket = SiteSocket(self.site, None)
        socket.messages()
        transport = socket.http.transport
        transport.producer.pauseProducing()
        transport.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        for _n in range(10):
            socket.http.channel.dataReceived(socket.ws.send(Ping(b"x" * 100)))
            self.world.clock.advance(1)
        self.assertFalse(transport.disconnected)


class HTTPBoundTests(SynchronousTestCase):
    """Every HTTP connection is counted and bounded (issue 11, items 3, 4, 7)."""

    def setUp(self) -> None:
        self.world = World()
        self.site = build_site(self.world.context)

    def test_request_body_refused_unread(self) -> None:
        """A request with a body (a few MB) gets 413 and is closed; nothing is stored."""
        lengths = []
        content_file = http._getContentFile
        self.patch(http, "_getContentFile", lambda n: lengths.append(n) or content_file(n))
        for head in (b"POST / HTTP/1.1\r\nContent-Length: 4000000\r\n",
                     b"PUT /ws HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"):
            client = SiteClient(self.site)
            body = b"x" * 4_000_000
            if b"chunked" in head:
                body = b"3D0900\r\n" + body + b"\r\n0\r\n\r\n"
            client.channel.dataReceived(head + b"Host: %s\r\n\r\n" % HOST.encode() + body)
            response = client.transport.value()
            self.assertTrue(response.startswith(b"HTTP/1.1 413 "), response[:100])
            self.assertLess(len(response), 500)
            self.assertTrue(client.transport.disconnecting)
            self.assertEqual(client.channel._channel._dataBuffer, [])
        self.assertEqual(lengths, [])  # no request got a content file (a temp file past 100 kB)
        status, _, _ = SiteClient(self.site).get("/")  # no body: served as before
        self.assertEqual((status, lengths), (200, [0]))

    def test_connections_counted_with_telnet(self) -> None:
        """--max-per-ip holds across telnet and web; an upgraded WebSocket counts once."""
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", max_per_ip=3))
        self.site = build_site(self.world.context)
        limits = self.world.context.limits
        host = CLIENT.host
        telnet = self.world.factory.buildProtocol(CLIENT)
        telnet.makeConnection(StringTransport(peerAddress=CLIENT))
        page = SiteClient(self.site)
        socket = SiteSocket(self.site, None)
        self.assertTrue(socket.accepted)
        self.assertEqual(limits.count(host), 3)
        refused = SiteClient(self.site)
        self.assertEqual(refused.transport.value(),
                         b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain;"
                         b" charset=utf-8\r\ncontent-length: 51\r\nconnection: close\r\n\r\n"
                         b"too many connections from your address (at most 3)\n")
        self.assertTrue(refused.transport.disconnecting)
        socket.http.channel.connectionLost(Failure(ConnectionDone()))
        page.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(limits.count(host), 1)  # telnet's
        telnet.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(limits.total, 0)

    def test_slowloris_bounded(self) -> None:
        """
        2,000 half-sent requests from one address hold at most --max-per-ip
        (16) connections, and those for at most HEADER_TIMEOUT seconds, though
        a byte arrives every second.
        """
        limits = self.world.context.limits
        clients = [SiteClient(self.site) for _ in range(2000)]
        held = [c for c in clients if not c.transport.disconnecting]
        self.assertEqual(len(held), self.world.config.max_per_ip)
        self.assertEqual(limits.count(CLIENT.host), 16)
        for client in held:
            client.channel.dataReceived(b"GET / HTTP/1.1\r\n")
        for second in range(30):
            self.world.clock.advance(1)
            for client in held:
                if not client.transport.disconnected:
                    client.channel.dataReceived(b"X-%d: y\r\n" % second)
            if all(c.transport.disconnected for c in held):
                break
        self.assertLessEqual(second + 1, HEADER_TIMEOUT + 1)
        for client in held:
            self.assertTrue(client.transport.disconnected)
            client.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(limits.total, 0)

    def test_keep_alive_requests_each_get_the_deadline(self) -> None:
        """Requests on one connection each have HEADER_TIMEOUT from the last response."""
        client = SiteClient(self.site)
        for _ in range(3):
            self.world.clock.advance(HEADER_TIMEOUT - 1)
            status, _, _ = client.get("/")
            self.assertEqual(status, 200)
        self.assertFalse(client.transport.disconnected)
        self.world.clock.advance(HEADER_TIMEOUT + 1)
        self.assertTrue(client.transport.disconnected)

    def test_pipelined_upgrade_keeps_no_deadline(self) -> None:
        """A WebSocket upgrade pipelined after a page load is not cut at HEADER_TIMEOUT."""
        client = SiteClient(self.site)
        ws = WSConnection(ConnectionType.CLIENT)
        client.channel.dataReceived(
            ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % HOST).encode()
            + ws.send(WSRequest(host=HOST, target="/ws"))
        )
        self.assertIn(b"101 Switching Protocols", client.transport.value())
        self.world.clock.advance(HEADER_TIMEOUT + 5)  # (the login timeout is 30 s)
        self.assertFalse(client.transport.disconnecting)

    def test_access_log_bounded(self) -> None:
        """1,000 page loads log ACCESS_LOG_LINES lines, then one summary a minute."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.site.startFactory()
        self.addCleanup(self.site.stopFactory)
        client = SiteClient(self.site)
        for _ in range(1000):
            client.get("/")
        access = [e for e in logged if e.get("log_namespace", "").endswith("ChatSite")]
        self.assertEqual(len(access), ACCESS_LOG_LINES)
        self.assertIn('"GET / HTTP/1.1" 200', access[0]["line"])
        self.world.clock.advance(ACCESS_LOG_WINDOW)
        access = [e for e in logged if e.get("log_namespace", "").endswith("ChatSite")]
        self.assertEqual(len(access), ACCESS_LOG_LINES + 1)
        self.assertEqual((access[-1]["count"], access[-1]["hosts"]), (1000 - ACCESS_LOG_LINES, 1))


def _recv_to_close(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything C{sock} receives until the server closes it (bounded in time)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server never closed; got %r" % data[:200])


@pytest.mark.e2e
class WebEndToEndTests(SynchronousTestCase):
    """The web port's bounds over real loopback sockets, against the real twistd."""

    def setUp(self) -> None:
        self.server = ServerProcess(self, "--web", "tcp:0:interface=127.0.0.1",
                                    "--max-per-ip", "4", "--db", ":memory:")
        self.sockets: list[socket.socket] = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.web_port), timeout=10)
        self.sockets.append(sock)
        return sock

    def test_half_sent_requests_limited(self) -> None:
        """40 half-sent requests hold 4 connections; the rest get 503, and telnet is refused."""
        held = []
        for _ in range(40):
            sock = self.connect()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        refused = 0
        for sock in held:
            sock.settimeout(0.2)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            self.assertTrue(data.startswith(b"HTTP/1.1 503 "), data)
            refused += 1
        self.assertEqual(refused, 36)
        telnet = LineClient(self.server.port)
        self.assertIn("too many connections", " ".join(telnet.read_to_close()))

    def test_body_refused_before_it_is_read(self) -> None:
        """A POST announcing 1 GiB gets 413 and is closed after its headers alone."""
        sock = self.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        response = _recv_to_close(sock)
        self.assertTrue(response.startswith(b"HTTP/1.1 413 "), response)

    def test_huge_message_closed_1009(self) -> None:
        """Fragments of one message past the frame limit close the WebSocket with 1009."""
        sock = self.connect()
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(WSRequest(host="127.0.0.1", target="/ws")))
        head = b""
        for _ in range(100):  # the 101 response
            head += sock.recv(4096)
            if b"\r\n\r\n" in head:
                break
        ws.receive_data(head)
        self.assertTrue(any(isinstance(e, AcceptConnection) for e in ws.events()))
        sent = 0
        try:
            for _ in range(200):  # 3.2 MB at most
                sock.sendall(ws.send(TextMessage("x" * 16384, message_finished=False)))
                sent += 16384
        except (BrokenPipeError, ConnectionResetError):
            pass
        ws.receive_data(_recv_to_close(sock))
        codes = [e.code for e in ws.events() if isinstance(e, CloseConnection)]
        self.assertEqual(codes, [1009])
        self.assertLess(sent, 3_000_000)  # the server stopped reading long before
