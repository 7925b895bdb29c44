"""
One user's session, whatever the front end: the login dialogue through the
twisted.cred portal, then each line parsed and dispatched to the domain.
ChatError becomes one C{ERROR} event here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.cred.credentials import Anonymous
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.auth import Passcode, Visitor
from twisted_chat.chat import LOBBY, ChatServer, Member
from twisted_chat.commands import Command, parse
from twisted_chat.config import ChatConfig
from twisted_chat.errors import ChatError
from twisted_chat.events import Error, Goodbye, Prompt, Welcome
from twisted_chat.interfaces import IPasscode, IVisitor, Participant
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.text import clean


class Frontend(Participant, Protocol):
    """A participant that a session can also pause and describe."""

    def pause_input(self) -> None:
        """Stop handing the session lines until L{resume_input}."""

    def resume_input(self) -> None:
        """Hand the session lines again."""

    def describe_peer(self) -> str:
        """Where the connection comes from, for the log."""


class LoginDeadlines:
    """
    Closes sessions that have not logged in within C{timeout} seconds, with
    one shared periodic sweep rather than a timer per connection.  The sweep
    runs only while some session is logging in.
    """

    def __init__(self, clock: IReactorTime, timeout: float, interval: float = 1.0) -> None:
        self._clock = clock
        self._timeout = timeout
        self._interval = interval
        # insertion order is deadline order: every session gets the same timeout
        self._pending: dict[ChatSession, float] = {}
        self._sweeper: LoopingCall | None = None

    def add(self, session: ChatSession) -> None:
        """Start the clock on C{session}."""
        self._pending[session] = self._clock.seconds() + self._timeout
        if self._sweeper is None:
            self._sweeper = LoopingCall(self._sweep)
            self._sweeper.clock = self._clock
            self._sweeper.start(self._interval, now=False)

    def discard(self, session: ChatSession) -> None:
        """C{session} logged in or went away."""
        self._pending.pop(session, None)
        if not self._pending:
            self._stop()

    def _stop(self) -> None:
        if self._sweeper is not None:
            sweeper, self._sweeper = self._sweeper, None
            sweeper.stop()

    def _sweep(self) -> None:
        now = self._clock.seconds()
        expired = []
        for session, deadline in self._pending.items():
            if deadline > now:
                break
            expired.append(session)
        for session in expired:
            del self._pending[session]
            session.timed_out()
        if not self._pending:
            self._stop()

    def close_all(self) -> None:
        """Close every session still logging in (the server is stopping)."""
        pending, self._pending = self._pending, {}
        self._stop()
        for session in pending:
            session.close()


@dataclass(frozen=True)
class SessionContext:
    """What every session of a server shares."""

    server: ChatServer
    portal: Portal
    config: ChatConfig
    clock: IReactorTime
    deadlines: LoginDeadlines

    @property
    def needs_passcode(self) -> bool:
        """Whether the gate asks for a passcode (else it lets anyone in)."""
        return IPasscode in self.portal.listCredentialsInterfaces()


# Session states.
PASSCODE, CHECKING, PAUSED, NAME, CHAT, CLOSED = range(6)


class ChatSession:
    """
    The dialogue with one user.  A front end hands it decoded lines with
    L{line_received} and calls L{connection_lost} at the end.
    """

    __slots__ = ("_ctx", "_front", "_state", "_visitor", "_attempts", "_bucket")
    log = Logger()

    def __init__(self, context: SessionContext, front: Frontend) -> None:
        self._ctx = context
        self._front = front
        self._state = PASSCODE
        self._visitor: Visitor | None = None
        self._attempts = 0
        self._bucket: TokenBucket | None = None

    @property
    def member(self) -> Member | None:
        """The logged-in member, or C{None} before login and after logout."""
        return self._visitor.member if self._visitor is not None else None

    def start(self, needs_passcode: bool) -> None:
        """Begin the dialogue (the front end has sent its greeting)."""
        self._ctx.deadlines.add(self)
        if needs_passcode:
            self._front.send(Prompt("passcode"))
        else:
            self._login(Anonymous())

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
        if self._state == CLOSED:  # the connection went while we waited
            self._do_logout("disconnected")
            return
        self._resume_after(NAME)
        self._front.send(Prompt("username"))

    def _refused(self, failure: Failure) -> None:
        failure.trap(UnauthorizedLogin)
        if self._state == CLOSED:
            return
        self._attempts += 1
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
        name = text.strip()
        try:
            member = self._visitor.claim_name(name)
        except ChatError as e:
            self._front.send(Error(str(e)))
            self._front.send(Prompt("username"))
            return
        self._state = CHAT
        self._ctx.deadlines.discard(self)
        self.log.info(
            "{name} logged in from {peer}", name=member.name, peer=self._front.describe_peer()
        )
        self._front.send(Welcome(member.name, LOBBY))
        self._ctx.server.join(member, LOBBY)

    def timed_out(self) -> None:
        """The login deadline passed."""
        self.log.info("login timed out for {peer}", peer=self._front.describe_peer())
        self._front.send(Error("login timed out"))
        self.close()

    # -- lines ------------------------------------------------------------

    def line_received(self, text: str) -> None:
        """Handle one line the user sent (decoded, without its terminator)."""
        state = self._state
        if state == CHAT:
            self._chat_line(text)
        elif state == PASSCODE:
            self._login(Passcode(text.encode("utf-8", "surrogateescape")))
        elif state == NAME:
            self._name_received(text)
        # CHECKING/PAUSED cannot get here (input is held); CLOSED drops lines.

    def _chat_line(self, text: str) -> None:
        first = text[:1]
        if not first:
            return
        try:
            if first not in "/:\\ \t":  # the common case: a plain message
                if not self._flooding():
                    self._say(text)
                return
            try:
                command = parse(text)
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
        if not bucket.warned:  # log once per flood, not once per line
            bucket.warned = True
            self.log.warn("{name} is flooding; dropping lines", name=self.member.name)
        self._front.send(Error("slow down (at most %g lines a second)" % self._ctx.config.rate))
        return True

    def _say(self, text: str, action: bool = False) -> None:
        text = clean(text)
        if text.strip():
            self._ctx.server.say(self.member, text, action)

    def _do_say(self, command: Command) -> None:
        self._say(command.arg)

    def _do_me(self, command: Command) -> None:
        self._say(command.arg, action=True)

    def _do_time(self, command: Command) -> None:
        self._say(time.ctime(self._ctx.clock.seconds() + command.number))

    def _do_join(self, command: Command) -> None:
        self._ctx.server.join(self.member, command.arg)

    def _do_leave(self, command: Command) -> None:
        self._ctx.server.leave(self.member)

    def _do_rooms(self, command: Command) -> None:
        self._ctx.server.room_list(self.member)

    def _do_users(self, command: Command) -> None:
        self._ctx.server.users(self.member, everyone=bool(command.number))

    def _do_msg(self, command: Command) -> None:
        text = clean(command.text)
        if not text.strip():
            raise ChatError("that message is empty")
        self._ctx.server.message(self.member, command.arg, text)

    def _do_history(self, command: Command) -> None:
        self._ctx.server.recall(self.member, command.number)

    def _do_help(self, command: Command) -> None:
        self._ctx.server.help(self.member)

    def _do_quit(self, command: Command) -> None:
        reason = clean(command.arg).strip()
        self._front.send(Goodbye())
        self._do_logout("quit (%s)" % reason if reason else "quit")
        self.close()

    # -- the end ----------------------------------------------------------

    def _do_logout(self, why: str) -> None:
        visitor = self._visitor
        if visitor is not None and visitor.member is not None:
            self.log.info("{name} left: {why}", name=visitor.member.name, why=why)
            visitor.logout(why)

    def close(self) -> None:
        """End the session and close the connection politely."""
        if self._state != CLOSED:
            self._state = CLOSED
            self._ctx.deadlines.discard(self)
            self._front.close()

    def connection_lost(self) -> None:
        """The front end's connection is gone: free the name, tell the room."""
        self._state = CLOSED
        self._ctx.deadlines.discard(self)
        self._do_logout("disconnected")

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
    "help": ChatSession._do_help,
    "quit": ChatSession._do_quit,
}
