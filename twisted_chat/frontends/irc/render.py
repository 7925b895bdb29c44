"""
Events to IRC lines, for the IRC front end (L{twisted_chat.frontends.irc.protocol}).

Room events (L{Message}, L{Notice}) are rendered once per event for every
IRC recipient: their C{_irc} memo holds a pair, the lines without tags and
the lines with a C{time} tag (C{server-time}), so a fan-out to a hundred
IRC clients renders at most once.  Telnet and browser recipients never call
anything here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from twisted_chat.domain.events import Entry, Message, Notice
from twisted_chat.domain.moderation import target_kind
from twisted_chat.frontends.irc.parser import (
    MAX_BODY,
    format_message,
    room_for_last,
    split_text,
    truncate_utf8,
)

# The host every user shows (a cloak): telnet and browser users, and IRC
# users too, whose address only operators see (WHOIS 338, SPEC 8). One fixed
# name rather than a keyed hash of the address: nothing to compute or keep per
# connection, no front end told apart, and no stable per-address token that
# lets anyone follow a user across nicks (bans match the real address).
OTHER_HOST = "twisted-chat"

# A user's prefix (nick!user@host) from its name.
Prefixes = Callable[[str], str]


def server_time(when: float) -> str:
    """C{when} as server-time's C{YYYY-MM-DDThh:mm:ss.sssZ}."""
    seconds = int(when)
    return "%s.%03dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)),
                         int((when - seconds) * 1000))


def prefix_of(name: str) -> str:
    """The prefix of someone not on IRC."""
    return "%s!%s@%s" % (name, name, OTHER_HOST)


def privmsgs(source: str, target: str, text: str, action: bool = False,
             command: str = "PRIVMSG") -> list[tuple[str, ...]]:
    """
    The parameters of the PRIVMSGs that carry C{text} to C{target} within
    512 bytes: a text longer than an IRC line (a telnet line may be) is split
    into several; one that fits an IRC line but not with the sender's prefix
    is cut.
    """
    room = room_for_last(source, command, (target,))
    if action:
        room -= 9  # \x01ACTION and \x01
    if len(text) <= MAX_BODY and len(text.encode("utf-8")) <= MAX_BODY:
        # At most one IRC line's text (what an IRC client sent): one line,
        # cut where the prefix leaves no room, as IRC servers do.
        parts = [truncate_utf8(text, room)]
    else:  # a longer telnet or browser line: several lines, nothing lost
        parts = split_text(text, room)
    if action:
        return [(target, "\x01ACTION %s\x01" % part) for part in parts]
    return [(target, part) for part in parts]


def lines(tags: dict[str, str] | None, source: str | None, command: str,
          params_list: Sequence[tuple[str, ...]]) -> bytes:
    """Several messages, each with CRLF."""
    return b"".join(format_message(tags, source, command, params) + b"\r\n"
                    for params in params_list)


def entry_lines(entry: Entry, prefixes: Prefixes, tags: dict[str, str] | None) -> bytes:
    """A room message as the channel's PRIVMSGs, with C{tags}."""
    source = prefixes(entry.sender)
    return lines(tags, source, "PRIVMSG",
                 privmsgs(source, "#" + entry.room, entry.text, entry.action))


def mask_of(target: str) -> str:
    """A ban or mute target as an IRC mask: C{nick!*@*} for a name, else C{*!*@address}."""
    return target + "!*@*" if target_kind(target) == "name" else "*!*@" + target


# Moderation notices that IRC shows as a MODE: change -> (mode, prefix of the mask).
_MODES = {"banned": ("+b", ""), "unbanned": ("-b", ""), "muted": ("+b", "m:"),
          "unmuted": ("-b", "m:")}


# Notices of ops and voices: change -> mode.
_PREFIX_MODES = {"opped": "+o", "deopped": "-o", "voiced": "+v", "devoiced": "-v"}


def _moderation(event: Notice, prefixes: Prefixes, server_name: str
                ) -> list[tuple[str, str, tuple[str, ...]]] | None:
    """
    A moderation notice as native IRC messages (source, command, params),
    or C{None} if it is none: a kick is a KICK, bans and mutes (the
    C{m:} extban) are C{MODE +b}/C{-b}, ops and voices C{MODE +o}/C{-o}/C{+v}/C{-v}, a topic lock
    C{MODE +t}/C{-t}, a claim a notice and C{MODE +to}.
    """
    change, room, actor = event.change, event.room, event.actor
    if room is None or change is None:
        return None
    source = prefixes(actor) if actor is not None else server_name
    channel = "#" + room
    if change == "topic" and actor is not None:
        return [(source, "TOPIC", (channel, event.detail or ""))]
    if change == "kicked" and event.user is not None:
        reason = event.detail or actor or server_name
        return [(source, "KICK", (channel, event.user, reason))]
    mode = _MODES.get(change)
    if mode is not None and event.detail:
        return [(source, "MODE", (channel, mode[0], mode[1] + mask_of(event.detail)))]
    if change in _PREFIX_MODES and event.user is not None:
        return [(source, "MODE", (channel, _PREFIX_MODES[change], event.user))]
    if change in ("locked", "unlocked"):
        return [(source, "MODE", (channel, "+t" if change == "locked" else "-t"))]
    if change == "claimed" and event.user is not None:
        return [(server_name, "NOTICE", (channel, event.text)),
                (source, "MODE", (channel, "+to", event.user))]
    return None


# A big room's summary notice as IRC lines: the command, and its parameters
# (empty: the channel).
_SUMMARISED: dict[str, tuple[str, tuple[str, ...]]] = {
    "joined": ("JOIN", ()), "left": ("PART", ()), "offline": ("QUIT", ("Quit: ",))}


def room_event(event: Message | Notice, prefixes: Prefixes,
               server_name: str) -> tuple[bytes, bytes]:
    """
    A room event's lines, without and with the C{time} tag (memoised in
    C{event._irc} by the caller).
    """
    if type(event) is Message:
        entry = event.entry
        plain = entry_lines(entry, prefixes, None)
        tagged = entry_lines(entry, prefixes, {"time": server_time(entry.when)})
        return plain, tagged
    assert isinstance(event, Notice)
    stamp = {"time": server_time(event.when)}
    user, change, room = event.user, event.change, event.room
    if event.users and room is not None and change in _SUMMARISED:
        # a big room's summary: each one's line, for the clients' nick lists
        channel = "#" + room
        command, params = _SUMMARISED[change]
        params = params or (channel,)
        return (b"".join(lines(None, prefixes(name), command, [params]) for name in event.users),
                b"".join(lines(stamp, prefixes(name), command, [params])
                         for name in event.users))
    if change is not None and change not in _PRESENCE:
        native = _moderation(event, prefixes, server_name)
        if native is not None:
            return (b"".join(lines(None, *message) for message in _listed(native)),
                    b"".join(lines(stamp, *message) for message in _listed(native)))
    if user is not None and room is not None:
        source = prefixes(user)
        channel = "#" + room
        if change == "joined":
            return (lines(None, source, "JOIN", [(channel,)]),
                    lines(stamp, source, "JOIN", [(channel,)]))
        if change == "left":
            reason = _reason(event.text)
            params = (channel, reason) if reason else (channel,)
            return (lines(None, source, "PART", [params]),
                    lines(stamp, source, "PART", [params]))
        if change == "offline":
            why = event.text[len(user) + 1:] if event.text.startswith(user + " ") else event.text
            if why.startswith("was disconnected by "):  # /kill, IRC KILL
                why = "Killed (%s)" % why[len("was disconnected by "):]
            elif why.startswith("quit (") and why.endswith(")"):
                why = "Quit: " + why[6:-1]
            elif why == "quit":
                why = "Quit: "
            params = (why,)
            return (lines(None, source, "QUIT", [params]),
                    lines(stamp, source, "QUIT", [params]))
    target = "#" + room if room else "*"
    parts = [(target, part) for part in split_text(
        event.text, room_for_last(server_name, "NOTICE", (target,)))]
    return (lines(None, server_name, "NOTICE", parts),
            lines(stamp, server_name, "NOTICE", parts))


# The notices of comings and goings (the others are moderation's).
_PRESENCE = frozenset({"joined", "left", "offline"})


def _listed(messages: list[tuple[str, str, tuple[str, ...]]]
            ) -> list[tuple[str, str, list[tuple[str, ...]]]]:
    return [(source, command, [params]) for source, command, params in messages]


def _reason(text: str) -> str:
    """The reason in a leave notice's C{alice left #room (reason)}, or C{""}."""
    head, sep, rest = text.partition(" (")
    if sep and rest.endswith(")") and " left #" in head:
        return rest[:-1]
    return ""
