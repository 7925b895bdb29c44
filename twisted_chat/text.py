"""
Pure text hygiene: lenient decoding, telnet and control-character stripping,
name and room rules, and time formats.

Nothing here does I/O; the client imports this module too.
"""

from __future__ import annotations

import functools
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
_SE, _SB = 0xF0, 0xFA
_WILL, _WONT, _DO, _DONT = 0xFB, 0xFC, 0xFD, 0xFE
# Two-byte commands that netkit-derived telnets send for a special key
# (IP for ^C, BRK for ^\, SUSP for ^Z, AO for ^O, EC for ^H, EL for ^U, AYT
# for ^T) and the byte each stands for with its 8th bit set: without the
# BINARY option such a client strips the 8th bit of each byte before looking
# for special keys, so the UTF-8 continuation byte 0x83 of "ă" goes out as IP.
_EIGHT_BIT = {0xF4: 0x83, 0xF3: 0x9C, 0xED: 0x9A, 0xF5: 0x8F, 0xF7: 0x88, 0xF8: 0x95,
              0xF6: 0x94}
_LINE_ENDS = re.compile(rb"\r[\n\x00]?")
# For data without subnegotiations (the common case), all in C: removing the
# commands and finding the option requests (group 1).
_REMOVE = functools.partial(re.compile(rb"\xff(?:[\xfb-\xfe].|[^\xfa-\xff])", re.DOTALL).sub, b"")
_REQUEST = re.compile(rb"\xff[\xfb-\xfe]")
_REQUEST_255 = re.compile(rb"\xff[\xfb-\xfe]\xff")  # option 255 looks like an IAC
_OPTIONS = re.compile(rb"\xff(?:([\xfb-\xfe].)|[^\xfa-\xfe])", re.DOTALL)
_SPECIALS = tuple(bytes((IAC, command)) for command in _EIGHT_BIT)
_EIGHT_BIT_BYTE = re.compile(rb"[\x80-\xf4]")


def _incomplete_utf8(tail: bytes | bytearray) -> bool:
    """Whether C{tail} (the last bytes seen) ends inside a UTF-8 sequence."""
    if not tail or tail[-1] < 0x80:
        return False
    for back in range(1, min(len(tail), 3) + 1):
        byte = tail[-back]
        if 0x80 <= byte < 0xC0:
            continue  # a continuation byte: look further back
        need = 2 if 0xC2 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else (
            4 if 0xF0 <= byte < 0xF5 else 0)
        return back < need
    return False


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
    Takes telnet commands out of a client's byte stream, across chunk
    boundaries, and makes its line ends plain.

    Option requests (C{WILL}, C{WONT}, C{DO}, C{DONT}) are collected in
    L{commands} as C{(verb, option)} pairs for the caller to answer;
    subnegotiations and other two-byte commands are dropped, except that a
    special-key command arriving inside a UTF-8 sequence becomes the byte the
    client's key check took for it (see C{_EIGHT_BIT}).  C{IAC IAC} is a
    literal 0xFF (never valid UTF-8, so it decodes to U+FFFD).

    Line ends: C{CR LF}, C{CR NUL} and a bare C{CR} all become C{CR LF}, so a
    client in character mode ends its lines too.

    Commands are removed in C (regular expressions, C{bytes.split} and
    C{rstrip}), so bytes between them cost what plain bytes cost; only a
    subnegotiation or a special key after an 8-bit byte takes the careful
    path of one Python step per command (still cheaper per byte than a
    flood of empty lines).
    """

    __slots__ = ("_cr", "_state", "_tail", "commands")

    # states: 0 data, 1 after IAC, 2 after IAC WILL/WONT/DO/DONT (verb kept),
    # 3 inside SB, 4 IAC inside SB
    def __init__(self) -> None:
        self._state = 0
        self._cr = False  # the last byte given out was a CR, ending a line
        self._tail = b""  # the last bytes given out, for _incomplete_utf8
        self.commands: list[tuple[int, int]] = []

    @property
    def idle(self) -> bool:
        """True when no sequence is half-read."""
        return self._state == 0

    def feed(self, data: bytes) -> bytes:
        """Return C{data} without its telnet commands, with plain line ends."""
        if self._state == 0 and IAC not in data:
            out = data
            self._tail = data[-3:] if len(data) >= 3 else (self._tail + data)[-3:]
        else:
            out = self._scan(data)
        if self._cr and out:
            self._cr = False
            if out[:1] in (b"\n", b"\x00"):  # the rest of a CR LF or CR NUL
                out = out[1:]
        if b"\r" in out:
            self._cr = out[-1] == 13
            out = _LINE_ENDS.sub(b"\r\n", out)
        elif out:
            self._cr = False
        return out

    def _scan(self, data: bytes) -> bytes:
        """
        C{data} without commands: in C (regular expressions) unless it holds
        a subnegotiation, a request about option 255 or a special key after
        an 8-bit byte, or continues one of those.
        """
        head = b""
        if self._state == 1 or self._state & 0xFF == 2:  # finish a command cut by the read
            head, data = self._strip(data[:2]), data[2:]
            self._tail = (self._tail + head)[-3:]
        if not data:
            out = b""
        elif (self._state != 0 or b"\xff\xfa" in data or _REQUEST_255.search(data)
              or self._eight_bit_special(data)):
            out = self._strip(data)
        else:
            # A command cut by the end of the read waits for the next: the
            # last IAC of an odd run of 0xFF bytes, alone or before a verb.
            run = len(data) - len(data.rstrip(b"\xff"))
            if run & 1:
                self._state, data = 1, data[:-1]
            elif not run and data[-1] >= _WILL and data[-2:-1] == b"\xff":
                run = len(data) - 1 - len(data[:-1].rstrip(b"\xff"))
                if run & 1:
                    self._state, data = 2 + (data[-1] << 8), data[:-2]
            if _REQUEST.search(data):
                self.commands += [(pair[0], pair[1]) for pair in _OPTIONS.findall(data) if pair]
            if b"\xff\xff" in data:  # literal 0xFF bytes between the pieces
                out = b"\xff".join(map(_REMOVE, data.split(b"\xff\xff")))
            else:
                out = _REMOVE(data)
        if out:
            self._tail = (self._tail + out[-3:])[-3:]
        return head + out if head else out

    def _eight_bit_special(self, data: bytes) -> bool:
        """Whether C{data} may hold a special key that stands for an 8-bit byte."""
        if not any(command in data for command in _SPECIALS):
            return False
        return bool(_EIGHT_BIT_BYTE.search(data)) or _incomplete_utf8(self._tail)

    def _strip(self, data: bytes) -> bytes:
        out = bytearray()
        state = self._state
        dropped_at = -1
        find = data.find
        pos, end = 0, len(data)
        while pos < end:
            if state == 0:
                at = find(b"\xff", pos)
                if at < 0:
                    out += data[pos:]
                    break
                out += data[pos:at]
                pos, state = at + 1, 1
            elif state == 1:
                byte = data[pos]
                pos += 1
                if _WILL <= byte <= _DONT:
                    state = 2 + (byte << 8)  # remember the verb
                    continue
                state = 3 if byte == _SB else 0
                if byte == IAC:
                    out.append(IAC)
                elif byte in _EIGHT_BIT and len(out) != dropped_at:
                    if _incomplete_utf8(out[-3:] if len(out) >= 3 else self._tail + out):
                        out.append(_EIGHT_BIT[byte])
                    else:  # the next special key here is dropped too, unchecked
                        dropped_at = len(out)
            elif state & 0xFF == 2:
                self.commands.append((state >> 8, data[pos]))
                pos, state = pos + 1, 0
            elif state == 3:
                at = find(b"\xff", pos)
                if at < 0:
                    break
                pos, state = at + 1, 4
            else:  # state 4: IAC inside SB
                state = 0 if data[pos] == _SE else 3
                pos += 1
        self._state = state
        return bytes(out)


def strip_telnet(data: bytes) -> bytes:
    """C{data} (one whole piece, such as a line) without telnet commands."""
    return TelnetFilter()._strip(data) if IAC in data else data


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
