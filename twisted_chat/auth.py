"""
The passcode gate, in twisted.cred's terms: L{Passcode} credentials, a
L{PasscodeChecker} that compares them in constant time, and a L{ChatRealm}
whose L{Visitor} avatar claims a name and frees it on logout.
"""

from __future__ import annotations

import hmac
from typing import Any, Callable

from twisted.cred.checkers import ANONYMOUS, ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from twisted_chat.chat import ChatServer, Member
from twisted_chat.interfaces import IPasscode, IVisitor, Participant


@implementer(IPasscode)
class Passcode:
    """What a client typed at the C{Passcode:} prompt."""

    __slots__ = ("passcode",)

    def __init__(self, passcode: bytes) -> None:
        self.passcode = passcode


@implementer(ICredentialsChecker)
class PasscodeChecker:
    """Accepts the one shared passcode; a passcode proves membership, not identity."""

    credentialInterfaces = (IPasscode,)

    def __init__(self, expected: bytes) -> None:
        self._expected = expected

    def requestAvatarId(self, credentials: IPasscode) -> Deferred[Any]:
        # compare_digest: constant time (cred's UsernamePassword compares with ==)
        if hmac.compare_digest(credentials.passcode, self._expected):
            return succeed(ANONYMOUS)
        return fail(UnauthorizedLogin("wrong passcode"))


@implementer(IVisitor)
class Visitor:
    """
    A session that passed the gate.  It becomes a L{Member} by claiming a
    name, and its logout takes that member offline.
    """

    __slots__ = ("_server", "_participant", "member")

    def __init__(self, server: ChatServer, participant: Participant) -> None:
        self._server = server
        self._participant = participant
        self.member: Member | None = None

    def claim_name(self, name: str) -> Member:
        """
        Take C{name} and join the lobby.

        @raise twisted_chat.errors.ChatError: if the name is bad or taken.
        """
        self.member = self._server.claim(name, self._participant)
        return self.member

    def logout(self, why: str = "disconnected") -> None:
        """Take the member (if any) offline, telling its room C{why}."""
        member, self.member = self.member, None
        if member is not None:
            self._server.remove(member, why)


@implementer(IRealm)
class ChatRealm:
    """Makes a L{Visitor} for each session that passes the gate."""

    def __init__(self, server: ChatServer) -> None:
        self._server = server

    def requestAvatar(
        self, avatarId: Any, mind: Participant, *interfaces: Any
    ) -> tuple[Any, Visitor, Callable[[], None]]:
        if IVisitor not in interfaces:
            raise NotImplementedError(interfaces)
        visitor = Visitor(self._server, mind)
        return IVisitor, visitor, visitor.logout
