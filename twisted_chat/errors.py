"""
User mistakes.  C{str(error)} is the text a client sees after C{"ERROR "}.

Anything that is not a L{ChatError} is a bug in the server.
"""

from __future__ import annotations


class ChatError(Exception):
    """A mistake by the user; the session answers C{ERROR <str(self)>}."""


class BadName(ChatError):
    """A username that breaks the name rules."""


class NameTaken(ChatError):
    """A username someone online already has."""


class BadRoom(ChatError):
    """A room name that breaks the room-name rules."""


class UnknownCommand(ChatError):
    """A line starting with C{/} that names no command."""


class BadUsage(ChatError):
    """A known command with missing or malformed arguments."""


class NoSuchTarget(ChatError):
    """A private message to nobody online and no room."""


class NotInRoom(ChatError):
    """A message to a room the sender is not in."""
