"""
Tests for L{twisted_chat.frontends.irc.parser}.

The cases follow the examples of the IRCv3 message-tags specification and the
style of the ircdocs parser-tests suite (split, join, escaping), written here
by hand.
"""

from __future__ import annotations

import operator

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.frontends.irc.parser import (
    MAX_BODY,
    MAX_CLIENT_TAGS,
    MAX_LINE,
    MAX_PARAMS,
    MAX_TAGS,
    BadMessage,
    EmptyLine,
    ForbiddenCharacter,
    InvalidUTF8,
    LineTooLong,
    Message,
    NoCommand,
    ParseError,
    escape_tag_value,
    format_message,
    parse_message,
    room_for_last,
    split_text,
    truncate_utf8,
    unescape_tag_value,
)


def parse(line: bytes | str) -> Message:
    return parse_message(line.encode("utf-8") if isinstance(line, str) else line)


class SplitTests(SynchronousTestCase):
    """L{parse_message} splits lines into source, command and parameters."""

    def check(self, line: str, command: str, params: list[str], source: str | None = None,
              tags: dict[str, str] | None = None) -> None:
        message = parse(line)
        self.assertEqual(
            (message.source, message.command, list(message.params), dict(message.tags)),
            (source, command, params, tags or {}),
            line,
        )

    def test_simple(self) -> None:
        """Middle parameters are separated by spaces; the command is uppercased."""
        self.check("foo bar baz asdf", "FOO", ["bar", "baz", "asdf"])
        self.check("privmsg #chan hi", "PRIVMSG", ["#chan", "hi"])
        self.check("COMMAND", "COMMAND", [])
        self.check("001 nick :Welcome", "001", ["nick", "Welcome"])

    def test_source(self) -> None:
        """A leading C{:word} is the source."""
        self.check(":coolguy foo bar baz asdf", "FOO", ["bar", "baz", "asdf"], "coolguy")
        self.check(":nick!user@host.example JOIN #chan", "JOIN", ["#chan"],
                   "nick!user@host.example")
        self.check(":src JOIN :#chan", "JOIN", ["#chan"], "src")

    def test_trailing(self) -> None:
        """C{" :"} starts the trailing parameter, which keeps its spaces and colons."""
        self.check("foo bar baz :asdf quux", "FOO", ["bar", "baz", "asdf quux"])
        self.check("foo bar baz :", "FOO", ["bar", "baz", ""])
        self.check("foo bar baz ::asdf", "FOO", ["bar", "baz", ":asdf"])
        self.check(":coolguy foo bar baz :  asdf quux ", "FOO", ["bar", "baz", "  asdf quux "],
                   "coolguy")
        self.check(":coolguy PRIVMSG bar :lol :) ", "PRIVMSG", ["bar", "lol :) "], "coolguy")
        self.check(":coolguy foo bar baz :  ", "FOO", ["bar", "baz", "  "], "coolguy")
        self.check("PRIVMSG #a :", "PRIVMSG", ["#a", ""])
        self.check("MODE #a +b x:y!*@*", "MODE", ["#a", "+b", "x:y!*@*"])
        self.check(":SomeOp MODE #channel :+i", "MODE", ["#channel", "+i"], "SomeOp")
        self.check(":SomeOp MODE #channel +oo SomeUser :AnotherUser", "MODE",
                   ["#channel", "+oo", "SomeUser", "AnotherUser"], "SomeOp")

    def test_extra_spaces(self) -> None:
        """Repeated, leading and trailing spaces separate nothing."""
        self.check(":src   AWAY", "AWAY", [], "src")
        self.check(":src AWAY ", "AWAY", [], "src")
        self.check("  PING   x  ", "PING", ["x"])
        self.check(":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
                   "432", ["#momo", "Erroneous Nickname: Illegal characters"],
                   "gravel.mozilla.org")
        self.check(":gravel.mozilla.org MODE #tckk +n ", "MODE", ["#tckk", "+n"],
                   "gravel.mozilla.org")
        self.check(":services.esper.net MODE #foo-bar +o foobar  ", "MODE",
                   ["#foo-bar", "+o", "foobar"], "services.esper.net")
        self.check("@a=b   :src   CMD   x   :y  z", "CMD", ["x", "y  z"], "src", {"a": "b"})
        self.check("CMD a  :b", "CMD", ["a", "b"])
        self.check("  @a=b CMD", "CMD", [], None, {"a": "b"})

    def test_only_spaces_separate(self) -> None:
        """Tabs and control characters are part of words, as in the grammar."""
        self.check(":cool\tguy foo bar baz", "FOO", ["bar", "baz"], "cool\tguy")
        self.check(":coolguy!ag@net\x035w\x03ork.admin PRIVMSG foo :bar baz", "PRIVMSG",
                   ["foo", "bar baz"], "coolguy!ag@net\x035w\x03ork.admin")
        self.check("PRIVMSG a\tb :\x01ACTION waves\x01", "PRIVMSG",
                   ["a\tb", "\x01ACTION waves\x01"])

    def test_uppercase_is_ascii_only(self) -> None:
        """Only ASCII commands are uppercased: no Unicode case folding into a known one."""
        self.assertEqual(parse("jo\u0131n #a").command, "jo\u0131n")
        self.assertEqual(parse("Nick x").command, "NICK")

    def test_utf8(self) -> None:
        """Text after the tags is decoded as UTF-8."""
        self.check("PRIVMSG #a :h\u00e9llo \U0001f389", "PRIVMSG", ["#a", "h\u00e9llo \U0001f389"])

    def test_max_params(self) -> None:
        """Past 15 parameters the rest of the line is the last one, verbatim."""
        words = [f"p{i}" for i in range(1, 21)]
        message = parse("CMD " + " ".join(words) + " :t  x")
        self.assertEqual(len(message.params), MAX_PARAMS)
        self.assertEqual(message.params[:14], tuple(words[:14]))
        self.assertEqual(message.params[14], "p15 p16 p17 p18 p19 p20 :t  x")

    def test_fifteen_params(self) -> None:
        """Exactly 15 parameters, with or without a trailing one, are kept apart."""
        words = [f"p{i}" for i in range(1, 16)]
        self.assertEqual(parse("CMD " + " ".join(words)).params, tuple(words))
        self.assertEqual(parse("CMD " + " ".join(words[:14]) + " :a b").params,
                         (*words[:14], "a b"))

    def test_fifteen_middles_and_trailing(self) -> None:
        """Fifteen middles and a trailing make the 15th hold both."""
        words = [f"p{i}" for i in range(1, 16)]
        message = parse("CMD " + "  ".join(words) + " :a b")
        self.assertEqual(message.params, (*words[:14], "p15 :a b"))


class TagTests(SynchronousTestCase):
    """Message tags, as in the IRCv3 message-tags specification."""

    def test_spec_example(self) -> None:
        """The example of the specification: values, bare keys, vendors, client-only."""
        message = parse(
            "@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello"
        )
        self.assertEqual(dict(message.tags), {"aaa": "bbb", "ccc": "", "example.com/ddd": "eee"})
        self.assertEqual(message.source, "nick!ident@host.com")
        self.assertEqual(message.params, ("me", "Hello"))
        message = parse("@+example.com/foo=bar;+icon=https://example.com/x.png TAGMSG #a")
        self.assertEqual(dict(message.tags),
                         {"+example.com/foo": "bar", "+icon": "https://example.com/x.png"})

    def test_several(self) -> None:
        message = parse(
            "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4= :irc.example.com "
            "COMMAND param1 param2 :param3 param3"
        )
        self.assertEqual(dict(message.tags),
                         {"tag1": "value1", "tag2": "", "vendor1/tag3": "value2",
                          "vendor2/tag4": ""})
        self.assertEqual(message.params, ("param1", "param2", "param3 param3"))

    def test_escapes(self) -> None:
        """C{\\:} C{\\s} C{\\\\} C{\\r} C{\\n} are unescaped."""
        message = parse(r"@a=b\\and\nk;c=72\s45;d=gh\\764 foo")
        self.assertEqual(dict(message.tags), {"a": "b\\and\nk", "c": "72 45", "d": "gh\\764"})
        message = parse(r"@foo=\\\\\:\\s\s\r\n COMMAND")
        self.assertEqual(message.tags["foo"], "\\\\;\\s \r\n")

    def test_invalid_escapes(self) -> None:
        """An unknown escape drops the backslash, and so does a trailing one."""
        self.assertEqual(parse(r"@tag1=value\1 CMD").tags["tag1"], "value1")
        self.assertEqual(parse("@tag1=value1\\ CMD").tags["tag1"], "value1")
        self.assertEqual(parse(r"@t=\b\ CMD").tags["t"], "b")
        self.assertEqual(parse("@t=\\\u00e9 CMD").tags["t"], "\u00e9")

    def test_empty_values(self) -> None:
        """A missing value and an empty one are the same."""
        message = parse("@c;h=;a=b :quux ab cd")
        self.assertEqual(dict(message.tags), {"c": "", "h": "", "a": "b"})
        self.assertEqual((message.source, message.command, message.params),
                         ("quux", "AB", ("cd",)))

    def test_duplicates(self) -> None:
        """The last of several values for one key wins."""
        message = parse("@tag1=1;tag2=3;tag3=4;tag1=5;vendor/tag2=8 COMMAND")
        self.assertEqual(dict(message.tags),
                         {"tag1": "5", "tag2": "3", "tag3": "4", "vendor/tag2": "8"})

    def test_bad_keys_dropped(self) -> None:
        """Keys that break the grammar (empty, odd characters) are dropped, the rest kept."""
        message = parse("@;=x;a=1;b!c=2;+=3;/k=4;v/=5;ok-key=6;;é=7 CMD")
        self.assertEqual(dict(message.tags), {"a": "1", "ok-key": "6"})
        self.assertEqual(dict(parse("@ CMD x").tags), {})

    def test_lenient_tag_utf8(self) -> None:
        """Bad UTF-8 in the tags becomes U+FFFD; the message is kept."""
        message = parse(b"@+a=\xff\xfe PRIVMSG #a :hi")
        self.assertEqual(message.tags["+a"], "\ufffd\ufffd")
        self.assertEqual(message.params, ("#a", "hi"))

    def test_no_tags_is_empty(self) -> None:
        """A message without tags has an empty, read-only mapping."""
        tags = parse("PING x").tags
        self.assertEqual(dict(tags), {})
        self.assertRaises(TypeError, operator.setitem, tags, "a", "b")

    def test_escape_round_trip(self) -> None:
        for value in ["", "plain", "a b;c\\d\r\ne", "\\", ";", " ", "\\s", "\u00e9\U0001f389"]:
            self.assertEqual(unescape_tag_value(escape_tag_value(value)), value, value)
        self.assertEqual(escape_tag_value("a b;c\\d\r\n"), r"a\sb\:c\\d\r\n")


class ErrorTests(SynchronousTestCase):
    """Lines that are not messages raise a documented L{ParseError} subclass."""

    def test_empty(self) -> None:
        for line in [b"", b" ", b"   ", b"\t", b" \t \x0b\x0c"]:
            self.assertRaises(EmptyLine, parse_message, line)

    def test_no_command(self) -> None:
        """Tags only, a source only, or a source then a trailing: no command."""
        for line in [b"@", b"@a=b", b"@a=b ", b"@a=b   ", b":prefix", b":prefix   ", b":",
                     b": ", b"@a :src", b"@a :src ", b":src :trailing", b":src \t",
                     b"@a \t", b" @", b":src @cmd", b"@a @b c"]:
            self.assertRaises(NoCommand, parse_message, line)

    def test_invalid_utf8(self) -> None:
        """Bad UTF-8 after the tags names the command (for FAIL) and keeps the tags."""
        error = self.assertRaises(InvalidUTF8, parse_message,
                                  b"@label=xyz PRIVMSG #qux hi\xaa")
        self.assertEqual(error.command, "PRIVMSG")
        self.assertEqual(dict(error.tags), {"label": "xyz"})
        error = self.assertRaises(InvalidUTF8, parse_message, b":s\xff privmsg x :y")
        self.assertEqual((error.command, dict(error.tags)), ("PRIVMSG", {}))
        error = self.assertRaises(InvalidUTF8, parse_message, b"USER \xe8rc\xe9 * * :r")
        self.assertEqual(error.command, "USER")

    def test_invalid_utf8_command(self) -> None:
        """A command that is not ASCII letters and digits is reported as C{*}."""
        for line in [b"PRIV\xffMSG x", b"\xff", b"PRIV-MSG \xff", b":src", b"\xc3\xa9 \xff"]:
            try:
                parse_message(line)
            except InvalidUTF8 as error:
                self.assertEqual(error.command, "*", line)
            except NoCommand:
                self.assertEqual(line, b":src")
            else:
                self.fail(f"{line!r} parsed")

    def test_forbidden_characters(self) -> None:
        """NUL, and CR or LF that framing left inside the line, are refused."""
        for line in [b"PRIVMSG #a :x\x00y", b"PRIVMSG #a :x\ry", b"PRIVMSG #a :x\ny",
                     b"@a=\x00 PING x", b"\x00"]:
            error = self.assertRaises(ForbiddenCharacter, parse_message, line)
            self.assertIsInstance(error, BadMessage)
        error = self.assertRaises(ForbiddenCharacter, parse_message, b"privmsg #a :\x00")
        self.assertEqual(error.command, "PRIVMSG")

    def test_all_are_parse_errors(self) -> None:
        for error in [EmptyLine, NoCommand, LineTooLong, InvalidUTF8, ForbiddenCharacter]:
            self.assertTrue(issubclass(error, ParseError), error)


class LimitTests(SynchronousTestCase):
    """Byte limits: 510 after the tags (512 with CRLF), 8191 for the tags part."""

    def test_body_at_limit(self) -> None:
        """A 510-byte line is accepted, a 511-byte one is too long."""
        line = b"PING " + b"x" * (MAX_BODY - 5)
        self.assertEqual(len(line), 510)
        self.assertEqual(parse_message(line).params, ("x" * 505,))
        error = self.assertRaises(LineTooLong, parse_message, line + b"x")
        self.assertEqual((error.in_tags, error.limit), (False, 510))

    def test_body_counts_bytes(self) -> None:
        """The limit is in bytes of UTF-8, not characters."""
        line = "PRIVMSG #a :" + "\u00e9" * 249
        self.assertEqual(len(line.encode()), 510)
        parse(line)
        self.assertRaises(LineTooLong, parse, line + "x")

    def test_spaces_count(self) -> None:
        """Leading and separating spaces count toward the 510 bytes."""
        line = b"PING " + b"x" * (MAX_BODY - 5)
        self.assertRaises(LineTooLong, parse_message, b" " + line)
        self.assertRaises(LineTooLong, parse_message, b"@a=b  " + line)
        self.assertRaises(LineTooLong, parse_message, b"PING  " + b"x" * (MAX_BODY - 5))

    def test_body_after_tags(self) -> None:
        """With tags, the 510 bytes start after the tags and their space."""
        body = b"PING " + b"x" * (MAX_BODY - 5)
        parse_message(b"@a=b " + body)
        self.assertRaises(LineTooLong, parse_message, b"@a=b " + body + b"x")

    def test_tags_at_limit(self) -> None:
        """The tags part, with its '@' and one space, may be 8191 bytes."""
        tags = b"@+a=" + b"v" * (MAX_TAGS - 5)
        self.assertEqual(len(tags) + 1, MAX_TAGS)
        self.assertEqual(len(parse_message(tags + b" TAGMSG #a").tags["+a"]), MAX_TAGS - 5)
        error = self.assertRaises(LineTooLong, parse_message, tags + b"v TAGMSG #a")
        self.assertEqual((error.in_tags, error.limit), (True, MAX_TAGS))
        self.assertRaises(LineTooLong, parse_message, tags + b"v")

    def test_client_tag_limit(self) -> None:
        """With C{max_tags=MAX_CLIENT_TAGS}, irctest's 4096-byte limit holds."""
        fits = b"@foo=bar;+baz=" + b"a" * 4081 + b" TAGMSG #test"
        self.assertEqual(fits.index(b"TAGMSG"), MAX_CLIENT_TAGS)
        parse_message(fits, max_tags=MAX_CLIENT_TAGS)
        excess = b"@foo=bar;+baz=" + b"a" * 4082 + b" TAGMSG #test"
        self.assertRaises(LineTooLong, parse_message, excess, max_tags=MAX_CLIENT_TAGS)
        parse_message(excess)

    def test_too_long_before_other_errors(self) -> None:
        """A too-long line is reported as such even when it is bad otherwise."""
        self.assertRaises(LineTooLong, parse_message, b"\xff" * 511)
        self.assertRaises(LineTooLong, parse_message, b"@" + b"\x00" * MAX_TAGS)


class FormatTests(SynchronousTestCase):
    """L{format_message} writes messages."""

    def test_plain(self) -> None:
        self.assertEqual(format_message(None, None, "PING", ["x"]), b"PING x")
        self.assertEqual(format_message({}, "srv", "001", ["nick", "Welcome to IRC"]),
                         b":srv 001 nick :Welcome to IRC")
        self.assertEqual(format_message(None, "n!u@h", "QUIT", []), b":n!u@h QUIT")

    def test_colon_only_when_needed(self) -> None:
        """The last parameter gets a ':' when empty, ':'-leading or spaced."""
        cases = {"x": b"C a x", "": b"C a :", ":x": b"C a ::x", "x y": b"C a :x y",
                 "x:y": b"C a x:y", "\t": b"C a \t"}
        for last, line in cases.items():
            self.assertEqual(format_message(None, None, "C", ["a", last]), line, last)

    def test_tags(self) -> None:
        """Tag values are escaped; an empty value is a bare key."""
        line = format_message({"time": "2026-01-01T00:00:00.000Z", "+a": "x y;z\\", "b": ""},
                              "n", "PRIVMSG", ["#a", "hi"])
        self.assertEqual(
            line, b"@time=2026-01-01T00:00:00.000Z;+a=x\\sy\\:z\\\\;b :n PRIVMSG #a hi")

    def test_utf8(self) -> None:
        self.assertEqual(format_message(None, None, "PRIVMSG", ["#a", "h\u00e9"]),
                         "PRIVMSG #a h\u00e9".encode())

    def test_refusals(self) -> None:
        """What cannot be one message raises ValueError."""
        bad = [
            (None, None, "PRIVMSG", ["#a", "x\r\ny"]),
            (None, None, "PRIVMSG", ["#a", "x\ny"]),
            (None, None, "PRIVMSG", ["#a", "x\x00"]),
            (None, None, "PRIVMSG", ["#a b", "x"]),
            (None, None, "PRIVMSG", ["", "x"]),
            (None, None, "PRIVMSG", [":a", "x"]),
            (None, None, "PRIVMSG", ["a\r", "x"]),
            (None, None, "", ["x"]),
            (None, None, "PRIV MSG", ["x"]),
            (None, None, ":PRIVMSG", ["x"]),
            (None, None, "@PRIVMSG", ["x"]),
            (None, "", "PING", ["x"]),
            (None, "a b", "PING", ["x"]),
            (None, ":a", "PING", ["x"]),
            (None, "a\n", "PING", ["x"]),
            ({"a b": "x"}, None, "PING", ["x"]),
            ({"": "x"}, None, "PING", ["x"]),
            ({"a;b": "x"}, None, "PING", ["x"]),
            ({"a": "x\x00"}, None, "PING", ["x"]),
            (None, None, "PING", ["p"] * (MAX_PARAMS + 1)),
            (None, None, "PRIVMSG", ["#a", "\ud800"]),
        ]
        for tags, source, command, params in bad:
            self.assertRaises(ValueError, format_message, tags, source, command, params)

    def test_message_to_bytes(self) -> None:
        message = Message("PRIVMSG", ("#a", "hi there"), "n!u@h", {"+x": "1"})
        self.assertEqual(message.to_bytes(), b"@+x=1 :n!u@h PRIVMSG #a :hi there")
        self.assertEqual(parse_message(message.to_bytes()), message)

    def test_round_trip_examples(self) -> None:
        """Parsing what was formatted gives the same message back."""
        for line in [b"@a=b\\\\c\\sd;e :src PRIVMSG #a :x  y ", b"PING :", b"CMD a b c",
                     b":s 005 n CHANTYPES=# :are supported", b"@+t TAGMSG #x"]:
            message = parse_message(line)
            self.assertEqual(parse_message(message.to_bytes()), message, line)


class TruncateTests(SynchronousTestCase):
    """Fitting text into the 512 bytes of a message."""

    def test_room_for_last(self) -> None:
        """A last parameter of exactly C{room_for_last} bytes makes a 512-byte line."""
        source, command, middle = "alice!alice@chat.example", "PRIVMSG", ["#dev"]
        room = room_for_last(source, command, middle)
        line = format_message(None, source, command, [*middle, "x" * (room - 1) + " "])
        self.assertEqual(len(line) + 2, MAX_LINE)
        self.assertEqual(room_for_last(None, "PING"), MAX_BODY - 6)

    def test_truncate(self) -> None:
        """Truncation never splits a character."""
        self.assertEqual(truncate_utf8("hello", 10), "hello")
        self.assertEqual(truncate_utf8("hello", 3), "hel")
        self.assertEqual(truncate_utf8("h\u00e9llo", 2), "h")
        self.assertEqual(truncate_utf8("h\u00e9llo", 3), "h\u00e9")
        self.assertEqual(truncate_utf8("\U0001f389\U0001f389", 7), "\U0001f389")
        self.assertEqual(truncate_utf8("abc", 0), "")
        self.assertEqual(truncate_utf8("abc", -1), "")

    def test_split_at_spaces(self) -> None:
        """Long text breaks at a space in the second half of each window."""
        self.assertEqual(split_text("aaaa bbbb cccc", 10), ["aaaa bbbb", "cccc"])
        self.assertEqual(split_text("short", 10), ["short"])
        self.assertEqual(split_text("", 10), [""])

    def test_split_without_spaces(self) -> None:
        """Without a usable space the cut is at the limit, on a character boundary."""
        self.assertEqual(split_text("x" * 25, 10), ["x" * 10, "x" * 10, "x" * 5])
        self.assertEqual(split_text("\u00e9" * 6, 5), ["\u00e9\u00e9", "\u00e9\u00e9",
                                                       "\u00e9\u00e9"])
        # the space is in the first half of the window: not a place to break
        self.assertEqual(split_text("a \U0001f389\U0001f389", 5), ["a ", "\U0001f389",
                                                                   "\U0001f389"])
        self.assertRaises(ValueError, split_text, "abc", 3)


# Property-based tests.  Derandomized with no example database, as in
# tests/test_fuzz.py, so every run is the same.
FUZZ = settings(max_examples=400, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

_TOKENS = [b"@", b":", b" ", b"  ", b";", b"=", b"\\", b"\\s", b"\\:", b"a", b"+v/k",
           b"PRIVMSG", b"privmsg", b"#chan", b" :", b"\t", b"\r", b"\x00", b"\xff",
           b"\xc3", b"\xc3\xa9", b"\xf0\x9f\x8e\x89", b"\xed\xa0\x80", b"!", b"@h"]
lines = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(_TOKENS), max_size=40).map(b"".join),
    st.tuples(st.sampled_from([b"", b"@", b"@a=b ", b"@" + b"x" * 9000 + b" "]),
              st.sampled_from([b"", b":", b":s ", b":" + b"s" * 600 + b" "]),
              st.lists(st.sampled_from(_TOKENS), max_size=20).map(b"".join)).map(b"".join),
)

_NO_BREAK = st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))
_WORD = st.text(st.characters(blacklist_characters=" \r\n\x00", blacklist_categories=("Cs",)),
                min_size=1, max_size=12).filter(lambda w: w[0] != ":")
_TAGS = st.dictionaries(
    st.from_regex(r"\+?([a-z0-9][a-z0-9.\-]{0,8}/)?[A-Za-z0-9\-]{1,8}", fullmatch=True),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=20),
    max_size=4,
)
_COMMAND = st.one_of(st.from_regex(r"[A-Z]{1,10}", fullmatch=True),
                     st.from_regex(r"[0-9]{3}", fullmatch=True))
messages = st.builds(
    lambda tags, source, command, middle, last: (tags, source, command, middle + last),
    _TAGS,
    st.none() | _WORD,
    _COMMAND,
    st.lists(_WORD, max_size=MAX_PARAMS - 1),
    st.lists(st.text(_NO_BREAK, max_size=40), max_size=1),
)


class FuzzTests(SynchronousTestCase):
    """Random input never raises anything but L{ParseError}; format and parse agree."""

    @FUZZ
    @given(lines)
    def test_random_bytes(self, line: bytes) -> None:
        """Any bytes parse or raise a ParseError; what parses can be written back."""
        try:
            message = parse_message(line)
        except ParseError:
            return
        self.assertTrue(message.command)
        for param in message.params[:-1]:
            self.assertTrue(param and param[0] != ":" and " " not in param, param)
        self.assertEqual(parse_message(message.to_bytes()), message)

    @FUZZ
    @given(messages)
    def test_round_trip(self, parts: tuple) -> None:
        """format_message then parse_message gives the message back (or 417 if too long)."""
        tags, source, command, params = parts
        line = format_message(tags, source, command, params)
        body = line.partition(b" ")[2] if tags else line
        if len(body) > MAX_BODY:
            self.assertRaises(LineTooLong, parse_message, line)
            return
        assume(len(line) - len(body) <= MAX_TAGS)
        self.assertEqual(parse_message(line), Message(command, tuple(params), source, tags))

    @FUZZ
    @given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
           st.integers(min_value=4, max_value=100))
    def test_split_text(self, text: str, max_bytes: int) -> None:
        """Pieces fit, and are the text in order less the spaces they were cut at."""
        pieces = split_text(text, max_bytes)
        position = 0
        for index, piece in enumerate(pieces):
            self.assertLessEqual(len(piece.encode()), max_bytes)
            self.assertTrue(text.startswith(piece, position), (text, pieces))
            position += len(piece)
            if index < len(pieces) - 1:
                self.assertTrue(piece, pieces)
                if text[position] == " ":
                    position += 1
        self.assertEqual(position, len(text))
