"""Tests for L{twisted_chat.commands}."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.commands import HELP, MAX_HISTORY, Command, parse
from twisted_chat.errors import BadUsage, UnknownCommand


class ParseTests(SynchronousTestCase):
    """L{parse} turns lines into commands."""

    def test_plain_message(self) -> None:
        self.assertEqual(parse("hello there"), Command("say", "hello there"))

    def test_blank_lines(self) -> None:
        """Whitespace-only lines are nothing."""
        for line in ("", "   ", "\t \t"):
            self.assertIsNone(parse(line))

    def test_commands(self) -> None:
        cases = {
            "/help": Command("help"),
            "/join #general": Command("join", "#general"),
            "/JOIN general": Command("join", "general"),
            "/leave": Command("leave"),
            "/rooms": Command("rooms"),
            "/users": Command("users"),
            "/users all": Command("users", number=1),
            "/msg bob hi there": Command("msg", "bob", "hi there"),
            "/pm bob hi": Command("msg", "bob", "hi"),
            "/me waves": Command("me", "waves"),
            "/history": Command("history"),
            "/history 5": Command("history", number=5),
            "/quit": Command("quit"),
            "/quit gone fishing": Command("quit", "gone fishing"),
            "  /rooms  ": Command("rooms"),
        }
        for line, command in cases.items():
            self.assertEqual(parse(line), command, line)

    def test_history_clamped(self) -> None:
        """More than the maximum is clamped, not refused."""
        self.assertEqual(parse("/history 5000"), Command("history", number=MAX_HISTORY))

    def test_bad_usage(self) -> None:
        for line in ("/join", "/join a b", "/msg", "/msg bob", "/pm bob  ", "/me",
                     "/history x", "/history 0", "/history -3", "/users some", "/rooms x",
                     "/help me", "/leave now", "/history ３"):
            self.assertRaises(BadUsage, parse, line)

    def test_unknown(self) -> None:
        error = self.assertRaises(UnknownCommand, parse, "/dance now")
        self.assertEqual(str(error), "unknown command /dance (try /help)")
        self.assertRaises(UnknownCommand, parse, "/")

    def test_shortcuts(self) -> None:
        cases = {
            ":)": Command("say", "[feeling happy]", echo=True),
            ":(": Command("say", "[feeling sad]", echo=True),
            ":mytime": Command("time"),
            ":+1hr": Command("time", number=3600),
            ":Users": Command("users", number=1),
            ":Exit": Command("quit"),
            ":Msg bob hello you": Command("msg", "bob", "hello you"),
            " :) ": Command("say", "[feeling happy]", echo=True),
        }
        for line, command in cases.items():
            self.assertEqual(parse(line), command, line)

    def test_shortcut_only_whole_line(self) -> None:
        """A shortcut inside a longer line is just text."""
        self.assertEqual(parse(":) hi"), Command("say", ":) hi"))
        self.assertEqual(parse(":Exit now"), Command("say", ":Exit now"))
        self.assertEqual(parse(":-)"), Command("say", ":-)"))

    def test_msg_shortcut_usage(self) -> None:
        self.assertRaises(BadUsage, parse, ":Msg bob")

    def test_backslash_escape(self) -> None:
        """A leading backslash sends the rest literally."""
        self.assertEqual(parse("\\:)"), Command("say", ":)"))
        self.assertEqual(parse("\\/join x"), Command("say", "/join x"))
        self.assertEqual(parse("\\\\o/"), Command("say", "\\o/"))
        self.assertIsNone(parse("\\"))

    def test_help_covers_every_command(self) -> None:
        """Every command is in /help."""
        usages = " ".join(usage for usage, _ in HELP)
        for name in ("/help", "/join", "/leave", "/rooms", "/users", "/msg", "/pm",
                     "/me", "/history", "/quit", ":)", ":(", ":mytime", ":+1hr", ":Users",
                     ":Msg", ":Exit"):
            self.assertIn(name, usages + " ".join(text for _, text in HELP))
