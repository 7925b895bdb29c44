"""
Accounts (SPEC 7): the store, the account checker and realm with a fake
hasher, the telnet login dialogue with C{Password:}, C{/register},
C{/password}, C{--guests no}, C{--registration closed} and the limits.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3

from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.auth.cred import AccountChecker, AccountThrottled, ChatRealm, Visitor
from twisted_chat.auth.hashing import Argon2Hasher
from twisted_chat.client.config import UsageError, parse_args
from twisted_chat.client.protocol import ClientError
from twisted_chat.config import ChatConfig
from twisted_chat.domain.server import ChatServer
from twisted_chat.errors import PasswordRequired
from twisted_chat.frontends.line.protocol import ChatLineFactory, ChatLineProtocol
from twisted_chat.frontends.web.site import ChatWebFactory
from twisted_chat.interfaces import IVisitor
from twisted_chat.limits import RecentCount
from twisted_chat.storage.accounts import (
    AccountExists,
    MemoryAccounts,
    NoSuchAccount,
    SQLiteAccounts,
)
from twisted_chat.storage.history import MemoryHistory, SQLiteHistory

# test_client imports urwid, which runs a subprocess at import: here, at collection
from .helpers import FakeParticipant, World, lines, temp_dir
from .test_client import GREETING, WELCOME, FakeUI, connect, sent
from .test_web import Browser


class FakeHasher:
    """Not a hash: C{fake<version>$password}, answered at once; counts its calls."""

    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.calls: list[str] = []

    def hash(self, password: str) -> Deferred[str]:
        self.calls.append("hash")
        return succeed("fake%d$%s" % (self.version, password))

    def verify(self, hash: str, password: str) -> Deferred[bool]:
        self.calls.append("verify")
        return succeed(hash.split("$", 1)[1] == password)

    def dummy_verify(self, password: str) -> Deferred[bool]:
        self.calls.append("dummy")
        return succeed(False)

    def needs_rehash(self, hash: str) -> bool:
        return not hash.startswith("fake%d$" % self.version)


class AccountWorld(World):
    """A L{World} whose portal also checks accounts (in memory, a fake hasher)."""

    def __init__(self, passcode: bytes | None = None, **settings: object) -> None:
        config = ChatConfig(passcode=passcode, db=":memory:", **settings)  # type: ignore[arg-type]
        super().__init__(passcode=passcode, config=config)
        self.accounts = MemoryAccounts()
        self.hasher = FakeHasher()
        self.throttle = RecentCount(self.clock, 3, 60.0)
        self.realm = ChatRealm(self.server, config.operators)
        self.portal.realm = self.realm
        self.portal.registerChecker(AccountChecker(self.accounts, self.hasher, self.throttle))
        self.context = dataclasses.replace(
            self.context, accounts=self.accounts, hasher=self.hasher,
            registrations=RecentCount(self.clock, 3, 3600.0))
        self.deadlines = self.context.deadlines
        self.factory = ChatLineFactory(self.context)

    def add(self, name: str, password: str, operator: bool = False) -> None:
        self.accounts.add(name, "fake1$" + password, operator)


class StoreTests(SynchronousTestCase):
    """Both stores: case-insensitive names, no clear text, errors for missing ones."""

    def check_store(self, store: MemoryAccounts | SQLiteAccounts) -> None:
        store.add("Alice", "h1")
        self.assertRaises(AccountExists, store.add, "alice", "h2")
        account = store.get("ALICE")
        assert account is not None
        self.assertEqual((account.name, account.hash, account.operator), ("Alice", "h1", False))
        store.set_hash("alice", "h3")
        store.set_operator("alice", True)
        account = store.get("alice")
        assert account is not None
        self.assertEqual((account.hash, account.operator), ("h3", True))
        self.assertNotIn("h3", repr(account))
        self.assertRaises(NoSuchAccount, store.set_hash, "bob", "x")
        self.assertRaises(NoSuchAccount, store.delete, "bob")
        store.add("bob", "h4")
        self.assertEqual([a.name for a in store.all()], ["Alice", "bob"])
        store.delete("BOB")
        self.assertIsNone(store.get("bob"))

    def test_memory(self) -> None:
        self.check_store(MemoryAccounts())

    def test_sqlite(self) -> None:
        path = os.path.join(temp_dir(self), "chat.db")
        store = SQLiteAccounts(path)
        self.addCleanup(store.close)
        self.check_store(store)
        other = SQLiteAccounts(path)  # another process's view: read through
        self.addCleanup(other.close)
        store.set_hash("alice", "h5")
        self.assertEqual(other.get("alice").hash, "h5")  # type: ignore[union-attr]

    def test_migrates_a_history_database(self) -> None:
        """A database of today's history schema gains the accounts table; history still opens."""
        path = os.path.join(temp_dir(self), "chat.db")
        history = SQLiteHistory(path, Clock(), connect=False)
        history.check()
        store = SQLiteAccounts(path)
        store.add("alice", "h")
        store.close()
        history = SQLiteHistory(path, Clock(), connect=False)
        history.check()  # the history's own schema version is unchanged
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self.assertIn("accounts", tables)
        self.assertIn("messages", tables)


class CheckerTests(SynchronousTestCase):
    """AccountChecker and the realm's avatar, with a fake hasher."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = MemoryAccounts()
        self.hasher = FakeHasher()
        self.throttle = RecentCount(self.clock, 3, 60.0)
        self.checker = AccountChecker(self.store, self.hasher, self.throttle)
        self.server = ChatServer(MemoryHistory(), self.clock)
        self.portal = Portal(ChatRealm(self.server, ["carol"]), [self.checker])
        self.store.add("Alice", "fake1$correct horse")

    def login(self, name: str, password: str) -> Deferred[object]:
        return self.portal.login(UsernamePassword(name.encode(), password.encode()),
                                 FakeParticipant(), IVisitor)

    def test_right_password(self) -> None:
        _, avatar, logout = self.successResultOf(self.login("alice", "correct horse"))
        self.assertIsInstance(avatar, Visitor)
        self.assertEqual(avatar.account.name, "Alice")
        self.assertFalse(avatar.operator)

    def test_wrong_password(self) -> None:
        self.failureResultOf(self.login("alice", "wrong one"), UnauthorizedLogin)

    def test_unknown_name_costs_a_dummy_verify(self) -> None:
        self.failureResultOf(self.login("nobody", "whatever1"), UnauthorizedLogin)
        self.assertEqual(self.hasher.calls, ["dummy"])

    def test_operator_flag_and_option(self) -> None:
        self.store.add("bob", "fake1$password1", operator=True)
        self.store.add("carol", "fake1$password2")
        self.assertTrue(self.successResultOf(self.login("bob", "password1"))[1].operator)
        self.assertTrue(self.successResultOf(self.login("carol", "password2"))[1].operator)

    def test_account_throttle(self) -> None:
        """Three wrong passwords a minute from anywhere; the fourth is not even checked."""
        for _ in range(3):
            self.failureResultOf(self.login("alice", "wrong one"), UnauthorizedLogin)
        self.hasher.calls.clear()
        self.failureResultOf(self.login("alice", "correct horse"), AccountThrottled)
        self.assertEqual(self.hasher.calls, [])
        self.clock.advance(61)
        self.successResultOf(self.login("alice", "correct horse"))

    def test_rehash_when_parameters_changed(self) -> None:
        self.hasher.version = 2
        self.successResultOf(self.login("alice", "correct horse"))
        self.assertEqual(self.store.get("alice").hash, "fake2$correct horse")  # type: ignore


class Argon2HasherTests(SynchronousTestCase):
    """The real argon2id, run at once instead of in a thread, with cheap parameters."""

    def setUp(self) -> None:
        from argon2 import PasswordHasher

        self.cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.hasher = Argon2Hasher(self.cheap, run=lambda f, *a: succeed(f(*a)))

    def test_hash_and_verify(self) -> None:
        hash = self.successResultOf(self.hasher.hash("correct horse"))
        self.assertTrue(hash.startswith("$argon2id$"))
        self.assertNotIn("correct", hash)
        self.assertTrue(self.successResultOf(self.hasher.verify(hash, "correct horse")))
        self.assertFalse(self.successResultOf(self.hasher.verify(hash, "wrong")))
        self.assertFalse(self.successResultOf(self.hasher.verify("garbage", "wrong")))
        self.assertFalse(self.successResultOf(self.hasher.dummy_verify("x")))
        self.assertFalse(self.hasher.needs_rehash(hash))
        from argon2 import PasswordHasher

        stronger = Argon2Hasher(PasswordHasher(time_cost=2, memory_cost=8, parallelism=1))
        self.assertTrue(stronger.needs_rehash(hash))

    def test_first_check_makes_the_dummy_hash(self) -> None:
        """A known name's first verify pays for the dummy hash too: no first-login tell."""
        hash = self.successResultOf(self.hasher.hash("correct horse"))
        self.assertIsNone(self.hasher._dummy)
        self.successResultOf(self.hasher.verify(hash, "correct horse"))
        dummy = self.hasher._dummy
        self.assertIsNotNone(dummy)
        self.successResultOf(self.hasher.dummy_verify("x"))
        self.assertIs(self.hasher._dummy, dummy)

    def test_at_most_two_at_once(self) -> None:
        pending: list[Deferred[object]] = []

        def later(f: object, *args: object) -> Deferred[object]:
            d: Deferred[object] = Deferred()
            pending.append(d)
            return d

        hasher = Argon2Hasher(self.cheap, run=later)
        results = [hasher.hash("password%d" % i) for i in range(5)]
        self.assertEqual(len(pending), 2)
        pending[0].callback("h0")
        self.assertEqual(len(pending), 3)
        self.assertEqual(self.successResultOf(results[0]), "h0")


class DialogueTests(SynchronousTestCase):
    """The telnet login of a registered name, through StringTransport."""

    def setUp(self) -> None:
        self.world = AccountWorld()
        self.world.add("alice", "correct horse")

    def test_password_hidden_on_telnet(self) -> None:
        """
        The hidden input keys on the dialogue's prompts: a telnet client
        types the password unseen (WILL ECHO before C{Password:}, WONT ECHO
        once it is in), as it types the passcode.
        """
        iac, will, wont, do, echo, binary = b"\xff", b"\xfb", b"\xfc", b"\xfd", b"\x01", b"\x00"
        protocol, transport = self.world.connect()
        protocol.dataReceived(iac + will + binary)  # it answers the greeting: telnet
        transport.clear()
        protocol.dataReceived(b"alice\r\n")
        self.assertEqual(transport.value(), iac + will + echo + b"Password:\r\n")
        protocol.dataReceived(iac + do + echo)  # agreed: not answered
        transport.clear()
        protocol.dataReceived(b"correct horse\r\n")
        data = transport.value()
        self.assertTrue(data.startswith(iac + wont + echo), data)
        self.assertIn(b"Welcome, alice!", data)

    def test_password_prompt(self) -> None:
        protocol, transport = self.world.connect()
        lines(transport)
        protocol.dataReceived(b"alice\r\n")
        self.assertEqual(lines(transport), ["Password:"])
        protocol.dataReceived(b"correct horse\r\n")
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.",
                      lines(transport))
        session = protocol.session  # type: ignore[attr-defined]
        self.assertEqual(session.account.name, "alice")

    def test_other_case_gets_the_account_name(self) -> None:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"ALICE\r\ncorrect horse\r\n")
        self.assertIn(b"Welcome, alice!", transport.value())

    def test_password_prompt_hides_input(self) -> None:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"\xff\xfb\x00")  # IAC WILL BINARY: a telnet client
        protocol.dataReceived(b"alice\r\n")
        transport.clear()
        protocol.dataReceived(b"\xff\xfd\x01")  # IAC DO ECHO: it lets the server hide
        protocol.dataReceived(b"correct horse\r\n")
        self.assertEqual(transport.value()[:3], b"\xff\xfc\x01")  # IAC WONT ECHO: shown again

    def test_wrong_password_asks_for_the_name_again(self) -> None:
        protocol, transport = self.world.connect()
        lines(transport)
        protocol.dataReceived(b"alice\r\nnope nope\r\n")
        self.assertEqual(lines(transport),
                         ["Password:", "ERROR wrong password", "Username:"])
        protocol.dataReceived(b"alice\r\ncorrect horse\r\n")
        self.assertIn("Welcome, alice!", " ".join(lines(transport)))

    def test_third_wrong_password_closes(self) -> None:
        protocol, transport = self.world.connect()
        lines(transport)
        protocol.dataReceived(b"alice\r\nbad1\r\nalice\r\nbad2\r\nalice\r\nbad3\r\n")
        out = lines(transport)
        self.assertEqual(out.count("ERROR wrong password"), 2)
        self.assertEqual(out[-1], "ERROR too many attempts")
        self.assertTrue(transport.disconnecting)

    def test_wrong_passwords_lock_the_address_out(self) -> None:
        """A connection open before the lockout is refused at its password."""
        early, early_transport = self.world.connect()
        self.world.add("bob", "password1")
        self.world.add("carol", "password1")
        for name in (b"bob", b"carol", b"alice"):  # one wrong password for each account
            protocol, transport = self.world.connect()
            protocol.dataReceived(name + b"\r\nbad\r\n")
        lines(early_transport)
        early.dataReceived(b"alice\r\ncorrect horse\r\n")
        out = lines(early_transport)
        self.assertEqual(out[0], "Password:")
        self.assertTrue(out[-1].startswith("ERROR too many wrong passwords from your address"),
                        out)
        self.assertTrue(early_transport.disconnecting)
        self.assertNotIn("alice", self.world.server.members)

    def test_account_throttle_from_anywhere(self) -> None:
        self.world.add("bob", "password1")
        for _ in range(3):
            protocol, transport = self.world.connect()
            protocol.dataReceived(b"bob\r\nbad\r\n")
            self.world.context.lockout._banned.clear()  # other addresses, in effect
            self.world.context.lockout._failures.clear()
        protocol, transport = self.world.connect()
        lines(transport)
        protocol.dataReceived(b"bob\r\npassword1\r\n")
        self.assertEqual(lines(transport)[-2:], [
            "ERROR too many attempts for this account; wait a minute", "Username:"])

    def test_someone_else_cannot_take_a_registered_name(self) -> None:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"alice\r\n")
        self.assertNotIn(b"Welcome, alice", transport.value())
        self.assertNotIn("alice", [m.name for m in self.world.server.members])

    def test_guests_no(self) -> None:
        world = AccountWorld(guests=False)
        world.add("alice", "correct horse")
        protocol, transport = world.connect()
        lines(transport)
        protocol.dataReceived(b"bob\r\n")
        self.assertEqual(lines(transport), [
            "ERROR this server admits registered accounts only; log in with yours",
            "Username:"])
        protocol.dataReceived(b"alice\r\ncorrect horse\r\n")
        self.assertIn("Welcome, alice!", " ".join(lines(transport)))

    def test_passcode_then_password(self) -> None:
        world = AccountWorld(passcode=b"x")
        world.add("alice", "correct horse")
        protocol, transport = world.connect()
        lines(transport)
        protocol.dataReceived(b"x\r\nalice\r\ncorrect horse\r\n")
        out = lines(transport)
        self.assertEqual(out[:2], ["Username:", "Password:"])
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.", out)


class RegisterTests(SynchronousTestCase):
    """/register and /password."""

    def setUp(self) -> None:
        self.world = AccountWorld()

    def test_register_then_log_in_with_the_password(self) -> None:
        protocol, transport = self.world.login("alice")
        protocol.dataReceived(b"/register correct horse\r\n")
        self.assertEqual(lines(transport), [
            "alice is registered: from now on this name needs your password"])
        account = self.world.accounts.get("alice")
        assert account is not None
        self.assertEqual(account.hash, "fake1$correct horse")  # the fake's "hash"
        protocol.dataReceived(b"/quit\r\n")
        protocol.connectionLost(None)  # type: ignore[arg-type]
        protocol, transport = self.world.connect()
        lines(transport)
        protocol.dataReceived(b"alice\r\ncorrect horse\r\n")
        self.assertIn("Welcome, alice!", " ".join(lines(transport)))

    def test_register_rules(self) -> None:
        protocol, transport = self.world.login("alice")
        protocol.dataReceived(b"/register short\r\n")
        self.assertEqual(lines(transport), ["ERROR a password is 8 to 128 characters"])
        protocol.dataReceived(b"/register " + b"x" * 129 + b"\r\n")
        self.assertEqual(lines(transport), ["ERROR a password is 8 to 128 characters"])
        protocol.dataReceived(b"/register\r\n")
        self.assertEqual(lines(transport),
                         ["ERROR usage: /register <password> (8 to 128 characters)"])
        protocol.dataReceived(b"/register password1\r\n")
        lines(transport)
        protocol.dataReceived(b"/register password2\r\n")
        self.assertEqual(lines(transport),
                         ["ERROR you are registered already (/password changes it)"])

    def test_registration_closed(self) -> None:
        world = AccountWorld(registration="closed")
        protocol, transport = world.login("alice")
        protocol.dataReceived(b"/register correct horse\r\n")
        self.assertEqual(lines(transport), [
            "ERROR registration is closed on this server; an operator creates accounts"])
        self.assertIsNone(world.accounts.get("alice"))

    def test_registrations_throttled_per_address(self) -> None:
        for name in ("a1", "a2", "a3"):
            protocol, transport = self.world.login(name)
            protocol.dataReceived(b"/register password1\r\n")
            self.assertIn("registered", lines(transport)[0])
        protocol, transport = self.world.login("a4")
        protocol.dataReceived(b"/register password1\r\n")
        self.assertEqual(lines(transport), [
            "ERROR too many registrations from your address; try again in an hour"])
        self.assertIsNone(self.world.accounts.get("a4"))

    def test_change_password(self) -> None:
        self.world.add("alice", "correct horse")
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"alice\r\ncorrect horse\r\n")
        lines(transport)
        protocol.dataReceived(b"/password wrongone battery staple\r\n")
        self.assertEqual(lines(transport), ["ERROR wrong password"])
        protocol.dataReceived(b"/password correct battery staple\r\n")
        self.assertEqual(lines(transport), ["ERROR wrong password"])
        protocol.dataReceived(b"/password onlyone\r\n")
        self.assertEqual(lines(transport), ["ERROR usage: /password <old> <new>"])
        self.world.add("bob", "password1")
        protocol2, transport2 = self.world.connect()
        protocol2.dataReceived(b"bob\r\npassword1\r\n")
        lines(transport2)
        protocol2.dataReceived(b"/password password1 password2\r\n")
        self.assertEqual(lines(transport2), ["password changed"])
        self.assertEqual(self.world.accounts.get("bob").hash, "fake1$password2")  # type: ignore

    def test_guest_cannot_change_a_password(self) -> None:
        protocol, transport = self.world.login("carol")
        protocol.dataReceived(b"/password password1 password2\r\n")
        self.assertEqual(lines(transport),
                         ["ERROR you are a guest; /register <password> first"])


class SessionCallTests(SynchronousTestCase):
    """The typed calls IRC's SASL uses: sign_in, then claim without a password."""

    def test_sign_in_then_claim(self) -> None:
        world = AccountWorld()
        world.add("alice", "correct horse")
        protocol, transport = world.connect()
        session = protocol.session  # type: ignore[attr-defined]
        self.successResultOf(session.authenticate(None))
        account = self.successResultOf(session.sign_in("alice", "correct horse"))
        self.assertEqual(account.name, "alice")
        member = self.successResultOf(session.claim("Alice", room=None))
        self.assertEqual(member.name, "alice")

    def test_claim_of_a_registered_name_needs_a_password(self) -> None:
        world = AccountWorld()
        world.add("alice", "correct horse")
        protocol, transport = world.connect()
        transport.clear()
        session = protocol.session  # type: ignore[attr-defined]
        failure = self.failureResultOf(session.log_in(None, "alice", room=None),
                                       PasswordRequired)
        self.assertEqual((failure.value.code, failure.value.numeric), ("password_required", "433"))
        self.assertEqual(transport.value(), b"")  # not told: the front end asks


class ClientPasswordTests(SynchronousTestCase):
    """chat-client answers Password: from --password / --password-file."""

    def test_password_option_answers_the_prompt(self) -> None:
        protocol, transport, ui, _ = connect(name="alice", passcode="x",
                                             password="correct horse")
        protocol.dataReceived(GREETING + b"Username:\r\nPassword:\r\n")
        self.assertEqual(sent(transport), [b"x", b"alice", b"correct horse"])
        protocol.dataReceived(WELCOME)
        self.assertTrue(protocol.logged_in)
        self.assertNotIn("Password:", ui.lines)

    def test_password_asked_secretly(self) -> None:
        protocol, transport, ui, _ = connect(ui=FakeUI(interactive=True), name="alice",
                                             passcode="x")
        protocol.dataReceived(GREETING + b"Username:\r\nPassword:\r\n")
        [(prompt, secret, asking)] = ui.asks
        self.assertEqual((prompt, secret), ("Password:", True))
        asking.callback("correct horse")
        self.assertEqual(sent(transport), [b"x", b"alice", b"correct horse"])

    def test_wrong_password_option_fails(self) -> None:
        protocol, transport, ui, _ = connect(ui=FakeUI(interactive=True), name="alice",
                                             passcode="x", password="wrong one")
        protocol.dataReceived(GREETING + b"Username:\r\nPassword:\r\n"
                              b"ERROR wrong password\r\nUsername:\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(protocol.finished, ClientError)
        self.assertEqual(str(error.value), "login failed: wrong password")

    def test_password_file(self) -> None:
        path = os.path.join(temp_dir(self), "pw")
        with open(path, "w") as f:
            f.write("correct horse\n")
        self.assertEqual(parse_args(["--password-file", path]).password, "correct horse")
        self.assertEqual(parse_args(["--password", "abcdefgh"]).password, "abcdefgh")
        self.assertRaisesRegex(UsageError, "use --password or --password-file, not both",
                               parse_args, ["--password", "x", "--password-file", path])


class WebPasswordTests(SynchronousTestCase):
    """The browser's login with a password, through the web test fakes."""

    def setUp(self) -> None:
        self.world = AccountWorld(passcode=b"x")
        self.world.add("alice", "correct horse")
        self.factory = ChatWebFactory(self.world.context)

    def browser(self) -> Browser:
        browser = Browser(self.factory)
        browser.transport.take()
        return browser

    def test_password_required_then_log_in(self) -> None:
        browser = self.browser()
        sent = browser.login("alice")
        self.assertEqual(sent, [
            {"type": "prompt", "field": "username"},
            {"type": "error", "text": "alice is registered: give its password",
             "code": "password_required"},
            {"type": "prompt", "field": "password"},
        ])
        sent = browser.send({"type": "login", "passcode": "x", "name": "alice",
                             "password": "correct horse"})
        self.assertIn({"type": "welcome", "name": "alice", "room": "lobby", "max_line": 1024},
                      sent)

    def test_wrong_password(self) -> None:
        browser = self.browser()
        sent = browser.send({"type": "login", "passcode": "x", "name": "alice",
                             "password": "wrong horse"})
        self.assertEqual(sent[-2:], [
            {"type": "error", "text": "wrong password", "code": "wrong_password"},
            {"type": "prompt", "field": "username"},
        ])
        self.assertNotIn("alice", self.world.server.members)

    def test_password_must_be_a_string(self) -> None:
        browser = self.browser()
        sent = browser.send({"type": "login", "passcode": "x", "name": "alice",
                             "password": 5})
        self.assertEqual(sent[0]["code"], "bad_message")
        self.assertNotIn("alice", self.world.server.members)


class OptionTests(SynchronousTestCase):
    """--registration, --guests, --operator and the wiring of build()."""

    def parse(self, *args: str) -> ChatConfig:
        from twisted_chat.tap import Options, config_from_options

        options = Options()
        options.parseOptions(list(args))
        return config_from_options(options)

    def test_defaults_and_values(self) -> None:
        config = self.parse()
        self.assertEqual((config.registration, config.guests, config.operators),
                         ("open", True, ()))
        config = self.parse("--registration", "closed", "--guests", "no",
                            "--operator", "alice", "--operator", "Bob")
        self.assertEqual((config.registration, config.guests, config.operators),
                         ("closed", False, ("alice", "Bob")))

    def test_bad_values(self) -> None:
        from twisted.python import usage

        for args, message in ((["--registration", "maybe"], "--registration takes open or closed"),
                              (["--guests", "true"], "--guests takes yes or no")):
            error = self.assertRaises(usage.UsageError, self.parse, *args)
            self.assertIn(message, str(error))

    def test_config_file(self) -> None:
        path = os.path.join(temp_dir(self), "chat.toml")
        with open(path, "w") as f:
            f.write('guests = "no"\noperator = ["alice", "bob"]\nregistration = "closed"\n')
        config = self.parse("--config", path)
        self.assertEqual((config.registration, config.guests, config.operators),
                         ("closed", False, ("alice", "bob")))

    def test_build_wires_the_account_checker(self) -> None:
        from twisted.cred.credentials import IUsernamePassword
        from twisted.internet.testing import MemoryReactorClock

        from twisted_chat.tap import build

        path = os.path.join(temp_dir(self), "chat.db")
        service = build(self.parse("--db", path, "--port", "1234", "--operator", "alice"),
                        MemoryReactorClock())
        context = service.context
        self.assertIn(IUsernamePassword, context.portal.listCredentialsInterfaces())
        self.assertIsInstance(context.accounts, SQLiteAccounts)
        self.assertIsInstance(context.hasher, Argon2Hasher)
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT count(*) FROM accounts").fetchone(), (0,))
        memory = build(self.parse("--db", ":memory:", "--port", "1234"), MemoryReactorClock())
        self.assertIsInstance(memory.context.accounts, MemoryAccounts)


class SlowHasher(FakeHasher):
    """Answers verifies only when told (a queue of hashes ahead)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[Deferred[bool], bool]] = []

    def verify(self, hash: str, password: str) -> Deferred[bool]:
        d: Deferred[bool] = Deferred()
        self.pending.append((d, hash.split("$", 1)[1] == password))
        return d

    def answer(self) -> None:
        d, ok = self.pending.pop(0)
        d.callback(ok)


class QueuedHashTests(SynchronousTestCase):
    """While a password waits for the hasher, input is held and the deadline stops."""

    def setUp(self) -> None:
        self.world = AccountWorld()
        self.hasher = SlowHasher()
        self.world.portal.checkers[IUsernamePassword] = AccountChecker(
            self.world.accounts, self.hasher, self.world.throttle)
        self.world.add("alice", "correct horse")

    def test_no_timeout_while_the_hash_is_queued(self) -> None:
        _, bob = self.world.login("bob")
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"alice\r\ncorrect horse\r\n/me waves\r\n")
        self.world.clock.advance(self.world.config.login_timeout + 5)
        self.assertFalse(transport.disconnecting)
        lines(transport)
        self.hasher.answer()
        out = lines(transport)
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.", out)
        self.assertIn("Users in #lobby (2): alice, bob", out)
        self.assertTrue(lines(bob)[-1].endswith("] * alice waves"))  # the held line, after login

    def test_deadline_starts_again_after_a_refusal(self) -> None:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"alice\r\nwrong one\r\n")
        self.world.clock.advance(self.world.config.login_timeout + 5)
        self.hasher.answer()
        self.assertFalse(transport.disconnecting)
        self.world.clock.advance(self.world.config.login_timeout + 1)
        self.assertIn("ERROR login timed out", lines(transport))
        self.assertTrue(transport.disconnecting)


class OpenServerLockoutTests(SynchronousTestCase):
    """On a server without a passcode, wrong passwords lock the address out at connect too."""

    def test_refused_at_connect(self) -> None:
        world = AccountWorld()
        for name in ("a1", "a2", "a3"):
            world.add(name, "password1")
            protocol, transport = world.connect()
            protocol.dataReceived(name.encode() + b"\r\nwrong one\r\n")
        protocol, transport = world.connect()
        out = lines(transport)
        self.assertTrue(out[-1].startswith("ERROR too many wrong passwords from your address"),
                        out)
        self.assertTrue(transport.disconnecting)


class OperatorTests(SynchronousTestCase):
    """/addaccount: an operator creates accounts, also with --registration closed."""

    def setUp(self) -> None:
        self.world = AccountWorld(registration="closed", operators=("root1",))
        self.world.add("root1", "password1")  # an operator by --operator
        self.world.add("oper2", "password2", operator=True)  # by the account's flag

    def log_in(self, name: str, password: str) -> tuple[ChatLineProtocol, StringTransport]:
        protocol, transport = self.world.connect()
        protocol.dataReceived(b"%s\r\n%s\r\n" % (name.encode(), password.encode()))
        self.assertIn("Welcome, %s!" % name, " ".join(lines(transport)))
        return protocol, transport

    def test_operator_creates_an_account(self) -> None:
        for name, password, new in (("root1", "password1", "carol"),
                                    ("oper2", "password2", "dave")):
            protocol, transport = self.log_in(name, password)
            self.assertTrue(protocol.session.operator)
            protocol.dataReceived(b"/addaccount %s correct horse\r\n" % new.encode())
            self.assertEqual(lines(transport), ["created the account %s" % new])
            account = self.world.accounts.get(new)
            assert account is not None
            self.assertEqual(account.hash, "fake1$correct horse")
        protocol.dataReceived(b"/addaccount carol password9\r\n")
        self.assertEqual(lines(transport), ["ERROR carol is registered already"])
        protocol.dataReceived(b"/addaccount no!name password9\r\n")
        self.assertEqual(lines(transport), [
            "ERROR a name is 1-20 characters: ASCII letters, digits, _ - ."])

    def test_others_may_not(self) -> None:
        self.world.add("eve", "password3")
        for protocol, transport in (self.world.login("guest"), self.log_in("eve", "password3")):
            self.assertFalse(protocol.session.operator)
            protocol.dataReceived(b"/addaccount mallory password9\r\n")
            self.assertEqual(lines(transport)[-1],
                             "ERROR /addaccount is not for you (operator only)")
        self.assertIsNone(self.world.accounts.get("mallory"))
