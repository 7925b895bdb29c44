"""
The line front end's login dialogue: C{Passcode:}, C{Username:} and (for a
registered name) C{Password:} prompts over the session's typed calls, then
every line to L{ChatSession.text}.
Only the line (telnet) front end uses it; the browser and IRC call the
session directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.domain.events import Error, Prompt
from twisted_chat.domain.server import Member
from twisted_chat.errors import ChatError, WrongProtocol
from twisted_chat.fired import NOT_YET, result_now
from twisted_chat.session.session import ChatSession, Frontend

# A first line that is an HTTP request line (a browser, curl or a health
# check pointed at the telnet port).
HTTP_REQUEST = re.compile(
    r"(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) \S+ HTTP/\d(?:\.\d)?\Z")

# Dialogue states.
PASSCODE, NAME, WAITING, CHAT, CLOSED, PASSWORD = range(6)


class LineDialogue:
    """
    Asks for the passcode (when the server has one) and the name, hands
    each answer to the session, asks again after a refusal (the session has
    sent the C{ERROR} line), and after the login hands every line to
    L{ChatSession.text}.  A first line that is an HTTP request is told where
    the page is and closed, without counting as a wrong passcode or name.

    Once L{done}, a front end may drop it and hand lines to
    L{ChatSession.text} itself (an idle connection then keeps no dialogue).
    """

    __slots__ = ("_session", "_front", "_listening", "_state", "_first", "_name", "_prompted")
    log = Logger()

    def __init__(self, session: ChatSession, front: Frontend,
                 listening: dict[str, str] | None = None,
                 prompted: Callable[[str | None], object] | None = None) -> None:
        """
        @param listening: where the listeners listen, by kind (the
            session context's): C{"web"} names the page for HTTP clients.
        @param prompted: told each prompt's field just before it is sent,
            and C{None} once logged in (telnet hides input at some prompts).
        """
        self._session = session
        self._front = front
        self._listening = listening if listening is not None else {}
        self._state = PASSCODE
        self._first = True
        self._name = ""  # the registered name whose password is asked
        self._prompted = prompted

    def start(self) -> None:
        """Start the session and send the first prompt (after the greeting)."""
        if not self._session.start():
            self._state = CLOSED
        elif self._session.needs_passcode:
            self._ask(PASSCODE, "passcode")
        else:
            self._ask(NAME, "username")

    def _ask(self, state: int, field: str) -> None:
        self._state = state
        if self._prompted is not None:
            self._prompted(field)
        self._front.send(Prompt(field))

    def line_received(self, line: str) -> None:
        """One line from the client (decoded, without its terminator)."""
        state = self._state
        if state == CHAT:
            self._session.text(line)
            return
        if self._first:
            self._first = False
            if HTTP_REQUEST.match(line):
                self._http()
                return
        if state == PASSCODE:
            self._state = WAITING
            d: Any = self._session.authenticate(line.encode("utf-8", "surrogateescape"))
            if result_now(d) is NOT_YET:
                d.addCallbacks(self._authenticated, self._refused)
            else:  # passed at once (the passcode gate): no Deferred callbacks
                self._authenticated(None)
        elif state == NAME:
            self._state = WAITING
            self._name = line
            d = self._session.log_in(None, line)
            member = result_now(d)
            if member is NOT_YET:
                d.addCallbacks(self._claimed, self._refused)
            else:
                self._claimed(member)
        elif state == PASSWORD:
            self._state = WAITING
            d = self._session.log_in(None, self._name, password=line)
            d.addCallbacks(self._claimed, self._refused)
        # WAITING cannot get here (the session holds input while it checks);
        # CLOSED drops lines.

    def _authenticated(self, _: None) -> None:
        self._ask(NAME, "username")

    @property
    def done(self) -> bool:
        """Whether the login is over: every line now goes to the session."""
        return self._state == CHAT

    def _claimed(self, member: Member) -> None:
        self._state = CHAT
        if self._prompted is not None:
            self._prompted(None)

    def _refused(self, failure: Failure) -> None:
        failure.trap(ChatError)
        if self._session.closed:
            self._state = CLOSED
        elif cast(ChatError, failure.value).field == "passcode":
            self._ask(PASSCODE, "passcode")
        elif cast(ChatError, failure.value).field == "password":
            self._ask(PASSWORD, "password")
        else:
            self._ask(NAME, "username")

    def _http(self) -> None:
        """Answer an HTTP request line with where the page is, and close."""
        web = self._listening.get("web")
        if web is None:
            error = WrongProtocol(
                "this is the chat's telnet port, not HTTP; connect with telnet or chat-client")
        else:
            if "//0.0.0.0:" in web or "//[::]:" in web:  # every interface: the one used
                local = getattr(getattr(self._front, "transport", None), "getHost", None)
                host = getattr(local(), "host", None) if local is not None else None
                if host:
                    host = "[%s]" % host if ":" in host else host
                    web = re.sub(r"//(0\.0\.0\.0|\[::\]):", "//%s:" % host, web)
            error = WrongProtocol(
                "this is the chat's telnet port, not HTTP; open %s in a browser" % web)
        self._front.send(Error(str(error), error.code))
        self.log.info("{peer} sent HTTP to the telnet port; told it where the page is",
                      peer=self._front.describe_peer())
        self._state = CLOSED
        self._session.close()
