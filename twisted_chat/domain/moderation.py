"""
Moderation state: per room its owner, ops, topic, bans and mutes, and the
server-wide bans and mutes (room C{None}), with one shared expiry timer.

Every change is a frozen L{Change} value applied by L{Moderation.apply},
the one entry point that mutates the tables: it persists the change (the
store), writes the moderation log and the server log, and reschedules the
timer.  A backplane replicating moderation between processes calls
C{apply} with the changes made elsewhere.  Rules (who may do what) live in
L{twisted_chat.domain.server.ChatServer}; this module answers questions
(L{Moderation.is_op}, L{Moderation.is_muted}, L{Moderation.banned}) and
keeps the tables.

Ban and mute targets are a name (matched case-insensitively against a
member's name), an address (exact) or a CIDR network (L{ipaddress}).
"""

from __future__ import annotations

import heapq
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twisted_chat.domain.events import Ban, Topic
from twisted_chat.errors import BadUsage
from twisted_chat.text import MAX_NAME

if TYPE_CHECKING:
    from twisted_chat.domain.server import Member

# The longest topic (IRC's TOPICLEN) and the longest reason kept.
TOPIC_MAX = 390
REASON_MAX = 200
# The longest ban or mute: ten years (longer is "until lifted").
MAX_DURATION = 10 * 366 * 86400.0

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])\Z", re.ASCII | re.IGNORECASE)
# A word meant as a duration that is none (2x, -5m, 30, 1.5h, 10min, 2hours):
# an error rather than the first word of a reason (2nd warning is a reason).
_ALMOST_DURATION = re.compile(
    r"[-+]?\d[\d.,]*([a-z]|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|wks?|weeks?)?\Z",
    re.ASCII | re.IGNORECASE)

# Change kinds that set state (and persist), and those only logged.
STATE_KINDS = frozenset({"claim", "unclaim", "op", "deop", "topic", "ban", "unban",
                         "mute", "unmute", "forget"})
LOGGED_KINDS = frozenset({"kick", "kill", "wall"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A change's version (when, by): which of two changes of the same item wins
# in a cluster (the later; L{Moderation.merge}).
Version = tuple[float, str]
# Versions of items kept past this many (a cluster's tombstones) are
# forgotten once older than VERSION_AGE seconds.
VERSIONS_KEPT = 4096
VERSION_AGE = 86400.0


def parse_duration(word: str) -> float | None:
    """
    The seconds C{word} (C{30s}, C{30m}, C{2h}, C{7d}, C{1w}) stands for, or
    C{None} if it is no duration.

    @raise BadUsage: for a duration of nothing or of more than ten years,
        or a word that looks like one but is none (C{2x}, C{30}, C{10min}).
    """
    match = _DURATION.match(word)
    if match is None:
        if _ALMOST_DURATION.match(word) is not None:
            raise BadUsage("%s is not a duration (like 30s, 30m, 2h, 7d, 1w)" % word)
        return None
    seconds = float(int(match.group(1)) * _UNITS[match.group(2).lower()])
    if seconds <= 0:
        raise BadUsage("a duration is at least 1s (none: until lifted)")
    if seconds > MAX_DURATION:
        raise BadUsage("a duration is at most 10 years (none: until lifted)")
    return seconds


def format_duration(seconds: float) -> str:
    """C{seconds} in two units at most: C{45s}, C{10m}, C{2h 5m}, C{3d 4h}."""
    left = int(seconds + 0.5)
    if left <= 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append("%d%s" % (left // size, unit))
            left %= size
            if len(parts) == 2:
                break
    return " ".join(parts)


def parse_target(text: str) -> str:
    """
    The canonical form of a ban or mute target: a name in lower case, an
    address as L{ipaddress} writes it, a CIDR network's address/prefix.

    @raise BadUsage: if C{text} is none of them.
    """
    text = text.strip()
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise BadUsage("%s is not a CIDR network (like 192.0.2.0/24)" % text) from None
    if ":" in text or text.replace(".", "").isdigit():
        try:
            return str(_plain(ipaddress.ip_address(text)))
        except ValueError:
            if ":" in text:
                raise BadUsage("%s is not an address" % text) from None
    if not text or len(text) > MAX_NAME or not all(c.isalnum() or c in "_-." for c in text) \
            or not text.isascii():
        raise BadUsage("a target is a name, an address or a CIDR network (like 192.0.2.0/24)")
    return text.lower()


def target_kind(target: str) -> str:
    """C{name}, C{address} or C{network}, for a canonical target."""
    if "/" in target:
        return "network"
    if ":" in target or target.replace(".", "").isdigit():
        return "address"
    return "name"


def _plain(address: ipaddress.IPv4Address | ipaddress.IPv6Address
           ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_of(member: Member) -> str:
    """C{member}'s address as L{parse_target} writes it (C{""} if unknown)."""
    peer_host = getattr(member.participant, "peer_host", None)
    if peer_host is None:
        return ""
    host = str(peer_host())
    try:
        return str(_plain(ipaddress.ip_address(host)))
    except ValueError:
        return host


def target_matches(target: str, member: Member) -> bool:
    """Whether the canonical C{target} matches C{member} (its name or its address)."""
    table = _Table()
    table.add(Ban(target, None, "", 0.0))
    return table.match(member.key, lambda: address_of(member)) is not None


def account_key(member: Member) -> str | None:
    """The casefolded name of C{member}'s account, or C{None} for a guest."""
    account = getattr(member, "account", None)
    return account.name.casefold() if account is not None else None


def is_operator(member: Member) -> bool:
    """Whether C{member} is a server operator."""
    return bool(getattr(member, "operator", False))


@dataclass(frozen=True, slots=True)
class Change:
    """
    One moderation change or action, as applied, stored and (later)
    replicated.

    @ivar kind: C{claim}, C{unclaim}, C{op}, C{deop}, C{topic}, C{ban},
        C{unban}, C{mute}, C{unmute}, C{forget} (an unclaimed room emptied:
        its topic goes; not logged) change state; C{kick}, C{kill} and
        C{wall} are only logged.
    @ivar room: the room's key; C{None}: server-wide.
    @ivar target: the owner's account (C{claim}), the op's account name
        (C{op}, C{deop}), the canonical ban or mute target, the kicked or
        killed name.
    @ivar by: who did it (C{""}: the server, as for an expiry).
    @ivar until: when a ban or mute lifts itself (C{None}: until lifted).
    @ivar reason: the reason; for C{topic} the topic's text, for C{wall} the text.
    @ivar when: when it was done.
    """

    kind: str
    room: str | None
    target: str = ""
    by: str = ""
    until: float | None = None
    reason: str = ""
    when: float = 0.0


def item_of(change: Change) -> tuple[str, str | None, str] | None:
    """
    What C{change} sets: a room's owner, one op, the topic, one ban or one
    mute (C{None} for kick, kill and wall, which set nothing).
    """
    kind = change.kind
    if kind in ("ban", "unban", "mute", "unmute"):
        return (kind[2:] if kind.startswith("un") else kind, change.room, change.target)
    if kind in ("op", "deop"):
        return ("op", change.room, change.target.casefold())
    if kind in ("topic", "forget"):
        return ("topic", change.room, "")
    if kind in ("claim", "unclaim"):
        return ("owner", change.room, "")
    return None


class ModerationStore(Protocol):
    """Where moderation state and the moderation log are kept."""

    def load(self) -> list[Change]:
        """The changes that rebuild the current state (claims, ops, topics, bans, mutes)."""

    def record(self, change: Change) -> None:
        """Keep C{change}: update the state tables and add it to the log."""

    def modlog(self, limit: int) -> list[Change]:
        """The last C{limit} logged changes, oldest first."""

    def close(self) -> None:
        """Release the store."""


class _Table:
    """Bans or mutes of one room: by name, by address, by network."""

    __slots__ = ("names", "addresses", "networks")

    def __init__(self) -> None:
        self.names: dict[str, Ban] = {}
        self.addresses: dict[str, Ban] = {}
        self.networks: dict[str, tuple[Network, Ban]] = {}

    def __len__(self) -> int:
        return len(self.names) + len(self.addresses) + len(self.networks)

    def get(self, target: str) -> Ban | None:
        kind = target_kind(target)
        if kind == "name":
            return self.names.get(target)
        if kind == "address":
            return self.addresses.get(target)
        found = self.networks.get(target)
        return found[1] if found is not None else None

    def add(self, ban: Ban) -> None:
        self.remove(ban.target)
        kind = target_kind(ban.target)
        if kind == "name":
            self.names[ban.target] = ban
        elif kind == "address":
            self.addresses[ban.target] = ban
        else:
            self.networks[ban.target] = (ipaddress.ip_network(ban.target), ban)

    def remove(self, target: str) -> Ban | None:
        ban = self.names.pop(target, None) or self.addresses.pop(target, None)
        if ban is None:
            found = self.networks.pop(target, None)
            ban = found[1] if found is not None else None
        return ban

    def match(self, key: str, address: Callable[[], str]) -> Ban | None:
        """The entry matching the name C{key} or the address C{address()} (asked only if needed)."""
        ban = self.names.get(key) if self.names else None
        if ban is not None or not (self.addresses or self.networks):
            return ban
        where = address()
        if not where:
            return None
        ban = self.addresses.get(where)
        if ban is not None or not self.networks:
            return ban
        try:
            ip = ipaddress.ip_address(where)
        except ValueError:
            return None
        for network, entry in self.networks.values():
            if ip.version == network.version and ip in network:
                return entry
        return None

    def entries(self) -> list[Ban]:
        found = [*self.names.values(), *self.addresses.values(),
                 *(ban for _, ban in self.networks.values())]
        found.sort(key=lambda ban: ban.when)
        return found


class RoomState:
    """
    One room's moderation (or the server's, room C{None}).

    @ivar owner: the owner's account name (casefolded), C{None}: unclaimed.
    @ivar ops: the ops' account names (casefolded), besides the owner.
    """

    __slots__ = ("owner", "ops", "topic", "bans", "mutes")

    def __init__(self) -> None:
        self.owner: str | None = None
        self.ops: set[str] = set()
        self.topic: Topic | None = None
        self.bans = _Table()
        self.mutes = _Table()

    def empty(self) -> bool:
        """Whether nothing is kept (the state may go)."""
        return (self.owner is None and not self.ops and self.topic is None
                and not self.bans and not self.mutes)


class Transient:
    """
    A room's IRC-style state, kept in memory, never stored, gone when the
    room empties: an unclaimed room's ops (C{--founder-ops}) and whether
    its topic is for ops only (C{+t}); any room's voiced members (C{+v}:
    heard in spite of a room mute).  Members by identity: a rename keeps them.
    """

    __slots__ = ("ops", "locked", "voiced")

    def __init__(self) -> None:
        self.ops: set[Member] = set()
        self.locked = False
        self.voiced: set[Member] = set()


class Moderation:
    """
    The moderation state of a server (one per L{ChatServer}:
    C{server.moderation}).

    @ivar mute_count: how many mutes there are (room and server-wide); the
        say path checks nothing while it is 0.
    @ivar ban_count: the same for bans.
    @ivar away: away texts by member key (not moderation state: presence,
        never stored; the server keeps it here beside whois).
    @ivar transient: unclaimed rooms' ops and topic locks (L{Transient}) by
        room key (C{--founder-ops}; presence, never stored).
    @ivar expired: called with each C{unban}/C{unmute} change an expiry
        applied (the server announces it).
    @ivar shared: called with each change L{make} applied and its
        version (a cluster publishes them to the other processes, which
        L{merge} it: never published again); C{None} on a single process.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store: ModerationStore | None = None) -> None:
        self._clock = clock
        self._store = store
        self._rooms: dict[str | None, RoomState] = {}
        # (until, kind, room, target); room "" for server-wide (never a room's
        # name): heap entries with the same until and kind compare their rooms
        self._expiries: list[tuple[float, str, str, str]] = []
        self._timer: IDelayedCall | None = None
        self.mute_count = 0
        self.ban_count = 0
        self.away: dict[str, str] = {}
        self.transient: dict[str, Transient] = {}
        self.expired: Callable[[Change], object] = lambda change: None
        self.shared: Callable[[Change, Version | None], object] | None = None
        # the version of the last change of each item (also of lifted ones)
        self._versions: dict[tuple[str, str | None, str], Version] = {}

    def load(self) -> None:
        """
        Rebuild the state from the store (once, at start: the server's
        service calls it after twistd forked); expiries past are lifted
        at the next reactor turn.
        """
        if self._store is None:
            return
        for change in self._store.load():
            self._update(change)
            item = item_of(change)
            if item is not None:
                self._versions[item] = (change.when, change.by)
        self._schedule()

    # -- queries (no side effects) ------------------------------------------------

    def state(self, room_key: str | None) -> RoomState | None:
        """The state of the room C{room_key} (C{None}: the server's), if any."""
        return self._rooms.get(room_key)

    def rooms(self) -> Iterable[str | None]:
        """The keys of every room with moderation state (C{None}: the server's)."""
        return list(self._rooms)

    def topic(self, room_key: str) -> Topic | None:
        """The room's topic, or C{None}."""
        state = self._rooms.get(room_key)
        return state.topic if state is not None else None

    def owner(self, room_key: str) -> str | None:
        """The casefolded account name of the room's owner; C{None}: unclaimed."""
        state = self._rooms.get(room_key)
        return state.owner if state is not None else None

    def claimed(self, room_key: str) -> bool:
        return self.owner(room_key) is not None

    def is_owner(self, member: Member, room_key: str) -> bool:
        owner = self.owner(room_key)
        return owner is not None and owner == account_key(member)

    def is_op(self, member: Member, room_key: str) -> bool:
        """Whether C{member} is an op in the room: its owner, one of its ops, or an operator."""
        if is_operator(member):
            return True
        state = self._rooms.get(room_key)
        if state is None or state.owner is None:
            transient = self.transient.get(room_key) if self.transient else None
            return transient is not None and member in transient.ops
        key = account_key(member)
        return key is not None and (key == state.owner or key in state.ops)

    def topic_locked(self, room_key: str) -> bool:
        """Whether only the room's ops set its topic (IRC C{+t}): claimed, or locked."""
        if self.claimed(room_key):
            return True
        transient = self.transient.get(room_key) if self.transient else None
        return transient is not None and transient.locked

    # -- unclaimed rooms' transient ops and topic lock (not stored) ---------------

    def founded(self, room_key: str, member: Member) -> None:
        """C{member} created the room: its op until the room empties (C{--founder-ops})."""
        self.transient.setdefault(room_key, Transient()).ops.add(member)

    def set_transient_op(self, room_key: str, member: Member, op: bool) -> bool:
        """Make C{member} an op of the unclaimed room (or not); whether it changed."""
        return self._set_transient(room_key, "ops", member, op)

    def _set_transient(self, room_key: str, which: str, member: Member, on: bool) -> bool:
        """Put C{member} in (or take it out of) the room's C{which} set; whether it changed."""
        transient = self.transient.get(room_key)
        if transient is None:
            if not on:
                return False
            transient = self.transient[room_key] = Transient()
        members: set[Member] = getattr(transient, which)
        if (member in members) == on:
            return False
        if on:
            members.add(member)
        else:
            members.discard(member)
        return True

    def set_topic_lock(self, room_key: str, locked: bool) -> bool:
        """Lock (C{+t}) or unlock an unclaimed room's topic; whether it changed."""
        transient = self.transient.get(room_key)
        if transient is None:
            if not locked:
                return False
            transient = self.transient[room_key] = Transient()
        if transient.locked == locked:
            return False
        transient.locked = locked
        return True

    def is_voiced(self, member: Member, room_key: str) -> bool:
        """Whether C{member} has a voice in the room (IRC C{+v}: a room mute spares it)."""
        transient = self.transient.get(room_key) if self.transient else None
        return transient is not None and member in transient.voiced

    def set_voice(self, room_key: str, member: Member, voiced: bool) -> bool:
        """Give C{member} a voice in the room (or take it); whether it changed."""
        return self._set_transient(room_key, "voiced", member, voiced)

    def departed(self, room_key: str, member: Member, emptied: bool) -> None:
        """C{member} left the room (C{emptied}: it was the last): it is no op of it now."""
        transient = self.transient.get(room_key)
        if transient is None:
            return
        if emptied:
            del self.transient[room_key]
        else:
            transient.ops.discard(member)
            transient.voiced.discard(member)

    def ops(self, room_key: str) -> list[str]:
        """The room's ops (account names, casefolded), the owner first."""
        state = self._rooms.get(room_key)
        if state is None or state.owner is None:
            return []
        return [state.owner] + sorted(state.ops - {state.owner})

    def bans(self, room_key: str | None) -> list[Ban]:
        """The room's bans (C{None}: the server-wide ones), oldest first."""
        state = self._rooms.get(room_key)
        return state.bans.entries() if state is not None else []

    def mutes(self, room_key: str | None) -> list[Ban]:
        """The room's mutes (C{None}: the server-wide ones), oldest first."""
        state = self._rooms.get(room_key)
        return state.mutes.entries() if state is not None else []

    def banned(self, member: Member, room_key: str) -> Ban | None:
        """
        The ban keeping C{member} out of the room, if any (operators are
        never banned from rooms, nor an owner from its own).
        """
        if not self.ban_count:
            return None
        state = self._rooms.get(room_key)
        if state is None or not state.bans or is_operator(member):
            return None
        ban = state.bans.match(member.key, lambda: address_of(member))
        if ban is not None and state.owner is not None and account_key(member) == state.owner:
            return None
        return ban

    def server_ban(self, name: str | None, address: str) -> Ban | None:
        """The server-wide ban on the name C{name} (C{None}: any) or the address, if any."""
        state = self._rooms.get(None)
        if state is None or not state.bans:
            return None
        try:
            address = str(_plain(ipaddress.ip_address(address)))
        except ValueError:
            pass
        return state.bans.match(name.lower() if name else "", lambda: address)

    def muted(self, member: Member, room_key: str | None) -> Ban | None:
        """
        The mute silencing C{member} in the room (room or server-wide; a
        C{room_key} of C{None}: server-wide only), if any.  Operators are
        never muted; room ops are not in their rooms.
        """
        if not self.mute_count:
            return None
        rooms = self._rooms
        address = _Address(member)
        server = rooms.get(None)
        if server is not None and server.mutes:
            found = server.mutes.match(member.key, address)
            if found is not None:
                return None if is_operator(member) else found
        if room_key is None:
            return None
        state = rooms.get(room_key)
        if state is None or not state.mutes:
            return None
        found = state.mutes.match(member.key, address)
        if found is None or self.is_op(member, room_key) or self.is_voiced(member, room_key):
            return None
        return found

    def is_muted(self, member: Member, room_key: str) -> bool:
        return self.muted(member, room_key) is not None

    def snapshot(self) -> list[Change]:
        """
        Changes that rebuild the whole state (claims, ops, topics, bans,
        mutes), as a process of a cluster sends a newcomer.
        """
        changes = []
        for key, state in self._rooms.items():
            if state.owner is not None:
                changes.append(Change("claim", key, state.owner))
            changes += [Change("op", key, account) for account in sorted(state.ops)]
            topic = state.topic
            if topic is not None:
                changes.append(Change("topic", key, "", topic.by, None, topic.text, topic.when))
            for kind, table in (("ban", state.bans), ("mute", state.mutes)):
                changes += [Change(kind, key, ban.target, ban.by, ban.until, ban.reason, ban.when)
                            for ban in table.entries()]
        return changes

    def holds(self, change: Change) -> bool:
        """Whether the state holds C{change} already (a claim, op, topic, ban or mute)."""
        state = self._rooms.get(change.room)
        if state is None:
            return False
        kind = change.kind
        if kind == "claim":
            return state.owner == change.target.casefold()
        if kind == "op":
            return change.target.casefold() in state.ops
        if kind == "topic":
            topic = state.topic
            return topic is not None and (topic.text, topic.by, topic.when) == (
                change.reason, change.by, change.when)
        if kind in ("ban", "mute"):
            entry = (state.bans if kind == "ban" else state.mutes).get(change.target)
            return entry is not None and (entry.by, entry.until, entry.reason, entry.when) == (
                change.by, change.until, change.reason, change.when)
        return False

    def modlog(self, limit: int = 100) -> list[Change]:
        """The last C{limit} logged changes (from the store; none without one)."""
        return self._store.modlog(limit) if self._store is not None else []

    # -- the one entry point that changes anything -------------------------------

    def apply(self, change: Change) -> None:
        """
        Apply C{change}: update the tables, keep it in the store (state and
        log), log it, and reschedule the expiry timer.
        """
        if change.kind not in STATE_KINDS and change.kind not in LOGGED_KINDS:
            raise ValueError("unknown moderation change %r" % (change.kind,))
        self._update(change)
        if self._store is not None:
            self._store.record(change)
        if change.kind != "forget":
            self.log.info(
                "moderation: {by} {kind}{target}{where}{until}{reason}",
                by=change.by or "(expiry)", kind=change.kind,
                target=" " + change.target if change.target else "",
                where=" in #%s" % change.room if change.room else " (server-wide)",
                until=" for %s" % format_duration(change.until - change.when)
                if change.until is not None else "",
                reason=": %s" % change.reason if change.reason else "")
        if change.until is not None:
            self._schedule()

    def make(self, change: Change) -> None:
        """
        Apply C{change}, made on this process by one of its users (not an
        expiry, not a change received from another process), and hand it
        to L{shared}.
        """
        item = item_of(change) if self.shared is not None else None
        version = None
        if item is not None:  # (kept in a cluster only)
            # later than the last change of the item this process saw, even
            # if another machine's clock runs ahead of this one's
            previous = self._versions.get(item)
            when = change.when
            if previous is not None and when <= previous[0]:
                when = previous[0] + 0.001
            version = self._versions[item] = (when, change.by)
            self._forget_versions()
        self.apply(change)
        if self.shared is not None:
            self.shared(change, version)

    def merge(self, change: Change, version: Version | None = None) -> bool:
        """
        Apply C{change}, made on another process of a cluster with
        C{version} (default: its C{when} and C{by}), unless this process
        holds a later change of the same item (last writer wins: two
        processes that changed the same ban while apart end up agreeing).
        Returns whether it was applied.
        """
        item = item_of(change)
        if item is not None:
            if version is None:
                version = (change.when, change.by)
            previous = self._versions.get(item)
            if previous is not None and previous >= version:
                return False
            self._versions[item] = version
            self._forget_versions()
        self.apply(change)
        return True

    def version(self, change: Change) -> Version:
        """The version of the item C{change} sets, as this process holds it."""
        item = item_of(change)
        found = self._versions.get(item) if item is not None else None
        return found if found is not None else (change.when, change.by)

    def _forget_versions(self) -> None:
        """Past L{VERSIONS_KEPT}, versions older than L{VERSION_AGE} go."""
        if len(self._versions) > VERSIONS_KEPT:
            old = self._clock.seconds() - VERSION_AGE
            self._versions = {item: v for item, v in self._versions.items() if v[0] >= old}

    def _update(self, change: Change) -> None:
        kind, room = change.kind, change.room
        if kind in LOGGED_KINDS:
            return
        state = self._rooms.get(room)
        if state is None:
            if kind in ("unclaim", "deop", "unban", "unmute", "forget"):
                return
            if kind == "topic" and not change.reason:
                return
            state = self._rooms[room] = RoomState()
        if kind == "claim":
            state.owner = change.target.casefold()
        elif kind == "unclaim":
            state.owner = None
            state.ops.clear()
        elif kind == "op":
            state.ops.add(change.target.casefold())
        elif kind == "deop":
            state.ops.discard(change.target.casefold())
        elif kind == "topic":
            state.topic = Topic(room or "", change.reason, change.by, change.when) \
                if change.reason else None
        elif kind in ("ban", "mute"):
            table = state.bans if kind == "ban" else state.mutes
            had = table.get(change.target) is not None
            table.add(Ban(change.target, room, change.by, change.when, change.until,
                          change.reason))
            if not had:
                self._count(kind, 1)
            if change.until is not None:
                heapq.heappush(self._expiries, (change.until, kind, room or "", change.target))
        elif kind in ("unban", "unmute"):
            table = state.bans if kind == "unban" else state.mutes
            if table.remove(change.target) is not None:
                self._count(kind[2:], -1)
        elif kind == "forget" and state.owner is None:
            state.topic = None
        if state.empty():
            del self._rooms[room]

    def _count(self, kind: str, step: int) -> None:
        if kind == "ban":
            self.ban_count += step
        else:
            self.mute_count += step

    # -- expiry: one timer for the earliest -------------------------------------

    def _schedule(self) -> None:
        """(Re)arm the one timer for the earliest expiry, if any."""
        expiries = self._expiries
        if len(expiries) > 64 + 2 * (self.ban_count + self.mute_count):
            self._prune()
            expiries = self._expiries
        if not expiries:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            return
        due = expiries[0][0]
        timer = self._timer
        if timer is not None and timer.active():
            if timer.getTime() <= due:
                return
            timer.cancel()
        self._timer = self._clock.callLater(max(0.0, due - self._clock.seconds()), self._expire)

    def _prune(self) -> None:
        """Drop the heap's stale entries (lifted or replaced before their time)."""
        live = []
        seen = set()
        for until, kind, room, target in self._expiries:
            state = self._rooms.get(room or None)
            entry = None if state is None else \
                (state.bans if kind == "ban" else state.mutes).get(target)
            if entry is not None and entry.until == until and (kind, room, target) not in seen:
                seen.add((kind, room, target))
                live.append((until, kind, room, target))
        heapq.heapify(live)
        self._expiries = live

    def _expire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            until, kind, key, target = heapq.heappop(expiries)
            room = key or None
            state = self._rooms.get(room)
            if state is None:
                continue
            entry = (state.bans if kind == "ban" else state.mutes).get(target)
            if entry is None or entry.until != until:
                continue  # lifted or replaced meanwhile: a stale heap entry
            change = Change("un" + kind, room, target, "", None, "expired", now)
            self.apply(change)
            try:
                self.expired(change)
            except Exception:
                self.log.failure("announcing an expiry failed")
        self._schedule()

    def stop(self) -> None:
        """Cancel the timer and close the store (the server is stopping)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._store is not None:
            self._store.close()


class _Address:
    """A member's address, worked out once and only when a table holds addresses."""

    __slots__ = ("_member", "_address")

    def __init__(self, member: Member) -> None:
        self._member = member
        self._address: str | None = None

    def __call__(self) -> str:
        if self._address is None:
            self._address = address_of(self._member)
        return self._address
