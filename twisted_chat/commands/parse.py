"""
Parse one line a user typed into a L{Command}: the C{/} commands (as the
registry declares them), the classic C{:)} shortcuts and the C{\\} escape.
No I/O, no state.
"""

from __future__ import annotations

from twisted_chat.commands.registry import Command, CommandRegistry
from twisted_chat.errors import UnknownCommand

# The /help lines after the commands'.
SHORTCUT_HELP = (
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


def split(rest: str) -> tuple[str, str]:
    """Split off the first word of C{rest}."""
    parts = rest.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def parse(line: str, registry: CommandRegistry) -> Command | None:
    """
    Turn one line into a L{Command}, or C{None} for a blank line.

    Commands and shortcuts are case-insensitive.  A shortcut counts only when
    it is the whole line (C{:Msg} takes arguments).

    @raise UnknownCommand: for C{/x} that is no command of C{registry}.
    @raise BadUsage: for a known command with bad arguments.
    """
    stripped = line.strip()
    if not stripped:
        return None
    first = stripped[0]
    if first == "/":
        word, rest = split(stripped[1:])
        found = registry.typed.get(word.lower())
        if found is None:
            raise UnknownCommand("unknown command /%s (try /help)" % word)
        spec, typed = found
        return spec.parse(rest, typed)  # type: ignore[misc]  # typed specs have one
    if first == ":":
        shortcut = _SHORTCUTS.get(stripped.lower())
        if shortcut is not None:
            return shortcut
        word, rest = split(stripped)
        if word.lower() == ":msg":
            found = registry.typed.get("msg")
            if found is not None:
                return found[0].parse(rest, ":Msg")  # type: ignore[misc]
    elif first == "\\":
        # The escape sends the rest literally, even a line that would be blank.
        literal = line.lstrip()[1:]
        return Command("say", literal) if literal.strip() else None
    return Command("say", line)
