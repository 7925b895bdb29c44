"""
The gate, in twisted.cred's terms: L{Passcode} credentials, a
L{PasscodeChecker} that compares them in constant time, an
L{AccountChecker} for registered names (C{IUsernamePassword}: argon2id
hashes from the account store, on the same Portal), and a L{ChatRealm}
whose L{Visitor} avatar knows its account (if any), claims a name and
frees it on logout.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any, cast

from twisted.cred.checkers import ANONYMOUS, ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_chat.auth.hashing import Hasher
from twisted_chat.domain.server import ChatServer, Member
from twisted_chat.interfaces import IPasscode, IVisitor, Participant
from twisted_chat.limits import RecentCount
from twisted_chat.storage.accounts import Account, AccountStore


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


class AccountThrottled(UnauthorizedLogin):
    """The account had its wrong passwords for this minute: not even checked."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


@implementer(ICredentialsChecker)
class AccountChecker:
    """
    Checks a registered name's password (C{IUsernamePassword}) against the
    hash in the account store, read at each login (no cache: an account
    added or a password changed by C{chat-admin} counts at once).  The
    avatar ID is the L{Account}.

    A name without an account costs a dummy verify, so the time taken says
    nothing about which names exist.  An account takes at most
    C{throttle.limit} wrong passwords per C{throttle.window} from anywhere
    (then L{AccountThrottled}, without checking).  A hash made with older
    parameters is replaced after a successful login.
    """

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, store: AccountStore, hasher: Hasher, throttle: RecentCount) -> None:
        self._store = store
        self._hasher = hasher
        self._throttle = throttle

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[Any]:
        name = _text(credentials.username)
        password = _text(credentials.password)
        key = name.casefold()
        if self._throttle.full(key):
            return fail(AccountThrottled("too many wrong passwords for this account"))
        account = self._store.get(name)
        if account is None:
            d = self._hasher.dummy_verify(password)
        else:
            d = self._hasher.verify(account.hash, password)
        return d.addCallback(self._verified, account, key, password)

    def _verified(self, ok: bool, account: Account | None, key: str,
                  password: str) -> Any:
        if not ok or account is None:
            self._throttle.add(key)
            return Failure(UnauthorizedLogin("wrong password"))
        if self._hasher.needs_rehash(account.hash):
            d = self._hasher.hash(password)
            d.addCallback(lambda new: self._store.set_hash(account.name, new))
            d.addCallbacks(
                lambda _: self.log.info("rehashed the password of {name} (new parameters)",
                                        name=account.name),
                lambda f: self.log.failure("rehashing the password of {name} failed", f,
                                           name=account.name))
            d.addCallback(lambda _: account)
            return d
        return account


@implementer(IVisitor)
class Visitor(Member):
    """
    A session that passed the gate: a member-to-be.  Claiming a name makes
    it a L{Member} of the server (the avatar is the member, so a logged-in
    user costs one object, not two); its logout takes it offline.
    """

    __slots__ = ("_server", "account", "operator")

    def __init__(self, server: ChatServer, participant: Participant,
                 account: Account | None = None, operator: bool = False) -> None:
        """
        @param account: the account it logged in as (C{None}: a guest).
        @param operator: whether it is a server operator.
        """
        super().__init__(participant)
        self._server = server
        self.account = account
        self.operator = operator

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
    """
    Makes a L{Visitor} for each session that passes the gate: a guest for
    the passcode (or anonymous) gate, one that knows its L{Account} (and
    whether it is an operator: the account's flag or C{--operator}) for
    the account checker.
    """

    def __init__(self, server: ChatServer, operators: Iterable[str] = ()) -> None:
        self._server = server
        self._operators = frozenset(name.casefold() for name in operators)

    def requestAvatar(
        self, avatarId: Any, mind: object, *interfaces: Any
    ) -> tuple[Any, Visitor, Callable[[], None]]:
        if IVisitor not in interfaces:
            raise NotImplementedError(interfaces)
        # IRealm types the mind as object; ours is always the session's
        # front end, passed to portal.login by ChatSession.
        account = avatarId if isinstance(avatarId, Account) else None
        operator = account is not None and (
            account.operator or account.name.casefold() in self._operators)
        visitor = Visitor(self._server, cast(Participant, mind), account, operator)
        return IVisitor, visitor, visitor.logout
