"""
Commands: the registry (L{registry}), the built-in declarations
(L{builtin}) and the line parser (L{parse}).
"""

from __future__ import annotations

from twisted_chat.commands import parse as _parse
from twisted_chat.commands.builtin import (
    HELP,
    MAX_HISTORY,
    MAX_SEARCH_WORD,
    MAX_SEARCH_WORDS,
    REGISTRY,
    SEARCH_LIMIT,
)
from twisted_chat.commands.registry import Command, CommandRegistry, CommandSpec

__all__ = [
    "HELP", "MAX_HISTORY", "MAX_SEARCH_WORD", "MAX_SEARCH_WORDS", "REGISTRY", "SEARCH_LIMIT",
    "Command", "CommandRegistry", "CommandSpec", "parse",
]


def parse(line: str, registry: CommandRegistry = REGISTRY) -> Command | None:
    """L{twisted_chat.commands.parse.parse} with the built-in commands by default."""
    return _parse.parse(line, registry)
