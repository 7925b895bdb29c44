"""Tests for L{twisted_chat.commands}."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.commands import (
    HELP,
    MAX_HISTORY,
    REGISTRY,
    Command,
    CommandRegistry,
    CommandSpec,
    parse,
)
from twisted_chat.commands.builtin import BUILTIN, no_args
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


class RegistryTests(SynchronousTestCase):
    """L{CommandRegistry}: one declaration per command, read by the parser and /help."""

    def test_help_is_the_registry(self) -> None:
        self.assertEqual(HELP, REGISTRY.help_lines())
        self.assertEqual(HELP[0], ("/help", "show this list"))
        self.assertEqual(HELP[-1], ("\\text", "send text literally, e.g. \\/join or \\:)"))
        # 14 + /register, /password, /addaccount (issue 15) + 18 moderation commands (16)
        self.assertEqual(len(HELP), 35)

    def test_every_typed_command_parses(self) -> None:
        """Each /name and alias of the registry is a command; say and time are not typed."""
        for word, (spec, typed) in REGISTRY.typed.items():
            self.assertEqual(typed, "/" + word)
            self.assertIsNotNone(spec.parse)
        self.assertNotIn("say", REGISTRY.typed)
        self.assertNotIn("time", REGISTRY.typed)
        self.assertEqual(REGISTRY.typed["pm"][0].name, "msg")

    def test_new_command(self) -> None:
        """One spec more: parsed (any case, its alias too), listed in /help before the shortcuts."""
        registry = CommandRegistry(BUILTIN + (
            CommandSpec("brb", ("afk",), "/brb", "say you are away", no_args("brb"), print),))
        self.assertEqual(parse("/BRB", registry), Command("brb"))
        self.assertEqual(parse("/afk", registry), Command("brb"))
        error = self.assertRaises(BadUsage, parse, "/afk now", registry)
        self.assertEqual(str(error), "/afk takes no arguments")
        self.assertEqual(registry.help_lines()[-1], ("/brb", "say you are away"))
        self.assertRaises(UnknownCommand, parse, "/brb")  # not in the built-in registry

    def test_declared_twice(self) -> None:
        registry = CommandRegistry(BUILTIN)
        self.assertRaises(ValueError, registry.add, BUILTIN[0])
        self.assertRaises(ValueError, registry.add, CommandSpec(
            "private", ("pm",), "/private", "", no_args("private"), print))
