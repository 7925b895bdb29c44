"""
IRC messages to and from bytes, sans-I/O: one line in, one L{Message} out,
and back.

L{parse_message} takes one line as the framing delivers it (split on C{\\n},
one trailing C{\\r} stripped) and either returns a L{Message} or raises a
L{ParseError} subclass, never anything else, whatever the bytes:

    - L{EmptyLine}: nothing but whitespace; ignore it.
    - L{NoCommand}: tags and/or a prefix but no command; ignore it.
    - L{LineTooLong}: answer C{417 ERR_INPUTTOOLONG}, keep the session.
    - L{InvalidUTF8}: bad UTF-8 outside the tags; answer
      C{FAIL <command> INVALID_UTF8} (with the message's C{label}, if any).
    - L{ForbiddenCharacter}: a NUL or a lone CR inside the line, which no
      reply could echo; answer C{FAIL <command> INVALID_MESSAGE} or drop it.

Grammar (modern IRC and IRCv3 message-tags):

    [@tags SPACE] [:source SPACE] command *(SPACE middle) [SPACE :trailing]

Spaces between parts may be repeated, and leading ones are skipped; only
spaces separate (a tab is part of a word).  A command never starts with
C{@} (that is a L{NoCommand}).  At most L{MAX_PARAMS} parameters: the
rest of the line goes into the last one, verbatim.  The command is
uppercased (ASCII only).  Every middle parameter the parser returns is
non-empty, has no space and does not start with C{:}, and nothing it returns
contains CR, LF or NUL, so any parsed value can be echoed through
L{format_message}.

Tags are decoded leniently (bad UTF-8 becomes U+FFFD), because they are
mostly ignored or relayed opaquely; everything after them is decoded
strictly, after the split, so a bad byte in the text is reported with the
command it belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

# The tags part a line may carry: '@', the tags and one space (message-tags:
# 8191 bytes in all on the wire).
MAX_TAGS = 8191
# What a client may send of it: 4094 bytes of tag data plus '@' and the space
# (message-tags: "Servers MUST reject messages from clients that contain tag
# data exceeding this limit"); irctest's testLengthLimits checks this one.
MAX_CLIENT_TAGS = 4096
# The rest of the line: 512 bytes with its CRLF.
MAX_LINE = 512
MAX_BODY = MAX_LINE - 2
MAX_PARAMS = 15

NO_TAGS: Mapping[str, str] = MappingProxyType({})

_TAG_KEY = re.compile(r"\+?(?:[A-Za-z0-9][A-Za-z0-9.\-]*/)?[A-Za-z0-9\-]+\Z")
_UNESCAPE = re.compile(r"\\(.?)", re.DOTALL)
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_FORBIDDEN = re.compile(r"[\x00\r\n]")


class ParseError(Exception):
    """A line that is not a message; the subclass says what to answer."""


class EmptyLine(ParseError):
    """A line with nothing but whitespace in it."""


class NoCommand(ParseError):
    """A line with tags or a source but no command."""


class LineTooLong(ParseError):
    """
    The tags part or the rest of the line is over its byte limit.

    @ivar in_tags: whether the tags part was the one too long.
    @ivar limit: the limit it broke, in bytes.
    """

    def __init__(self, in_tags: bool, limit: int) -> None:
        super().__init__(f"{'tags' if in_tags else 'line'} longer than {limit} bytes")
        self.in_tags = in_tags
        self.limit = limit


class BadMessage(ParseError):
    """
    A message the server must refuse with a reply naming its command.

    @ivar command: the command, uppercased, or C{"*"} when it is not plain
        ASCII letters and digits (so it is always safe to echo).
    @ivar tags: the message's tags (for C{label}); empty when unknown.
    """

    def __init__(
        self, reason: str, command: str, tags: Mapping[str, str] = NO_TAGS
    ) -> None:
        super().__init__(reason)
        self.command = command
        self.tags = tags


class InvalidUTF8(BadMessage):
    """Bytes after the tags that are not UTF-8."""


class ForbiddenCharacter(BadMessage):
    """A NUL, CR or LF inside the line (CR and LF only get here unframed)."""


@dataclass(frozen=True, slots=True)
class Message:
    """
    One IRC message.

    @ivar tags: tag names to unescaped values (C{""} for a tag without one);
        read-only.
    @ivar source: the prefix without its C{:}, or C{None}.
    @ivar command: uppercased (ASCII letters), or a numeric.
    @ivar params: the parameters, the trailing one without its C{:}.

    Not hashable (C{tags} is a mapping).
    """

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS)

    def to_bytes(self) -> bytes:
        """This message as a line, without the CRLF; see L{format_message}."""
        return format_message(self.tags, self.source, self.command, self.params)


def parse_message(
    line: bytes, *, max_tags: int = MAX_TAGS, max_body: int = MAX_BODY
) -> Message:
    """
    Parse one line.

    @param line: the line without its CRLF.
    @param max_tags: the longest tags part, counting C{@} and one space.
    @param max_body: the longest rest of the line (510: 512 less CRLF).
    @raise ParseError: one of the subclasses listed in the module docstring;
        nothing else, whatever C{line} holds.
    """
    length = len(line)  # spaces count: the limits are on bytes as received
    if line[:1] == b" ":
        line = line.lstrip(b" ")
    if line[:1] == b"@":
        raw_tags, _, body = line.partition(b" ")
        if len(raw_tags) + 1 > max_tags:
            raise LineTooLong(True, max_tags)
        length = len(body)
        if body[:1] == b" ":
            body = body.lstrip(b" ")
    else:
        raw_tags = b""
        body = line
    if length > max_body:
        raise LineTooLong(False, max_body)
    if b"\x00" in line or b"\r" in line or b"\n" in line:
        raise ForbiddenCharacter("forbidden character", _command_of(body))
    tags = _parse_tags(raw_tags) if raw_tags else NO_TAGS
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUTF8("invalid UTF-8", _command_of(body), tags) from None

    if text[:1] == " ":
        text = text.lstrip(" ")
    if not text or text.isspace():
        if raw_tags:
            raise NoCommand("tags but no command")
        raise EmptyLine("empty line")
    source = None
    if text[0] == ":":
        source, _, text = text[1:].partition(" ")
        if text[:1] == " ":
            text = text.lstrip(" ")
        if not text or text[0] == ":" or text.isspace():
            raise NoCommand("a source but no command")
        source = source or None

    head, colon, trailing = text.partition(" :")
    words = head.split(" ")
    if "" in words:
        words = [word for word in words if word]
    command = words[0]
    if command[0] == "@":  # "@" only ever starts the tags
        raise NoCommand("no command")
    if command.isascii():
        command = command.upper()
    if len(words) + (1 if colon else 0) > MAX_PARAMS + 1:
        params = _overflow(head, words, colon, trailing)
    elif colon:
        words.append(trailing)
        params = tuple(words[1:])
    else:
        params = tuple(words[1:])
    return Message(command, params, source, tags)


def _overflow(head: str, words: list[str], colon: str, trailing: str) -> tuple[str, ...]:
    """
    Params when there are more than L{MAX_PARAMS}: the last one is the rest
    of the line from the 15th on, verbatim (RFC 2812 grammar; rare).
    """
    position = 0
    for word in words[:MAX_PARAMS]:  # the command and 14 middles
        position = head.index(word, position) + len(word)
    rest = head[position:].strip(" ")
    if colon:
        rest = f"{rest} :{trailing}"
    return (*words[1:MAX_PARAMS], rest)


def _command_of(body: bytes) -> str:
    """The command of a line we could not parse, safe to echo, or C{"*"}."""
    body = body.lstrip(b" ")
    if body[:1] == b":":
        body = body.partition(b" ")[2].lstrip(b" ")
    word = body.partition(b" ")[0]
    if word.isalnum():  # bytes.isalnum: ASCII only, and False when empty
        return word.decode("ascii").upper()
    return "*"


def _parse_tags(raw: bytes) -> Mapping[str, str]:
    """
    The tags of C{raw} (C{@} included): later duplicates win, a missing
    value is C{""}, keys that break the grammar are dropped.
    """
    tags: dict[str, str] = {}
    for item in raw[1:].decode("utf-8", "replace").split(";"):
        key, _, value = item.partition("=")
        if _TAG_KEY.match(key):
            tags[key] = unescape_tag_value(value) if "\\" in value else value
    return tags


def unescape_tag_value(value: str) -> str:
    """
    Undo message-tags escaping: C{\\:} C{\\s} C{\\\\} C{\\r} C{\\n}; any
    other escaped character stands for itself, a trailing backslash is
    dropped.
    """
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(_unescape_one, value)


def _unescape_one(match: re.Match[str]) -> str:
    char = match[1]
    return _UNESCAPES.get(char, char)


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire (the inverse of L{unescape_tag_value})."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if ";" in value:
        value = value.replace(";", "\\:")
    if " " in value:
        value = value.replace(" ", "\\s")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    return value


def format_message(
    tags: Mapping[str, str] | None,
    source: str | None,
    command: str,
    params: Sequence[str] = (),
) -> bytes:
    """
    One message as a UTF-8 line without its CRLF.

    The last parameter gets a C{:} only when it needs one (empty, starting
    with C{:}, or holding a space).  Tag values are escaped; a tag whose
    value is C{""} is written as the bare key.  Keeping within L{MAX_LINE}
    is the caller's business (see L{room_for_last} and L{split_text}).

    @raise ValueError: for anything that cannot be written as one message:
        CR, LF or NUL anywhere but in a tag value (NUL there too), an
        empty, spaced or C{:}-leading command, source or middle parameter,
        a tag key that breaks the grammar, or more than L{MAX_PARAMS}
        parameters.
    """
    if len(params) > MAX_PARAMS:
        raise ValueError(f"{len(params)} parameters, more than {MAX_PARAMS}")
    parts = []
    if tags:
        items = []
        for key, value in tags.items():
            if not _TAG_KEY.match(key):
                raise ValueError(f"bad tag key {key!r}")
            if value:
                if "\x00" in value:
                    raise ValueError(f"NUL in the value of tag {key!r}")
                items.append(f"{key}={escape_tag_value(value)}")
            else:
                items.append(key)
        parts.append("@" + ";".join(items))
    if source is not None:
        _check_word(source, "source")
        parts.append(":" + source)
    _check_word(command, "command")
    if command[0] == "@":
        raise ValueError(f"bad command {command!r}")
    parts.append(command)
    if params:
        last = len(params) - 1
        for param in params[:last]:
            _check_word(param, "middle parameter")
            parts.append(param)
        param = params[last]
        if _FORBIDDEN.search(param):
            raise ValueError(f"CR, LF or NUL in parameter {param!r}")
        if not param or param[0] == ":" or " " in param:
            param = ":" + param
        parts.append(param)
    return " ".join(parts).encode("utf-8")


def _check_word(word: str, what: str) -> None:
    if not word or word[0] == ":" or " " in word or _FORBIDDEN.search(word):
        raise ValueError(f"bad {what} {word!r}")


def room_for_last(source: str | None, command: str, middle: Sequence[str] = ()) -> int:
    """
    How many bytes the last parameter may have in a message of
    C{:source command middle... :last}, within L{MAX_LINE} with its CRLF
    (tags not counted: they have their own limit).
    """
    used = len(command.encode("utf-8")) + 2  # the space and ':' before the last
    if source is not None:
        used += len(source.encode("utf-8")) + 2  # ':' and a space
    for param in middle:
        used += len(param.encode("utf-8")) + 1
    return MAX_BODY - used


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest start of C{text} that is at most C{max_bytes} in UTF-8."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    # "ignore" drops only the character cut in two at the end
    return data[: max(max_bytes, 0)].decode("utf-8", "ignore")


def split_text(text: str, max_bytes: int) -> list[str]:
    """
    Cut C{text} into pieces of at most C{max_bytes} bytes of UTF-8 each, on
    character boundaries, for a long chat line that must go out as several
    PRIVMSGs.  A piece ends at the last space of its window when that space
    is in the window's second half (the space is dropped); otherwise the cut
    is at the byte limit.  C{""} gives C{[""]}.

    @raise ValueError: if C{max_bytes} is less than 4 (a character may need
        four).
    """
    if max_bytes < 4:
        raise ValueError(f"max_bytes must be at least 4, not {max_bytes}")
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return [text]
    pieces = []
    start, end = 0, len(data)
    while end - start > max_bytes:
        cut = start + max_bytes
        while data[cut] & 0xC0 == 0x80:  # back to a character start: at most 3 steps
            cut -= 1
        space = data.rfind(b" ", start + max_bytes // 2, cut + 1)
        if space > start:
            pieces.append(data[start:space].decode("utf-8"))
            start = space + 1
        else:
            pieces.append(data[start:cut].decode("utf-8"))
            start = cut
    pieces.append(data[start:].decode("utf-8"))
    return pieces
