"""
The built-in commands: one L{CommandSpec} each (names, C{/help} line,
argument parser, handler), in C{/help} order, in L{REGISTRY}.  Adding a
command is one declaration here plus its handler.

A handler gets the L{ChatSession} and the L{Command}; it raises
L{twisted_chat.errors.ChatError} for a mistake (the session answers it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from twisted_chat.commands.parse import SHORTCUT_HELP, split
from twisted_chat.commands.registry import Command, CommandRegistry, CommandSpec, Parser
from twisted_chat.domain.events import Goodbye, Help
from twisted_chat.domain.moderation import parse_duration
from twisted_chat.errors import BadUsage, ChatError, NotInRoom
from twisted_chat.text import room_key, visible

if TYPE_CHECKING:
    from twisted_chat.session.session import ChatSession

MAX_HISTORY = 200
# How many matches /search shows (the newest).
SEARCH_LIMIT = 20
# The most different words one /search may have, and the longest word: each
# word costs a pass over every message searched.
MAX_SEARCH_WORDS = 8
MAX_SEARCH_WORD = 64


# -- argument parsers: (the words after /name, the name as typed) -> Command ----

def no_args(name: str) -> Parser:
    """The parser of the command C{name}, which takes no arguments."""

    def parse(rest: str, typed: str) -> Command:
        if rest:
            raise BadUsage("%s takes no arguments" % typed)
        return Command(name)

    return parse


def _msg(rest: str, typed: str) -> Command:
    target, text = split(rest)
    if not target or not text:
        raise BadUsage("usage: %s <user or room> <text>" % typed)
    return Command("msg", target, text)


def _join(rest: str, typed: str) -> Command:
    room, extra = split(rest)
    if not room or extra:
        raise BadUsage("usage: /join <room>")
    return Command("join", room)


def _users(rest: str, typed: str) -> Command:
    if rest.lower() not in ("", "all"):
        raise BadUsage("usage: /users or /users all")
    return Command("users", number=1 if rest else 0)


def _history(rest: str, typed: str) -> Command:
    if not rest:
        return Command("history")
    if not rest.isdigit() or not rest.isascii() or int(rest) == 0:
        raise BadUsage("usage: /history [N] with N a number from 1 to %d" % MAX_HISTORY)
    return Command("history", number=min(int(rest), MAX_HISTORY))


def _search(rest: str, typed: str) -> Command:
    # Each word once (a repeated word finds nothing more), as first given.
    words: list[str] = []
    seen: set[str] = set()
    for word in rest.split():
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            words.append(word)
    if not any(c.isalnum() for word in words for c in word):
        raise BadUsage("usage: /search <words> (words of letters or digits)")
    if len(words) > MAX_SEARCH_WORDS:
        raise BadUsage("a search takes at most %d different words (that had %d)"
                       % (MAX_SEARCH_WORDS, len(words)))
    if any(len(word) > MAX_SEARCH_WORD for word in words):
        raise BadUsage("a search word is at most %d characters long" % MAX_SEARCH_WORD)
    return Command("search", " ".join(words))


def _me(rest: str, typed: str) -> Command:
    if not rest:
        raise BadUsage("usage: /me <action>")
    return Command("me", rest)


def _register(rest: str, typed: str) -> Command:
    if not rest:
        raise BadUsage("usage: /register <password> (8 to 128 characters)")
    return Command("register", rest)


def _password(rest: str, typed: str) -> Command:
    old, new = split(rest)
    if not old or not new:
        raise BadUsage("usage: /password <old> <new>")
    return Command("password", old, new)


def _addaccount(rest: str, typed: str) -> Command:
    name, password = split(rest)
    if not name or not password:
        raise BadUsage("usage: /addaccount <name> <password>")
    return Command("addaccount", name, password)


def _quit(rest: str, typed: str) -> Command:
    return Command("quit", rest)


# -- moderation: a target, then maybe a duration, then maybe a reason ---------

def _restriction(name: str, usage: str) -> Parser:
    """
    The parser of C{/ban}-like commands: C{arg} the target, C{number} the
    duration in seconds (0: until lifted), C{text} the reason.
    """

    def parse(rest: str, typed: str) -> Command:
        target, more = split(rest)
        if not target:
            raise BadUsage("usage: " + usage.replace("/" + name, typed, 1))
        word, after = split(more)
        duration = parse_duration(word) if word else None
        if duration is not None:
            more = after
        return Command(name, target, more, number=int(duration or 0))

    return parse


def _one_word(name: str, usage: str) -> Parser:
    """The parser of a command taking exactly one word (C{arg})."""

    def parse(rest: str, typed: str) -> Command:
        word, extra = split(rest)
        if not word or extra:
            raise BadUsage("usage: " + usage.replace("/" + name, typed, 1))
        return Command(name, word)

    return parse


def _word_and_reason(name: str, usage: str) -> Parser:
    """The parser of C{/kick}-like commands: C{arg} a name, C{text} an optional reason."""

    def parse(rest: str, typed: str) -> Command:
        word, reason = split(rest)
        if not word:
            raise BadUsage("usage: " + usage.replace("/" + name, typed, 1))
        return Command(name, word, reason)

    return parse


def _topic(rest: str, typed: str) -> Command:
    # number 1: set (arg the text; "-" clears); 0: show
    if not rest:
        return Command("topic")
    return Command("topic", "" if rest == "-" else rest, number=1)


def _bans(rest: str, typed: str) -> Command:
    if rest.lower() not in ("", "server"):
        raise BadUsage("usage: /bans, or /bans server (operators: the server-wide ones)")
    return Command("bans", number=1 if rest else 0)


def _wall(rest: str, typed: str) -> Command:
    if not rest:
        raise BadUsage("usage: /wall <text>")
    return Command("wall", rest)


def _away(rest: str, typed: str) -> Command:
    return Command("away", rest)


# -- handlers -------------------------------------------------------------------

def _room(command: Command) -> str | None:
    """The room key C{command.text} names (a say or me to a room: IRC), or C{None}."""
    return room_key(command.text) if command.text else None


def say(session: ChatSession, command: Command) -> None:
    """
    Say C{arg} to the current room, or to the room C{text} names (IRC's
    C{PRIVMSG #room}); echoed back when a shortcut chose it.
    """
    session.say(command.arg, echo=command.echo, room=_room(command))


def me(session: ChatSession, command: Command) -> None:
    session.say(command.arg, action=True, room=_room(command))


def say_time(session: ChatSession, command: Command) -> None:
    session.say(time.ctime(session.clock.seconds() + command.number), echo=True)


def join(session: ChatSession, command: Command) -> None:
    """Move to the room C{arg}; with C{number} 1 add it and stay in the others (IRC)."""
    session.server.join(session.user, command.arg, move=not command.number)


def part(session: ChatSession, command: Command) -> None:
    """Leave the room C{arg} (telling it the reason C{text}), staying in no room if last (IRC)."""
    session.server.part(session.user, command.arg, command.text, to_lobby=False)


def leave(session: ChatSession, command: Command) -> None:
    session.server.leave(session.user)


def rooms(session: ChatSession, command: Command) -> None:
    session.server.room_list(session.user)


def users(session: ChatSession, command: Command) -> None:
    session.server.users(session.user, everyone=bool(command.number))


def msg(session: ChatSession, command: Command) -> None:
    if not visible(command.text):
        raise ChatError("that message is empty")
    session.server.message(session.user, command.arg, command.text)


def history(session: ChatSession, command: Command) -> None:
    session.server.recall(session.user, command.number)


def search(session: ChatSession, command: Command) -> None:
    session.server.search(session.user, command.arg.strip())


def help_(session: ChatSession, command: Command) -> None:
    session.front.send(Help(session.commands.help_lines()))


def register(session: ChatSession, command: Command) -> None:
    session.register(command.arg)


def password(session: ChatSession, command: Command) -> None:
    session.change_password(command.arg, command.text)


def addaccount(session: ChatSession, command: Command) -> None:
    session.create_account(command.arg, command.text)


def _here(session: ChatSession) -> str:
    """The key of the user's current room (where room commands act)."""
    room = session.user.room
    if room is None:
        raise NotInRoom("you are in no room (/join <room> first)")
    return room.name


def _duration(command: Command) -> float | None:
    return float(command.number) if command.number else None


def topic(session: ChatSession, command: Command) -> None:
    session.server.topic(session.user, _here(session),
                         command.arg if command.number else None)


def kick(session: ChatSession, command: Command) -> None:
    session.server.kick(session.user, _here(session), command.arg, command.text)


def ban(session: ChatSession, command: Command) -> None:
    session.server.ban(session.user, _here(session), command.arg, _duration(command),
                       command.text)


def unban(session: ChatSession, command: Command) -> None:
    session.server.unban(session.user, _here(session), command.arg)


def bans(session: ChatSession, command: Command) -> None:
    session.server.bans(session.user, None if command.number else _here(session))


def mute(session: ChatSession, command: Command) -> None:
    session.server.mute(session.user, _here(session), command.arg, _duration(command),
                        command.text)


def unmute(session: ChatSession, command: Command) -> None:
    session.server.unmute(session.user, _here(session), command.arg)


def claim(session: ChatSession, command: Command) -> None:
    session.server.claim_room(session.user, _here(session))


def op(session: ChatSession, command: Command) -> None:
    session.server.op(session.user, _here(session), command.arg)


def deop(session: ChatSession, command: Command) -> None:
    session.server.deop(session.user, _here(session), command.arg)


def kill(session: ChatSession, command: Command) -> None:
    session.server.kill(session.user, command.arg, command.text)


def gban(session: ChatSession, command: Command) -> None:
    session.server.gban(session.user, command.arg, _duration(command), command.text)


def ungban(session: ChatSession, command: Command) -> None:
    session.server.ungban(session.user, command.arg)


def gmute(session: ChatSession, command: Command) -> None:
    session.server.gmute(session.user, command.arg, _duration(command), command.text)


def ungmute(session: ChatSession, command: Command) -> None:
    session.server.ungmute(session.user, command.arg)


def wall(session: ChatSession, command: Command) -> None:
    session.server.wall(session.user, command.arg)


def whois(session: ChatSession, command: Command) -> None:
    session.server.whois(session.user, command.arg)


def away(session: ChatSession, command: Command) -> None:
    session.server.away(session.user, command.arg or None)


def quit_(session: ChatSession, command: Command) -> None:
    session.front.send(Goodbye())
    session.quit(command.arg.strip())


# -- the declarations, in /help order -------------------------------------------

BUILTIN = (
    CommandSpec("help", (), "/help", "show this list", no_args("help"), help_),
    CommandSpec("join", (), "/join <room>", "move to a room (created if new)", _join, join),
    CommandSpec("leave", (), "/leave", "go back to #lobby", no_args("leave"), leave),
    CommandSpec("rooms", (), "/rooms", "list rooms with their member counts", no_args("rooms"),
                rooms),
    CommandSpec("users", (), "/users [all]", "users in your room, or everyone online",
                _users, users),
    CommandSpec("msg", ("pm",), "/msg <user> <text>", "private message (also /pm)", _msg, msg,
                more_help=(("/msg <room> <text>", "message to your room, by name"),)),
    CommandSpec("me", (), "/me <action>", "an action, shown as '* you <action>'", _me, me),
    CommandSpec("history", (), "/history [N]",
                "the last N messages of your room (at most %d)" % MAX_HISTORY, _history, history),
    CommandSpec("search", (), "/search <words>",
                "the newest %d messages of your room with all the words" % SEARCH_LIMIT,
                _search, search),
    CommandSpec("register", (), "/register <password>",
                "make your name an account (a password of 8 to 128 characters)",
                _register, register),
    CommandSpec("password", (), "/password <old> <new>", "change your account's password",
                _password, password),
    CommandSpec("addaccount", (), "/addaccount <name> <password>",
                "create an account (server operators only)", _addaccount, addaccount,
                who="operator"),
    # moderation (SPEC 8): room ops (the owner, its ops, operators) ...
    CommandSpec("topic", (), "/topic [text]",
                "show your room's topic, or set it (- clears; ops only in a claimed room)",
                _topic, topic),
    CommandSpec("kick", (), "/kick <name> [reason]", "send someone out of your room (ops)",
                _word_and_reason("kick", "/kick <name> [reason]"), kick),
    CommandSpec("ban", (), "/ban <name|address|cidr> [duration] [reason]",
                "keep someone out of your room, e.g. 30m, 2h, 7d; none: until lifted (ops)",
                _restriction("ban", "/ban <name|address|cidr> [duration] [reason]"), ban),
    CommandSpec("unban", (), "/unban <target>", "lift a ban (ops)",
                _one_word("unban", "/unban <target>"), unban),
    CommandSpec("bans", (), "/bans", "your room's bans and mutes", _bans, bans),
    CommandSpec("mute", (), "/mute <name|address|cidr> [duration] [reason]",
                "someone stays and reads but cannot speak in your room (ops)",
                _restriction("mute", "/mute <name|address|cidr> [duration] [reason]"), mute),
    CommandSpec("unmute", (), "/unmute <target>", "lift a mute (ops)",
                _one_word("unmute", "/unmute <target>"), unmute),
    CommandSpec("claim", (), "/claim", "make your room yours: it keeps its topic, ops and bans"
                " (accounts)", no_args("claim"), claim),
    CommandSpec("op", (), "/op <name>", "make an account an op of your room (its owner)",
                _one_word("op", "/op <name>"), op),
    CommandSpec("deop", (), "/deop <name>", "take op away (its owner)",
                _one_word("deop", "/deop <name>"), deop),
    # ... everyone ...
    CommandSpec("whois", (), "/whois <name>", "who someone is: rooms, account, idle time",
                _one_word("whois", "/whois <name>"), whois),
    CommandSpec("away", (), "/away [text]",
                "mark yourself away (private messages get the text back); none: back",
                _away, away),
    # ... and server operators
    CommandSpec("kill", (), "/kill <name> [reason]", "disconnect someone (server operators)",
                _word_and_reason("kill", "/kill <name> [reason]"), kill, who="operator"),
    CommandSpec("gban", (), "/gban <name|address|cidr> [duration] [reason]",
                "ban from the whole server (server operators)",
                _restriction("gban", "/gban <name|address|cidr> [duration] [reason]"), gban,
                who="operator"),
    CommandSpec("ungban", (), "/ungban <target>", "lift a server ban (server operators)",
                _one_word("ungban", "/ungban <target>"), ungban, who="operator"),
    CommandSpec("gmute", (), "/gmute <name|address|cidr> [duration] [reason]",
                "mute everywhere: reads, cannot speak (server operators)",
                _restriction("gmute", "/gmute <name|address|cidr> [duration] [reason]"), gmute,
                who="operator"),
    CommandSpec("ungmute", (), "/ungmute <target>", "lift a server mute (server operators)",
                _one_word("ungmute", "/ungmute <target>"), ungmute, who="operator"),
    CommandSpec("wall", (), "/wall <text>", "a notice to everyone online (server operators)",
                _wall, wall, who="operator"),
    CommandSpec("quit", (), "/quit [reason]", "leave the chat", _quit, quit_, limited=False),
    # Reached by plain text, the "\" escape and the shortcuts, not by a /word.
    CommandSpec("say", (), "", "", None, say),
    CommandSpec("time", (), "", "", None, say_time),
    CommandSpec("part", (), "", "", None, part),  # IRC's PART (telnet has /leave)
)

REGISTRY = CommandRegistry(BUILTIN, SHORTCUT_HELP)

# Every /help line, in order.
HELP = REGISTRY.help_lines()
