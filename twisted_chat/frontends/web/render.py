"""
Events as the browser gets them: one JSON object per WebSocket text message
(docs/PROTOCOL.md documents each).

L{to_json} gives the object, L{json_text} its text; both look the renderer
up by the event's type in a dict.  A room event's text is kept in its
C{_json} slot by the first browser recipient, so the rest of the room gets
the same C{str} without serialising again; a front end reads that slot
before calling L{json_text} (a read is cheaper than a call, once per
recipient).
"""

from __future__ import annotations

import json
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
    RoomEvent,
    Rooms,
    Search,
    Shutdown,
    TimeZone,
    Topic,
    Users,
    Welcome,
    Whois,
)


class Ack(Event):
    """
    The line the page sent with C{id} was taken: handed to the session,
    which neither refused it nor reported an error.  (Only the browser gets
    these; the events of every front end live in L{twisted_chat.domain.events}.)
    """

    __slots__ = ("id",)
    kind = "ack"

    def __init__(self, line_id: int) -> None:
        self.id = line_id


def entry_json(entry: Entry) -> dict[str, Any]:
    """A stored message as a JSON object."""
    return {
        "room": entry.room,
        "from": entry.sender,
        "text": entry.text,
        "time": entry.when,
        "action": entry.action,
    }


def _message(event: Message) -> dict[str, Any]:
    return {"type": event.kind, **entry_json(event.entry)}


def _notice(event: Notice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event.kind, "room": event.room, "text": event.text,
                           "time": event.when}
    if event.user is not None:
        out["user"] = event.user
    elif event.users:  # a big room's summary (the page's list is refreshed by /users)
        out["users"] = list(event.users)
    if event.change is not None:
        out["change"] = event.change
    if event.actor is not None:
        out["by"] = event.actor
    if event.detail is not None:
        out["detail"] = event.detail
    return out


def ban_json(ban: Ban) -> dict[str, Any]:
    """A ban or mute as a JSON object."""
    return {"target": ban.target, "room": ban.room, "by": ban.by, "time": ban.when,
            "until": ban.until, "reason": ban.reason}


def _bans(event: Bans) -> dict[str, Any]:
    return {"type": event.kind, "room": event.room, "time": event.now,
            "bans": [ban_json(ban) for ban in event.bans],
            "mutes": [ban_json(ban) for ban in event.mutes]}


def _whois(event: Whois) -> dict[str, Any]:
    out = {"type": event.kind, "name": event.name, "account": event.account,
           "operator": event.operator, "rooms": list(event.rooms), "since": event.since,
           "idle": event.idle}
    if event.address is not None:
        out["address"] = event.address
    if event.away is not None:
        out["away"] = event.away
    return out


def _private(event: Private) -> dict[str, Any]:
    return {
        "type": event.kind,
        "from": event.sender,
        "to": event.recipient,
        "text": event.text,
        "time": event.when,
    }


def _error(event: Error) -> dict[str, Any]:
    out = {"type": event.kind, "text": event.text}
    code = getattr(event, "code", "")  # a stable code, where the error has one
    if code:
        out["code"] = code
    return out


def _users(event: Users) -> dict[str, Any]:
    users: list[dict[str, Any]]
    if event.rooms is None:
        users = [{"name": name, "room": room} for name, room in event.users]
    else:
        users = [{"name": name, "room": room, "rooms": list(rooms)}
                 for (name, room), rooms in zip(event.users, event.rooms, strict=True)]
    return {"type": event.kind, "room": event.room, "users": users, "total": event.total}


def _rooms(event: Rooms) -> dict[str, Any]:
    return {
        "type": event.kind,
        "rooms": [{"name": name, "users": count} for name, count in event.rooms],
    }


def _history(event: History) -> dict[str, Any]:
    return {
        "type": event.kind,
        "room": event.room,
        "replay": event.replay,
        "messages": [entry_json(entry) for entry in event.entries],
    }


def _search(event: Search) -> dict[str, Any]:
    return {
        "type": event.kind,
        "room": event.room,
        "words": event.words,
        "messages": [entry_json(entry) for entry in event.entries],
        "complete": event.complete,
    }


def _help(event: Help) -> dict[str, Any]:
    return {
        "type": event.kind,
        "commands": [{"usage": usage, "text": text} for usage, text in event.commands],
    }


_JSON: dict[type[Event], Callable[[Any], dict[str, Any]]] = {
    Message: _message,
    Notice: _notice,
    Private: _private,
    Info: lambda event: {"type": event.kind, "text": event.text},
    TimeZone: lambda event: {"type": event.kind, "text": event.text,
                             "utc_offset": event.offset},
    Error: _error,
    Prompt: lambda event: {"type": event.kind, "field": event.field},
    Welcome: lambda event: {"type": event.kind, "name": event.name, "room": event.room},
    Joined: lambda event: {"type": event.kind, "room": event.room},
    Users: _users,
    Rooms: _rooms,
    History: _history,
    Search: _search,
    Help: _help,
    Goodbye: lambda event: {"type": event.kind},
    Shutdown: lambda event: {"type": event.kind, "text": "Server shutting down"},
    Ack: lambda event: {"type": event.kind, "id": event.id},
    Topic: lambda event: {"type": event.kind, "room": event.room, "text": event.text,
                          "by": event.by, "time": event.when},
    Bans: _bans,
    Whois: _whois,
    Away: lambda event: {"type": event.kind, "name": event.name, "text": event.text},
}


def to_json(event: Event) -> dict[str, Any]:
    """
    C{event} as a JSON object.

    @raise TypeError: for an event the browser cannot be sent.
    """
    kind = type(event)
    render = _JSON.get(kind)
    if render is None:
        for base in kind.__mro__:  # a subclass: found by its own type next time
            render = _JSON.get(base)
            if render is not None:
                _JSON[kind] = render
                break
        else:
            raise TypeError("no JSON form for %r" % (kind,))
    return render(event)


def json_text(event: Event) -> str:
    """C{event} as JSON text; a room event is serialised once, by its first caller."""
    text = event._json
    if text is not None:
        return text
    text = json.dumps(to_json(event), ensure_ascii=False)
    if isinstance(event, RoomEvent):
        event._json = text
    return text
