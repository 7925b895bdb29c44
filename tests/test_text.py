"""Tests for L{twisted_chat.text}."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.errors import BadName, BadRoom
from twisted_chat.text import (
    TelnetFilter,
    check_name,
    clean,
    clock_stamp,
    date_stamp,
    decode,
    room_key,
    strip_telnet,
    visible,
    zone_name,
)


class CleanTests(SynchronousTestCase):
    """L{clean} removes what could drive a terminal."""

    def test_plain_text_unchanged(self) -> None:
        """Printable text, emoji and wide characters pass through untouched."""
        for text in ("hello", "héllo wörld", "日本語", "emoji 🎉👍🏽", "a\tb"):
            self.assertEqual(clean(text), text)

    def test_csi_sequences_removed_whole(self) -> None:
        """Colour and cursor sequences go, parameters and all."""
        self.assertEqual(clean("\x1b[31mred\x1b[0m"), "red")
        self.assertEqual(clean("\x1b[2J\x1b[1;1Hwiped"), "wiped")
        self.assertEqual(clean("\x9b2Jeight-bit"), "eight-bit")

    def test_osc_removed_whole(self) -> None:
        """A title-setting OSC string goes, whatever terminates it."""
        self.assertEqual(clean("a\x1b]0;evil title\x07b"), "ab")
        self.assertEqual(clean("a\x1b]8;;http://x\x1b\\link"), "alink")

    def test_controls_removed_but_tab(self) -> None:
        """C0 and C1 controls and DEL go; TAB stays."""
        self.assertEqual(clean("a\x00b\x07c\x08d\x7fe\x85f\tg\rh\ni"), "abcdef\tghi")

    def test_unterminated_escape(self) -> None:
        """A lone ESC at the end of a line is removed too."""
        self.assertEqual(clean("abc\x1b"), "abc")
        self.assertEqual(clean("abc\x1b["), "abc")


class FormatCharacterTests(SynchronousTestCase):
    """L{clean} removes format characters that can reorder or hide text (issue 11 item 12)."""

    def test_bidi_controls_removed(self) -> None:
        """Embeddings, overrides, isolates and marks (U+202A-202E, U+2066-2069) go."""
        text = ("\u202a1\u202b2\u202c3\u202d4\u202e5\u20666\u20677\u20688\u20699"
                "\u200ea\u200fb\u061cc")
        self.assertEqual(clean(text), "123456789abc")
        self.assertEqual(clean("invoice_\u202egnp.exe"), "invoice_gnp.exe")

    def test_invisible_characters_removed(self) -> None:
        """Zero-width and invisible characters go (U+200B, U+2060-2064, U+FEFF, U+180E, U+00AD)."""
        text = "a\u200bb\u2060c\u2061d\u2062e\u2063f\u2064g\ufeffh\u180ei\u00adj"
        self.assertEqual(clean(text), "abcdefghij")

    def test_separators_become_spaces(self) -> None:
        """U+2028 and U+2029 would break the line on some terminals: a space each."""
        self.assertEqual(clean("one\u2028two\u2029three"), "one two three")

    def test_joiners_kept_inside_words(self) -> None:
        """ZWJ and ZWNJ stay where emoji and scripts need them, and go elsewhere."""
        family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
        persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
        for text in (family, persian, "\u0915\u094d\u200d\u0937"):
            self.assertEqual(clean(text), text)
        self.assertEqual(clean("\u200d\u200c"), "")
        self.assertEqual(clean("a \u200db\u200c "), "a b ")

    def test_tags_only_in_flags(self) -> None:
        """Tag characters stay in a flag sequence and go anywhere else (hidden text)."""
        scotland = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
        self.assertEqual(clean("go " + scotland), "go " + scotland)
        self.assertEqual(clean("a\U000E0001\U000E0068\U000E0069b"), "ab")

    def test_zero_width_only_is_not_visible(self) -> None:
        """A message of zero-width characters cleans to nothing visible."""
        for text in ("\u200b\u200b\u200b", "\u2060 \ufeff", "\u200d", " \u2028 "):
            self.assertFalse(visible(clean(text)), repr(text))

    def test_visible(self) -> None:
        """Whitespace and blank-looking letters are not visible; anything else is."""
        for text in ("", "  ", "\t", "\u00a0\u3000", "\u3164", "\u2800 \u115f\u1160\uffa0"):
            self.assertFalse(visible(text), repr(text))
        for text in ("a", " . ", "\u00e9", "\u3164x", "\U0001F389"):
            self.assertTrue(visible(text), repr(text))


class DecodeTests(SynchronousTestCase):
    """L{decode} never fails."""

    def test_invalid_utf8_becomes_replacement(self) -> None:
        """Undecodable bytes become U+FFFD."""
        self.assertEqual(decode(b"ok \xc3\x28 \xff"), "ok \ufffd( \ufffd")

    def test_latin1_is_not_guessed(self) -> None:
        """
        Latin-1 from a terminal not set to UTF-8 becomes U+FFFD, one per
        byte: no fallback guessing (SPEC 2; docs/PROTOCOL.md).
        """
        self.assertEqual(decode("caf\u00e9 cr\u00e8me".encode("latin-1")),
                         "caf\ufffd cr\ufffdme")


class TelnetFilterTests(SynchronousTestCase):
    """L{TelnetFilter} takes IAC sequences out, across chunks, and collects requests."""

    def test_no_iac_is_identity(self) -> None:
        """Data without IAC and CR comes back as the same object."""
        data = b"hello\n"
        self.assertIs(TelnetFilter().feed(data), data)

    def test_negotiation_removed(self) -> None:
        """
        WILL/WONT/DO/DONT are collected, subnegotiation and two-byte commands
        removed, and IAC IAC is a literal 0xFF.
        """
        stream = b"a\xff\xfb\x01b\xff\xfd\x03c\xff\xfa\x18\x01\xff\xf0d\xff\xf1e\xff\xffz"
        f = TelnetFilter()
        self.assertEqual(f.feed(stream), b"abcde\xffz")
        self.assertEqual(f.commands, [(0xFB, 1), (0xFD, 3)])

    def test_split_anywhere(self) -> None:
        """The same stream split at every point gives the same result."""
        stream = (b"hi\xff\xfb\x01there\xff\xfa\x18\x01\xff\xf0!\xff\xff\r\n"
                  b"\xc4\xff\xf4\xff\xfd\x06x\r\x00y\r")
        for cut in range(len(stream) + 1):
            f = TelnetFilter()
            self.assertEqual(f.feed(stream[:cut]) + f.feed(stream[cut:]),
                             b"hithere!\xff\r\n\xc4\x83x\r\ny\r\n", cut)
            self.assertEqual(f.commands, [(0xFB, 1), (0xFD, 6)])
            self.assertTrue(f.idle)

    def test_line_ends(self) -> None:
        """CR LF, CR NUL and a bare CR each end one line, even split between reads."""
        f = TelnetFilter()
        self.assertEqual(f.feed(b"a\r\nb\r\x00c\rd\r"), b"a\r\nb\r\nc\r\nd\r\n")
        self.assertEqual(f.feed(b"\x00e\r"), b"e\r\n")
        self.assertEqual(f.feed(b""), b"")
        self.assertEqual(f.feed(b"\nf\n\n"), b"f\n\n")  # LF after LF is a line end

    def test_eight_bit_fallback(self) -> None:
        """
        Without BINARY, telnet sends the continuation bytes of ă, Ś and 本 as
        IP, SUSP and BRK (each with DO TIMING-MARK): inside a UTF-8 sequence
        they become those bytes again; elsewhere they are dropped.
        """
        f = TelnetFilter()
        ip, susp, brk, tm = b"\xff\xf4", b"\xff\xed", b"\xff\xf3", b"\xff\xfd\x06"
        sent = b"\xc4" + ip + tm + b" \xc5" + susp + tm + b" \xe6" + brk + tm + b"\xac"
        self.assertEqual(f.feed(sent).decode(), "ă Ś 本")
        self.assertEqual(f.feed(b"ok" + ip + tm + brk + b"\xe6" + brk), b"ok\xe6\x9c")
        self.assertEqual(f.feed(b"\xac"), b"\xac")  # the sequence split across reads
        self.assertEqual(len(f.commands), 4)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from([
        b"a", b"\xc4", b"\x83", b"\xe6", b"\r", b"\n", b"\x00", b"\xff", b"\xfb", b"\xfd",
        b"\xfa", b"\xf0", b"\xf1", b"\xf4", b"\xed", b"\x06"]), max_size=40),
        st.lists(st.integers(0, 40), max_size=4))
    def test_fast_path_agrees_with_careful_one(self, parts: list[bytes], cuts: list[int]) -> None:
        """
        Whatever the bytes and however they are cut into reads, the C path
        gives what the one-command-at-a-time path gives.
        """
        class Careful(TelnetFilter):
            __slots__ = ()

            def _eight_bit_special(self, data: bytes) -> bool:
                return True  # always the careful path

        data = b"".join(parts)
        results = []
        for kind in (TelnetFilter, Careful):
            f = kind()
            out = b""
            start = 0
            for cut in sorted(cuts) + [len(data)]:
                out += f.feed(data[start:cut])
                start = max(start, cut)
            results.append((out, f.commands))
        self.assertEqual(results[0], results[1])

    def test_strip_telnet(self) -> None:
        """L{strip_telnet} removes the commands of one piece of data."""
        self.assertEqual(strip_telnet(b"Welcome.\xff\xfd\x00\r"), b"Welcome.\r")
        data = b"plain"
        self.assertIs(strip_telnet(data), data)


class NameTests(SynchronousTestCase):
    """L{check_name} applies the username rules."""

    def test_valid(self) -> None:
        for name in ("alice", "Bob_2", "a.b-c", "x", "a" * 20):
            self.assertEqual(check_name(name), name)

    def test_invalid(self) -> None:
        """Empty, too long, spaces, non-ASCII look-alikes and symbols are refused."""
        for name in ("", "a" * 21, "al ice", "аlice", "bob!", "#room", "é"):
            self.assertRaises(BadName, check_name, name)

    def test_reserved_any_case(self) -> None:
        for name in ("server", "SYSTEM", "Admin"):
            error = self.assertRaises(BadName, check_name, name)
            self.assertIn("reserved", str(error))


class RoomTests(SynchronousTestCase):
    """L{room_key} canonicalises room names."""

    def test_canonical(self) -> None:
        self.assertEqual(room_key("#General"), "general")
        self.assertEqual(room_key("dev-ops_2"), "dev-ops_2")
        self.assertEqual(room_key("a" * 32), "a" * 32)

    def test_invalid(self) -> None:
        for name in ("", "#", "a" * 33, "two words", "##x", "caf\u00e9", "a.b"):
            self.assertRaises(BadRoom, room_key, name)


class ZoneTests(SynchronousTestCase):
    """L{zone_name} writes an offset from UTC."""

    def test_names(self) -> None:
        self.assertEqual(zone_name(0), "UTC")
        self.assertEqual(zone_name(3600), "UTC+01:00")
        self.assertEqual(zone_name(-5 * 3600 - 1800), "UTC-05:30")
        self.assertEqual(zone_name(13 * 3600 + 45 * 60), "UTC+13:45")


class StampTests(SynchronousTestCase):
    """Time formats use the server's local time."""

    def test_formats(self) -> None:
        when = 1_700_000_000.5
        self.assertEqual(clock_stamp(when), time.strftime("%H:%M:%S", time.localtime(when)))
        self.assertRegex(date_stamp(when), r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
