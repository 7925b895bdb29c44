"""
Moderation in a cluster: every process keeps its own moderation tables (in
its C{--db}, as history and accounts), and L{ReplicatedModeration} makes
them one.

* A change made on this process (L{Moderation.make}: a user's C{/ban},
  C{/topic}, C{/claim}...; never an expiry, never a change received) is
  published as a C{state} entry of topic C{moderation}.
* A change published elsewhere is applied here with
  L{ChatServer.applied_elsewhere}: the same state, stored and logged in
  this process's C{--db}, its expiry on this process's own timer, and its
  effects on this process's members (a ban kicks those it matches from the
  room, a gban closes their sessions, a kick, a kill, a wall).  It is not
  published again (no loops).  Changes read while catching up on start-up
  change the state only.
* A process says C{hello} when it starts: every other process answers a
  new instance's first hello with a snapshot of its state (C{state}
  entries of topic C{moderation} carrying C{"to"}: that instance), which
  only the newcomer applies, and only what it lacks: a process started
  after Redis lost its data, or away longer than the stream keeps, learns
  the bans, mutes, claims, ops and topics it missed.

docs/CLUSTER.md ("Moderation") argues the choices.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twisted_chat.domain.moderation import LOGGED_KINDS, STATE_KINDS, Change, Version

if TYPE_CHECKING:
    from twisted_chat.cluster.node import ClusterNode
    from twisted_chat.domain.server import ChatServer

TOPIC = "moderation"
VERSION = 1


def encode(change: Change, version: Version | None = None) -> dict[str, Any]:
    found = asdict(change)
    if version is not None:
        found["version"] = list(version)
    return found


def version_of(data: dict[str, Any]) -> Version | None:
    """The version a change was published with (C{None}: none)."""
    version = data.get("version")
    if version is None:
        return None
    when, by = version
    return (float(when), str(by))


def decode(data: dict[str, Any]) -> Change:
    """
    A L{Change} from its JSON object.

    @raise ValueError: for anything else.
    """
    kind, room = data.get("kind"), data.get("room")
    if kind not in STATE_KINDS and kind not in LOGGED_KINDS:
        raise ValueError("unknown kind %r" % (kind,))
    if room is not None and not isinstance(room, str):
        raise ValueError("bad room %r" % (room,))
    until = data.get("until")
    return Change(str(kind), room, str(data.get("target", "")), str(data.get("by", "")),
                  float(until) if until is not None else None, str(data.get("reason", "")),
                  float(data.get("when", 0.0)))


class ReplicatedModeration:
    """The server's moderation, published and applied through C{node}'s stream."""

    log = Logger()

    def __init__(self, server: ChatServer, node: ClusterNode) -> None:
        self.server = server
        self.node = node
        server.moderation.shared = self.publish
        node.on_state(TOPIC, self.apply)
        node.on_hello(self.greet)

    def publish(self, change: Change, version: Version | None) -> None:
        """A change made on this process: every other process applies it."""
        self.node.publish_state(TOPIC, VERSION, encode(change, version))

    def apply(self, version: int, data: dict[str, Any], node: str) -> None:
        """A change published by the process C{node} (C{""}: read while catching up)."""
        if version != VERSION:
            self.log.warn("a moderation change of version {version} from {node} skipped",
                          version=version, node=node)
            return
        to = data.get("to")
        try:
            change = decode(data)
            stamp = version_of(data)
        except (ValueError, TypeError) as e:
            self.log.warn("a bad moderation change from {node} skipped: {why}",
                          node=node or "the stream", why=e)
            return
        if to is not None:  # a snapshot, for the newcomer it names
            if to == self.node.instance and not self.server.moderation.holds(change):
                self.server.moderation.merge(change, stamp)
            return
        self.server.applied_elsewhere(change, live=bool(node), version=stamp)

    def greet(self, instance: str, first: bool) -> None:
        """
        Another process said hello: a new instance (C{first}) gets this
        process's whole moderation state.
        """
        if not first:
            return
        moderation = self.server.moderation
        for change in moderation.snapshot():
            self.node.publish_state(TOPIC, VERSION, {
                **encode(change, moderation.version(change)), "to": instance})
