"""
Tests for L{twisted_chat.session}: the session's typed calls and the line
dialogue over them, through fakes (a recording front end, a L{World}
without sockets).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twisted_chat.commands import REGISTRY, Command, CommandRegistry, CommandSpec
from twisted_chat.commands.builtin import BUILTIN, no_args
from twisted_chat.commands.parse import SHORTCUT_HELP
from twisted_chat.domain.events import Error, Event, Help, Info, Prompt, Welcome
from twisted_chat.domain.server import LOBBY, Member
from twisted_chat.errors import (
    AlreadyLoggedIn,
    BadName,
    BadUsage,
    LockedOut,
    LoginClosed,
    NameTaken,
    TooManyAttempts,
    TooManyBadNames,
    WrongPasscode,
    numeric,
)
from twisted_chat.frontends.web.render import to_json
from twisted_chat.interfaces import IPasscode
from twisted_chat.session.dialogue import LineDialogue
from twisted_chat.session.session import MAX_BAD_NAMES, ChatSession, SessionContext

from .helpers import World, lines
from .test_chat import SlowDirectory


class FakeFront:
    """A front end that records what the session does to it, in order."""

    def __init__(self, host: str = "192.0.2.9") -> None:
        self.log: list[Any] = []  # events, and "paused" / "resumed" / "closed"
        self.host = host
        self.paused = False

    @property
    def events(self) -> list[Event]:
        return [e for e in self.log if isinstance(e, Event)]

    def take(self) -> list[Any]:
        log, self.log = self.log, []
        return log

    def send(self, event: Event) -> None:
        self.log.append(event)

    def close(self) -> None:
        self.log.append("closed")

    def pause_input(self) -> None:
        self.paused = True
        self.log.append("paused")

    def resume_input(self) -> None:
        self.paused = False
        self.log.append("resumed")

    def describe_peer(self) -> str:
        return self.host + ":4000"

    def peer_host(self) -> str:
        return self.host


def said(front: FakeFront) -> list[str]:
    """The texts of the messages (room and private) C{front} got."""
    return [e.entry.text if hasattr(e, "entry") else e.text for e in front.events
            if e.kind in ("message", "private")]


@implementer(ICredentialsChecker)
class CountingChecker:
    """The passcode C{x}, counting checks; C{later} makes each check wait for the test."""

    credentialInterfaces = (IPasscode,)

    def __init__(self, later: bool = False) -> None:
        self.checked = 0
        self.later = later
        self.pending: list[tuple[Deferred[Any], bool]] = []

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        self.checked += 1
        right = credentials.passcode == b"x"
        if self.later:
            d: Deferred[Any] = Deferred()
            self.pending.append((d, right))
            return d
        return succeed(b"anon") if right else fail(UnauthorizedLogin())

    def answer(self) -> None:
        d, right = self.pending.pop(0)
        if right:
            d.callback(b"anon")
        else:
            d.errback(UnauthorizedLogin())


class SessionCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.checker = CountingChecker()
        self.world = World(checker=self.checker)

    def session(self, front: FakeFront | None = None,
                context: SessionContext | None = None) -> tuple[ChatSession, FakeFront]:
        front = front or FakeFront()
        session = ChatSession(context or self.world.context, front)
        self.assertTrue(session.start())
        return session, front

    def logged_in(self, name: str, **kw: Any) -> tuple[ChatSession, FakeFront]:
        session, front = self.session(**kw)
        member = self.successResultOf(session.log_in(b"x", name))
        self.assertEqual(member.name, name)
        front.take()
        return session, front


class AuthenticateTests(SessionCase):
    """L{ChatSession.authenticate}."""

    def test_right(self) -> None:
        session, front = self.session()
        self.assertTrue(session.needs_passcode)
        self.assertIsNone(self.successResultOf(session.authenticate(b"x")))
        self.assertTrue(session.authenticated)
        self.assertEqual(front.take(), [])  # the session sends no prompt
        self.successResultOf(session.authenticate(b"ignored"))  # done already
        self.assertEqual(self.checker.checked, 1)

    def test_wrong(self) -> None:
        """Told with a code, failed with the field to ask again; counted once per connection."""
        session, front = self.session()
        error = self.failureResultOf(session.authenticate(b"nope"), WrongPasscode).value
        self.assertEqual((error.field, error.code, error.numeric),
                         ("passcode", "wrong_passcode", "464"))
        self.assertEqual(front.take(), [Error("wrong passcode", "wrong_passcode")])
        self.failureResultOf(session.authenticate(None), WrongPasscode)  # None: none given
        self.assertEqual(self.world.context.lockout.remaining(front.host), 0)
        self.assertEqual(len(self.world.context.lockout), 1)
        self.assertFalse(session.closed)
        self.failureResultOf(session.authenticate(b"again"), TooManyAttempts)
        self.assertEqual(front.take(), [Error("wrong passcode", "wrong_passcode"),
                                        Error("too many attempts", "too_many_attempts"),
                                        "closed"])
        self.assertTrue(session.closed)
        self.failureResultOf(session.authenticate(b"x"), LoginClosed)

    def test_locked_out(self) -> None:
        """An address locked out is refused at start, and at a passcode."""
        front = FakeFront("203.0.113.9")
        for _ in range(3):
            self.world.context.lockout.failed(front.host)
        session = ChatSession(self.world.context, front)
        self.assertFalse(session.start())
        [error, closed] = front.take()
        self.assertEqual(error.code, "locked_out")
        self.assertIn("too many wrong passcodes from your address", error.text)
        self.assertEqual(closed, "closed")
        # locked out between start and the passcode
        session, front = self.session(FakeFront("203.0.113.10"))
        for _ in range(3):
            self.world.context.lockout.failed(front.host)
        self.failureResultOf(session.authenticate(b"x"), LockedOut)
        self.assertEqual(front.take()[-1], "closed")
        self.assertEqual(self.checker.checked, 0)

    def test_open_server(self) -> None:
        world = World(passcode=None)
        session = ChatSession(world.context, FakeFront())
        self.assertTrue(session.start())
        self.assertFalse(session.needs_passcode)
        self.successResultOf(session.authenticate(None))

    def test_answer_later_holds_input(self) -> None:
        """While the checker thinks, input is held; the caller hears before it is released."""
        self.checker.later = True
        session, front = self.session()
        d = session.authenticate(b"nope")
        d.addErrback(lambda f: front.log.append(("caller", f.type)))
        self.assertEqual(front.take(), ["paused"])
        self.checker.answer()
        self.assertEqual(front.take(), [Error("wrong passcode", "wrong_passcode"),
                                        ("caller", WrongPasscode), "resumed"])
        d = session.authenticate(b"x")
        d.addCallback(lambda _: front.log.append("caller"))
        self.checker.answer()
        self.assertEqual(front.take(), ["paused", "caller", "resumed"])

    def test_closed_while_checking(self) -> None:
        """The connection goes while the checker thinks: the caller hears at once."""
        self.checker.later = True
        session, front = self.session()
        d = session.authenticate(b"x")
        session.connection_lost()
        self.failureResultOf(d, LoginClosed)
        self.checker.answer()  # comes late: nothing happens
        self.assertEqual(front.take(), ["paused"])


class ClaimTests(SessionCase):
    """L{ChatSession.claim}."""

    def test_claimed(self) -> None:
        """Welcome, then the lobby's join (time zone, users, history)."""
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        member = self.successResultOf(session.claim("  alice "))
        self.assertEqual(member.name, "alice")
        self.assertTrue(session.logged_in)
        events = front.take()
        self.assertEqual(events[0], Welcome("alice", LOBBY))
        self.assertEqual([e.kind for e in events[1:]], ["info", "users", "history"])
        self.assertEqual(self.world.server.members["alice"].room.name, LOBBY)

    def test_no_room(self) -> None:
        """room=None (IRC): welcomed, in no room."""
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        member = self.successResultOf(session.claim("alice", room=None))
        self.assertIsNone(member.room)
        self.assertEqual(front.take(), [Welcome("alice", LOBBY)])

    def test_bad_and_taken(self) -> None:
        self.logged_in("bob")
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        error = self.failureResultOf(session.claim("no spaces"), BadName).value
        self.assertEqual((error.field, error.numeric), ("name", "432"))
        error = self.failureResultOf(session.claim("BOB"), NameTaken).value
        self.assertEqual((error.field, error.numeric), ("name", "433"))
        [bad, taken] = front.take()
        self.assertEqual(bad.code, "bad_name")
        self.assertEqual(taken, Error("the name BOB is taken; pick another", "name_taken"))

    def test_too_many_bad_names(self) -> None:
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        for _ in range(MAX_BAD_NAMES - 1):
            self.failureResultOf(session.claim("bad name"), BadName)
        self.failureResultOf(session.claim("bad name"), TooManyBadNames)
        self.assertEqual(front.take()[-2:], [Error("too many bad names", "too_many_bad_names"),
                                             "closed"])

    def test_before_authenticate(self) -> None:
        session, _ = self.session()
        failure = self.failureResultOf(session.claim("alice"))
        self.assertIsNone(session.member)
        self.assertEqual(failure.value.field, "")

    def test_claim_answers_later(self) -> None:
        """A directory whose claim answers later: input is held, then released after the caller."""
        directory = SlowDirectory(self.world.server.rooms, self.world.server.members, LOBBY)
        directory.pending = []
        self.world.server.directory = directory
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        d = session.claim("alice")
        d.addCallback(lambda member: front.log.append(("caller", member.name)))
        self.assertEqual(front.take(), ["paused"])
        self.assertFalse(session.logged_in)
        directory.answer()
        log = front.take()
        self.assertEqual(log[0], Welcome("alice", LOBBY))
        self.assertEqual(log[-2:], [("caller", "alice"), "resumed"])
        # refused later: told, the caller hears, then input is released
        session, front = self.session()
        self.successResultOf(session.authenticate(b"x"))
        d = session.claim("ALICE")
        d.addErrback(lambda f: front.log.append(("caller", f.type)))
        directory.answer()
        self.assertEqual(front.take(), [
            "paused", Error("the name ALICE is taken; pick another", "name_taken"),
            ("caller", NameTaken), "resumed"])


class LogInTests(SessionCase):
    """L{ChatSession.log_in}: the browser's and IRC's one call."""

    def test_log_in(self) -> None:
        session, front = self.session()
        called: list[bool] = []
        member = self.successResultOf(
            session.log_in(b"x", "alice", authenticated=lambda: called.append(True)))
        self.assertEqual(member.name, "alice")
        self.assertEqual(called, [True])
        self.assertEqual(front.events[0], Welcome("alice", LOBBY))

    def test_authenticate_skipped_once_done(self) -> None:
        """After a taken name a second log_in only claims: its passcode is not checked."""
        self.logged_in("bob")
        checked = self.checker.checked
        session, front = self.session()
        called: list[bool] = []
        self.failureResultOf(session.log_in(b"x", "bob", authenticated=lambda: called.append(1)),
                             NameTaken)
        self.successResultOf(session.log_in(b"wrong, unused", "alice",
                                            authenticated=lambda: called.append(2)))
        self.assertEqual(self.checker.checked, checked + 1)
        self.assertEqual(called, [1])

    def test_wrong_passcode_does_not_claim(self) -> None:
        session, front = self.session()
        error = self.failureResultOf(session.log_in(b"nope", "alice"), WrongPasscode).value
        self.assertEqual(error.field, "passcode")
        self.assertNotIn("alice", self.world.server.members)

    def test_after_login(self) -> None:
        session, front = self.logged_in("alice")
        self.failureResultOf(session.log_in(b"x", "mallory"), AlreadyLoggedIn)
        self.assertEqual(front.take(), [Error("you are logged in already", "already_logged_in")])


class CommandTests(SessionCase):
    """L{ChatSession.command} and L{ChatSession.text} dispatch through the registry."""

    def test_say_is_literal(self) -> None:
        """A say Command is never parsed: /join and :) are said as they are."""
        alice, _ = self.logged_in("alice")
        _, bob = self.logged_in("bob")
        for text in ("/join x", ":)", "\\o/"):
            alice.command(Command("say", text))
        self.assertEqual(said(bob), ["/join x", ":)", "\\o/"])
        self.assertEqual(self.world.server.members["alice"].room.name, LOBBY)

    def test_command_text_cleaned(self) -> None:
        alice, _ = self.logged_in("alice")
        _, bob = self.logged_in("bob")
        alice.command(Command("say", "\x1b[2Jred\x07"))
        alice.command(Command("say", "   "))  # nothing: no line
        alice.command(Command("msg", "bob", "\x1b[31mpsst"))
        self.assertEqual(said(bob), ["red", "psst"])

    def test_irc_calls(self) -> None:
        """What IRC will send: JOIN adds a room, PRIVMSG/ACTION to a room, PART leaves one."""
        alice, front = self.logged_in("alice")
        _, bob = self.logged_in("bob")
        alice.command(Command("join", "#dev", number=1))
        member = self.world.server.members["alice"]
        self.assertEqual([room.name for room in member.rooms], [LOBBY, "dev"])
        bob.take()
        alice.command(Command("say", "in the lobby", "#lobby"))
        alice.command(Command("me", "waves", "lobby"))
        alice.command(Command("say", "to dev", "dev"))
        self.assertEqual(said(bob), ["in the lobby", "waves"])
        alice.command(Command("part", "#lobby", "bye"))
        self.assertEqual([room.name for room in member.rooms], ["dev"])
        self.assertEqual(to_json(bob.events[-1])["text"], "alice left #lobby (bye)")
        alice.command(Command("part", "#dev"))
        self.assertEqual(list(member.rooms), [])
        front.take()
        alice.command(Command("say", "nowhere", "#lobby"))
        alice.command(Command("say", "bad", "#a b"))
        self.assertEqual([(e.code, numeric(e.code)) for e in front.take()],
                         [("not_in_room", "442"), ("bad_room", "403")])

    def test_text(self) -> None:
        alice, front = self.logged_in("alice")
        alice.text("/join #dev")
        self.assertEqual(self.world.server.members["alice"].room.name, "dev")
        alice.text(":)")
        self.assertEqual(front.events[-1], Info("You said: [feeling happy]"))

    def test_error_codes(self) -> None:
        alice, front = self.logged_in("alice")
        alice.text("/dance")
        alice.text("/join")
        alice.text("/msg ghost hi")
        alice.text("/join #bad.room")
        alice.command(Command("msg", "#nowhere", "hi"))
        self.assertEqual([(e.code, to_json(e).get("code")) for e in front.take()], [
            ("unknown_command",) * 2, ("bad_usage",) * 2, ("no_such_target",) * 2,
            ("bad_room",) * 2, ("no_such_target",) * 2])

    def test_before_login_and_after_close(self) -> None:
        session, front = self.session()
        session.text("hello")
        session.command(Command("say", "hello"))
        self.assertEqual(front.take(), [Error("log in first", "not_logged_in")] * 2)
        session.close()
        front.take()
        session.text("hello")
        self.assertEqual(front.take(), [])

    def test_quit_never_held_back(self) -> None:
        world = World(config=dataclasses.replace(self.world.config, rate=1, burst=1))
        session = ChatSession(world.context, FakeFront())
        session.start()
        self.successResultOf(session.log_in(b"x", "alice"))
        session.text("one")
        session.text("two")
        self.assertEqual(session.dropped, 1)
        session.command(Command("quit", "bye"))
        self.assertTrue(session.closed)

    def test_a_new_command_is_one_declaration(self) -> None:
        """A spec in a registry is parsed, dispatched, listed in /help."""
        ran: list[tuple[str, Command]] = []

        def wave(session: ChatSession, command: Command) -> None:
            ran.append((session.member.name, command))

        def parse_wave(rest: str, typed: str) -> Command:
            if not rest:
                raise BadUsage("usage: %s <who>" % typed)
            return Command("wave", rest)

        registry = CommandRegistry(
            BUILTIN + (CommandSpec("wave", ("hi",), "/wave <who>", "wave at someone",
                                   parse_wave, wave),),
            SHORTCUT_HELP)
        context = dataclasses.replace(self.world.context, commands=registry)
        alice, front = self.logged_in("alice", context=context)
        alice.text("/wave bob")
        alice.text("/HI all")
        alice.command(Command("wave", "carol"))
        alice.text("/wave")
        self.assertEqual(ran, [("alice", Command("wave", "bob")), ("alice", Command("wave", "all")),
                               ("alice", Command("wave", "carol"))])
        self.assertEqual(front.take(), [Error("usage: /wave <who>", "bad_usage")])
        alice.text("/help")
        [help_event] = front.take()
        self.assertIsInstance(help_event, Help)
        self.assertIn(("/wave <who>", "wave at someone"), help_event.commands)
        self.assertEqual(list(help_event.commands),
                         list(REGISTRY.help_lines()[:-3]) + [("/wave <who>", "wave at someone")]
                         + list(SHORTCUT_HELP))
        # the built-in registry knows nothing of it
        bob, bob_front = self.logged_in("bob")
        bob.text("/wave bob")
        self.assertEqual([e.code for e in bob_front.take()], ["unknown_command"])

    def test_who_is_checked(self) -> None:
        """A command for operators only is refused (nobody is an operator yet)."""
        ran: list[Command] = []
        registry = CommandRegistry(BUILTIN + (CommandSpec(
            "smite", (), "/smite", "for operators", no_args("smite"), lambda s, c: ran.append(c),
            who="operator"),))
        context = dataclasses.replace(self.world.context, commands=registry)
        alice, front = self.logged_in("alice", context=context)
        alice.text("/smite")
        self.assertEqual(ran, [])
        [error] = front.take()
        self.assertEqual((error.code, error.text),
                         ("not_permitted", "/smite is not for you (operator only)"))


class DialogueTests(SynchronousTestCase):
    """L{LineDialogue}: the telnet prompts over the typed calls."""

    def setUp(self) -> None:
        self.world = World()

    def dialogue(self, world: World | None = None) -> tuple[LineDialogue, FakeFront]:
        world = world or self.world
        front = FakeFront()
        dialogue = LineDialogue(ChatSession(world.context, front), front, world.context.listening)
        dialogue.start()
        return dialogue, front

    def test_prompts(self) -> None:
        dialogue, front = self.dialogue()
        self.assertEqual(front.take(), [Prompt("passcode")])
        dialogue.line_received("nope")
        self.assertEqual(front.take(), [Error("wrong passcode", "wrong_passcode"),
                                        Prompt("passcode")])
        dialogue.line_received("x")
        self.assertEqual(front.take(), [Prompt("username")])
        dialogue.line_received("bad name")
        self.assertEqual([type(e) for e in front.take()], [Error, Prompt])
        self.assertFalse(dialogue.done)
        dialogue.line_received("alice")
        self.assertEqual(front.take()[0], Welcome("alice", LOBBY))
        self.assertTrue(dialogue.done)
        _, bob = self.world.login("bob")
        dialogue.line_received("/me waves")
        self.assertEqual(lines(bob)[-1][11:], "* alice waves")

    def test_open_server(self) -> None:
        dialogue, front = self.dialogue(World(passcode=None))
        self.assertEqual(front.take(), [Prompt("username")])
        dialogue.line_received("alice")
        self.assertEqual(front.take()[0], Welcome("alice", LOBBY))

    def test_http_first_line(self) -> None:
        """An HTTP request as the first line: told, closed, not a wrong passcode."""
        dialogue, front = self.dialogue()
        front.take()
        dialogue.line_received("GET / HTTP/1.1")
        dialogue.line_received("x")
        [error, closed] = front.take()
        self.assertEqual(error.code, "wrong_protocol")
        self.assertIn("not HTTP", error.text)
        self.assertEqual(closed, "closed")
        self.assertEqual(len(self.world.context.lockout), 0)

    def test_http_later_is_a_passcode(self) -> None:
        dialogue, front = self.dialogue()
        front.take()
        dialogue.line_received("nope")
        dialogue.line_received("GET / HTTP/1.1")
        self.assertEqual([e.text for e in front.take() if isinstance(e, Error)],
                         ["wrong passcode", "wrong passcode"])

    def test_locked_out_sends_no_prompt(self) -> None:
        for _ in range(3):
            self.world.context.lockout.failed(FakeFront().host)
        dialogue, front = self.dialogue()
        self.assertEqual([e.kind if isinstance(e, Event) else e for e in front.take()],
                         ["error", "closed"])
        dialogue.line_received("x")
        self.assertEqual(front.take(), [])


class MemberTypeTests(SynchronousTestCase):
    def test_member(self) -> None:
        """claim fires with the domain's member (the visitor)."""
        world = World()
        session = ChatSession(world.context, FakeFront())
        session.start()
        self.assertIsInstance(self.successResultOf(session.log_in(b"x", "alice")), Member)
        self.assertIs(session.member, world.server.members["alice"])
