"""
One process of a cluster: its place on the shared Redis stream.

Everything a process publishes (room messages, notices, private messages,
who joined and left, generic state changes) is queued as events and, once a
reactor turn, sent as one stream entry (C{XADD}, trimmed to L{MAX_LEN}
entries).  Each process reads the stream from its own last position
(C{XREAD BLOCK} on a second connection), so nothing is missed across a
reconnect: it delivers what other processes published to its own members
(through a L{LocalBus}), stores their room messages in its own history, and
keeps a replica of who is online elsewhere and in which rooms (the
L{Replica}), so that the directory answers at once.

Names are unique across the cluster: a name is a key C{<prefix>:name:<name>}
set with C{SET NX PX} to this process's instance, kept alive by the
heartbeat (L{ASSERT_SCRIPT}) and deleted by compare-and-delete
(L{RELEASE_SCRIPT}) when its member leaves.

Faults (docs/CLUSTER.md): while Redis is unreachable the process serves its
own users, logs the outage once, and queues what it publishes (at most
L{QUEUE_LIMIT} events, the oldest dropped first); on every reconnect it
re-asserts its names, publishes the queue (each event with its original
time), says C{hello} and publishes its whole state (C{sync}); every other
process answers a C{hello} with its own C{sync}.  A Redis that lost its data
(restarted without persistence) is noticed by its epoch key: every process
then reads the new stream from its start.  A process not heard from for
L{DEAD_AFTER} heartbeats is dead: every other process tells its own members
that the dead one's users disconnected.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat.cluster import codec
from twisted_chat.domain.bus import LocalBus
from twisted_chat.domain.events import Error, Event, Notice, Private
from twisted_chat.domain.moderation import address_of
from twisted_chat.domain.server import Member, Room

if TYPE_CHECKING:
    from twisted_chat.domain.server import ChatServer

# Seconds between heartbeats (the name keys are refreshed then too) ...
HEARTBEAT = 5.0
# ... a process not heard from for this many heartbeats is dead (20 s) ...
DEAD_AFTER = 4
# Seconds after reading entries that the position is saved (with the history
# they fed flushed first): a process killed and started again reads again,
# and stores twice, at most this much of the others' messages.
SAVE_DELAY = 0.2
# ... and a name key outlives its last refresh by this many (25 s).
NAME_TTL = 5
# Events kept while Redis is unreachable; past it the oldest are dropped.
QUEUE_LIMIT = 100_000
# Events in one stream entry at most.
BATCH = 500
# Stream entries kept (XADD MAXLEN ~): what a process that was down can
# catch up on.
MAX_LEN = 200_000
# Entries one XREAD returns at most.
READ_COUNT = 1000
# Names asserted by one script call.
ASSERT_CHUNK = 500
# A process not connected this long after starting says Redis is unreachable.
CONNECT_GRACE = 6.0
# How long stopping waits for the last events (and the "bye") to reach Redis.
STOP_GRACE = 2.0
# How long the first logins wait for this process to reach Redis and catch
# up (names, bans, topics said before it started); then, Redis still
# unreachable, they are served alone, as in any outage.
START_WAIT = 5.0

# Each key: ours already (refresh the expiry), free (take it), or someone
# else's: its index (1-based) is returned.
ASSERT_SCRIPT = """\
local taken = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  elseif owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    taken[#taken + 1] = i
  end
end
return taken
"""
# Compare-and-delete: free a name only if it is still ours.
RELEASE_SCRIPT = """\
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def default_node_name() -> str:
    """C{host:pid}."""
    return "%s:%d" % (socket.gethostname(), os.getpid())


def stream_id(text: str) -> tuple[int, int]:
    """A stream entry id (C{ms-seq}) as a pair that sorts like Redis does."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class RemoteParticipant:
    """
    A member of another process, as this process's directory holds it.

    @ivar address: its address (what C{/whois} shows operators), C{""} if
        its process did not say.
    @ivar multi_room: whether it may be in several rooms (an IRC user).
    """

    __slots__ = ("peer", "address", "multi_room")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.address = ""
        self.multi_room = False

    def send(self, event: Event) -> None:
        """Nothing goes to a remote member directly: the bus forwards by key."""

    def close(self) -> None:
        """Its own process closes it."""

    def peer_host(self) -> str:
        return self.address


class RemoteAccount:
    """The account a remote member logged in as: its name is all we know."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class RemoteMember(Member):
    """
    A member of another process: what C{/whois} and the moderation rules
    ask of it (its account, whether it is an operator), as its process said.
    """

    __slots__ = ("account", "operator")

    def __init__(self, participant: RemoteParticipant, name: str, key: str) -> None:
        super().__init__(participant, name, key)
        self.account: RemoteAccount | None = None
        self.operator = False


def presence(member: Member, away: str | None) -> dict[str, Any]:
    """
    What other processes keep of this process's C{member} for C{/whois},
    IRC C{WHOIS} and moderation: its account, operator status, address,
    login time, away text and whether it is an IRC user.
    """
    account = getattr(member, "account", None)
    return {"a": account.name if account is not None else None,
            "o": bool(getattr(member, "operator", False)),
            "h": address_of(member), "t": member.since,
            "m": bool(getattr(member.participant, "multi_room", False)), "w": away}


class Peer:
    """
    Another process, as heard on the stream.

    @ivar seen: when it was last heard from (this process's clock).
    @ivar seq: the last batch number taken from it.
    @ivar members: its members by key.
    """

    __slots__ = ("instance", "seen", "seq", "members", "greeted")

    def __init__(self, instance: str, seen: float) -> None:
        self.instance = instance
        self.seen = seen
        self.seq = 0
        self.members: dict[str, Member] = {}
        self.greeted = False  # its hello was heard

    @property
    def name(self) -> str:
        return self.instance.rpartition("/")[0] or self.instance


class Replica:
    """
    Who is online in the other processes, and in which rooms: remote
    L{Member}s (with a L{RemoteParticipant}) in rooms of their own (not the
    server's), so that queries need no round trip.
    """

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.rooms: dict[str, Room] = {}
        self.on_gone: Callable[[Member], object] = lambda member: None

    def add(self, peer: Peer, name: str, info: dict[str, Any] | None = None) -> Member:
        key = name.lower()
        member = peer.members.get(key)
        if member is None:
            member = peer.members[key] = RemoteMember(RemoteParticipant(peer), name, key)
        self.members[key] = member
        if info:
            self.describe(member, info)
        return member

    @staticmethod
    def describe(member: Member, info: dict[str, Any]) -> None:
        """Keep what L{presence} said of C{member}."""
        if not isinstance(member, RemoteMember):
            return
        account = info.get("a")
        member.account = RemoteAccount(str(account)) if account else None
        member.operator = bool(info.get("o"))
        member.since = float(info.get("t") or member.since)
        participant = member.participant
        if isinstance(participant, RemoteParticipant):
            participant.address = str(info.get("h") or "")
            participant.multi_room = bool(info.get("m"))

    def remove(self, peer: Peer, key: str) -> Member | None:
        member = peer.members.pop(key, None)
        if member is None:
            return None
        for room in member.rooms:
            room.members.pop(member, None)
            if not room.members:
                self.rooms.pop(room.name, None)
        if self.members.get(key) is member:
            del self.members[key]
            self.on_gone(member)
        return member

    def join(self, peer: Peer, name: str, room_key: str) -> None:
        member = peer.members.get(name.lower()) or self.add(peer, name)
        room = self.rooms.get(room_key)
        if room is None:
            room = self.rooms[room_key] = Room(room_key)
        if member not in room.members:
            room.members[member] = None
            member.rooms = member.rooms + (room,)

    def part(self, peer: Peer, name: str, room_key: str) -> None:
        member = peer.members.get(name.lower())
        room = self.rooms.get(room_key)
        if member is None or room is None or member not in room.members:
            return
        del room.members[member]
        member.rooms = tuple(r for r in member.rooms if r is not room)
        if not room.members:
            del self.rooms[room_key]

    def replace(self, peer: Peer, people: list[Any],
                infos: list[Any] | None = None) -> list[tuple[Member, dict[str, Any]]]:
        """
        C{peer}'s whole state: C{[name, [room, ...]]} pairs (and, from a
        newer process, each one's L{presence}, in C{infos}); returns the
        members with what their process said of them.
        """
        for key in list(peer.members):
            self.remove(peer, key)
        described = []
        for index, (name, rooms) in enumerate(people):
            info = infos[index] if infos is not None and index < len(infos) else None
            member = self.add(peer, str(name), info if isinstance(info, dict) else None)
            if isinstance(info, dict):
                described.append((member, info))
            for room in rooms:
                self.join(peer, str(name), str(room))
        return described

    def drop(self, peer: Peer) -> list[tuple[str, tuple[str, ...]]]:
        """Forget C{peer}'s members; return each one's name and rooms."""
        gone = []
        for key in list(peer.members):
            member = self.remove(peer, key)
            if member is not None:
                gone.append((member.name, tuple(room.name for room in member.rooms)))
        return gone


class Positions:
    """
    Where this process has read the stream up to, kept in the C{--db} file
    beside the history it fed: after a restart it catches up from there.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> tuple[str, str, str] | None:
        """The saved C{(epoch, last id, instance)}, or C{None}."""
        db = self._db = sqlite3.connect(self.path, isolation_level=None,
                                        check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 2000")
        db.execute("PRAGMA synchronous = NORMAL")  # a WAL commit without an fsync
        db.execute("CREATE TABLE IF NOT EXISTS cluster_position (only INTEGER PRIMARY KEY"
                   " CHECK (only = 0), epoch TEXT NOT NULL, last_id TEXT NOT NULL,"
                   " instance TEXT NOT NULL)")
        row = db.execute("SELECT epoch, last_id, instance FROM cluster_position").fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def save(self, epoch: str, last_id: str, instance: str) -> None:
        if self._db is None:
            return
        self._db.execute("INSERT OR REPLACE INTO cluster_position VALUES (0, ?, ?, ?)",
                         (epoch, last_id, instance))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


LinkFactory = Callable[[Callable[[Any], object], Callable[[], object]], Any]


class ClusterNode(Service):
    """
    This process on the stream: publishes, reads, keeps the replica, the
    names and the heartbeat.

    @param links: makes a connection to Redis from C{(on_ready, on_lost)}
        (L{twisted_chat.cluster.redis.Link}, or a test's fake).
    @param node_name: for logs and the instance id.
    @param positions: where the read position is kept (C{None}: nowhere,
        e.g. C{--db :memory:}).
    """

    log = Logger()

    def __init__(self, links: LinkFactory, node_name: str, clock: IReactorTime,
                 heartbeat: float = HEARTBEAT, positions: Positions | None = None,
                 prefix: str = "twisted-chat", queue_limit: int = QUEUE_LIMIT,
                 where: str = "Redis") -> None:
        self.node_name = node_name
        self.instance = "%s/%s" % (node_name, os.urandom(4).hex())
        self.clock = clock
        self.heartbeat = heartbeat
        self._positions = positions
        self._where = where
        self._queue_limit = queue_limit
        self.stream = prefix + ":log"
        self._epoch_key = prefix + ":epoch"
        self._name_prefix = prefix + ":name:"
        self.replica = Replica()
        self.peers: dict[str, Peer] = {}
        self.server: ChatServer | None = None
        self.local: LocalBus | None = None
        self._state_handlers: dict[str, Callable[[int, dict[str, Any], str], object]] = {}
        self._hello_handlers: list[Callable[[str, bool], object]] = []
        self.replica.on_gone = self._remote_gone
        # publishing
        self._outbox: deque[dict[str, Any]] = deque()
        self._resend: deque[tuple[int, list[dict[str, Any]]]] = deque()
        self._inflight: deque[tuple[int, list[dict[str, Any]]]] = deque()
        self._seq = 0
        self._sent_at = 0.0
        self._flushing: IDelayedCall | None = None
        self.dropped = 0
        # connections
        self._cmd_link = links(self._cmd_ready, self._cmd_lost)
        self._read_link = links(self._reader_ready, self._reader_lost)
        self.cmd: Any = None
        self.reader: Any = None
        self._gen = 0
        self.ready = False  # connected, epoch known, names asserted
        self._reading = False
        self.epoch: str | None = None
        self.last_id = "0-0"
        self._live_from: tuple[int, int] | None = None  # the first catch-up: history only
        self._previous: str | None = None  # our instance before a restart
        self._outage_since: float | None = None
        self._beat: IDelayedCall | None = None
        self._connecting: IDelayedCall | None = None
        self._saving: IDelayedCall | None = None  # the position, soon after a read
        self._released: set[str] = set()  # names to free once Redis is back
        self._drain_waiters: list[Deferred[None]] = []
        self._seen_live = False  # the tail of the stream was read once
        self._started = False  # caught up once (or gave up waiting): logins go ahead
        self._start_waiters: list[Deferred[None]] = []
        self._start_timeout: IDelayedCall | None = None
        self._setup_warned = False
        self.stopping = False

    # -- wiring -----------------------------------------------------------

    def attach(self, server: ChatServer, local: LocalBus) -> None:
        """The server this node serves, and the bus of its own members."""
        self.server = server
        self.local = local

    def on_state(self, topic: str, handler: Callable[[int, dict[str, Any], str], object]) -> None:
        """
        The hook for replicated state (accounts, moderation: see
        L{twisted_chat.cluster.moderation}): every C{state} event of C{topic} published by another
        process is handed to C{handler(version, change, node_name)}, also
        those published while this process was down (when it catches up on
        start-up, with node_name C{""}).  Publish with L{publish_state}.
        """
        self._state_handlers[topic] = handler

    def on_hello(self, handler: Callable[[str, bool], object]) -> None:
        """
        C{handler(instance, first)} is called when another process says
        C{hello} (it started, or reconnected): C{first} for the first hello
        heard from that instance (a process new to this one).
        """
        self._hello_handlers.append(handler)

    def publish_state(self, topic: str, version: int, change: dict[str, Any]) -> None:
        """
        Tell every other process about a state change (a JSON object); it
        reaches their L{on_state} handler of C{topic}, in order, also after
        an outage.
        """
        self.emit(codec.state(topic, version, change))

    def name_key(self, key: str) -> str:
        return self._name_prefix + key

    # -- the service ------------------------------------------------------

    @override
    def startService(self) -> None:
        super().startService()
        self.stopping = False
        if self._positions is not None:
            try:
                saved = self._positions.open()
            except sqlite3.Error as e:
                self.log.warn("cannot keep the stream position in {path}: {error}; a restart"
                              " will read the whole stream again", path=self._positions.path,
                              error=e)
                self._positions = None
                saved = None
            if saved is not None:
                self.epoch, self.last_id, self._previous = saved
        self.log.info("cluster node {node} connecting to {where}", node=self.node_name,
                      where=self._where)
        self._cmd_link.start()
        self._read_link.start()
        self._beat = self.clock.callLater(self.heartbeat, self._tick)
        self._connecting = self.clock.callLater(CONNECT_GRACE, self._still_connecting)

    def _still_connecting(self) -> None:
        self._connecting = None
        if not self.ready:
            self._outage()

    @override
    def stopService(self) -> Deferred[None]:
        super().stopService()
        for call in (self._beat, self._connecting, self._saving):
            if call is not None and call.active():
                call.cancel()
        self._beat = self._connecting = self._saving = None
        self._now_started()  # logins still waiting go ahead (and find it stopping)
        if self.cmd is not None:
            self.emit({"k": "bye"})
            for key in list(self._local_members()):
                self._release_name(key)
        self._flush()
        self.stopping = True
        waited: Deferred[None] = self._drained()
        waited.addTimeout(STOP_GRACE, self.clock)
        waited.addErrback(lambda _: None)

        def close(_: object) -> Any:
            self._save_position()
            if self._positions is not None:
                self._positions.close()
            return _gather([self._cmd_link.stop(), self._read_link.stop()])

        waited.addCallback(close)
        return waited

    def _drained(self) -> Deferred[None]:
        """Fires once everything sent has been acknowledged (or at once when disconnected)."""
        if self.cmd is None or not (self._inflight or self._outbox):
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._drain_waiters.append(d)
        return d

    def _local_members(self) -> dict[str, Member]:
        return self.server.members if self.server is not None else {}

    # -- publishing -------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """Queue C{event} for the other processes (sent at the end of this reactor turn)."""
        if self.stopping:
            return
        outbox = self._outbox
        outbox.append(event)
        if len(outbox) > self._queue_limit:
            outbox.popleft()
            self.dropped += 1
            if self.dropped == 1:
                self.log.warn("Redis is unreachable and {limit} events are queued: the oldest"
                              " are being dropped", limit=self._queue_limit)
        if self._flushing is None and self.ready:
            self._flushing = self.clock.callLater(0, self._flush)

    def _flush(self) -> None:
        if self._flushing is not None and self._flushing.active():
            self._flushing.cancel()
        self._flushing = None
        if not self.ready or self.cmd is None:
            return
        while self._resend:
            self._send(*self._resend.popleft())
        outbox = self._outbox
        while outbox:
            count = min(len(outbox), BATCH)
            events = [outbox.popleft() for _ in range(count)]
            self._seq += 1
            self._send(self._seq, events)

    def _send(self, seq: int, events: list[dict[str, Any]]) -> None:
        self._inflight.append((seq, events))
        self._sent_at = self.clock.seconds()
        gen = self._gen
        d = self.cmd.execute_command(
            "XADD", self.stream, "MAXLEN", "~", MAX_LEN, "*", "d",
            codec.encode_batch(self.instance, seq, events))
        d.addCallbacks(self._added, self._add_failed, callbackArgs=(gen,), errbackArgs=(gen,))

    def _added(self, _: object, gen: int) -> None:
        if gen == self._gen and self._inflight:
            self._inflight.popleft()
            if not self._inflight and not self._outbox:
                waiters, self._drain_waiters = self._drain_waiters, []
                for d in waiters:
                    d.callback(None)

    def _add_failed(self, failure: Failure, gen: int) -> None:
        if gen != self._gen or _connection_error(failure):
            return  # _cmd_lost sends it again
        self.log.failure("Redis refused a stream entry; it is dropped", failure)
        self._added(None, gen)

    # -- the command connection -------------------------------------------

    def _cmd_ready(self, conn: Any) -> None:
        self.cmd = conn
        self._gen += 1
        gen = self._gen
        mine = os.urandom(8).hex()
        conn.execute_command("SET", self._epoch_key, mine, "NX").addErrback(lambda _: None)
        d = conn.execute_command("GET", self._epoch_key)
        d.addCallback(self._epoch_known, gen)
        d.addErrback(self._setup_failed, gen)

    def _epoch_known(self, epoch: Any, gen: int) -> Deferred[Any] | None:
        if gen != self._gen:
            return None
        epoch = str(epoch)
        if self.epoch is not None and epoch != self.epoch:
            self.log.warn("Redis lost its data (restarted without persistence?): reading the"
                          " new stream from its start and publishing this process's state")
            self.last_id = "0-0"
        self.epoch = epoch
        if not self._seen_live:
            d: Deferred[Any] = self.cmd.execute_command(
                "XREVRANGE", self.stream, "+", "-", "COUNT", 1)
            d.addCallback(self._tail_known, gen)
            return d
        return self._assert_names(gen)

    def _tail_known(self, reply: Any, gen: int) -> Deferred[Any] | None:
        if gen != self._gen:
            return None
        tail = reply[0][0] if reply else "0-0"
        self._seen_live = True
        if stream_id(tail) > stream_id(self.last_id):
            self._live_from = stream_id(tail)  # up to there: what was said before we started
        else:
            # nothing to catch up: the position names this instance at once,
            # so that a crash before the first heartbeat stores nothing twice
            self._save_position()
        return self._assert_names(gen)

    def _assert_names(self, gen: int) -> Deferred[Any]:
        members = self._local_members()
        keys = list(members)
        ds = []
        for start in range(0, len(keys), ASSERT_CHUNK):
            chunk = keys[start:start + ASSERT_CHUNK]
            d = self._assert(chunk)
            d.addCallback(self._asserted, chunk, gen)
            ds.append(d)
        for key in list(self._released):
            self._release_name(key)
        self._released.clear()
        d = _gather(ds)
        d.addCallback(lambda _: self._up(gen))
        return d

    def _assert(self, keys: list[str]) -> Deferred[Any]:
        ttl = int(self.heartbeat * NAME_TTL * 1000)
        result: Deferred[Any] = self.cmd.execute_command(
            "EVAL", ASSERT_SCRIPT, len(keys), *[self.name_key(k) for k in keys],
            self.instance, ttl)
        return result

    def _asserted(self, taken: Any, keys: list[str], gen: int) -> None:
        if gen != self._gen or not taken:
            return
        members = self._local_members()
        for index in taken:
            member = members.get(keys[int(index) - 1])
            if member is None:
                continue
            self.log.warn("the name {name} was taken on another process while Redis was"
                          " unreachable; closing this process's session", name=member.name)
            member.participant.send(Error(
                "the name %s was taken on another server while the servers were apart;"
                " log in again with another name" % member.name, "name_taken"))
            member.participant.close()

    def _up(self, gen: int) -> None:
        if gen != self._gen:
            return
        self.ready = True
        self._setup_warned = False
        if self._outage_since is not None:
            self.log.info("Redis is back after {seconds:.0f} s; publishing {count} queued"
                          " events", seconds=self.clock.seconds() - self._outage_since,
                          count=len(self._outbox) + sum(len(e) for _, e in self._resend))
            self._outage_since = None
            self.dropped = 0
        else:
            self.log.info("cluster node {node} connected to {where}", node=self.node_name,
                          where=self._where)
        self.emit({"k": "hello"})
        self.emit(self._sync())
        self._flush()
        if self._live_from is None:
            self._now_started()  # nothing said before we started
        self._read()

    def _setup_failed(self, failure: Failure, gen: int) -> None:
        if gen != self._gen or _connection_error(failure):
            return
        if not self._setup_warned:  # e.g. NOAUTH: said once, retried quietly
            self._setup_warned = True
            self.log.error("Redis at {where} refused the cluster's commands: {error};"
                           " serving this process's users alone, retrying",
                           where=self._where, error=failure.getErrorMessage())
            self._outage()
        self.clock.callLater(self.heartbeat, self._retry_setup, gen)

    def _retry_setup(self, gen: int) -> None:
        if gen == self._gen and self.cmd is not None and not self.ready:
            self._cmd_ready(self.cmd)

    def _cmd_lost(self) -> None:
        self.cmd = None
        self.ready = False
        self._gen += 1
        # what was sent but not acknowledged goes again, first, with its number
        self._resend.extendleft(reversed(self._inflight))
        self._inflight.clear()
        self._outage()

    def _outage(self) -> None:
        if self.stopping or self._outage_since is not None:
            return
        self._outage_since = self.clock.seconds()
        self.log.warn("Redis at {where} is unreachable: serving this process's users alone,"
                      " queueing what they say, reconnecting", where=self._where)

    # -- the reading connection -------------------------------------------

    def _reader_ready(self, conn: Any) -> None:
        self.reader = conn
        now = self.clock.seconds()
        for peer in self.peers.values():  # nobody could be heard while we were away
            peer.seen = now
        self._read()

    def _reader_lost(self) -> None:
        self.reader = None
        self._reading = False
        self._outage()

    def _read(self) -> None:
        if self._reading or not self.ready or self.reader is None or self.stopping:
            return
        self._reading = True
        reader = self.reader
        d = reader.execute_command(
            "XREAD", "COUNT", READ_COUNT, "BLOCK", int(self.heartbeat * 1000),
            "STREAMS", self.stream, self.last_id)
        d.addCallbacks(self._got, self._read_failed, callbackArgs=(reader,),
                       errbackArgs=(reader,))

    def _got(self, reply: Any, reader: Any) -> None:
        if reader is not self.reader:
            return
        self._reading = False
        try:
            self._take(reply or [])
        finally:
            self._read()

    def _read_failed(self, failure: Failure, reader: Any) -> None:
        if reader is not self.reader:
            return
        self._reading = False
        if _connection_error(failure) or self.stopping:
            return  # _reader_ready reads again
        self.log.failure("reading the Redis stream failed; retrying", failure)
        self.clock.callLater(1.0, self._read)

    def _take(self, reply: list[Any]) -> None:
        now = self.clock.seconds()
        live_from = self._live_from
        for _stream, entries in reply:
            for entry_id, fields in entries:
                self.last_id = entry_id
                catching_up = live_from is not None and stream_id(entry_id) <= live_from
                data = _field(fields, "d")
                if data is None:
                    continue
                try:
                    instance, seq, events = codec.decode_batch(data)
                except codec.BadEntry as e:
                    self.log.warn("skipped a stream entry {id}: {why}", id=entry_id, why=e)
                    continue
                if instance == self.instance:
                    continue
                if catching_up:
                    if instance != self._previous:
                        self._catch_up(events)
                    continue
                peer = self.peers.get(instance)
                if peer is None:
                    peer = self.peers[instance] = Peer(instance, now)
                if seq <= peer.seq:
                    continue  # sent twice (a reply lost with a connection)
                peer.seq = seq
                peer.seen = now
                if self._saving is None:
                    self._saving = self.clock.callLater(SAVE_DELAY, self._save_soon)
                for event in events:
                    try:
                        self._apply(peer, event)
                    except Exception:
                        self.log.failure("a stream event from {node} failed: {event!r}",
                                         node=peer.name, event=event)
        if live_from is not None and stream_id(self.last_id) >= live_from:
            self._live_from = None  # caught up: from here on, everything is live
            self._save_position()  # a restart now skips this instance's entries
            if self.ready:
                self._now_started()

    def _restarted(self, peer: Peer) -> None:
        """
        A node known under another instance says hello: it restarted, and
        the old instance is dead (node names must be unique in a cluster).
        """
        for old in [p for p in self.peers.values() if p.name == peer.name and p is not peer]:
            self.log.info("node {node} started again", node=peer.name)
            self._gone(old, "disconnected")

    def _catch_up(self, events: list[dict[str, Any]]) -> None:
        """Entries said before this process started: only their messages, into history."""
        if self.server is None:
            return
        append = self.server.history.append
        for event in events:
            kind = event.get("k")
            try:
                if kind == "msg":
                    append(codec.entry_of(event))
                elif kind == "state":  # state is kept, like history (accounts, moderation)
                    self._state(event, "")
            except Exception:
                self.log.failure("a stream event failed while catching up: {event!r}",
                                 event=event)

    def _apply(self, peer: Peer, event: dict[str, Any]) -> None:
        kind = event.get("k")
        local = self.local
        server = self.server
        if local is None or server is None:
            return
        if kind == "msg":
            entry = codec.entry_of(event)
            local.publish(entry.room, codec.message_event(entry))
            server.history.append(entry)
        elif kind == "notice":
            local.publish(str(event["r"]), codec.notice_event(event))
        elif kind == "once":
            local.publish_once([(str(f[0]), codec.notice_event(f)) for f in event["p"]])
        elif kind == "pm":
            local.private(str(event["to"]), codec.private_event(event))
        elif kind == "join":
            self.replica.join(peer, str(event["u"]), str(event["r"]))
        elif kind == "part":
            self.replica.part(peer, str(event["u"]), str(event["r"]))
        elif kind == "online" or kind == "who":
            info = event.get("p")
            member = self.replica.add(peer, str(event["u"]),
                                      info if isinstance(info, dict) else None)
            if isinstance(info, dict):
                self._away(member, info.get("w"))
        elif kind == "offline":
            self.replica.remove(peer, str(event["u"]).lower())
        elif kind == "sync":
            infos = event.get("p")
            for member, info in self.replica.replace(
                    peer, event["m"], infos if isinstance(infos, list) else None):
                self._away(member, info.get("w"))
        elif kind == "hello":
            self._restarted(peer)
            self.emit(self._sync())
            first, peer.greeted = not peer.greeted, True
            for handler in self._hello_handlers:
                handler(peer.instance, first)
        elif kind == "bye":
            self._gone(peer, "disconnected (server stopping)")
        elif kind == "state":
            self._state(event, peer.name)
        # "beat", and kinds of a newer version: nothing more to do

    def _state(self, event: dict[str, Any], node: str) -> None:
        handler = self._state_handlers.get(str(event.get("topic")))
        if handler is not None:
            handler(int(event.get("sv", 1)), event["change"], node)

    def _sync(self) -> dict[str, Any]:
        members = self._local_members()
        away = self.server.moderation.away if self.server is not None else {}
        return {"k": "sync", "m": [[m.name, [room.name for room in m.rooms]]
                                   for m in members.values()],
                "p": [presence(m, away.get(m.key)) for m in members.values()]}

    def presence(self, member: Member, kind: str = "who") -> dict[str, Any]:
        """The C{online} (or C{who}: it changed) event of this process's C{member}."""
        away = self.server.moderation.away.get(member.key) if self.server is not None else None
        return {"k": kind, "u": member.name, "p": presence(member, away)}

    def _away(self, member: Member, text: Any) -> None:
        """A remote member's away text, kept where every front end looks (C{/whois}, IRC)."""
        server = self.server
        if server is None or server.members.get(member.key) is not None:
            return
        if text:
            server.moderation.away[member.key] = str(text)
        else:
            server.moderation.away.pop(member.key, None)

    def _remote_gone(self, member: Member) -> None:
        """A remote member left the replica: its away text goes with it."""
        self._away(member, None)

    def _gone(self, peer: Peer, why: str) -> None:
        """C{peer} is gone: its members leave every list; this process's members are told."""
        self.peers.pop(peer.instance, None)
        if why == "disconnected":  # dead or restarted, not stopped (a bye frees its own)
            self._free_names(peer)
        gone = self.replica.drop(peer)
        if gone:
            self.log.info("{count} users of {node} left: {why}", count=len(gone),
                          node=peer.name, why=why)
        local, server = self.local, self.server
        if local is None or server is None:
            return
        for name, rooms in gone:
            if rooms:
                text = "%s %s" % (name, why)
                when, stamp = server.now()
                local.publish_once([(room, Notice(room, text, when, stamp, name, "offline"))
                                    for room in rooms])

    def _free_names(self, peer: Peer) -> None:
        """
        The names a dead (or restarted) C{peer} held are free as its members
        leave the lists, not only when their keys run out 0-5 s later (or up
        to 25 s after a crash and an immediate restart): compare-and-delete,
        so a name taken again meanwhile stays taken.
        """
        cmd = self.cmd
        if not self.ready or cmd is None:
            return
        for key in peer.members:
            cmd.execute_command("EVAL", RELEASE_SCRIPT, 1, self.name_key(key),
                                peer.instance).addErrback(lambda _: None)  # they expire anyway

    # -- heartbeat --------------------------------------------------------

    def _tick(self) -> None:
        self._beat = self.clock.callLater(self.heartbeat, self._tick)
        if not self.ready:
            return
        if self.clock.seconds() - self._sent_at >= self.heartbeat * 0.9:
            self.emit({"k": "beat"})  # only when nothing else said we are alive
        gen = self._gen
        keys = list(self._local_members())
        for start in range(0, len(keys), ASSERT_CHUNK):
            chunk = keys[start:start + ASSERT_CHUNK]
            self._assert(chunk).addCallbacks(self._asserted, lambda _: None,
                                             callbackArgs=(chunk, gen))
        if self.reader is not None:
            limit = self.clock.seconds() - self.heartbeat * DEAD_AFTER
            for peer in [p for p in self.peers.values() if p.seen < limit]:
                self._gone(peer, "disconnected")
        self._save_position()

    def _save_soon(self) -> None:
        self._saving = None
        self._save_position()

    def _save_position(self) -> None:
        if self._positions is None or self.epoch is None or self.server is None:
            return
        flush = getattr(self.server.history, "flush", None)
        if flush is not None:
            flush()  # what the position covers is on disk first
        try:
            self._positions.save(self.epoch, self.last_id, self.instance)
        except sqlite3.Error as e:
            self.log.warn("cannot save the stream position: {error}", error=e)

    # -- names ------------------------------------------------------------

    def when_started(self) -> Deferred[None]:
        """
        Fires once this process has reached Redis and caught up with what
        was said before it started (so a login sees the cluster's names,
        bans and topics), or after L{START_WAIT} seconds without Redis.
        """
        if self._started:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._start_waiters.append(waiter)
        if self._start_timeout is None:
            self._start_timeout = self.clock.callLater(START_WAIT, self._now_started)
        return waiter

    def _now_started(self) -> None:
        if self._started:
            return
        self._started = True
        if self._start_timeout is not None and self._start_timeout.active():
            self._start_timeout.cancel()
        self._start_timeout = None
        waiters, self._start_waiters = self._start_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def claim_name(self, key: str) -> Deferred[bool]:
        """
        Take the name C{key} cluster-wide: fires with C{False} if another
        process holds it.  While Redis is unreachable the name is granted
        (and asserted when it is back: a clash closes one of the two).
        """
        if not self.ready or self.cmd is None:
            return succeed(True)
        ttl = int(self.heartbeat * NAME_TTL * 1000)
        d: Deferred[Any] = self.cmd.execute_command(
            "SET", self.name_key(key), self.instance, "NX", "PX", ttl)

        def failed(failure: Failure) -> bool:
            if _connection_error(failure):
                return True  # asserted on reconnect
            self.log.failure("claiming a name in Redis failed", failure)
            return True

        d.addCallbacks(lambda reply: reply is not None, failed)
        return d

    def release_name(self, key: str) -> None:
        """The name C{key} is free again (compare-and-delete)."""
        if self.stopping:
            return
        self._release_name(key)

    def _release_name(self, key: str) -> None:
        if not self.ready or self.cmd is None:
            self._released.add(key)
            return
        self.cmd.execute_command(
            "EVAL", RELEASE_SCRIPT, 1, self.name_key(key), self.instance
        ).addErrback(lambda _: self._released.add(key))


def _field(fields: list[Any], name: str) -> Any:
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == name:
            return fields[i + 1]
    return None


def _connection_error(failure: Failure) -> bool:
    # txredisapi's ConnectionError (its TimeoutError is one too)
    return any(c.__name__ == "ConnectionError" for c in type(failure.value).__mro__)


def _gather(ds: list[Any]) -> Deferred[Any]:
    from twisted.internet.defer import gatherResults

    real = [d for d in ds if isinstance(d, Deferred)]
    return gatherResults(real, consumeErrors=True) if real else succeed(None)


def private_for(node: ClusterNode, key: str, event: Private) -> None:
    node.emit(codec.private(key, event))
