"""
The cluster's L{Directory}: names unique across every process (a claim asks
Redis, so it answers later), and queries answered at once from this
process's tables plus the node's L{Replica} of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail, succeed

from twisted_chat.domain.directory import LocalDirectory
from twisted_chat.errors import ChatError, NameTaken
from twisted_chat.text import check_name

if TYPE_CHECKING:
    from twisted_chat.cluster.node import ClusterNode
    from twisted_chat.domain.server import Member, Room


def _taken(name: str) -> NameTaken:
    return NameTaken("the name %s is taken; pick another" % name)


class ClusterDirectory:
    """
    @ivar local: the directory of this process's own members.
    """

    def __init__(self, node: ClusterNode, rooms: Mapping[str, Room],
                 members: MutableMapping[str, Member], lobby: str) -> None:
        self.local = LocalDirectory(rooms, members, lobby)
        self._node = node
        self._rooms = rooms
        self._members = members
        self._lobby = lobby
        self._claiming: set[str] = set()  # asked of Redis, not answered yet
        self._reserved: dict[str, Member] = {}  # taken in Redis for a member's rename

    def claim(self, name: str, member: Member) -> Deferred[Member]:
        try:
            check_name(name)
        except ChatError as e:
            return fail(e)
        key = name.lower()
        if self._reserved.get(key) is member:  # a rename (IRC NICK), asked already
            del self._reserved[key]
            return self.local.claim(name, member).addCallback(self._online)
        if self._taken(key):
            return fail(_taken(name))
        self._claiming.add(key)
        # the first logins wait until this process has caught up (bounded)
        asked = self._node.when_started().addCallback(lambda _: self._node.claim_name(key))

        def answered(free: bool) -> Deferred[Member]:
            self._claiming.discard(key)
            if not free:
                return fail(_taken(name))
            if self._node.stopping:
                return fail(NameTaken("the server is stopping"))
            d = self.local.claim(name, member)
            d.addCallback(self._online)
            return d

        return asked.addCallback(answered)

    def _taken(self, key: str) -> bool:
        return (key in self._members or key in self._claiming or key in self._reserved
                or key in self._node.replica.members)

    def reserve(self, name: str, member: Member) -> Deferred[bool]:
        """
        Take C{name} in Redis for C{member}'s rename (IRC C{NICK}): fires
        with whether it is free; then L{claim} of it for C{member} answers at
        once (after L{release} of the old name), or L{unreserve} gives it up.
        """
        key = name.lower()
        if self._taken(key):
            return succeed(False)
        self._claiming.add(key)

        def answered(free: bool) -> bool:
            self._claiming.discard(key)
            if free:
                self._reserved[key] = member
            return free

        return self._node.claim_name(key).addCallback(answered)

    def unreserve(self, name: str, member: Member) -> None:
        key = name.lower()
        if self._reserved.get(key) is member:
            del self._reserved[key]
            self._node.release_name(key)

    def _online(self, member: Member) -> Member:
        if not member.since:  # the server stamps it once the claim answered
            member.since = int(self._node.clock.seconds())
        self._node.emit(self._node.presence(member, "online"))
        for room in member.rooms:  # a rename: the replicas keep its rooms
            self._node.emit({"k": "join", "u": member.name, "r": room.name})
        return member

    def release(self, member: Member) -> None:
        if self._members.get(member.key) is member:
            self.local.release(member)
            self._node.emit({"k": "offline", "u": member.name})
            self._node.release_name(member.key)

    def changed(self, member: Member) -> None:
        if self._members.get(member.key) is member:
            self._node.emit(self._node.presence(member))

    def joined(self, member: Member, room_key: str) -> None:
        self._node.emit({"k": "join", "u": member.name, "r": room_key})

    def parted(self, member: Member, room_key: str) -> None:
        self._node.emit({"k": "part", "u": member.name, "r": room_key})

    def find(self, name: str) -> Member | None:
        key = name.lower()
        return self._members.get(key) or self._node.replica.members.get(key)

    def everyone(self) -> list[tuple[str, list[str]]]:
        people = self.local.everyone()
        people += [(m.name, [room.name for room in m.rooms])
                   for key, m in self._node.replica.members.items() if key not in self._members]
        people.sort(key=lambda person: person[0].lower())
        return people

    def rooms(self) -> list[tuple[str, int]]:
        counts = dict(self.local.rooms())
        for key, room in self._node.replica.rooms.items():
            counts[key] = counts.get(key, 0) + len(room.members)
        lobby = self._lobby
        return sorted(counts.items(), key=lambda pair: (pair[0] != lobby, pair[0]))

    def members(self, room_key: str) -> list[str]:
        names = [m.name for m in self._rooms[room_key].members] if room_key in self._rooms else []
        remote = self._node.replica.rooms.get(room_key)
        if remote is not None:
            names += [m.name for m in remote.members if m.key not in self._members]
        names.sort(key=str.lower)
        return names
