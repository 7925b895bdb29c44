"""
Pure text hygiene: lenient decoding, telnet and control-character stripping,
name and room rules, and time formats.

Nothing here does I/O; the client imports this module too.
"""

from __future__ import annotations

import re
import time

from twisted_chat.errors import BadName, BadRoom

MAX_NAME = 20
MAX_ROOM = 32
RESERVED_NAMES = frozenset({"server", "system", "admin"})

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,%d}\Z" % MAX_NAME)
_ROOM = re.compile(r"#?([A-Za-z0-9_\-]{1,%d})\Z" % MAX_ROOM)

# Whole escape sequences first (CSI, OSC/DCS/APC/PM/SOS strings, two-byte
# escapes), then any lone C0/C1 control except TAB, and DEL.
_UNSAFE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?            # CSI ... final byte
    | \x9b[0-?]*[ -/]*[@-~]?              # 8-bit CSI
    | [\x1b][\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC, DCS, SOS, PM, APC
    | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[ -/]*[0-~]?                    # other escapes (ESC c, ESC ( B, ...)
    | [\x00-\x08\x0a-\x1f\x7f-\x9f]       # everything else that is a control
    """,
    re.VERBOSE,
)

IAC = 0xFF
_SB, _SE = 0xFA, 0xF0
_WILL, _WONT, _DO, _DONT = 0xFB, 0xFC, 0xFD, 0xFE


def decode(data: bytes) -> str:
    """
    Decode what a client sent: UTF-8, with undecodable bytes as U+FFFD.
    """
    return data.decode("utf-8", "replace")


def clean(text: str) -> str:
    """
    Remove control characters (but TAB) and whole ANSI escape sequences, so
    that text one user sends can never drive another user's terminal.
    """
    if text.isprintable():
        return text
    return _UNSAFE.sub("", text)


class TelnetFilter:
    """
    Strips telnet IAC sequences from a byte stream, across chunk boundaries.

    C{IAC IAC} (a literal 0xFF) is dropped too: a lone 0xFF is never valid
    UTF-8, so it could only ever become U+FFFD.
    """

    __slots__ = ("_state",)

    # states: 0 data, 1 after IAC, 2 after IAC WILL/WONT/DO/DONT,
    # 3 inside SB, 4 IAC inside SB
    def __init__(self) -> None:
        self._state = 0

    @property
    def idle(self) -> bool:
        """True when no sequence is half-read."""
        return self._state == 0

    def feed(self, data: bytes) -> bytes:
        """Return C{data} without its telnet commands."""
        if self._state == 0 and IAC not in data:
            return data
        out = bytearray()
        state = self._state
        for byte in data:
            if state == 0:
                if byte == IAC:
                    state = 1
                else:
                    out.append(byte)
            elif state == 1:
                if byte in (_WILL, _WONT, _DO, _DONT):
                    state = 2
                elif byte == _SB:
                    state = 3
                else:  # IAC IAC, or a two-byte command (NOP, GA, AYT, ...)
                    state = 0
            elif state == 2:
                state = 0
            elif state == 3:
                if byte == IAC:
                    state = 4
            else:  # state 4
                state = 0 if byte == _SE else 3
        self._state = state
        return bytes(out)


def check_name(name: str) -> str:
    """
    Return C{name} if it is a valid username.

    @raise BadName: with a message saying what is allowed.
    """
    if not _NAME.match(name):
        if not name:
            raise BadName("a name cannot be empty")
        raise BadName(
            "a name is 1-%d characters: ASCII letters, digits, _ - ." % MAX_NAME
        )
    if name.lower() in RESERVED_NAMES:
        raise BadName("the name %s is reserved; pick another" % name)
    return name


def room_key(name: str) -> str:
    """
    Return the canonical form of a room name: lower case, without C{#}.

    @raise BadRoom: with a message saying what is allowed.
    """
    match = _ROOM.match(name)
    if match is None:
        raise BadRoom(
            "a room name is 1-%d characters: ASCII letters, digits, _ -, "
            "optionally with a leading #" % MAX_ROOM
        )
    return match.group(1).lower()


def clock_stamp(when: float) -> str:
    """C{HH:MM:SS} in the server's local time."""
    return time.strftime("%H:%M:%S", time.localtime(when))


def date_stamp(when: float) -> str:
    """C{YYYY-MM-DD HH:MM:SS} in the server's local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
