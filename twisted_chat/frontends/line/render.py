"""
Events as the line (telnet) protocol shows them: lines of text, each ended
by CRLF on the wire.

L{wire} is the one entry point for output; L{lines} gives the same text
without terminators (for tests and tools).  Both look the renderer up by the
event's type in a dict.  A room event's bytes are kept in its C{_line} slot
by the first line-protocol recipient, so the rest of the room gets the same
C{bytes} without rendering again; a front end reads that slot before calling
L{wire} (a read is cheaper than a call, once per recipient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted_chat.domain.events import (
    Away,
    Ban,
    Bans,
    Entry,
    Error,
    Event,
    Goodbye,
    Help,
    History,
    Info,
    Joined,
    Message,
    Notice,
    Private,
    Prompt,
    Rooms,
    Search,
    Shutdown,
    TimeZone,
    Topic,
    Users,
    Welcome,
    Whois,
)
from twisted_chat.domain.moderation import format_duration
from twisted_chat.frontends.line.telnet import OFFERS
from twisted_chat.text import date_stamp

GREETING_TEXT = "Welcome to twisted-chat."


class Greeting(Event):
    """The first line a line-protocol client sees (only this front end sends it)."""

    __slots__ = ()
    kind = "greeting"


class Telnet(Event):
    """Telnet commands to write, in order with the events around them."""

    __slots__ = ("commands",)
    kind = "telnet"

    def __init__(self, commands: bytes) -> None:
        self.commands = commands


def entry_line(entry: Entry) -> str:
    """A stored message as C{/history} and C{/search} show it."""
    stamp = date_stamp(entry.when)
    if entry.action:
        return "[%s] * %s %s" % (stamp, entry.sender, entry.text)
    return "[%s] %s: %s" % (stamp, entry.sender, entry.text)


# -- room events: rendered once, kept in the event's _line slot ----------------

def _message(event: Message) -> bytes:
    entry = event.entry
    if entry.action:
        line = "[%s] * %s %s\r\n" % (event.stamp, entry.sender, entry.text)
    else:
        line = "[%s] %s: %s\r\n" % (event.stamp, entry.sender, entry.text)
    data = event._line = line.encode()
    return data


def _notice(event: Notice) -> bytes:
    data = event._line = ("[%s] *** %s ***\r\n" % (event.stamp, event.text)).encode()
    return data


# -- the rest: lines of text ----------------------------------------------------

def _private(event: Private) -> list[str]:
    if event.outgoing:
        return ["[%s] [PRIVATE to %s] %s" % (event.stamp, event.recipient, event.text)]
    return ["[%s] [PRIVATE] %s: %s" % (event.stamp, event.sender, event.text)]


def _welcome(event: Welcome) -> list[str]:
    return ["Welcome, %s! You are in #%s. Type /help for commands." % (event.name, event.room)]


def _users(event: Users) -> list[str]:
    if event.room is None:
        if event.rooms is None:
            names = ", ".join("%s (#%s)" % pair for pair in event.users)
        else:
            names = ", ".join(
                "%s (%s)" % (name, ", ".join("#" + room for room in rooms))
                if rooms else name
                for (name, _), rooms in zip(event.users, event.rooms, strict=True))
        head = "Users online (%d): " % event.total
    else:
        names = ", ".join(name for name, _ in event.users)
        head = "Users in #%s (%d): " % (event.room, event.total)
    more = event.total - len(event.users)
    if more > 0:
        names += ", and %d more (/users all lists everyone)" % more
    return [head + names]


def _rooms(event: Rooms) -> list[str]:
    listing = ", ".join("#%s (%d)" % pair for pair in event.rooms)
    return ["Rooms (%d): %s" % (len(event.rooms), listing)]


def _history(event: History) -> list[str]:
    if not event.entries:
        return [] if event.replay else ["No messages in #%s yet." % event.room]
    count = len(event.entries)
    what = "recent messages" if event.replay else (
        "last message" if count == 1 else "last %d messages" % count)
    return [
        "--- %s in #%s ---" % (what, event.room),
        *(entry_line(entry) for entry in event.entries),
        "--- end of history ---",
    ]


def _search(event: Search) -> list[str]:
    partial = "" if event.complete else " among the newest (the search ran out of time)"
    if not event.entries:
        return ['No messages in #%s match "%s"%s.' % (event.room, event.words, partial)]
    count = len(event.entries)
    return [
        '--- %d %s for "%s" in #%s%s ---'
        % (count, "match" if count == 1 else "matches", event.words, event.room, partial),
        *(entry_line(entry) for entry in event.entries),
        "--- end of search ---" if event.complete else
        "--- end of search: older messages were not searched ---",
    ]


def _help(event: Help) -> list[str]:
    width = max(len(usage) for usage, _ in event.commands)
    return ["Commands:"] + [
        "  %s  %s" % (usage.ljust(width), text) for usage, text in event.commands
    ]


def _topic(event: Topic) -> list[str]:
    if not event.text:
        return ["#%s has no topic." % event.room]
    line = "Topic of #%s: %s" % (event.room, event.text)
    if event.by:
        line += " (set by %s on %s)" % (event.by, date_stamp(event.when))
    return [line]


def ban_line(ban: Ban, now: float) -> str:
    """One ban or mute as C{/bans} shows it."""
    line = "  %s (by %s, %s" % (ban.target, ban.by or "the server", date_stamp(ban.when))
    if ban.until is None:
        line += ", until lifted)"
    else:
        line += ", %s left)" % format_duration(ban.until - now)
    if ban.reason:
        line += ": " + ban.reason
    return line


def _bans(event: Bans) -> list[str]:
    where = "in #" + event.room if event.room is not None else "on the server"
    out: list[str] = []
    for what, entries in (("Bans", event.bans), ("Mutes", event.mutes)):
        if entries:
            out.append("%s %s (%d):" % (what, where, len(entries)))
            out.extend(ban_line(ban, event.now) for ban in entries)
        else:
            out.append("No %s %s." % (what.lower(), where))
    return out


def _whois(event: Whois) -> list[str]:
    who = "an operator" if event.operator else "an account" if event.account else "a guest"
    out = ["%s is %s, online since %s, idle %s" % (
        event.name, who, date_stamp(event.since), format_duration(event.idle))]
    rooms = ", ".join("#" + room for room in event.rooms)
    out.append("  rooms: %s" % (rooms or "none"))
    if event.address is not None:
        out.append("  address: %s" % event.address)
    if event.away is not None:
        out.append("  away: %s" % event.away)
    return out


_LINES: dict[type[Event], Callable[[Any], list[str]]] = {
    Private: _private,
    Info: lambda event: [event.text],
    TimeZone: lambda event: [event.text],
    Error: lambda event: ["ERROR " + event.text],
    Prompt: lambda event: [event.field.capitalize() + ":"],
    Welcome: _welcome,
    Joined: lambda event: ["You are now in #%s." % event.room],
    Users: _users,
    Rooms: _rooms,
    History: _history,
    Search: _search,
    Help: _help,
    Goodbye: lambda event: ["Goodbye!"],
    Shutdown: lambda event: ["*** Server shutting down ***"],
    Greeting: lambda event: [GREETING_TEXT],
    Telnet: lambda event: [],
    Topic: _topic,
    Bans: _bans,
    Whois: _whois,
    Away: lambda event: ["%s is away: %s" % (event.name, event.text)],
}

# The offers go before the greeting line's end, so the prompt lines stay
# exact for scripts; a telnet acts on them, nc and a terminal show nothing.
_GREETING_WIRE = GREETING_TEXT.encode() + OFFERS + b"\r\n"


def _encoded(render: Callable[[Any], list[str]]) -> Callable[[Any], bytes]:
    """The bytes of what C{render} gives: each line ended by CRLF."""
    def encode(event: Event) -> bytes:
        text = render(event)
        return ("\r\n".join(text) + "\r\n").encode() if text else b""
    return encode


# One lookup per event: every kind's bytes.
_WIRE: dict[type[Event], Callable[[Any], bytes]] = {
    **{kind: _encoded(render) for kind, render in _LINES.items()},
    Message: _message,
    Notice: _notice,
    Greeting: lambda event: _GREETING_WIRE,
    Telnet: lambda event: event.commands,
}


def _renderer(table: dict[type[Event], Any], kind: type[Event]) -> Any:
    """
    The renderer of C{kind}'s nearest base in C{table}, kept for C{kind}.

    @raise TypeError: if there is none.
    """
    for base in kind.__mro__:
        render = table.get(base)
        if render is not None:
            table[kind] = render  # found by its own type next time
            return render
    raise TypeError("no line form for %r" % (kind,))


def lines(event: Event) -> list[str]:
    """C{event} as lines of text, without line terminators."""
    render = _LINES.get(type(event))
    if render is not None:
        return render(event)
    if isinstance(event, (Message, Notice)):  # rendered as bytes
        return [wire(event).decode("utf-8")[:-2]]
    inherited: Callable[[Any], list[str]] = _renderer(_LINES, type(event))
    return inherited(event)


def wire(event: Event) -> bytes:
    """
    C{event} encoded for the line protocol: its lines, each ended by CRLF
    (C{b""} for none).  A room event is rendered once, by its first caller.

    @raise TypeError: for an event the line protocol cannot show.
    """
    data = event._line
    if data is not None:
        return data
    render = _WIRE.get(type(event))
    if render is None:
        render = _renderer(_WIRE, type(event))
    return render(event)


GREETING = Greeting()
