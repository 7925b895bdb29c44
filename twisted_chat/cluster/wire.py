"""
Wiring a server into a cluster (C{--redis}): the node, and the bus and
directory factories the L{ChatServer} takes.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from twisted_chat.cluster.address import RedisAddress
from twisted_chat.cluster.bus import ClusterBus
from twisted_chat.cluster.directory import ClusterDirectory
from twisted_chat.cluster.moderation import ReplicatedModeration
from twisted_chat.cluster.node import ClusterNode, LinkFactory, Positions
from twisted_chat.domain.server import ChatServer, Member, Room


def make_node(address: RedisAddress, reactor: Any, node_name: str, heartbeat: float,
              db: str) -> ClusterNode:
    """A node for C{address} (txredisapi is imported here, and only here)."""
    from twisted_chat.cluster.redis import Link

    def links(on_ready: Any, on_lost: Any) -> Link:
        return Link(address, reactor, on_ready, on_lost)

    positions = None if db == ":memory:" else Positions(db)
    return ClusterNode(links, node_name, reactor, heartbeat, positions, where=str(address))


def factories(node: ClusterNode) -> tuple[Any, Any]:
    """The bus and directory factories for a L{ChatServer} in C{node}'s cluster."""

    def bus(rooms: Mapping[str, Room], members: Mapping[str, Member]) -> ClusterBus:
        return ClusterBus(node, rooms, members)

    def directory(rooms: Mapping[str, Room], members: MutableMapping[str, Member],
                  lobby: str) -> ClusterDirectory:
        return ClusterDirectory(node, rooms, members, lobby)

    return bus, directory


def attach(node: ClusterNode, server: ChatServer) -> None:
    """C{server} (built with L{factories}) is the one C{node} serves."""
    bus = server.bus
    assert isinstance(bus, ClusterBus)
    node.attach(server, bus.local)
    ReplicatedModeration(server, node)


__all__ = ["LinkFactory", "attach", "factories", "make_node"]
