"""
What the server tells a participant, as values.

Each event renders itself for both front ends: C{lines()} for the line
protocol and C{to_json()} for the browser.  Events that fan out to a room
encode their wire form once, when they are made, so delivering one to a
hundred members is a hundred writes of the same C{bytes}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted_chat.text import date_stamp, zone_name


class Event:
    """
    Base of every event.

    @ivar kind: the C{type} of the JSON form.
    """

    __slots__ = ()
    kind = "event"

    def lines(self) -> list[str]:
        """The event as lines of text, without line terminators."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object."""
        raise NotImplementedError

    @property
    def wire(self) -> bytes:
        """C{lines()} encoded for the line protocol."""
        lines = self.lines()
        return ("\r\n".join(lines) + "\r\n").encode() if lines else b""

    @property
    def json_text(self) -> str:
        """C{to_json()} serialised."""
        return json.dumps(self.to_json(), ensure_ascii=False)


class RoomEvent(Event):
    """
    An event that fans out to a room: its line form is encoded once, when it
    is made, and its JSON form once, when a browser first needs it.
    """

    __slots__ = ("wire", "_json")

    def lines(self) -> list[str]:
        return [self.wire.decode()[:-2]]

    @property
    def json_text(self) -> str:
        try:
            return self._json
        except AttributeError:
            self._json = json.dumps(self.to_json(), ensure_ascii=False)
            return self._json


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

    def line(self) -> str:
        """The entry as C{/history} shows it."""
        stamp = date_stamp(self.when)
        if self.action:
            return "[%s] * %s %s" % (stamp, self.sender, self.text)
        return "[%s] %s: %s" % (stamp, self.sender, self.text)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "room": self.room,
            "from": self.sender,
            "text": self.text,
            "time": self.when,
            "action": self.action,
        }


class Message(RoomEvent):
    """A message (or C{/me} action) said in a room."""

    __slots__ = ("entry", "stamp")
    kind = "message"

    def __init__(self, entry: Entry, stamp: str) -> None:
        self.entry = entry
        self.stamp = stamp
        if entry.action:
            line = "[%s] * %s %s\r\n" % (stamp, entry.sender, entry.text)
        else:
            line = "[%s] %s: %s\r\n" % (stamp, entry.sender, entry.text)
        self.wire = line.encode()

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, **self.entry.to_json()}


class Notice(RoomEvent):
    """
    A room notice: joins, leaves, quits.

    @ivar user: whom it is about, if anyone (the browser keeps its user list
        from C{user} and C{change} instead of asking C{/users} again).
    @ivar change: C{joined} (the room), C{left} (for another room) or
        C{offline} (quit or disconnected).
    """

    __slots__ = ("room", "text", "when", "stamp", "user", "change")
    kind = "notice"

    def __init__(
        self, room: str | None, text: str, when: float, stamp: str,
        user: str | None = None, change: str | None = None,
    ) -> None:
        self.room = room
        self.text = text
        self.when = when
        self.stamp = stamp
        self.user = user
        self.change = change
        self.wire = ("[%s] *** %s ***\r\n" % (stamp, text)).encode()

    def to_json(self) -> dict[str, Any]:
        out = {"type": self.kind, "room": self.room, "text": self.text, "time": self.when}
        if self.user is not None:
            out["user"] = self.user
            out["change"] = self.change
        return out


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

    def lines(self) -> list[str]:
        if self.outgoing:
            return ["[%s] [PRIVATE to %s] %s" % (self.stamp, self.recipient, self.text)]
        return ["[%s] [PRIVATE] %s: %s" % (self.stamp, self.sender, self.text)]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "from": self.sender,
            "to": self.recipient,
            "text": self.text,
            "time": self.when,
        }


@dataclass(frozen=True)
class Info(Event):
    """A plain line of information for one participant."""

    text: str
    kind = "info"

    def lines(self) -> list[str]:
        return [self.text]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "text": self.text}


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

    def lines(self) -> list[str]:
        return [self.text]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "text": self.text, "utc_offset": self.offset}


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

    def lines(self) -> list[str]:
        return ["ERROR " + self.text]

    def to_json(self) -> dict[str, Any]:
        if self.code:
            return {"type": self.kind, "text": self.text, "code": self.code}
        return {"type": self.kind, "text": self.text}


@dataclass(frozen=True)
class Prompt(Event):
    """A login prompt: C{field} is C{passcode} or C{username}."""

    field: str
    kind = "prompt"

    def lines(self) -> list[str]:
        return [self.field.capitalize() + ":"]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "field": self.field}


@dataclass(frozen=True)
class Welcome(Event):
    """A successful login."""

    name: str
    room: str
    kind = "welcome"

    def lines(self) -> list[str]:
        return [
            "Welcome, %s! You are in #%s. Type /help for commands." % (self.name, self.room)
        ]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "room": self.room}


@dataclass(frozen=True)
class Joined(Event):
    """The participant is now in C{room}."""

    room: str
    kind = "joined"

    def lines(self) -> list[str]:
        return ["You are now in #%s." % self.room]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "room": self.room}


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

    def lines(self) -> list[str]:
        if self.room is None:
            if self.rooms is None:
                names = ", ".join("%s (#%s)" % pair for pair in self.users)
            else:
                names = ", ".join(
                    "%s (%s)" % (name, ", ".join("#" + room for room in rooms))
                    if rooms else name
                    for (name, _), rooms in zip(self.users, self.rooms, strict=True))
            head = "Users online (%d): " % self.total
        else:
            names = ", ".join(name for name, _ in self.users)
            head = "Users in #%s (%d): " % (self.room, self.total)
        more = self.total - len(self.users)
        if more > 0:
            names += ", and %d more (/users all lists everyone)" % more
        return [head + names]

    def to_json(self) -> dict[str, Any]:
        users: list[dict[str, Any]]
        if self.rooms is None:
            users = [{"name": name, "room": room} for name, room in self.users]
        else:
            users = [{"name": name, "room": room, "rooms": list(rooms)}
                     for (name, room), rooms in zip(self.users, self.rooms, strict=True)]
        return {"type": self.kind, "room": self.room, "users": users, "total": self.total}


@dataclass(frozen=True)
class Rooms(Event):
    """Every room with its member count."""

    rooms: Sequence[tuple[str, int]]
    kind = "rooms"

    def lines(self) -> list[str]:
        listing = ", ".join("#%s (%d)" % pair for pair in self.rooms)
        return ["Rooms (%d): %s" % (len(self.rooms), listing)]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "rooms": [{"name": name, "users": count} for name, count in self.rooms],
        }


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

    def lines(self) -> list[str]:
        if not self.entries:
            return [] if self.replay else ["No messages in #%s yet." % self.room]
        count = len(self.entries)
        what = "recent messages" if self.replay else (
            "last message" if count == 1 else "last %d messages" % count)
        return [
            "--- %s in #%s ---" % (what, self.room),
            *(entry.line() for entry in self.entries),
            "--- end of history ---",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "room": self.room,
            "replay": self.replay,
            "messages": [entry.to_json() for entry in self.entries],
        }


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

    def lines(self) -> list[str]:
        partial = "" if self.complete else " among the newest (the search ran out of time)"
        if not self.entries:
            return ['No messages in #%s match "%s"%s.' % (self.room, self.words, partial)]
        count = len(self.entries)
        return [
            '--- %d %s for "%s" in #%s%s ---'
            % (count, "match" if count == 1 else "matches", self.words, self.room, partial),
            *(entry.line() for entry in self.entries),
            "--- end of search ---" if self.complete else
            "--- end of search: older messages were not searched ---",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "room": self.room,
            "words": self.words,
            "messages": [entry.to_json() for entry in self.entries],
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Help(Event):
    """The command list."""

    commands: Sequence[tuple[str, str]]
    kind = "help"

    def lines(self) -> list[str]:
        width = max(len(usage) for usage, _ in self.commands)
        return ["Commands:"] + [
            "  %s  %s" % (usage.ljust(width), text) for usage, text in self.commands
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "commands": [{"usage": usage, "text": text} for usage, text in self.commands],
        }


@dataclass(frozen=True)
class Goodbye(Event):
    """The answer to C{/quit}, just before the server closes the connection."""

    kind = "goodbye"

    def lines(self) -> list[str]:
        return ["Goodbye!"]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind}


@dataclass(frozen=True)
class Shutdown(Event):
    """The server is stopping."""

    kind = "shutdown"

    def lines(self) -> list[str]:
        return ["*** Server shutting down ***"]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "text": "Server shutting down"}
