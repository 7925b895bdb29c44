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
# escapes), then any lone C0/C1 control except TAB, and DEL, and the format
# characters that can reorder or hide text (below).
_UNSAFE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?            # CSI ... final byte
    | \x9b[0-?]*[ -/]*[@-~]?              # 8-bit CSI
    | [\x1b][\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC, DCS, SOS, PM, APC
    | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[ -/]*[0-~]?                    # other escapes (ESC c, ESC ( B, ...)
    | [\x00-\x08\x0a-\x1f\x7f-\x9f]       # everything else that is a control
    | [\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]
    """,
    re.VERBOSE,
)

# Format characters that can reorder or hide text (category Cf) are removed
# like controls (the last class of _UNSAFE): bidi embeddings, overrides and
# isolates (U+202A-202E, U+2066-2069) and marks (U+061C, U+200E-200F),
# zero-width and invisible characters (U+200B, U+2060-2064, U+FEFF, U+180E,
# U+00AD, U+206A-206F) and interlinear annotations (U+FFF9-FFFB).  Then, only
# in text still unprintable (_RARE): the line and paragraph separators become
# spaces; ZWNJ/ZWJ (U+200C-200D) are kept inside words (emoji sequences,
# Indic and Persian spelling need them) and removed elsewhere; tag characters
# are kept only in an emoji flag sequence (U+1F3F4 then tags).
_RARE = re.compile(
    r"(\U0001F3F4[\U000E0020-\U000E007F]+)"  # a flag: kept (group 1)
    r"|([\u2028\u2029])"  # a separator: a space (group 2)
    r"|(?<!\S)[\u200c\u200d]+|[\u200c\u200d]+(?!\S)"  # a joiner outside a word
    r"|[\U000E0000-\U000E007F]"  # any other tag character
)


def _rare(match: re.Match[str]) -> str:
    return match.group(1) or (" " if match.group(2) else "")


# Letters that look like nothing: Hangul fillers and the blank Braille cell.
_BLANK = str.maketrans(dict.fromkeys((0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0)))

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
    that text one user sends can never drive another user's terminal, and
    the format characters that can reorder or hide text (see L{_RARE}).
    """
    if text.isprintable():  # every Cc, Cf, Zl and Zp character is unprintable
        return text
    text = _UNSAFE.sub("", text)
    if not text.isprintable():  # rare: joiners, tags, separators, other spaces
        text = _RARE.sub(_rare, text)
    return text


def visible(text: str) -> bool:
    """
    Whether cleaned C{text} shows anything: not only whitespace or letters
    that look like nothing (a message of those would be an empty-looking line).
    """
    if text.isascii():
        return bool(text) and not text.isspace()
    shown = text.translate(_BLANK)
    return bool(shown) and not shown.isspace()


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


def utc_offset(when: float) -> int:
    """The server's offset from UTC at C{when}, in seconds east (C{3600} for UTC+01:00)."""
    return time.localtime(when).tm_gmtoff


def zone_name(offset: int) -> str:
    """C{UTC+01:00}, C{UTC-05:30}, or C{UTC} for an offset of 0."""
    if not offset:
        return "UTC"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return "UTC%s%02d:%02d" % (sign, hours, minutes)


def clock_stamp(when: float) -> str:
    """C{HH:MM:SS} in the server's local time."""
    return time.strftime("%H:%M:%S", time.localtime(when))


def date_stamp(when: float) -> str:
    """C{YYYY-MM-DD HH:MM:SS} in the server's local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
