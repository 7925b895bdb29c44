"""
What the server tells a participant, as values.

Events say what happened; each front end renders them in its own format
(L{twisted_chat.frontends.line.render} for the line protocol,
L{twisted_chat.frontends.web.render} for the browser's JSON).  Events that
fan out to a room (L{RoomEvent}) keep one memo slot per format, filled by
the first recipient of that format, so delivering one to a hundred members
renders it once per format and writes the same C{bytes} (or C{str}) a
hundred times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twisted_chat.text import zone_name


class Event:
    """
    Base of every event.

    @ivar kind: the C{type} of the JSON form.
    @ivar _line: a room event's line form (C{bytes}), once rendered; C{None}
        on every other event, so a front end tests one attribute, with no
        call, before asking its renderer.
    @ivar _json: the same for the browser's JSON text (C{str}).
    @ivar _irc: the same for IRC: a pair of C{bytes}, without and with the
        C{time} tag (C{server-time}), both rendered by the first IRC recipient.
    """

    __slots__ = ()
    kind = "event"
    _line: bytes | None = None
    _json: str | None = None
    _irc: tuple[bytes, bytes] | None = None


class RoomEvent(Event):
    """
    An event that fans out to a room: the renderers memoise their output in
    its slots (one per format, filled by the first recipient of that format).
    """

    __slots__ = ("_line", "_json", "_irc")

    def __init__(self) -> None:
        self._line = None
        self._json = None
        self._irc = None


@dataclass(frozen=True, slots=True)
class Entry:
    """
    One stored room message.

    @ivar when: seconds since the epoch (UTC).
    @ivar action: C{True} for C{/me}.
    """

    room: str
    sender: str
    text: str
    when: float
    action: bool = False


class Message(RoomEvent):
    """A message (or C{/me} action) said in a room."""

    __slots__ = ("entry", "stamp")
    kind = "message"

    def __init__(self, entry: Entry, stamp: str) -> None:
        self._line = self._json = self._irc = None
        self.entry = entry
        self.stamp = stamp


class Notice(RoomEvent):
    """
    A room notice: joins, leaves, quits, and moderation.

    @ivar user: whom it is about, if anyone (the browser keeps its user list
        from C{user} and C{change} instead of asking C{/users} again).
    @ivar change: C{joined} (the room), C{left} (for another room) or
        C{offline} (quit or disconnected); moderation: C{topic},
        C{kicked} (C{user} left the room), C{banned}, C{unbanned},
        C{muted}, C{unmuted}, C{opped}, C{deopped} (C{user}), C{claimed},
        C{wall} (C{room} C{None}: to everyone online).
    @ivar actor: who did it (moderation; C{None} for an expiry).
    @ivar detail: what it is about (moderation): the topic's text (C{""}:
        cleared), a kick's reason, a ban's or mute's target (a name, an
        address or a CIDR), a wall's text.
    @ivar users: in a big room's summary of a second's joins (or leaves,
        or quits: C{change}), everyone it is about (C{user} is C{None}).
    """

    __slots__ = ("room", "text", "when", "stamp", "user", "change", "actor", "detail", "users")
    kind = "notice"

    def __init__(
        self, room: str | None, text: str, when: float, stamp: str,
        user: str | None = None, change: str | None = None,
        actor: str | None = None, detail: str | None = None,
        users: tuple[str, ...] = (),
    ) -> None:
        self._line = self._json = self._irc = None
        self.room = room
        self.text = text
        self.when = when
        self.stamp = stamp
        self.user = user
        self.change = change
        self.actor = actor
        self.detail = detail
        self.users = users


@dataclass(frozen=True)
class Private(Event):
    """A private message, as its recipient (or, C{outgoing}, its sender) sees it."""

    sender: str
    recipient: str
    text: str
    when: float
    stamp: str
    outgoing: bool = False
    kind = "private"


@dataclass(frozen=True)
class Info(Event):
    """A plain line of information for one participant."""

    text: str
    kind = "info"


@dataclass(frozen=True)
class TimeZone(Event):
    """
    The server's time zone, said once at login: the C{[HH:MM:SS]} stamps are
    its local time.  In JSON an C{info} event with C{utc_offset} (seconds
    east of UTC); the browser shows times from each event's C{time} instead.
    """

    offset: int
    kind = "info"

    @property
    def text(self) -> str:
        return "Times are %s (the server's time zone)." % zone_name(self.offset)


@dataclass(frozen=True)
class Error(Event):
    """
    A mistake reported to one participant; C{text} follows C{ERROR }.
    C{code} is its L{twisted_chat.errors.ChatError} code (C{""}: none), in
    JSON as C{"code"}.
    """

    text: str
    code: str = ""
    kind = "error"


@dataclass(frozen=True)
class Prompt(Event):
    """A login prompt: C{field} is C{passcode} or C{username}."""

    field: str
    kind = "prompt"


@dataclass(frozen=True)
class Welcome(Event):
    """A successful login."""

    name: str
    room: str
    kind = "welcome"


@dataclass(frozen=True)
class Joined(Event):
    """The participant is now in C{room}."""

    room: str
    kind = "joined"


@dataclass(frozen=True)
class Users(Event):
    """
    Who is online: in C{room}, or everyone when C{room} is C{None}.

    @ivar users: C{(name, room)} pairs (for everyone: the first of the
        user's rooms, C{""} if in none).
    @ivar total: how many there are; C{users} may be cut short of it.
    @ivar rooms: for everyone, every room of each user (in join order),
        in step with C{users}; C{None} for one room's list.
    """

    room: str | None
    users: Sequence[tuple[str, str]]
    total: int
    rooms: Sequence[Sequence[str]] | None = None
    kind = "users"


@dataclass(frozen=True)
class Rooms(Event):
    """Every room with its member count."""

    rooms: Sequence[tuple[str, int]]
    kind = "rooms"


@dataclass(frozen=True)
class History(Event):
    """
    Stored messages of a room, oldest first.

    @ivar replay: C{True} when shown on joining, C{False} for C{/history}.
    """

    room: str
    entries: Sequence[Entry]
    replay: bool
    kind = "history"


@dataclass(frozen=True)
class Search(Event):
    """
    The answer to C{/search}: matching messages of C{room}, oldest first.

    @ivar complete: C{False} when the search ran out of time and looked at
        the newest messages only.
    """

    room: str
    words: str
    entries: Sequence[Entry]
    complete: bool = True
    kind = "search"


@dataclass(frozen=True)
class Help(Event):
    """The command list."""

    commands: Sequence[tuple[str, str]]
    kind = "help"


@dataclass(frozen=True)
class Goodbye(Event):
    """The answer to C{/quit}, just before the server closes the connection."""

    kind = "goodbye"


@dataclass(frozen=True)
class Shutdown(Event):
    """The server is stopping."""

    kind = "shutdown"


@dataclass(frozen=True)
class Topic(Event):
    """
    A room's topic: the answer to C{/topic} without text, and told on
    joining a room that has one.  (Also the value the moderation state
    keeps per room.)

    @ivar text: the topic (C{""}: none is set).
    @ivar by: who set it (a name; C{""} if nobody).
    @ivar when: when it was set (seconds since the epoch; C{0}: never).
    """

    room: str
    text: str
    by: str = ""
    when: float = 0.0
    kind = "topic"


@dataclass(frozen=True, slots=True)
class Ban:
    """
    One ban or mute, as the moderation state keeps it and L{Bans} lists it.

    @ivar target: a name (lower case), an address or a CIDR network.
    @ivar room: the room's key; C{None}: server-wide.
    @ivar by: who set it.
    @ivar until: when it lifts itself (seconds since the epoch); C{None}:
        until lifted.
    """

    target: str
    room: str | None
    by: str
    when: float
    until: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Bans(Event):
    """
    The answer to C{/bans}: the bans and mutes of C{room} (C{None}: the
    server-wide ones), oldest first, as of C{now}.
    """

    room: str | None
    bans: Sequence[Ban]
    mutes: Sequence[Ban]
    now: float
    kind = "bans"


@dataclass(frozen=True)
class Whois(Event):
    """
    The answer to C{/whois}.

    @ivar account: whether C{name} is a registered account (else a guest).
    @ivar since: when it logged in (seconds since the epoch).
    @ivar idle: seconds since its last line.
    @ivar address: its address, for operators only (else C{None}).
    @ivar away: its away text, or C{None}.
    """

    name: str
    account: bool
    operator: bool
    rooms: Sequence[str]
    since: float
    idle: float
    address: str | None = None
    away: str | None = None
    kind = "whois"


@dataclass(frozen=True)
class Away(Event):
    """A private message went to C{name}, who is away: C{text}."""

    name: str
    text: str
    kind = "away"
