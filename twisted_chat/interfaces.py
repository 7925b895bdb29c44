"""
The seams: zope Interfaces where Twisted looks for them (twisted.cred), and
C{typing.Protocol}s for our own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.cred.credentials import ICredentials
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from twisted_chat.domain.events import Entry, Event


class IPasscode(ICredentials):
    """A shared secret typed at the C{Passcode:} prompt."""

    passcode = Attribute("What the client typed, as bytes.")


class IVisitor(Interface):
    """
    The avatar of a session that passed the gate but has no name yet.
    """

    def claim_name(name: str) -> object:
        """
        Take C{name} for this session: a Deferred that fires with the
        logged-in member, or fails with a L{twisted_chat.errors.ChatError}
        if the name is bad or taken (it may fire later: a cluster's claim).
        """

    def logout() -> None:
        """Free the name, announcing the departure; safe to call twice."""


class Participant(Protocol):
    """
    One front end's connection, as the domain sees it: somewhere to send
    events.  Room fan-out calls L{send} once per member with the same event.
    """

    def send(self, event: Event) -> None:
        """Deliver one event (without ever blocking on a slow reader)."""

    def close(self) -> None:
        """Close the connection once what was sent has been written."""


class History(Protocol):
    """Where room messages are kept."""

    def append(self, entry: Entry) -> None:
        """Keep C{entry}; never blocks the caller on I/O."""

    def recent(self, room: str, limit: int) -> Deferred[list[Entry]]:
        """The last C{limit} entries of C{room}, oldest first (it may answer later)."""

    def search(self, room: str, words: str, limit: int) -> Deferred[list[Entry]]:
        """
        The newest C{limit} entries of C{room} whose text holds every one of
        the whitespace-separated C{words} (case-insensitive, each word as a
        prefix), oldest first (it may answer later).  It fails with a
        L{twisted_chat.errors.ChatError} if this store cannot search (that
        one, not others).
        """

    def close(self) -> None:
        """Write out anything pending and release the store."""
