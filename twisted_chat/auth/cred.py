"""
The passcode gate, in twisted.cred's terms: L{Passcode} credentials, a
L{PasscodeChecker} that compares them in constant time, and a L{ChatRealm}
whose L{Visitor} avatar claims a name and frees it on logout.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, cast

from twisted.cred.checkers import ANONYMOUS, ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from twisted_chat.domain.server import ChatServer, Member
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
class Visitor(Member):
    """
    A session that passed the gate: a member-to-be.  Claiming a name makes
    it a L{Member} of the server (the avatar is the member, so a logged-in
    user costs one object, not two); its logout takes it offline.
    """

    __slots__ = ("_server",)

    def __init__(self, server: ChatServer, participant: Participant) -> None:
        super().__init__(participant)
        self._server = server

    @property
    def member(self) -> Member | None:
        """The member this visitor became, or C{None} before a name or after logout."""
        return self if self.name else None

    def claim_name(self, name: str) -> Deferred[Member]:
        """
        Take C{name} (not yet joining any room): a Deferred firing with the
        member, or failing with a L{twisted_chat.errors.ChatError} if the
        name is bad or taken.
        """
        return self._server.claim(name, self.participant, member=self)

    def logout(self, why: str = "disconnected") -> None:
        """Take the member (if any) offline, telling its room C{why}."""
        if self.name:
            self._server.remove(self, why)
            self.name = ""


@implementer(IRealm)
class ChatRealm:
    """Makes a L{Visitor} for each session that passes the gate."""

    def __init__(self, server: ChatServer) -> None:
        self._server = server

    def requestAvatar(
        self, avatarId: Any, mind: object, *interfaces: Any
    ) -> tuple[Any, Visitor, Callable[[], None]]:
        if IVisitor not in interfaces:
            raise NotImplementedError(interfaces)
        # IRealm types the mind as object; ours is always the session's
        # front end, passed to portal.login by ChatSession.
        visitor = Visitor(self._server, cast(Participant, mind))
        return IVisitor, visitor, visitor.logout
