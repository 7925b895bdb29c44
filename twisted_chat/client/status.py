"""
Following the conversation from the lines the server sends: the status bar's
name, room and user count (L{track}), the local echo of what we send
(L{echo_for}), and the kind of a line for colouring (L{line_kind}).

Pure functions on text: no I/O, no Twisted, no urwid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Status:
    """What the status bar shows: who we are, where, with how many people."""

    name: str | None = None
    room: str | None = None
    users: int | None = None


_WELCOME = re.compile(r"Welcome, (?P<name>[^!\s]+)! You are in #(?P<room>[\w-]+)")
_NOW_IN = re.compile(r"You are now in #(?P<room>[\w-]+)")
_USERS_IN = re.compile(r"Users in #(?P<room>[\w-]+) \((?P<count>\d+)\)")
STAMP = re.compile(r"(?P<stamp>\[[0-9: -]+\] )(?P<rest>.*)\Z", re.DOTALL)
"""A timestamped line: its C{stamp} (with the trailing space) and the C{rest}."""
_JOINED = re.compile(r"\*\*\* (?P<who>\S+) joined #(?P<room>[\w-]+)")
_GONE = re.compile(
    r"\*\*\* (?P<who>\S+) (?:has )?(?:left|quit|disconnected|timed out|was disconnected)\b"
)
# The server shows its sender what a shortcut said ("You said: ..."), so
# shortcuts get no local echo.
# A shortcut is the whole line (but :Msg, which takes arguments).
_SILENT_SHORTCUTS = frozenset({":)", ":(", ":mytime", ":+1hr", ":users", ":exit"})


def track(status: Status, line: str) -> Status:
    """
    Return C{status} updated by one line from the server.

    Only a few well-known lines matter; anything else leaves it unchanged.
    """
    match = _WELCOME.match(line)
    if match:
        return Status(match["name"], match["room"].lower(), None)
    match = _NOW_IN.match(line)
    if match:
        return replace(status, room=match["room"].lower(), users=None)
    match = _USERS_IN.match(line)
    if match:
        if status.room is None or match["room"].lower() == status.room:
            return replace(status, room=match["room"].lower(), users=int(match["count"]))
        return status
    stamped = STAMP.match(line)
    if stamped is None or status.users is None:
        return status
    rest = stamped["rest"]
    match = _JOINED.match(rest)
    if match:
        if match["room"].lower() == status.room and match["who"] != status.name:
            return replace(status, users=status.users + 1)
        return status
    match = _GONE.match(rest)
    if match and match["who"] != status.name:
        return replace(status, users=max(1, status.users - 1))
    return status


@dataclass(frozen=True)
class Echo:
    """Our own message as the room sees it (the server sends no echo)."""

    text: str
    action: bool = False
    """True for C{/me}: shown as C{* name text}."""


def echo_for(line: str) -> Echo | None:
    """
    Return what the room will see when we send C{line}, or C{None} when it is
    a command or shortcut the server answers itself.
    """
    if not line.strip():
        return None
    if line.startswith("\\"):
        return Echo(line[1:]) if line[1:].strip() else None
    if line.startswith("/"):
        command, _, rest = line.partition(" ")
        if command.lower() == "/me" and rest.strip():
            return Echo(rest, action=True)
        return None
    lowered = line.strip().lower()
    if lowered in _SILENT_SHORTCUTS or lowered.split(None, 1)[0] == ":msg":
        return None
    return Echo(line)


def is_quit(line: str) -> bool:
    """True when sending C{line} asks the server to end the session."""
    word = line.strip().split(" ", 1)[0]
    return word.lower() == "/quit" or line.strip() == ":Exit"


def line_kind(line: str) -> str:
    """
    Classify a server line for colouring: C{error}, C{private}, C{notice},
    C{action}, C{message} or C{info}.
    """
    if line.startswith("ERROR "):
        return "error"
    stamped = STAMP.match(line)
    if stamped is None:
        return "notice" if line.startswith("***") else "info"
    rest = stamped["rest"]
    if rest.startswith("[PRIVATE"):
        return "private"
    if rest.startswith("***"):
        return "notice"
    if rest.startswith("* "):
        return "action"
    return "message"
