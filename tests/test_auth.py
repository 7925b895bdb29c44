"""Tests for the twisted.cred pieces in L{twisted_chat.auth.cred}."""

from __future__ import annotations

from twisted.cred.checkers import ANONYMOUS, ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_chat.auth.cred import ChatRealm, Passcode, PasscodeChecker, Visitor
from twisted_chat.domain.server import ChatServer
from twisted_chat.errors import NameTaken
from twisted_chat.interfaces import IPasscode, IVisitor
from twisted_chat.storage.history import MemoryHistory

from .helpers import FakeParticipant


class PasscodeCheckerTests(SynchronousTestCase):
    """L{PasscodeChecker} accepts exactly the passcode."""

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(ICredentialsChecker, PasscodeChecker(b"x")))
        self.assertTrue(verifyObject(IPasscode, Passcode(b"x")))

    def test_right(self) -> None:
        d = PasscodeChecker(b"s3cret").requestAvatarId(Passcode(b"s3cret"))
        self.assertIs(self.successResultOf(d), ANONYMOUS)

    def test_wrong(self) -> None:
        for guess in (b"", b"s3cre", b"s3cret ", b"S3CRET", b"s3cret\x00"):
            d = PasscodeChecker(b"s3cret").requestAvatarId(Passcode(guess))
            self.failureResultOf(d, UnauthorizedLogin)


class RealmTests(SynchronousTestCase):
    """L{ChatRealm} hands out L{Visitor}s whose logout frees the name."""

    def setUp(self) -> None:
        self.server = ChatServer(MemoryHistory(), Clock())
        self.realm = ChatRealm(self.server)
        self.portal = Portal(self.realm, [PasscodeChecker(b"x")])

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(IRealm, self.realm))
        self.assertTrue(verifyObject(IVisitor, Visitor(self.server, FakeParticipant())))

    def test_login_claim_logout(self) -> None:
        participant = FakeParticipant()
        iface, visitor, logout = self.successResultOf(
            self.portal.login(Passcode(b"x"), participant, IVisitor))
        self.assertIs(iface, IVisitor)
        member = self.successResultOf(visitor.claim_name("alice"))
        self.assertIs(member.participant, participant)
        self.failureResultOf(self.server.claim("Alice", FakeParticipant()), NameTaken)
        logout()
        self.assertEqual(self.server.members, {})
        logout()  # twice is harmless

    def test_wrong_passcode(self) -> None:
        self.failureResultOf(self.portal.login(Passcode(b"y"), None, IVisitor),
                             UnauthorizedLogin)

    def test_other_interface_refused(self) -> None:
        self.assertRaises(NotImplementedError, self.realm.requestAvatar, ANONYMOUS, None, IPasscode)
