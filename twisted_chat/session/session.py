"""
One user's session, whatever the front end: the login dialogue through the
twisted.cred portal, then each line parsed and dispatched to the domain.
ChatError becomes one C{ERROR} event here and nowhere else.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.cred.credentials import Anonymous
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.auth.cred import Passcode, Visitor
from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.commands import Command, parse
from twisted_chat.config import ChatConfig
from twisted_chat.errors import ChatError
from twisted_chat.domain.events import Error, Goodbye, Info, Prompt, Welcome
from twisted_chat.interfaces import IPasscode, IVisitor, Participant
from twisted_chat.limits import ConnectionLimits, Deadlines, PasscodeLockout
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.text import clean, visible


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

    @classmethod
    def create(
        cls, server: ChatServer, portal: Portal, config: ChatConfig, clock: IReactorTime
    ) -> SessionContext:
        """The context for C{config}'s limits and timeouts."""
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
        )

    @property
    def needs_passcode(self) -> bool:
        """Whether the gate asks for a passcode (else it lets anyone in)."""
        return IPasscode in self.portal.listCredentialsInterfaces()


class _LoggedOut:
    """Stands in for the visitor once its member has left."""

    __slots__ = ()
    member = None


_LOGGED_OUT = _LoggedOut()

# Session states.
PASSCODE, CHECKING, PAUSED, NAME, CHAT, CLOSED = range(6)

# Bad names one connection may try before it is closed: each draws a reply,
# so without a bound a pipelined list of names makes the server write more
# than it reads.
MAX_BAD_NAMES = 10

# A first line that is an HTTP request line (a browser, curl or a health
# check pointed at the telnet port).
_HTTP_REQUEST = re.compile(
    r"(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) \S+ HTTP/\d(?:\.\d)?\Z")


class ChatSession:
    """
    The dialogue with one user.  A front end hands it decoded lines with
    L{line_received} and calls L{connection_lost} at the end.

    @ivar dropped: how many lines the flood limit dropped (a front end that
        answers each line compares it before and after L{line_received}).
    """

    # _attempts counts wrong passcodes, then (from the Username: prompt) bad names.
    __slots__ = ("_ctx", "_front", "_state", "_visitor", "_attempts", "_bucket", "dropped")
    log = Logger()

    def __init__(self, context: SessionContext, front: Frontend) -> None:
        self._ctx = context
        self._front = front
        self._state = PASSCODE
        self._visitor: Visitor | None = None
        self._attempts = 0
        self._bucket: TokenBucket | None = None
        self.dropped = 0

    @property
    def member(self) -> Member | None:
        """The logged-in member, or C{None} before login and after logout."""
        return self._visitor.member if self._visitor is not None else None

    def start(self, needs_passcode: bool) -> None:
        """Begin the dialogue (the front end has sent its greeting)."""
        self._ctx.deadlines.touch(self)
        if needs_passcode:
            if not self._locked_out():
                self._front.send(Prompt("passcode"))
        else:
            self._login(Anonymous())

    def _locked_out(self) -> bool:
        """Refuse and close if this address guessed wrong too often lately."""
        left = self._ctx.lockout.remaining(self._front.peer_host())
        if not left:
            return False
        self._ctx.server.observer.login("locked_out")
        self._front.send(Error(
            "too many wrong passcodes from your address; try again in %d s" % (left + 0.999)))
        self.close()
        return True

    def _not_http(self, text: str) -> bool:
        """
        Answer a first line that is an HTTP request with where the page is,
        and close; such a line is not a wrong passcode or a bad name.
        """
        if self._attempts or not _HTTP_REQUEST.match(text):
            return True
        web = self._ctx.listening.get("web")
        if web is None:
            self._front.send(Error(
                "this is the chat's telnet port, not HTTP; connect with telnet or chat-client"))
        else:
            if "//0.0.0.0:" in web or "//[::]:" in web:  # every interface: the one used
                local = getattr(getattr(self._front, "transport", None), "getHost", None)
                host = getattr(local(), "host", None) if local is not None else None
                if host:
                    host = "[%s]" % host if ":" in host else host
                    web = re.sub(r"//(0\.0\.0\.0|\[::\]):", "//%s:" % host, web)
            self._front.send(Error(
                "this is the chat's telnet port, not HTTP; open %s in a browser" % web))
        self.log.info("{peer} sent HTTP to the telnet port; told it where the page is",
                      peer=self._front.describe_peer())
        self.close()
        return False

    def _passcode_received(self, text: str) -> None:
        if not self._locked_out() and self._not_http(text):
            self._login(Passcode(text.encode("utf-8", "surrogateescape")))

    # -- login ------------------------------------------------------------

    def _login(self, credentials: object) -> None:
        self._state = CHECKING
        d = self._ctx.portal.login(credentials, self._front, IVisitor)
        d.addCallbacks(self._logged_in, self._refused)
        d.addErrback(self._bug, "login")
        if self._state == CHECKING:  # the checker answers later: hold the lines
            self._state = PAUSED
            self._front.pause_input()

    def _resume_after(self, state: int) -> None:
        was_paused = self._state == PAUSED
        self._state = state
        if was_paused:
            self._front.resume_input()

    def _logged_in(self, result: tuple[Any, Visitor, Any]) -> None:
        # The realm's logout callable is the visitor's logout; calling it on
        # the visitor lets the room hear why (quit or disconnected).
        _, self._visitor, _ = result
        self._attempts = 0  # from now on: bad names
        if self._state == CLOSED:  # the connection went while we waited
            self._do_logout("disconnected")
            return
        self._front.send(Prompt("username"))  # before any held line is answered
        self._resume_after(NAME)

    def _refused(self, failure: Failure) -> None:
        failure.trap(UnauthorizedLogin)
        if self._state == CLOSED:
            return
        self._attempts += 1
        self._ctx.server.observer.login("wrong_passcode")
        if self._attempts == 1:
            # One wrong passcode per connection counts towards the address's
            # lockout: a client that sends several lines at once (curl, a
            # TLS client at the plain port) is one mistake, not three.
            self._ctx.lockout.failed(self._front.peer_host())
        self.log.warn(
            "wrong passcode from {peer} (attempt {attempt})",
            peer=self._front.describe_peer(),
            attempt=self._attempts,
        )
        if self._attempts >= self._ctx.config.login_attempts:
            self._front.send(Error("too many attempts"))
            self.close()
            return
        self._front.send(Error("wrong passcode"))
        self._front.send(Prompt("passcode"))
        self._resume_after(PASSCODE)

    def _name_received(self, text: str) -> None:
        if not self._ctx.needs_passcode and not self._not_http(text):
            return
        # The directory may answer later: hold the lines meanwhile, as for
        # the passcode check.
        self._state = CHECKING
        d = self._visitor.claim_name(text.strip())
        d.addCallbacks(self._claimed, self._name_refused)
        d.addErrback(self._bug, "login")
        if self._state == CHECKING:
            self._state = PAUSED
            self._front.pause_input()

    def _name_refused(self, failure: Failure) -> None:
        failure.trap(ChatError)
        if self._state == CLOSED:
            return
        self._attempts += 1
        if self._attempts >= MAX_BAD_NAMES:
            self._front.send(Error("too many bad names"))
            self.close()
            return
        self._front.send(Error(str(failure.value)))
        self._front.send(Prompt("username"))
        self._resume_after(NAME)

    def _claimed(self, member: Member) -> None:
        if self._state == CLOSED:  # the connection went while we waited
            self._do_logout("disconnected")
            return
        was_paused = self._state == PAUSED
        self._state = CHAT
        self._ctx.deadlines.discard(self)
        if self._ctx.idle is not None:
            self._ctx.idle.touch(self)
        self.log.info(
            "{name} logged in from {peer}", name=member.name, peer=self._front.describe_peer()
        )
        self._front.send(Welcome(member.name, LOBBY))
        self._ctx.server.join(member, LOBBY)
        if was_paused:  # held lines are answered after the welcome
            self._front.resume_input()

    def timed_out(self) -> None:
        """The login deadline passed."""
        self._ctx.server.observer.login("timed_out")
        self.log.info("login timed out for {peer}", peer=self._front.describe_peer())
        self._front.send(Error("login timed out"))
        self.close()

    def idle_timed_out(self) -> None:
        """Nothing was sent for the idle timeout."""
        timeout = self._ctx.config.idle_timeout
        self._front.send(Error("disconnected after %g s without a line" % timeout))
        self._do_logout("timed out (idle)")
        self.close()

    # -- lines ------------------------------------------------------------

    def line_received(self, text: str) -> None:
        """Handle one line the user sent (decoded, without its terminator)."""
        state = self._state
        if state == CHAT:
            self._chat_line(text)
        elif state == PASSCODE:
            self._passcode_received(text)
        elif state == NAME:
            self._name_received(text)
        # CHECKING/PAUSED cannot get here (input is held); CLOSED drops lines.

    def _chat_line(self, text: str) -> None:
        first = text[:1]
        if not first:
            return
        if self._ctx.idle is not None:
            self._ctx.idle.touch(self)
        try:
            # Every line is cleaned exactly once, here, so no argument, no
            # message and no error can carry a control character.
            if first not in "/:\\ \t":  # the common case: a plain message
                if not self._flooding():
                    self._say(clean(text))
                return
            try:
                command = parse(clean(text))
            except ChatError:
                if self._flooding():  # mistakes count against the limit too
                    return
                raise
            if command is None:
                return
            # /quit is never held back: a flooder can always leave.
            if command.name == "quit" or not self._flooding():
                _HANDLERS[command.name](self, command)
        except ChatError as e:
            self._front.send(Error(str(e)))
        except Exception:
            self.log.failure("line from {name} failed", name=self.member.name)
            self._front.send(Error("the server failed to handle that line; it was dropped"))

    def _flooding(self) -> bool:
        """Take a token; when there is none, say so and return C{True}."""
        bucket = self._bucket
        if bucket is None:
            config = self._ctx.config
            if config.rate <= 0:
                return False
            bucket = self._bucket = TokenBucket(self._ctx.clock, config.rate, config.burst)
        if bucket.take():
            return False
        self.dropped += 1
        self._ctx.server.observer.line_dropped()
        if not bucket.warned:  # log once per flood, not once per line
            bucket.warned = True
            self.log.warn("{name} is flooding; dropping lines", name=self.member.name)
        # Tell the client at most once a second: an answer per dropped line
        # would let a flooder make the server write more than it reads.
        now = self._ctx.clock.seconds()
        if now - bucket.told >= 1.0:
            bucket.told = now
            self._front.send(Error(
                "slow down (at most %g lines a second); lines are being dropped"
                % self._ctx.config.rate))
        return True

    def _say(self, text: str, action: bool = False, echo: bool = False) -> None:
        # Cleaning can leave nothing, or nothing anyone could see.
        if visible(text):
            self._ctx.server.say(self.member, text, action)
            if echo:  # said on the user's behalf: show them what (no echo otherwise)
                self._front.send(Info("You said: " + text))

    def _do_say(self, command: Command) -> None:
        self._say(command.arg, echo=command.echo)

    def _do_me(self, command: Command) -> None:
        self._say(command.arg, action=True)

    def _do_time(self, command: Command) -> None:
        self._say(time.ctime(self._ctx.clock.seconds() + command.number), echo=True)

    def _do_join(self, command: Command) -> None:
        self._ctx.server.join(self.member, command.arg)

    def _do_leave(self, command: Command) -> None:
        self._ctx.server.leave(self.member)

    def _do_rooms(self, command: Command) -> None:
        self._ctx.server.room_list(self.member)

    def _do_users(self, command: Command) -> None:
        self._ctx.server.users(self.member, everyone=bool(command.number))

    def _do_msg(self, command: Command) -> None:
        if not visible(command.text):
            raise ChatError("that message is empty")
        self._ctx.server.message(self.member, command.arg, command.text)

    def _do_history(self, command: Command) -> None:
        self._ctx.server.recall(self.member, command.number)

    def _do_search(self, command: Command) -> None:
        self._ctx.server.search(self.member, command.arg.strip())

    def _do_help(self, command: Command) -> None:
        self._ctx.server.help(self.member)

    def _do_quit(self, command: Command) -> None:
        reason = command.arg.strip()
        self._front.send(Goodbye())
        self._do_logout("quit (%s)" % reason if reason else "quit")
        self.close()

    # -- the end ----------------------------------------------------------

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

    def _bug(self, failure: Failure, what: str) -> None:
        self.log.failure("{what} failed for {peer}", failure, what=what,
                         peer=self._front.describe_peer())
        if self._state != CLOSED:
            self._front.send(Error("the server failed to log you in; try again later"))
            self.close()


_HANDLERS = {
    "say": ChatSession._do_say,
    "me": ChatSession._do_me,
    "time": ChatSession._do_time,
    "join": ChatSession._do_join,
    "leave": ChatSession._do_leave,
    "rooms": ChatSession._do_rooms,
    "users": ChatSession._do_users,
    "msg": ChatSession._do_msg,
    "history": ChatSession._do_history,
    "search": ChatSession._do_search,
    "help": ChatSession._do_help,
    "quit": ChatSession._do_quit,
}
