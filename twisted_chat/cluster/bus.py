"""
The cluster's L{Bus}: delivers to this process's members at once (a
L{LocalBus}, the same hot path as a single process) and queues the event
for the other processes (L{ClusterNode.emit}: one stream entry a reactor
turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from twisted_chat.cluster import codec
from twisted_chat.domain.bus import LocalBus
from twisted_chat.domain.events import Event, Message, Notice, Private
from twisted_chat.metrics.observer import ChatObserver

if TYPE_CHECKING:
    from twisted_chat.cluster.node import ClusterNode
    from twisted_chat.domain.server import Member, Room


class ClusterBus:
    """
    @ivar local: the bus of this process's own members.
    @ivar node: the cluster node (how code holding a server finds it:
        C{getattr(server.bus, "node", None)}, e.g. to publish state changes).
    """

    __slots__ = ("local", "node", "_emit")

    def __init__(self, node: ClusterNode, rooms: Mapping[str, Room],
                 members: Mapping[str, Member]) -> None:
        self.local = LocalBus(rooms, members)
        self.node = node
        self._emit = node.emit

    @property
    def observer(self) -> ChatObserver:
        return self.local.observer

    @observer.setter
    def observer(self, observer: ChatObserver) -> None:
        self.local.observer = observer

    def publish(self, room_key: str, event: Event, exclude: Member | None = None) -> None:
        self.local.publish(room_key, event, exclude)
        if type(event) is Message:
            self._emit(codec.message(event.entry))
        elif isinstance(event, Notice):
            self._emit(codec.notice(room_key, event))

    def publish_once(
        self, pairs: Iterable[tuple[str, Event]], exclude: Member | None = None
    ) -> None:
        pairs = list(pairs)
        self.local.publish_once(pairs, exclude)
        notices = [codec.notice_fields(event) for _, event in pairs if isinstance(event, Notice)]
        if notices:
            self._emit({"k": "once", "p": notices})

    def private(self, recipient_key: str, event: Event) -> bool:
        if self.local.private(recipient_key, event):
            return True
        if recipient_key in self.node.replica.members and isinstance(event, Private):
            self._emit(codec.private(recipient_key, event))
            return True
        return False
