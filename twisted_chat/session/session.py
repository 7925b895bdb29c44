"""
One user's session, whatever the front end, driven by typed calls: the
login (L{ChatSession.authenticate}, L{ChatSession.claim},
L{ChatSession.log_in}) through the twisted.cred portal, then commands
(L{ChatSession.command}) and typed text lines (L{ChatSession.text})
dispatched through the command registry to the domain.  No prompts and no
line sniffing here: the telnet dialogue is L{twisted_chat.session.dialogue}.
ChatError becomes one C{ERROR} event (with its code) here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from twisted.cred.credentials import Anonymous, ICredentials, UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.auth.cred import AccountThrottled, Passcode, Visitor
from twisted_chat.auth.hashing import Argon2Hasher, Hasher
from twisted_chat.commands import REGISTRY, Command, CommandRegistry
from twisted_chat.commands.parse import parse
from twisted_chat.config import ChatConfig
from twisted_chat.domain.events import Error, Info, Welcome
from twisted_chat.domain.moderation import format_duration
from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.errors import (
    AccountLocked,
    AccountRequired,
    AlreadyLoggedIn,
    BadPassword,
    BannedFromServer,
    ChatError,
    Flooding,
    LockedOut,
    LoginClosed,
    LoginFailed,
    LoginRefused,
    NotLoggedIn,
    PasswordRequired,
    RegistrationRefused,
    ServerFailure,
    TimedOut,
    TooManyAttempts,
    TooManyBadNames,
    UnknownCommand,
    WrongPasscode,
    WrongPassword,
)
from twisted_chat.fired import NOT_YET, result_now
from twisted_chat.interfaces import IPasscode, IVisitor, Participant
from twisted_chat.limits import ConnectionLimits, Deadlines, PasscodeLockout, RecentCount
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.storage.accounts import (
    Account,
    AccountError,
    AccountExists,
    AccountStore,
    MemoryAccounts,
    NoSuchAccount,
)
from twisted_chat.text import check_name, clean, visible


class Frontend(Participant, Protocol):
    """A participant that a session can also pause and describe."""

    def pause_input(self) -> None:
        """Stop handing the session lines until L{resume_input}."""

    def resume_input(self) -> None:
        """Hand the session lines again."""

    def describe_peer(self) -> str:
        """Where the connection comes from, for the log."""

    def peer_host(self) -> str:
        """The client's address without the port, for per-address limits."""


@dataclass(frozen=True)
class SessionContext:
    """
    What every session of a server shares.

    @ivar deadlines: sessions still logging in, closed after the login timeout.
    @ivar idle: logged-in sessions, closed after the idle timeout (C{None}: off).
    @ivar listening: where the listeners listen, by kind (C{"web"}: the
        browser page's C{http://host:port/}), filled in as they start.
    @ivar accounts: the registered accounts (read through at each login).
    @ivar hasher: hashes new passwords (C{/register}, C{/password}).
    @ivar registrations: registrations per address (3 an hour).
    """

    server: ChatServer
    portal: Portal
    config: ChatConfig
    clock: IReactorTime
    deadlines: Deadlines[ChatSession]
    lockout: PasscodeLockout
    limits: ConnectionLimits
    idle: Deadlines[ChatSession] | None = None
    listening: dict[str, str] = field(default_factory=dict)
    commands: CommandRegistry = REGISTRY
    accounts: AccountStore = field(default_factory=MemoryAccounts)
    hasher: Hasher = field(default_factory=Argon2Hasher)
    registrations: RecentCount | None = None

    @classmethod
    def create(
        cls, server: ChatServer, portal: Portal, config: ChatConfig, clock: IReactorTime,
        accounts: AccountStore | None = None, hasher: Hasher | None = None,
    ) -> SessionContext:
        """
        The context for C{config}'s limits and timeouts.  C{accounts} and
        C{hasher} must be those of the portal's L{AccountChecker}, if any
        (default: accounts in memory, argon2id).
        """
        idle = None
        if config.idle_timeout > 0:
            idle = Deadlines(clock, config.idle_timeout, ChatSession.idle_timed_out)
        return cls(
            server=server,
            portal=portal,
            config=config,
            clock=clock,
            deadlines=Deadlines(clock, config.login_timeout, ChatSession.timed_out),
            lockout=PasscodeLockout(clock, config.login_attempts, 60.0, 60.0),
            limits=ConnectionLimits(clock, config.max_clients, config.max_per_ip,
                                    frozenset(config.limit_exempt)),
            idle=idle,
            accounts=accounts if accounts is not None else MemoryAccounts(),
            hasher=hasher if hasher is not None else Argon2Hasher(),
            registrations=RecentCount(clock, REGISTRATIONS_PER_HOUR, 3600.0),
        )

    @property
    def needs_passcode(self) -> bool:
        """Whether the gate asks for a passcode (else it lets anyone in)."""
        # the portal's table itself: a dict look-up, not a list of
        # interfaces compared one by one (a cost of every connection)
        return IPasscode in self.portal.checkers




class _LoggedOut:
    """Stands in for the visitor once its member has left."""

    __slots__ = ()
    member = None


_LOGGED_OUT = _LoggedOut()

# Session states.
LOGIN, CHAT, CLOSED = range(3)

# Wrong passwords one connection may send before it is closed (SPEC 7).
MAX_BAD_PASSWORDS = 3
# Registrations one address may make in an hour.
REGISTRATIONS_PER_HOUR = 3
# The length of a password, in characters.
PASSWORD_LENGTH = (8, 128)

# Bad names one connection may try before it is closed: each draws a reply,
# so without a bound a pipelined list of names makes the server write more
# than it reads.
MAX_BAD_NAMES = 10
# Where each count of mistakes sits in ChatSession._strikes, and its flag
# for held input.
_PASSCODES, _NAMES, _PASSWORDS = 0, 8, 16
_HELD = 1 << 24


class ChatSession:
    """
    One user's session.  A front end logs it in with L{authenticate} and
    L{claim} (or L{log_in}), then hands it L{command}s and typed L{text}
    lines, and calls L{connection_lost} at the end.

    A login call answers with a Deferred.  When the answer comes later (a
    slow checker, a cluster's name claim) the session holds the front end's
    input meanwhile (C{pause_input}) and releases it (C{resume_input}) after
    the Deferred fired, so a front end answers the outcome (a prompt again)
    before any held input is handled.  A refusal has been told to the user
    already (an L{Error} event); the Deferred fails with a L{ChatError}
    whose C{field} says what to ask for again (usually a
    L{LoginRefused}); if the session is over meanwhile, C{closed} is true.

    @ivar dropped: how many lines the flood limit dropped (a front end that
        answers each line compares it before and after L{text} or L{command}).
    """

    # _strikes: wrong passcodes, bad names and wrong passwords on this
    # connection, a byte each in one int (see _strike), and the _HELD bit
    # (whether we hold the front end's input while a check runs): an idle
    # connection's bytes count, and each count closes it long before 255.
    __slots__ = ("_ctx", "_front", "_state", "_visitor", "_strikes",
                 "_bucket", "_waiting", "_signed_in")
    log = Logger()

    def __init__(self, context: SessionContext, front: Frontend) -> None:
        self._ctx = context
        self._front = front
        self._state = LOGIN
        self._visitor: Visitor | _LoggedOut | None = None
        self._strikes = 0
        self._signed_in: Visitor | None = None  # an account's avatar, before its claim
        # the flood limit's bucket; without a limit (--rate 0), just the time
        # of the last line (a float costs 24 bytes, a bucket about 150)
        self._bucket: TokenBucket | float | None = None
        self._waiting: Deferred[Any] | None = None  # the caller's, while a check runs

    # -- what handlers and front ends read ----------------------------------


    def _strike(self, kind: int) -> int:
        """Count one more mistake of C{kind}; how many there were so far."""
        self._strikes += 1 << kind
        return (self._strikes >> kind) & 0xFF
    @property
    def member(self) -> Member | None:
        """The logged-in member, or C{None} before login and after logout."""
        return self._visitor.member if self._visitor is not None else None

    @property
    def user(self) -> Member:
        """The logged-in member (for command handlers, which run only while logged in)."""
        return cast(Member, self._visitor)

    @property
    def front(self) -> Frontend:
        """The front end (the member's participant)."""
        return self._front

    @property
    def server(self) -> ChatServer:
        return self._ctx.server

    @property
    def clock(self) -> IReactorTime:
        return self._ctx.clock

    @property
    def commands(self) -> CommandRegistry:
        """The commands this session runs."""
        return self._ctx.commands

    @property
    def needs_passcode(self) -> bool:
        """Whether L{authenticate} checks a passcode (else anyone gets in)."""
        return self._ctx.needs_passcode

    @property
    def authenticated(self) -> bool:
        """Whether L{authenticate} succeeded (so L{claim} may be called)."""
        return self._visitor is not None

    @property
    def last_active(self) -> float | None:
        """
        When the user last sent a line (the flood limit's bucket knows;
        C{None}: no line since login), for C{/whois}.
        """
        bucket = self._bucket
        if bucket is None or type(bucket) is float:
            return bucket
        assert isinstance(bucket, TokenBucket)
        return bucket.last

    @property
    def dropped(self) -> int:
        """How many lines the flood limit dropped (kept by the token bucket)."""
        bucket = self._bucket
        return bucket.dropped if isinstance(bucket, TokenBucket) else 0

    @property
    def logged_in(self) -> bool:
        """Whether the login finished (L{claim} succeeded) and the session is open."""
        return self._state == CHAT

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._state == CLOSED

    @property
    def account(self) -> Account | None:
        """The account the user logged in as (C{None}: a guest, or not logged in)."""
        visitor = self._visitor
        return visitor.account if isinstance(visitor, Visitor) else None

    @property
    def operator(self) -> bool:
        """Whether the user is a server operator (an account with the flag)."""
        visitor = self._visitor
        return isinstance(visitor, Visitor) and visitor.operator

    def may(self, who: str) -> bool:
        """Whether the user is among C{who} (a L{CommandSpec}'s C{who})."""
        if who == "operator":
            return self.operator
        return who == "everyone"

    # -- login ----------------------------------------------------------------

    def start(self) -> bool:
        """
        Begin: the login deadline starts.  An address locked out for wrong
        passcodes or passwords is refused (told, and closed): C{False}.
        """
        self._ctx.deadlines.touch(self)
        if self._ctx.server.moderation.ban_count:
            banned = self._banned(None)
            if banned is not None:
                self._tell(banned)
                self.close()
                return False
        # Wrong passwords lock an address out too, on an open server as well.
        return self._locked_out("passcodes" if self.needs_passcode else "passwords") is None

    def _banned(self, name: str | None) -> BannedFromServer | None:
        """The refusal if the name C{name} (C{None}: any) or this address is banned (C{/gban})."""
        server = self._ctx.server
        ban = server.moderation.server_ban(name, self._front.peer_host())
        if ban is None:
            return None
        server.observer.login("banned")
        self.log.info("refused {peer} ({name}): banned from the server",
                      peer=self._front.describe_peer(), name=name or "-")
        text = "you are banned from this server"
        if ban.until is not None:
            text += " (for %s more)" % format_duration(ban.until - self._ctx.clock.seconds())
        if ban.reason:
            text += ": " + ban.reason
        return BannedFromServer(text)

    def _locked_out(self, what: str = "passcodes") -> LockedOut | None:
        """Refuse (told, closed) if this address guessed wrong too often lately."""
        left = self._ctx.lockout.remaining(self._front.peer_host())
        if not left:
            return None
        self._ctx.server.observer.login("locked_out")
        error = LockedOut(
            "too many wrong %s from your address; try again in %d s" % (what, left + 0.999))
        self._tell(error)
        self.close()
        return error

    def authenticate(self, passcode: bytes | None) -> Deferred[None]:
        """
        Pass the gate: check C{passcode} (C{None}: none given) through the
        portal; an open server lets anyone in.  Succeeds at once if done
        already.  A wrong passcode is told (C{ERROR wrong passcode}) and
        fails with L{WrongPasscode}; the connection's first counts toward its
        address's lockout; the last allowed fails with L{TooManyAttempts}
        and closes, as does a locked-out address (L{LockedOut}).
        """
        if self._visitor is not None and self._state == LOGIN:
            return succeed(None)
        refused = self._refusal()
        if refused is not None:
            return refused
        if self.needs_passcode:
            locked = self._locked_out()
            if locked is not None:
                return fail(locked)
            credentials: ICredentials = Passcode(passcode or b"")
        else:
            credentials = Anonymous()
        d = self._ctx.portal.login(credentials, self._front, IVisitor)
        return self._settle(d, self._logged_in, self._refused)

    def claim(self, name: str, room: str | None = LOBBY,
              password: str | None = None) -> Deferred[Member]:
        """
        Take C{name} (trimmed of surrounding spaces) through the realm's
        avatar, after L{authenticate}.  A bad or taken name is told and
        fails (L{BadName}, L{NameTaken}: C{field} C{"name"}); the
        L{MAX_BAD_NAMES}th closes (L{TooManyBadNames}).  On success the
        user is welcomed and joins C{room} (C{None}: none, for IRC).

        A registered name needs its C{password} (else L{PasswordRequired},
        C{field} C{"password"}, B{not} told: the front end asks), checked
        by L{sign_in} first, unless L{sign_in} for that account succeeded
        already (IRC's SASL).  C{--guests no}: a name without an account
        is refused (L{AccountRequired}).
        """
        if password is not None:
            return self.sign_in(name, password).addCallback(
                lambda account: self.claim(account.name, room))
        refused = self._refusal()
        if refused is not None:
            return refused
        visitor = self._visitor
        if not isinstance(visitor, Visitor):
            return fail(LoginRefused("authenticate before claiming a name"))
        name = name.strip()
        if self._ctx.server.moderation.ban_count:
            banned = self._banned(name)
            if banned is not None:
                return fail(self._end_login(banned))
        signed = self._signed_in
        if signed is not None and signed.account is not None \
                and signed.account.name.casefold() == name.casefold():
            visitor, name = signed, signed.account.name
        else:
            try:
                account = self._ctx.accounts.get(name)
            except AccountError:
                self.log.failure("reading the accounts failed")
                return fail(self._end_login(
                    LoginFailed("the server failed to log you in; try again later")))
            if account is not None:
                return fail(PasswordRequired("%s is registered: give its password"
                                             % account.name))
            if not self._ctx.config.guests:
                d: Deferred[Member] = fail(AccountRequired(
                    "this server admits registered accounts only; log in with yours"))
                d.addErrback(self._name_refused)
                return d
        d = visitor.claim_name(name)
        return self._settle(d, self._claimed, self._name_refused, room, visitor)

    def sign_in(self, name: str, password: str) -> Deferred[Account]:
        """
        Check C{password} for the account C{name} through the portal
        (L{twisted_chat.auth.cred.AccountChecker}), after L{authenticate};
        a later L{claim} of that name needs no password (IRC's SASL PLAIN
        calls this, then L{claim} with the nick).  Fires with the
        L{Account}.  A wrong password is told (C{ERROR wrong password}),
        counts toward the address's lockout and fails with
        L{WrongPassword} (C{field} C{"name"}); the account's 4th wrong one
        within a minute from anywhere fails with L{AccountLocked}; the
        connection's L{MAX_BAD_PASSWORDS}th closes it (L{TooManyAttempts}).
        """
        refused = self._refusal()
        if refused is not None:
            return refused
        if not isinstance(self._visitor, Visitor):
            return fail(LoginRefused("authenticate before signing in"))
        locked = self._locked_out("passwords")
        if locked is not None:
            return fail(locked)
        credentials = UsernamePassword(name.strip().encode("utf-8", "surrogateescape"),
                                       password.encode("utf-8", "surrogateescape"))
        d = self._ctx.portal.login(credentials, self._front, IVisitor)
        d.addCallbacks(self._signed, self._password_refused)
        d.addErrback(self._bug)
        return self._wait(d)

    def _signed(self, result: tuple[Any, Visitor, Any]) -> Any:
        _, visitor, _ = result
        if self._state == CLOSED:
            return None
        self._signed_in = visitor
        return self._answer(visitor.account)

    def _password_refused(self, failure: Failure) -> Any:
        failure.trap(UnauthorizedLogin)
        if self._state == CLOSED:
            return None
        bad_passwords = self._strike(_PASSWORDS)
        self._ctx.server.observer.login("wrong_password")
        self._ctx.lockout.failed(self._front.peer_host())
        self.log.warn("wrong password from {peer} (attempt {attempt})",
                      peer=self._front.describe_peer(), attempt=bad_passwords)
        if bad_passwords >= MAX_BAD_PASSWORDS:
            return self._end_login(TooManyAttempts("too many attempts"))
        error: LoginRefused
        if failure.check(AccountThrottled):
            error = AccountLocked("too many attempts for this account; wait a minute")
        else:
            error = WrongPassword("wrong password")
        self._tell(error)
        return self._answer(Failure(error))

    def log_in(self, passcode: bytes | None, name: str, room: str | None = LOBBY,
               authenticated: Callable[[], object] | None = None,
               password: str | None = None) -> Deferred[Member]:
        """
        L{authenticate} (unless done), then L{claim} (with C{password} for
        a registered name): the browser's and IRC's login.
        C{authenticated} is called once the passcode passed, before the
        claim (the browser sends its C{username} prompt there).
        """
        if self._visitor is not None and self._state == LOGIN:
            return self.claim(name, room, password)

        def then(_: None) -> Deferred[Member]:
            if authenticated is not None:
                authenticated()
            return self.claim(name, room, password)

        return self.authenticate(passcode).addCallback(then)

    def _refusal(self) -> Deferred[Any] | None:
        """A failed Deferred if no login call may run now, else C{None}."""
        if self._state == CLOSED:
            return fail(LoginClosed("the session is closed"))
        if self._state == CHAT:
            error = AlreadyLoggedIn("you are logged in already")
            self._tell(error)
            return fail(error)
        if self._waiting is not None:
            return fail(LoginRefused("wait for the answer to the last login first"))
        return None

    def _settle(self, d: Deferred[Any], callback: Callable[..., Any],
                errback: Callable[[Failure], Any], *args: Any) -> Deferred[Any]:
        """
        C{d.addCallbacks(callback, errback, callbackArgs=args)}, then
        L{_bug} and L{_wait}: the caller's Deferred.  When C{d} fired with
        a value already (the passcode gate, a local name claim: the common
        case) C{callback} runs at once, without Deferred callbacks, to the
        same outcome; a failure, or a check still running, goes the
        Deferred way.
        """
        value = result_now(d)
        if value is NOT_YET:
            d.addCallbacks(callback, errback, callbackArgs=args)
            d.addErrback(self._bug)
            return self._wait(d)
        try:
            result = callback(value, *args)
        except Exception:
            result = Failure()
        if isinstance(result, Failure):
            result = self._bug(result)
            if isinstance(result, Failure):
                return fail(result)
        return succeed(result)

    def _wait(self, d: Deferred[Any]) -> Deferred[Any]:
        """
        The caller's Deferred for the check C{d} (whose callbacks call
        L{_answer}); if C{d} has not fired, hold the front end's input.
        """
        outcome: list[Any] = []
        d.addBoth(outcome.append)
        if outcome:  # answered at once (its callbacks ran already): the common case
            result = outcome[0]
            if isinstance(result, Failure):
                return fail(result)
            return succeed(result)
        caller: Deferred[Any] = Deferred()
        self._waiting = caller
        if not self._strikes & _HELD:
            self._strikes |= _HELD
            self._front.pause_input()
        # The login deadline is for clients that do not answer: it stops
        # while the server's own check (a queued password hash) runs, and
        # starts again when the answer comes.
        self._ctx.deadlines.discard(self)
        return caller

    def _answer(self, result: Any) -> Any:
        """
        Give the waiting caller C{result} (a value or a L{Failure}), then
        release held input unless a new check is waiting or the session is
        over.  Returns C{result} for a check that answered at once.
        """
        caller, self._waiting = self._waiting, None
        if caller is None:
            return result
        if self._state == LOGIN:
            self._ctx.deadlines.touch(self)
        if isinstance(result, Failure):
            caller.errback(result)
        else:
            caller.callback(result)
        if self._strikes & _HELD and self._waiting is None and self._state != CLOSED:
            self._strikes &= ~_HELD
            self._front.resume_input()
        return None

    def _logged_in(self, result: tuple[Any, Visitor, Any]) -> Any:
        # The realm's logout callable is the visitor's logout; calling it on
        # the visitor lets the room hear why (quit or disconnected).
        _, self._visitor, _ = result
        if self._state == CLOSED:  # the connection went while we waited
            self._do_logout("disconnected")
            return None
        return self._answer(None)

    def _refused(self, failure: Failure) -> Any:
        failure.trap(UnauthorizedLogin)
        if self._state == CLOSED:
            return None
        bad_passcodes = self._strike(_PASSCODES)
        self._ctx.server.observer.login("wrong_passcode")
        if bad_passcodes == 1:
            # One wrong passcode per connection counts towards the address's
            # lockout: a client that sends several lines at once (curl, a
            # TLS client at the plain port) is one mistake, not three.
            self._ctx.lockout.failed(self._front.peer_host())
        self.log.warn(
            "wrong passcode from {peer} (attempt {attempt})",
            peer=self._front.describe_peer(),
            attempt=bad_passcodes,
        )
        if bad_passcodes >= self._ctx.config.login_attempts:
            return self._end_login(TooManyAttempts("too many attempts"))
        error = WrongPasscode("wrong passcode")
        self._tell(error)
        return self._answer(Failure(error))

    def _end_login(self, error: LoginRefused) -> Any:
        """Tell C{error}, close, then fail the caller with it."""
        caller, self._waiting = self._waiting, None
        self._tell(error)
        self.close()
        if caller is None:
            return Failure(error)
        caller.errback(error)
        return None

    def _name_refused(self, failure: Failure) -> Any:
        failure.trap(ChatError)
        if self._state == CLOSED:
            return None
        if self._strike(_NAMES) >= MAX_BAD_NAMES:
            return self._end_login(TooManyBadNames("too many bad names"))
        self._tell(cast(ChatError, failure.value))
        return self._answer(failure)

    def _claimed(self, member: Member, room: str | None, visitor: Visitor) -> Any:
        self._visitor = visitor  # an account's avatar replaces the guest's
        if self._state == CLOSED:  # the connection went while we waited
            self._do_logout("disconnected")
            return None
        self._state = CHAT
        self._ctx.deadlines.discard(self)
        if self._ctx.idle is not None:
            self._ctx.idle.touch(self)
        self.log.info(
            "{name} logged in from {peer}", name=member.name, peer=self._front.describe_peer()
        )
        self._front.send(Welcome(member.name, room or LOBBY))
        if room is not None:
            self._ctx.server.join(member, room)
        return self._answer(member)

    def timed_out(self) -> None:
        """The login deadline passed."""
        self._ctx.server.observer.login("timed_out")
        self.log.info("login timed out for {peer}", peer=self._front.describe_peer())
        self._tell(TimedOut("login timed out"))
        self.close()

    def idle_timed_out(self) -> None:
        """Nothing was sent for the idle timeout."""
        timeout = self._ctx.config.idle_timeout
        self._tell(TimedOut("disconnected after %g s without a line" % timeout))
        self._do_logout("timed out (idle)")
        self.close()

    # -- chat -------------------------------------------------------------------

    def text(self, line: str) -> None:
        """
        Handle one line the user typed (decoded, without its terminator):
        a message to the room, a C{/} command, a shortcut or a C{\\}
        escape.  A line that does not parse counts toward the flood limit.
        """
        first = line[:1]
        if not first or self._state != CHAT:
            if first and self._state == LOGIN:
                self._tell(NotLoggedIn("log in first"))
            return
        if self._ctx.idle is not None:
            self._ctx.idle.touch(self)
        try:
            # Every line is cleaned exactly once, here, so no argument, no
            # message and no error can carry a control character.
            if first not in "/:\\ \t":  # the common case: a plain message
                if not self._flooding():
                    self.say(clean(line))
                return
            try:
                command = parse(clean(line), self._ctx.commands)
            except ChatError:
                if self._flooding():  # mistakes count against the limit too
                    return
                raise
            if command is not None:
                self._run(command)
        except ChatError as e:
            self._tell(e)
        except Exception:
            self._failed()

    def command(self, command: Command) -> None:
        """
        Run C{command} (a front end's typed call: the browser's C{say}, an
        IRC C{PRIVMSG}): its text is cleaned here; a C{say} of nothing is
        nothing (as a blank line); then as a typed command.
        """
        if self._state != CHAT:
            if self._state == LOGIN:
                self._tell(NotLoggedIn("log in first"))
            return
        if self._ctx.idle is not None:
            self._ctx.idle.touch(self)
        arg, text = command.arg, command.text
        if not (arg.isprintable() and text.isprintable()):
            command = Command(command.name, clean(arg), clean(text), command.number,
                              command.echo)
        if command.name == "say" and not command.arg.strip():
            return
        try:
            self._run(command)
        except ChatError as e:
            self._tell(e)
        except Exception:
            self._failed()

    def _run(self, command: Command) -> None:
        """Apply the flood limit (unless the command is exempt) and dispatch."""
        commands = self._ctx.commands
        spec = commands.get(command.name)
        if spec is None:
            if self._flooding():
                return
            raise UnknownCommand("unknown command /%s (try /help)" % command.name)
        # /quit is never held back: a flooder can always leave.
        if spec.limited and self._flooding():
            return
        commands.dispatch(self, spec, command)

    def _failed(self) -> None:
        self.log.failure("line from {name} failed", name=self.user.name)
        self._tell(ServerFailure("the server failed to handle that line; it was dropped"))

    def _tell(self, error: ChatError) -> None:
        """Send C{error} as one L{Error} event carrying its code."""
        self._front.send(Error(str(error), error.code))

    def flooding(self) -> bool:
        """
        Take a token for a line a front end answers itself (IRC's WHO,
        NAMES...): C{True} (told, counted) if the flood limit drops it.
        """
        return self._state == CHAT and self._flooding()

    def _flooding(self) -> bool:
        """Take a token; when there is none, say so and return C{True}."""
        bucket = self._bucket
        if bucket is None or type(bucket) is float:
            config = self._ctx.config
            if config.rate <= 0:  # no limit: only the line's time, for /whois
                self._bucket = float(self._ctx.clock.seconds())
                return False
            bucket = self._bucket = TokenBucket(self._ctx.clock, config.rate, config.burst)
        assert isinstance(bucket, TokenBucket)
        if bucket.take():
            return False
        bucket.dropped += 1
        self._ctx.server.observer.line_dropped()
        if not bucket.warned:  # log once per flood, not once per line
            bucket.warned = True
            self.log.warn("{name} is flooding; dropping lines", name=self.user.name)
        # Tell the client at most once a second: an answer per dropped line
        # would let a flooder make the server write more than it reads.
        now = self._ctx.clock.seconds()
        if now - bucket.told >= 1.0:
            bucket.told = now
            self._tell(Flooding(
                "slow down (at most %g lines a second); lines are being dropped"
                % self._ctx.config.rate))
        return True

    def say(self, text: str, action: bool = False, echo: bool = False,
            room: str | None = None) -> None:
        """
        Say cleaned C{text} to the current room, or to C{room} (a room key),
        as an action with C{action}; with C{echo} (said on the user's
        behalf) show the user what.
        """
        # Cleaning can leave nothing, or nothing anyone could see.
        if visible(text):
            self._ctx.server.say(self.user, text, action, room)
            if echo:  # said on the user's behalf: show them what (no echo otherwise)
                self._front.send(Info("You said: " + text))

    # -- accounts ---------------------------------------------------------------

    def register(self, password: str) -> Deferred[Account | None]:
        """
        C{/register}: make the user's name an account with C{password}
        (hashed off the reactor thread).  A mistake raises a L{ChatError}
        at once; a failure later (the name registered meanwhile) is told.
        Fires with the account (C{None} if refused later).
        """
        visitor = cast(Visitor, self._visitor)
        if visitor.account is not None:
            raise RegistrationRefused("you are registered already (/password changes it)")
        if self._ctx.config.registration != "open" and not visitor.operator:
            raise RegistrationRefused(
                "registration is closed on this server; an operator creates accounts")
        _check_password(password)
        host = self._front.peer_host()
        registrations = self._ctx.registrations
        if registrations is not None and registrations.full(host):
            raise RegistrationRefused(
                "too many registrations from your address; try again in an hour")
        if self._ctx.accounts.get(visitor.name) is not None:
            raise RegistrationRefused("%s is registered already" % visitor.name)
        if registrations is not None:
            registrations.add(host)
        name = visitor.name

        def store(hash: str) -> Account | None:
            try:
                account = self._ctx.accounts.add(name, hash)
            except AccountExists:
                self._tell(RegistrationRefused("%s is registered already" % name))
                return None
            if visitor.name == name:  # still logged in as that name
                visitor.account = account
                visitor.operator = account.operator or name.casefold() in {
                    op.casefold() for op in self._ctx.config.operators}
                self._ctx.server.directory.changed(visitor)
                self._front.send(Info(
                    "%s is registered: from now on this name needs your password" % name))
            self.log.info("{name} registered from {peer}", name=name,
                          peer=self._front.describe_peer())
            return account

        d = self._ctx.hasher.hash(password).addCallback(store)
        d.addErrback(self._account_failed)
        return d

    def create_account(self, name: str, password: str) -> Deferred[Account | None]:
        """
        C{/addaccount} (operators only, also with C{--registration closed}):
        make an account C{name} with C{password}.  A mistake raises a
        L{ChatError} at once; a name registered meanwhile is told.
        """
        check_name(name)
        _check_password(password)
        if self._ctx.accounts.get(name) is not None:
            raise RegistrationRefused("%s is registered already" % name)

        def store(hash: str) -> Account | None:
            try:
                account = self._ctx.accounts.add(name, hash)
            except AccountExists:
                self._tell(RegistrationRefused("%s is registered already" % name))
                return None
            self._front.send(Info("created the account %s" % name))
            self.log.info("{operator} created the account {name}", operator=self.user.name,
                          name=name)
            return account

        d = self._ctx.hasher.hash(password).addCallback(store)
        d.addErrback(self._account_failed)
        return d

    def change_password(self, old: str, new: str) -> Deferred[bool]:
        """
        C{/password}: check C{old} (through the portal: a wrong one counts
        like a wrong login), then store C{new}'s hash.  Fires with whether
        it changed; a wrong C{old} is told (C{ERROR wrong password}).
        """
        account = self.account
        if account is None:
            raise RegistrationRefused("you are a guest; /register <password> first")
        _check_password(new)
        credentials = UsernamePassword(account.name.encode("utf-8", "surrogateescape"),
                                       old.encode("utf-8", "surrogateescape"))
        d: Deferred[Any] = self._ctx.portal.login(credentials, self._front, IVisitor)

        def checked(result: tuple[Any, Visitor, Any]) -> Deferred[bool]:
            return self._ctx.hasher.hash(new).addCallback(changed)

        def changed(hash: str) -> bool:
            try:
                self._ctx.accounts.set_hash(account.name, hash)
            except NoSuchAccount:
                self._tell(RegistrationRefused("your account was deleted meanwhile"))
                return False
            self._front.send(Info("password changed"))
            self.log.info("{name} changed their password", name=account.name)
            return True

        def wrong(failure: Failure) -> bool:
            failure.trap(UnauthorizedLogin)
            self._ctx.lockout.failed(self._front.peer_host())
            if failure.check(AccountThrottled):
                self._tell(AccountLocked("too many attempts for this account; wait a minute"))
            else:
                self._tell(WrongPassword("wrong password"))
            return False

        d.addCallbacks(checked, wrong)
        d.addErrback(self._account_failed)
        return d

    def verify_operator(self, name: str, password: str) -> Deferred[bool]:
        """
        IRC's C{OPER <account> <password>}: check C{password} for the
        account C{name} through the portal (the same hasher and throttles
        as a login; a wrong one counts toward the address's lockout).
        Fires with whether that account is an operator; if so, this
        session becomes one (the status SPEC 8 gives an operator's login).
        A wrong password fails with L{WrongPassword}, a throttled account
        with L{AccountLocked}; neither is told (the front end answers).
        """
        credentials = UsernamePassword(name.strip().encode("utf-8", "surrogateescape"),
                                       password.encode("utf-8", "surrogateescape"))
        d: Deferred[Any] = self._ctx.portal.login(credentials, self._front, IVisitor)

        def checked(result: tuple[Any, Visitor, Any]) -> bool:
            _, checked_visitor, _ = result
            if not checked_visitor.operator:
                return False
            visitor = self._visitor
            if not isinstance(visitor, Visitor) or self._state == CLOSED:
                return False
            visitor.operator = True
            if visitor.name:
                self._ctx.server.directory.changed(visitor)
                account = checked_visitor.account
                self._ctx.server.opered(visitor, account.name if account else name)
            self.log.info("{peer} is an operator now (as {name})",
                          peer=self._front.describe_peer(), name=name)
            return True

        def wrong(failure: Failure) -> Failure | bool:
            if failure.check(UnhandledCredentials):  # a server without accounts
                return False
            failure.trap(UnauthorizedLogin)
            self._ctx.server.observer.login("wrong_password")
            self._ctx.lockout.failed(self._front.peer_host())
            if failure.check(AccountThrottled):
                return Failure(AccountLocked("too many attempts for this account; wait a minute"))
            return Failure(WrongPassword("wrong password"))

        d.addCallbacks(checked, wrong)
        return d

    def _account_failed(self, failure: Failure) -> None:
        self.log.failure("storing an account failed", failure)
        if self._state != CLOSED:
            self._tell(ServerFailure("the server failed to store that; try again later"))
        return None

    def quit(self, reason: str = "") -> None:
        """Leave (the room hears why) and close."""
        self._do_logout("quit (%s)" % reason if reason else "quit")
        self.close()

    # -- the end ----------------------------------------------------------------

    def _do_logout(self, why: str) -> bool:
        """Take the member offline; C{False} if there was none (never logged in)."""
        visitor = self._visitor
        if visitor is None or visitor.member is None:
            return False
        self.log.info("{name} ({peer}) left: {why}", name=visitor.member.name,
                      peer=self._front.describe_peer(), why=why)
        visitor.logout(why)
        self._visitor = _LOGGED_OUT
        return True

    def close(self) -> None:
        """End the session and close the connection politely."""
        if self._state != CLOSED:
            self._state = CLOSED
            self._forget()
            self._front.close()

    def connection_lost(self) -> None:
        """The front end's connection is gone: free the name, tell the room."""
        self._state = CLOSED
        self._forget()
        # Each connection is logged twice: at login (or, for one that never
        # logs in, here) and when it ends. A line per TCP connect on top
        # would double the cost of a login for twistd's file log.
        if not self._do_logout("disconnected") and self._visitor is not _LOGGED_OUT:
            self.log.info("{peer} closed the connection without logging in",
                          peer=self._front.describe_peer())

    def _forget(self) -> None:
        self._ctx.deadlines.discard(self)
        if self._ctx.idle is not None:
            self._ctx.idle.discard(self)
        caller, self._waiting = self._waiting, None
        if caller is not None:  # a check still runs: its caller hears now
            caller.errback(LoginClosed("the session is closed"))

    def _bug(self, failure: Failure) -> Any:
        if failure.check(ChatError):  # a refusal already handled, passed on
            return failure
        self.log.failure("login failed for {peer}", failure, peer=self._front.describe_peer())
        if self._state == CLOSED:
            return None
        return self._end_login(LoginFailed("the server failed to log you in; try again later"))


def _check_password(password: str) -> None:
    """@raise BadPassword: unless C{password} is 8 to 128 characters."""
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise BadPassword("a password is %d to %d characters" % (low, high))
