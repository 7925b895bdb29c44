"""
Fan-out: how an event reaches the members of a room, or one member.

L{Bus} is the seam a backplane plugs into (several processes sharing rooms:
a Redis bus publishes to the other processes and hands what they publish to
a L{LocalBus}).  L{LocalBus} delivers to this process's members; it is the
only place in the domain that loops over members to send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver

if TYPE_CHECKING:
    from twisted_chat.domain.events import Event
    from twisted_chat.domain.server import Member, Room


class Bus(Protocol):
    """
    Delivers room and private events.

    @ivar observer: told how many members each event reached (once per
        event, never per recipient); the server sets it.
    """

    observer: ChatObserver

    def publish(self, room_key: str, event: Event, exclude: Member | None = None) -> None:
        """Send C{event} to every member of the room C{room_key} but C{exclude}."""

    def publish_once(
        self, pairs: Iterable[tuple[str, Event]], exclude: Member | None = None
    ) -> None:
        """
        Send each C{(room_key, event)} pair's event to the room's members but
        C{exclude}; a member of several of the rooms gets only the event of
        the first pair it is in (a quit is told once, not once per room).
        """

    def private(self, recipient_key: str, event: Event) -> bool:
        """Send C{event} to the member whose key is C{recipient_key}; C{False} if not online."""


class LocalBus:
    """
    This process's members: the rooms and members of one L{ChatServer}.

    @param rooms: the server's rooms by key (read, never changed here).
    @param members: the server's members by key (read, never changed here).
    """

    __slots__ = ("_rooms", "_members", "observer")

    def __init__(self, rooms: Mapping[str, Room], members: Mapping[str, Member]) -> None:
        self._rooms = rooms
        self._members = members
        self.observer: ChatObserver = NULL_OBSERVER

    def publish(self, room_key: str, event: Event, exclude: Member | None = None) -> None:
        room = self._rooms.get(room_key)
        if room is None:
            return
        # The fan-out hot path: a plain loop, nothing per recipient but the call.
        members = room.members
        for member in members:
            if member is not exclude:
                member.participant.send(event)
        self.observer.delivered(event, len(members) - (exclude in members))

    def publish_once(
        self, pairs: Iterable[tuple[str, Event]], exclude: Member | None = None
    ) -> None:
        told: set[Member] = set()
        if exclude is not None:
            told.add(exclude)
        for room_key, event in pairs:
            room = self._rooms.get(room_key)
            if room is None:
                continue
            before = len(told)
            for member in room.members:
                if member not in told:
                    told.add(member)
                    member.participant.send(event)
            self.observer.delivered(event, len(told) - before)

    def private(self, recipient_key: str, event: Event) -> bool:
        member = self._members.get(recipient_key)
        if member is None:
            return False
        member.participant.send(event)
        self.observer.delivered(event, 1)
        return True
