"""
What travels on the shared stream, as JSON: a versioned batch of events.

One stream entry is one batch (everything a process published during one
reactor turn), with one field C{d}::

    {"v": 1, "n": "<instance>", "s": <seq>, "e": [<event>, ...]}

C{n} is the publishing process's instance (its node name and a random
suffix, new at every start), C{s} its batch number (to drop a batch sent
twice after a lost reply).  Each event is a dict with C{k}, its kind:

    msg     a room message: room, sender, text, when, action
    notice  a room notice: room, text, when, user, change (and a
            moderation notice's actor and detail, b and d)
    once    notices to several rooms, each member told once: pairs, exclude
    pm      a private message: to (recipient key), sender, recipient, text, when
    join / part   a member entered or left a room (the directory's replica)
    online / offline   a name came online (with its presence, p: account,
            operator, address, login time, away text, IRC or not) or
            went offline
    who     a member's presence changed (p, as for online)
    hello   a process (re)connected: everyone answers with a sync
    sync    a process's whole state: every member and its rooms (and, in
            p, each one's presence)
    beat    a heartbeat (a process is alive)
    bye     a process is stopping: its members leave every list
    state   a generic state change: topic (who applies it, e.g.
            "moderation", "accounts"), sv (its own version), change (a
            JSON object);
            see L{twisted_chat.cluster.node.ClusterNode.on_state}

A decoder drops (and counts) an entry of another version or kind rather
than fail: a newer process in the cluster must not stop an older one.
"""

from __future__ import annotations

import json
from typing import Any

from twisted_chat.domain.events import Entry, Message, Notice, Private
from twisted_chat.text import clock_stamp

VERSION = 1

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


class BadEntry(ValueError):
    """A stream entry this version cannot read."""


def encode_batch(instance: str, seq: int, events: list[dict[str, Any]]) -> str:
    """One stream entry's C{d} field."""
    return _dumps({"v": VERSION, "n": instance, "s": seq, "e": events})


def decode_batch(data: str | bytes) -> tuple[str, int, list[dict[str, Any]]]:
    """
    The instance, batch number and events of one entry.

    @raise BadEntry: for anything but a batch of this version.
    """
    try:
        batch = _loads(data)
        if batch.get("v") != VERSION:
            raise BadEntry("version %r" % (batch.get("v"),))
        instance, seq, events = batch["n"], batch["s"], batch["e"]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise BadEntry(str(e)) from None
    if not isinstance(instance, str) or not isinstance(seq, int) or not isinstance(events, list):
        raise BadEntry("malformed batch")
    return instance, seq, events


# -- events ---------------------------------------------------------------------

def message(entry: Entry) -> dict[str, Any]:
    return {"k": "msg", "r": entry.room, "u": entry.sender, "t": entry.text,
            "w": entry.when, "a": entry.action}


def entry_of(event: dict[str, Any]) -> Entry:
    return Entry(str(event["r"]), str(event["u"]), str(event["t"]), float(event["w"]),
                 bool(event.get("a", False)))


def message_event(entry: Entry) -> Message:
    return Message(entry, clock_stamp(entry.when))


def notice(room: str, event: Notice) -> dict[str, Any]:
    found = {"k": "notice", "r": room, "t": event.text, "w": event.when,
             "u": event.user, "c": event.change}
    if event.actor is not None or event.detail is not None:  # moderation's
        found["b"], found["d"] = event.actor, event.detail
    return found


def notice_fields(event: Notice) -> list[Any]:
    if event.actor is not None or event.detail is not None:
        return [event.room, event.text, event.when, event.user, event.change, event.actor,
                event.detail]
    return [event.room, event.text, event.when, event.user, event.change]


def notice_event(fields: dict[str, Any] | list[Any]) -> Notice:
    actor = detail = None
    if isinstance(fields, dict):
        room, text, when, user, change = (fields.get("r"), fields["t"], fields["w"],
                                          fields.get("u"), fields.get("c"))
        actor, detail = fields.get("b"), fields.get("d")
    elif len(fields) == 7:
        room, text, when, user, change, actor, detail = fields
    else:
        room, text, when, user, change = fields
    when = float(when)
    return Notice(room, str(text), when, clock_stamp(when), user, change, actor, detail)


def private(to: str, event: Private) -> dict[str, Any]:
    return {"k": "pm", "to": to, "u": event.sender, "r": event.recipient, "t": event.text,
            "w": event.when}


def private_event(event: dict[str, Any]) -> Private:
    when = float(event["w"])
    return Private(str(event["u"]), str(event["r"]), str(event["t"]), when, clock_stamp(when))


def state(topic: str, version: int, change: dict[str, Any]) -> dict[str, Any]:
    return {"k": "state", "topic": topic, "sv": version, "change": change}
