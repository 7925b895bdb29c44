"""
Who is online and where: name claims, look-ups for private messages,
C{/users all} and C{/rooms}.

L{Directory} is the seam a backplane plugs into: a cluster's directory
claims names across every process (a claim may then complete later, hence
the Deferred) and keeps a local replica so that queries stay synchronous.
L{LocalDirectory} answers from one L{ChatServer}'s own members and rooms.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred, fail, succeed

from twisted_chat.errors import ChatError, NameTaken
from twisted_chat.text import check_name

if TYPE_CHECKING:
    from twisted_chat.domain.server import Member, Room


class Directory(Protocol):
    """Names and room memberships of everyone online."""

    def claim(self, name: str, member: Member) -> Deferred[Member]:
        """
        Give C{member} the name C{name} (setting C{member.name} and
        C{member.key}); fires with C{member}, or fails with a L{ChatError}
        (L{NameTaken}, L{twisted_chat.errors.BadName}).
        """

    def release(self, member: Member) -> None:
        """C{member} is offline: its name is free (nothing if it holds none)."""

    def joined(self, member: Member, room_key: str) -> None:
        """C{member} is now in the room C{room_key}."""

    def parted(self, member: Member, room_key: str) -> None:
        """C{member} is no longer in the room C{room_key}."""

    def changed(self, member: Member) -> None:
        """
        What C{/whois} shows of C{member} changed (its away text, its
        operator status, its account): a cluster tells the other processes.
        """

    def find(self, name: str) -> Member | None:
        """The member online as C{name} (any case), or C{None}."""

    def everyone(self) -> list[tuple[str, list[str]]]:
        """Everyone online: C{(name, rooms)}, rooms in join order, by name (any case)."""

    def rooms(self) -> list[tuple[str, int]]:
        """Every room with how many are in it, the lobby first, then by name."""

    def members(self, room_key: str) -> list[str]:
        """The names of the members of the room C{room_key}, by name (any case)."""


class LocalDirectory:
    """
    The directory of one process: it reads the server's own tables (the
    rooms and members dicts it is given); L{joined} and L{parted} have
    nothing to do here.

    @param rooms: the server's rooms by key; the lobby is C{lobby}.
    @param members: the server's members by key; L{claim} and L{release}
        add and remove them.
    """

    def __init__(
        self, rooms: Mapping[str, Room], members: MutableMapping[str, Member], lobby: str
    ) -> None:
        self._rooms = rooms
        self._members = members
        self._lobby = lobby

    def claim(self, name: str, member: Member) -> Deferred[Member]:
        try:
            check_name(name)
        except ChatError as e:
            return fail(e)
        key = name.lower()
        if key in self._members:
            return fail(NameTaken("the name %s is taken; pick another" % name))
        member.name = name
        member.key = key if key != name else name  # one string when already lower case
        self._members[member.key] = member
        return succeed(member)

    def release(self, member: Member) -> None:
        if self._members.get(member.key) is member:
            del self._members[member.key]

    def joined(self, member: Member, room_key: str) -> None:
        pass

    def parted(self, member: Member, room_key: str) -> None:
        pass

    def changed(self, member: Member) -> None:
        pass

    def find(self, name: str) -> Member | None:
        return self._members.get(name.lower())

    def everyone(self) -> list[tuple[str, list[str]]]:
        people = [(m.name, [room.name for room in m.rooms]) for m in self._members.values()]
        people.sort(key=lambda person: person[0].lower())
        return people

    def rooms(self) -> list[tuple[str, int]]:
        lobby = self._lobby
        rooms = sorted(self._rooms.values(), key=lambda r: (r.name != lobby, r.name))
        return [(room.name, len(room.members)) for room in rooms]

    def members(self, room_key: str) -> list[str]:
        room = self._rooms.get(room_key)
        if room is None:
            return []
        return sorted((m.name for m in room.members), key=str.lower)
