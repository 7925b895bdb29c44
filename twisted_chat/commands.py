"""
Parse one line a user typed into a L{Command}: the C{/} commands, the
classic C{:)} shortcuts and the C{\\} escape.  No I/O, no state.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted_chat.errors import BadUsage, UnknownCommand

MAX_HISTORY = 200
# How many matches /search shows (the newest).
SEARCH_LIMIT = 20
# The most different words one /search may have, and the longest word: each
# word costs a pass over every message searched.
MAX_SEARCH_WORDS = 8
MAX_SEARCH_WORD = 64


@dataclass(frozen=True, slots=True)
class Command:
    """
    One parsed line.

    @ivar name: what to do: C{say}, C{me}, C{join}, C{leave}, C{rooms},
        C{users}, C{msg}, C{history}, C{search}, C{quit}, C{help} or C{time}.
    @ivar arg: the target (C{join}, C{msg}), the text (C{say}, C{me},
        C{quit}) or the words (C{search}); C{""} when there is none.
    @ivar text: the message of C{msg}.
    @ivar number: C{history}'s count (0 means the server default), C{time}'s
        offset in seconds, and 1 for C{users all}.
    @ivar echo: the text said is not what the user typed (the C{:)} and
        C{:(} shortcuts), so the sender is shown it.
    """

    name: str
    arg: str = ""
    text: str = ""
    number: int = 0
    echo: bool = False


# One line of /help each, in the order shown.
HELP = (
    ("/help", "show this list"),
    ("/join <room>", "move to a room (created if new)"),
    ("/leave", "go back to #lobby"),
    ("/rooms", "list rooms with their member counts"),
    ("/users [all]", "users in your room, or everyone online"),
    ("/msg <user> <text>", "private message (also /pm)"),
    ("/msg <room> <text>", "message to your room, by name"),
    ("/me <action>", "an action, shown as '* you <action>'"),
    ("/history [N]", "the last N messages of your room (at most %d)" % MAX_HISTORY),
    ("/search <words>", "the newest %d messages of your room with all the words" % SEARCH_LIMIT),
    ("/quit [reason]", "leave the chat"),
    (":) :( :mytime :+1hr", "shortcuts: happy, sad, the server's time, plus an hour"),
    (":Users :Msg :Exit", "shortcuts for /users all, /msg, /quit"),
    ("\\text", "send text literally, e.g. \\/join or \\:)"),
)

_SHORTCUTS = {
    ":)": Command("say", "[feeling happy]", echo=True),
    ":(": Command("say", "[feeling sad]", echo=True),
    ":mytime": Command("time"),
    ":+1hr": Command("time", number=3600),
    ":users": Command("users", number=1),
    ":exit": Command("quit"),
}


def _split(rest: str) -> tuple[str, str]:
    """Split off the first word of C{rest}."""
    parts = rest.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _msg(rest: str, usage: str) -> Command:
    target, text = _split(rest)
    if not target or not text:
        raise BadUsage("usage: %s <user or room> <text>" % usage)
    return Command("msg", target, text)


def _join(rest: str) -> Command:
    room, extra = _split(rest)
    if not room or extra:
        raise BadUsage("usage: /join <room>")
    return Command("join", room)


def _users(rest: str) -> Command:
    if rest.lower() not in ("", "all"):
        raise BadUsage("usage: /users or /users all")
    return Command("users", number=1 if rest else 0)


def _history(rest: str) -> Command:
    if not rest:
        return Command("history")
    if not rest.isdigit() or not rest.isascii() or int(rest) == 0:
        raise BadUsage("usage: /history [N] with N a number from 1 to %d" % MAX_HISTORY)
    return Command("history", number=min(int(rest), MAX_HISTORY))


def _search(rest: str) -> Command:
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


def _me(rest: str) -> Command:
    if not rest:
        raise BadUsage("usage: /me <action>")
    return Command("me", rest)


def _no_args(name: str):  # -> Callable[[str], Command]
    def parse(rest: str) -> Command:
        if rest:
            raise BadUsage("/%s takes no arguments" % name)
        return Command(name)

    return parse


_COMMANDS = {
    "help": _no_args("help"),
    "join": _join,
    "leave": _no_args("leave"),
    "rooms": _no_args("rooms"),
    "users": _users,
    "msg": lambda rest: _msg(rest, "/msg"),
    "pm": lambda rest: _msg(rest, "/pm"),
    "me": _me,
    "history": _history,
    "search": _search,
    "quit": lambda rest: Command("quit", rest),
}


def parse(line: str) -> Command | None:
    """
    Turn one line into a L{Command}, or C{None} for a blank line.

    Commands and shortcuts are case-insensitive.  A shortcut counts only when
    it is the whole line (C{:Msg} takes arguments).

    @raise UnknownCommand: for C{/x} that is no command.
    @raise BadUsage: for a known command with bad arguments.
    """
    stripped = line.strip()
    if not stripped:
        return None
    first = stripped[0]
    if first == "/":
        word, rest = _split(stripped[1:])
        handler = _COMMANDS.get(word.lower())
        if handler is None:
            raise UnknownCommand("unknown command /%s (try /help)" % word)
        return handler(rest)
    if first == ":":
        shortcut = _SHORTCUTS.get(stripped.lower())
        if shortcut is not None:
            return shortcut
        word, rest = _split(stripped)
        if word.lower() == ":msg":
            return _msg(rest, ":Msg")
    elif first == "\\":
        # The escape sends the rest literally, even a line that would be blank.
        literal = line.lstrip()[1:]
        return Command("say", literal) if literal.strip() else None
    return Command("say", line)
