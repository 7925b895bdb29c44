"""
The command registry: one L{CommandSpec} per command (its names, its
C{/help} line, how its arguments parse, its handler and who may run it).
The parser, C{/help} and the session's dispatch all read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted_chat.errors import NotPermitted

if TYPE_CHECKING:
    from twisted_chat.session.session import ChatSession

EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class Command:
    """
    One parsed line, or one typed call from a front end.

    @ivar name: what to do: C{say}, C{me}, C{join}, C{leave}, C{rooms},
        C{users}, C{msg}, C{history}, C{search}, C{quit}, C{help}, C{time}
        or C{part} (the names in the registry).
    @ivar arg: the target (C{join}, C{msg}, C{part}), the text (C{say},
        C{me}, C{quit}) or the words (C{search}); C{""} when there is none.
    @ivar text: the message of C{msg}, the reason of C{part}, and for
        C{say} and C{me} the room to say it in (C{""}: the current room).
    @ivar number: C{history}'s count (0 means the server default), C{time}'s
        offset in seconds, 1 for C{users all}, and 1 for a C{join} that
        adds a room instead of moving (IRC's C{JOIN}).
    @ivar echo: the text said is not what the user typed (the C{:)} and
        C{:(} shortcuts), so the sender is shown it.
    """

    name: str
    arg: str = ""
    text: str = ""
    number: int = 0
    echo: bool = False


# parse(rest, typed): the command for the words after "/name" (typed: the
# name as the usage errors show it, "/pm" for the alias); raises BadUsage.
Parser = Callable[[str, str], Command]
Handler = Callable[["ChatSession", Command], None]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """
    One command, declared once.

    @ivar name: its L{Command.name}, and C{/name} when it has a C{parse}.
    @ivar aliases: other C{/words} for it (C{pm} for C{msg}).
    @ivar usage: its C{/help} usage (C{""}: not listed).
    @ivar help: its C{/help} text.
    @ivar parse: the words after C{/name} to a L{Command}; C{None}: no
        C{/name} (C{say}, C{time}: plain text and shortcuts reach them).
    @ivar run: the handler, given the session and the command.
    @ivar who: who may run it: C{"everyone"}, later C{"room-op"} or
        C{"operator"} (checked in L{CommandRegistry.dispatch}).
    @ivar more_help: further C{/help} lines, as (usage, text) pairs.
    @ivar limited: whether the flood limit applies (C{/quit}: never held back).
    """

    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    parse: Parser | None
    run: Handler
    who: str = EVERYONE
    more_help: tuple[tuple[str, str], ...] = ()
    limited: bool = True


class CommandRegistry:
    """
    The commands a session runs, in C{/help} order, and the C{/help} lines
    that follow them (the shortcuts).
    """

    __slots__ = ("_specs", "typed", "_notes", "_help")

    def __init__(self, specs: Iterable[CommandSpec] = (),
                 notes: Sequence[tuple[str, str]] = ()) -> None:
        self._specs: dict[str, CommandSpec] = {}
        # "/word" (lower case, without the slash) -> (spec, the word shown in usages)
        self.typed: dict[str, tuple[CommandSpec, str]] = {}
        self._notes = tuple(notes)
        self._help: tuple[tuple[str, str], ...] | None = None
        for spec in specs:
            self.add(spec)

    def add(self, spec: CommandSpec) -> None:
        """Declare C{spec}; a second spec of the same name or word is a bug."""
        if spec.name in self._specs:
            raise ValueError("command %r declared twice" % spec.name)
        words = (spec.name,) + spec.aliases if spec.parse is not None else ()
        for word in words:
            if word in self.typed:
                raise ValueError("/%s declared twice" % word)
        self._specs[spec.name] = spec
        for word in words:
            self.typed[word] = (spec, "/" + word)
        self._help = None

    def get(self, name: str) -> CommandSpec | None:
        """The spec of the command called C{name}."""
        return self._specs.get(name)

    def help_lines(self) -> tuple[tuple[str, str], ...]:
        """The C{/help} lines: (usage, text) of each command, then the notes."""
        if self._help is None:
            lines: list[tuple[str, str]] = []
            for spec in self._specs.values():
                if spec.usage:
                    lines.append((spec.usage, spec.help))
                lines.extend(spec.more_help)
            self._help = tuple(lines) + self._notes
        return self._help

    def dispatch(self, session: ChatSession, spec: CommandSpec, command: Command) -> None:
        """
        Run C{command} (of C{spec}, from L{get}) for C{session}, if the
        session's user may run it.  (The session applies its flood limit
        between L{get} and this.)

        @raise NotPermitted: if the spec's C{who} does not include the user.
        """
        if spec.who != EVERYONE and not session.may(spec.who):
            raise NotPermitted("/%s is not for you (%s only)" % (spec.name, spec.who))
        spec.run(session, command)
