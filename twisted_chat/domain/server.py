"""
The chat domain: members, rooms and what they say.  It returns values or
raises L{ChatError}; it never sees bytes or sockets.  Every fan-out goes
through a L{Bus} and every question about who is online through a
L{Directory}, so a backplane for several processes plugs in there; history
reads are Deferreds, so a store may answer later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from itertools import islice
from operator import attrgetter
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.commands import HELP, MAX_HISTORY, SEARCH_LIMIT
from twisted_chat.domain.bus import Bus, LocalBus
from twisted_chat.domain.directory import Directory, LocalDirectory
from twisted_chat.domain.events import (
    Away,
    Ban,
    Bans,
    Entry,
    Error,
    Event,
    Help,
    Info,
    Joined,
    Message,
    Notice,
    Private,
    Rooms,
    Search,
    Shutdown,
    TimeZone,
    Topic,
    Users,
    Whois,
)
from twisted_chat.domain.events import (
    History as HistoryEvent,
)
from twisted_chat.domain.moderation import (
    REASON_MAX,
    TOPIC_MAX,
    Change,
    Moderation,
    Version,
    account_key,
    address_of,
    format_duration,
    is_operator,
    parse_target,
    target_kind,
    target_matches,
)
from twisted_chat.errors import (
    BannedFromRoom,
    BannedFromServer,
    ChatError,
    Muted,
    NameTaken,
    NeedAccount,
    NoSuchTarget,
    NotInRoom,
    NotOp,
    NotOperator,
    Protected,
)
from twisted_chat.fired import result_now
from twisted_chat.interfaces import History, Participant
from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.text import clean, clock_stamp, room_key, utc_offset

LOBBY = "lobby"
# The user list shown on joining a room is cut here; /users shows everyone.
JOIN_LIST_LIMIT = 100
# A room of more than BIG_ROOM members hears its joins, leaves and quits
# summarised: gathered for SUMMARY_EVERY seconds, then one notice per kind
# ("alice, bob, carol and 37 others joined #big") naming SUMMARY_NAMES of
# them (the notice's users name all, for IRC's JOIN lines).  One by one,
# 10,000 joining would be 50 million notices.
BIG_ROOM = 200
SUMMARY_EVERY = 1.0
SUMMARY_NAMES = 3
# A search runs on the reactor (up to history.SEARCH_BUDGET, 0.25 s), so
# each member may search SEARCH_RATE times a second, SEARCH_BURST in a row ...
SEARCH_RATE = 0.5
SEARCH_BURST = 3
# ... and all searches together may take SEARCH_SHARE of the server's time
# (seconds of searching a second), with SEARCH_SHARE_BURST seconds in hand.
SEARCH_SHARE = 0.25
SEARCH_SHARE_BURST = 0.5

# What makes a bus or a directory for a server's tables (the classes
# LocalBus and LocalDirectory are such factories): a backplane's bus wraps
# a LocalBus of the same tables to deliver what other processes publish.
BusFactory = Callable[[Mapping[str, "Room"], Mapping[str, "Member"]], Bus]
DirectoryFactory = Callable[
    [Mapping[str, "Room"], MutableMapping[str, "Member"], str], Directory]


def in_time(entries: list[Entry]) -> list[Entry]:
    """
    C{entries} (kept in the order they arrived) in the order they were
    said: a cluster stores what another process said during a Redis outage
    when it arrives, with its original time.  Already in order (nearly
    always): the same list, after one pass.
    """
    previous = 0.0
    for entry in entries:
        if entry.when < previous:
            return sorted(entries, key=attrgetter("when"))
        previous = entry.when
    return entries


def departure(why: str) -> str:
    """
    The metrics' reason (a fixed word) for a member leaving with C{why}
    (C{quit}, C{quit (bye)}, C{timed out (idle)}, C{disconnected}).
    """
    if why == "quit" or why.startswith("quit ("):
        return "quit"
    if why.startswith("timed out"):
        return "idle_timeout"
    return "closed"


def _reads_at_once(history: History) -> Callable[[str, int], list[Entry]] | None:
    """
    C{history}'s C{recent_now} (the answer its C{recent} wraps in a fired
    Deferred: the stores in memory and in SQLite), if the class that
    defines C{recent} defines it too; else C{None} (read through
    C{recent}, which may answer later).
    """
    now = getattr(history, "recent_now", None)
    if now is None:
        return None
    mro = type(history).__mro__
    recent_from = next((c for c in mro if "recent" in c.__dict__), None)
    now_from = next((c for c in mro if "recent_now" in c.__dict__), None)
    return cast(Callable[[str, int], list[Entry]], now) if recent_from is now_from else None


class Member:
    """
    A logged-in user: a unique name, the rooms it is in, one participant.

    @ivar rooms: the rooms it is in, in join order.
    @ivar room: its current room (the one room of telnet and browser
        sessions, where their lines go), one of L{rooms}; C{None} in none.
    @ivar since: when it logged in, to the second (C{/whois}; the one slot
        moderation added: 16 bytes a member, the int shared by everyone
        logging in within the same second).
    """

    __slots__ = ("name", "key", "room", "rooms", "participant", "since")

    def __init__(self, participant: Participant, name: str = "", key: str = "") -> None:
        self.name = name
        self.key = key
        self.since = 0.0
        self.room: Room | None = None
        # A tuple, not a dict: most members are in one room, and an idle
        # connection's bytes count (a dict is 224 bytes; one room's members
        # share its Room.alone tuple).
        self.rooms: tuple[Room, ...] = ()
        self.participant = participant

    def __repr__(self) -> str:
        return "<Member %s>" % (self.name,)


class Room:
    """
    A named set of this process's members (the bus delivers to them).

    @ivar alone: C{(self,)}, shared as the L{Member.rooms} of every member
        in this room only (most members): an idle member then costs no
        tuple of its own.
    """

    __slots__ = ("name", "members", "alone")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[Member, None] = {}
        self.alone: tuple[Room, ...] = (self,)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return "<Room #%s (%d)>" % (self.name, len(self.members))


class SearchGate:
    """
    Who may search now: a token bucket per member (L{SEARCH_RATE},
    L{SEARCH_BURST}) and a budget for the whole server: searching time is
    owed and paid back at L{SEARCH_SHARE} seconds a second; while more than
    L{SEARCH_SHARE_BURST} is owed, every search is refused.  Four users
    searching as fast as they may then cost the others at most a quarter of
    the reactor's time.
    """

    __slots__ = ("_buckets", "_clock", "_owed", "_stamp", "_timer")

    def __init__(self, clock: IReactorTime, timer: Callable[[], float]) -> None:
        """
        @param clock: the reactor's time, for the per-member buckets.
        @param timer: wall-clock time, to measure searches with (the reactor
            waits while one runs, so its own clock does not move).
        """
        self._clock = clock
        self._timer = timer
        self._buckets: dict[Member, TokenBucket] = {}
        self._owed = 0.0
        self._stamp = timer()

    def run(
        self, member: Member, search: Callable[[], Deferred[list[Entry]]]
    ) -> Deferred[list[Entry]]:
        """
        Run C{search} for C{member} if the allowances permit, counting the
        time it holds the reactor (a store that searches on a thread
        returns at once: only the per-member allowance then limits it).

        @raise ChatError: if the server or the member has searched too much lately.
        """
        now = self._timer()
        self._owed = max(0.0, self._owed - (now - self._stamp) * SEARCH_SHARE)
        self._stamp = now
        if self._owed > SEARCH_SHARE_BURST:
            raise ChatError("the server is busy searching; try again in a few seconds")
        bucket = self._buckets.get(member)
        if bucket is None:
            bucket = self._buckets[member] = TokenBucket(self._clock, SEARCH_RATE, SEARCH_BURST)
        if not bucket.take():
            raise ChatError("too many searches: at most %d in a row, then one every %g s"
                            % (SEARCH_BURST, 1 / SEARCH_RATE))
        try:
            return search()
        finally:
            self._owed += self._timer() - now

    def forget(self, member: Member) -> None:
        """C{member} is offline."""
        self._buckets.pop(member, None)


class ChatServer:
    """
    Everyone online and every room, shared by all front ends.

    @ivar members: this process's members by lower-cased name.
    @ivar rooms: this process's rooms by lower-cased name; a room other
        than the lobby exists while someone is in it.
    @ivar bus: how events reach members (L{LocalBus} by default).
    @ivar directory: who is online and where (L{LocalDirectory} by default).
    @ivar local_bus: the bus of this process's members only (the bus
        itself on a single process).
    """

    log = Logger()

    def __init__(
        self, history: History, clock: IReactorTime, replay: int = 20,
        timer: Callable[[], float] = time.monotonic,
        bus: BusFactory = LocalBus, directory: DirectoryFactory = LocalDirectory,
        observer: ChatObserver = NULL_OBSERVER, moderation: Moderation | None = None,
        founder_ops: bool = False,
    ) -> None:
        """
        @param history: where room messages are kept.
        @param clock: what time it is (C{[HH:MM:SS]} stamps).
        @param replay: how many messages to show on joining a room, and the
            default of C{/history}.
        @param timer: wall-clock time, to measure how long searches take.
        @param bus: makes the bus from this server's rooms and members.
        @param directory: makes the directory from this server's rooms,
            members and the lobby's name.
        @param observer: told what happens, for metrics (sessions, front
            ends and the bus reach it here too).
        @param moderation: the moderation state (default: a new one, in memory).
        @param founder_ops: the first member to join an empty unclaimed room
            is its op until the room empties (IRC's habit; C{--founder-ops}).
        """
        self.history = history
        self._recent_now = _reads_at_once(history)
        self.clock = clock
        self.searches = SearchGate(clock, timer)
        self.replay = replay
        self.members: dict[str, Member] = {}
        # IRC OPER: the operator account each such member proved (for the
        # moderation log); only operators have an entry, gone when they leave
        self._oper_accounts: dict[Member, str] = {}
        self.lobby = Room(LOBBY)
        self.rooms: dict[str, Room] = {LOBBY: self.lobby}
        self.observer = observer
        self.bus = bus(self.rooms, self.members)
        self.bus.observer = observer  # deliveries are counted where they happen
        # this process's members only (a cluster's bus has its LocalBus)
        self.local_bus: Bus = getattr(self.bus, "local", self.bus)
        self.directory = directory(self.rooms, self.members, LOBBY)
        self.moderation = moderation if moderation is not None else Moderation(clock)
        self.moderation.expired = self._expired
        self.founder_ops = founder_ops
        self._second = -1
        self._stamp = ""
        self._empty_waiters: list[Deferred[None]] = []
        self._stopping = False
        # big rooms' joins, leaves and quits waiting for their summary
        self._gathered: dict[str, dict[str, list[str]]] = {}
        self._summary_call: Any = None

    # -- time -------------------------------------------------------------

    def now(self) -> tuple[float, str]:
        """The time and its C{HH:MM:SS} stamp (formatted once a second)."""
        when = self.clock.seconds()
        second = int(when)
        if second != self._second:
            self._second = second
            self._stamp = clock_stamp(when)
        return when, self._stamp

    def notice(
        self, room: Room, text: str, user: str | None = None, change: str | None = None
    ) -> Notice:
        """A notice for C{room}, stamped now (about C{user}: see L{Notice})."""
        when, stamp = self.now()
        return Notice(room.name, text, when, stamp, user, change)

    # -- membership -------------------------------------------------------

    def claim(
        self, name: str, participant: Participant, member: Member | None = None
    ) -> Deferred[Member]:
        """
        Register C{member} (or a new member for C{participant}) as C{name}
        with the directory; it is in no room yet.  The local directory
        answers at once; a cluster's may answer later.

        @return: a Deferred firing with the member, or failing with a
            L{ChatError} if the name is bad or taken (case-insensitively).
        """
        if member is None:
            member = Member(participant)
        d = self.directory.claim(name, member)
        if result_now(d) is member:  # the local directory: answered at once
            self._claimed(member)
            return d
        d.addCallbacks(self._claimed, self._claim_refused)
        return d

    def _claimed(self, member: Member) -> Member:
        self.observer.login("ok")
        # the whole second, as now() keeps it: members logging in within
        # the same second share the one int (an idle member's bytes count)
        self.now()
        member.since = self._second
        return member

    def _claim_refused(self, failure: Failure) -> Failure:
        self.observer.login("name_taken" if failure.check(NameTaken) else "bad_name")
        return failure

    def remove(self, member: Member, why: str) -> None:
        """
        Take C{member} offline, telling each of its rooms C{why} (e.g.
        C{quit}); someone sharing several rooms with it is told once.
        Removing a member twice does nothing.
        """
        if self.members.get(member.key) is not member:
            return
        self.observer.disconnected("shutdown" if self._stopping else departure(why))
        self.directory.release(member)
        self.members.pop(member.key, None)  # a directory that keeps its own table
        self._oper_accounts.pop(member, None)
        self.searches.forget(member)
        if self.moderation.away:
            self.moderation.away.pop(member.key, None)
        rooms = list(member.rooms)
        if self.moderation.mute_count and why.startswith("quit (") and any(
                self.moderation.muted(member, room.name) is not None for room in rooms):
            why = "quit"  # a muted member's reason is not said (to any of its rooms)
        for room in rooms:
            self._leave_room(member, room)
        if rooms and not self._stopping:  # after the shutdown notice, departures are noise
            text = "%s %s" % (member.name, why)
            small = [room for room in rooms if not self._gather(room, member.name, "offline")]
            self.bus.publish_once(
                [(room.name, self.notice(room, text, member.name, "offline")) for room in small],
                exclude=member)
        member.room = None
        if not self.members and self._empty_waiters:
            waiters, self._empty_waiters = self._empty_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _leave_room(self, member: Member, room: Room) -> None:
        del room.members[member]
        rest = tuple(r for r in member.rooms if r is not room)
        member.rooms = rest[0].alone if len(rest) == 1 else rest
        if member.room is room:
            member.room = next(iter(member.rooms), None)
        self.directory.parted(member, room.name)
        if self.moderation.transient:
            self.moderation.departed(room.name, member, not room.members)
        if not room.members and room is not self.lobby:
            del self.rooms[room.name]
            state = self.moderation.state(room.name)
            if state is not None and state.owner is None and state.topic is not None \
                    and not self.directory.members(room.name):
                # an unclaimed room's topic goes with the room (in a cluster:
                # when nobody is left in it on any process)
                self.moderation.make(Change("forget", room.name, when=self.clock.seconds()))

    def _depart(self, member: Member, room: Room, reason: str = "") -> None:
        """C{member} leaves C{room}, which is told (with C{reason}, if any)."""
        self._leave_room(member, room)
        if self._gather(room, member.name, "left"):
            return
        text = "%s left #%s" % (member.name, room.name)
        if reason and not (self.moderation.mute_count
                           and self.moderation.muted(member, room.name) is not None):
            text += " (%s)" % reason  # (a muted member's reason is not said)
        self.bus.publish(room.name, self.notice(room, text, member.name, "left"))

    def _gather(self, room: Room, name: str, change: str) -> bool:
        """
        In a big room (over L{BIG_ROOM}), keep C{name}'s C{change} for the
        next summary (L{SUMMARY_EVERY}) and return C{True}; else C{False}:
        the caller tells the room now.
        """
        if len(room.members) <= BIG_ROOM:
            return False
        self._gathered.setdefault(room.name, {}).setdefault(change, []).append(name)
        if self._summary_call is None:
            self._summary_call = self.clock.callLater(SUMMARY_EVERY, self._summarise)
        return True

    def _summarise(self) -> None:
        """Tell each big room who joined, left and went offline since the last summary."""
        self._summary_call = None
        gathered, self._gathered = self._gathered, {}
        if self._stopping:
            return
        verbs = {"joined": "joined #%s", "left": "left #%s", "offline": "went offline"}
        for key, changes in gathered.items():
            room = self.rooms.get(key)
            if room is None:
                continue
            for change, names in changes.items():
                shown = names[:SUMMARY_NAMES]
                if len(names) > SUMMARY_NAMES:
                    who = "%s and %d others" % (", ".join(shown), len(names) - SUMMARY_NAMES)
                elif len(names) > 1:
                    who = "%s and %s" % (", ".join(shown[:-1]), shown[-1])
                else:
                    who = shown[0]
                verb = verbs[change] % key if "%" in verbs[change] else verbs[change]
                when, stamp = self.now()
                self.bus.publish(key, Notice(key, "%s %s" % (who, verb), when, stamp,
                                             None, change, users=tuple(names)))

    def join(self, member: Member, name: str, move: bool = True) -> None:
        """
        Put C{member} in the room called C{name}, creating it if new.

        With C{move} (telnet and browser C{/join}) the member leaves its
        current room; without (an IRC C{JOIN}) it adds a room and keeps the
        others.  The old room sees the member leave, the new one sees it
        join, and the member is told who is there and what was said
        recently.  A member in no room yet has just logged in: it is told
        the server's time zone first, once.

        @raise ChatError: for a bad room name, or a room the member is in.
        """
        key = room_key(name)
        for room in member.rooms:
            if room.name == key:
                raise ChatError("you are already in #%s" % key)
        ban = self.moderation.banned(member, key)
        if ban is not None:
            raise BannedFromRoom("you are banned from #%s%s" % (key, self._left(ban)))
        first = member.room is None
        if move and member.room is not None:
            self._depart(member, member.room)
        self._enter(member, key, current=move, first=first)

    def _enter(self, member: Member, key: str, current: bool, first: bool) -> None:
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(key)
            self.log.info("room #{room} created by {name}", room=key, name=member.name)
            if self.founder_ops and key != LOBBY and not self.moderation.claimed(key):
                self.moderation.founded(key, member)
        if not self._gather(room, member.name, "joined"):
            self.bus.publish(key, self.notice(
                room, "%s joined #%s" % (member.name, key), member.name, "joined"))
        room.members[member] = None
        member.rooms = member.rooms + (room,) if member.rooms else room.alone
        if current or member.room is None:
            member.room = room
        self.directory.joined(member, key)
        send = member.participant.send
        if first:
            send(TimeZone(utc_offset(self.clock.seconds())))
        else:
            send(Joined(key))
        send(self._users_in(key, JOIN_LIST_LIMIT))
        topic = self.moderation.topic(key)
        if topic is not None:
            send(topic)
        self._replay(member, key, self.replay, replay=True)

    def part(self, member: Member, name: str, reason: str = "", to_lobby: bool = True) -> None:
        """
        C{member} leaves the room called C{name}; the room is told (with
        C{reason}).  With C{to_lobby} a member that would be in no room
        goes back to the lobby, like L{leave} (telnet and browser members
        always have a room); an IRC member may be in none.

        @raise ChatError: for a bad room name, a room the member is not in,
            or the lobby when it is the member's only room and C{to_lobby}.
        """
        key = room_key(name)
        room = self.rooms.get(key)
        if room is None or member not in room.members:
            raise NotInRoom("you are not in #%s" % key)
        if to_lobby and len(member.rooms) == 1:
            if room is self.lobby:
                raise ChatError("you are already in #%s (use /join <room> to move)" % LOBBY)
            self._depart(member, room, reason)
            self._enter(member, LOBBY, current=True, first=False)
            return
        self._depart(member, room, reason)

    def leave(self, member: Member) -> None:
        """
        Move C{member} back to the lobby.

        @raise ChatError: if it is in the lobby already.
        """
        if member.room is self.lobby:
            raise ChatError("you are already in #%s (use /join <room> to move)" % LOBBY)
        self.join(member, LOBBY)

    def _current(self, member: Member) -> Room:
        room = member.room
        if room is None:
            raise NotInRoom("you are in no room (/join <room> first)")
        return room

    # -- talking ----------------------------------------------------------

    def say(self, member: Member, text: str, action: bool = False, room: str | None = None) -> None:
        """
        C{member} says C{text} (or acts it, C{/me}) to its current room,
        or to C{room} (a room key), one of its rooms.

        @raise NotInRoom: if C{room} is not one of the member's rooms.
        """
        if room is None:
            where = member.room
            if where is None:
                raise NotInRoom("you are in no room (/join <room> first)")
        else:
            where = self.rooms.get(room)
            if where is None or member not in where.members:
                raise NotInRoom("you are not in #%s (/join #%s first)" % (room, room))
        if self.moderation.mute_count:  # nothing to check while nobody is muted
            self._check_muted(member, where.name)
        when, stamp = self.now()
        entry = Entry(where.name, member.name, text, when, action)
        self.observer.message("action" if action else "message")
        self.bus.publish(where.name, Message(entry, stamp), member)
        self.history.append(entry)

    def message(self, member: Member, target: str, text: str) -> None:
        """
        C{/msg target text}: a private message when C{target} is someone
        online, else a message to C{target} if it is one of the member's
        rooms.  A target written with C{#} is always a room.

        @raise ChatError: if there is no such user or room, or the member is
            not in that room.
        """
        if not target.startswith("#"):
            recipient = self.directory.find(target)
            if recipient is not None:
                self.private(member, recipient, text)
                return
        try:
            key = room_key(target)
        except ChatError:
            raise NoSuchTarget("nobody called %s is online" % target) from None
        room = self.rooms.get(key)
        if room is not None and member in room.members:
            self.say(member, text, room=key)
        elif key in self.rooms:
            raise NotInRoom("you are not in #%s (/join #%s first)" % (key, key))
        elif target.startswith("#"):
            raise NoSuchTarget("there is no room #%s" % key)
        else:
            raise NoSuchTarget(
                "nobody called %s is online and there is no room #%s" % (target, key))

    def private(self, member: Member, recipient: Member, text: str) -> None:
        """Send C{text} to C{recipient} alone; the sender gets a confirmation."""
        if recipient is member:
            raise ChatError("that is you; /msg someone else")
        if self.moderation.mute_count:
            self._check_muted(member, None)
        when, stamp = self.now()
        if not self.bus.private(
                recipient.key, Private(member.name, recipient.name, text, when, stamp)):
            raise NoSuchTarget("nobody called %s is online" % recipient.name)
        self.observer.message("private")
        member.participant.send(
            Private(member.name, recipient.name, text, when, stamp, outgoing=True)
        )
        away = self.moderation.away
        if away:
            note = away.get(recipient.key)
            if note is not None:
                member.participant.send(Away(recipient.name, note))

    # -- looking around ---------------------------------------------------

    def _users_in(self, key: str, limit: int | None = None) -> Users:
        room = self.rooms.get(key)
        if limit is not None and room is not None and len(room.members) > BIG_ROOM:
            # a big room's join list: its first members, not a sort of all
            # of them per join (10,000 joining would sort 50 million names)
            first = sorted((m.name for m in islice(room.members, limit)), key=str.lower)
            return Users(key, [(name, key) for name in first], len(room.members))
        names = self.directory.members(key)
        shown = names if limit is None else names[:limit]
        return Users(key, [(name, key) for name in shown], len(names))

    def users(self, member: Member, everyone: bool) -> None:
        """Tell C{member} who is in its room, or (C{everyone}) online and where."""
        if not everyone:
            member.participant.send(self._users_in(self._current(member).name))
            return
        people = self.directory.everyone()
        member.participant.send(Users(
            None, [(name, rooms[0] if rooms else "") for name, rooms in people], len(people),
            rooms=[tuple(rooms) for _, rooms in people]))

    def room_list(self, member: Member) -> None:
        """Tell C{member} every room with its member count, lobby first."""
        member.participant.send(Rooms(self.listed_rooms()))

    def listed_rooms(self) -> list[tuple[str, int]]:
        """
        Every room with its member count, lobby first, then by name: those
        with members and the claimed ones left empty (SPEC 8: a claimed room
        persists when empty), with 0.
        """
        rooms = self.directory.rooms()
        moderation = self.moderation
        present = {name for name, _ in rooms}
        empty = [(key, 0) for key in moderation.rooms()
                 if key is not None and key not in present and moderation.claimed(key)]
        if empty:
            rooms += empty
            rooms.sort(key=lambda pair: (pair[0] != LOBBY, pair[0]))
        return rooms

    def recall(self, member: Member, count: int) -> None:
        """Tell C{member} the last C{count} (0: the default) messages of its room."""
        count = min(count or self.replay, MAX_HISTORY)
        self._replay(member, self._current(member).name, count, replay=False)

    def _replay(self, member: Member, key: str, count: int, replay: bool) -> None:
        """Tell C{member} the last C{count} messages of the room C{key} once read."""
        recent_now = self._recent_now
        if recent_now is not None:  # a store that answers at once: no Deferred per join
            try:
                entries = recent_now(key, count)
            except Exception:
                self._read_failed(Failure(), member, "history")
                return
            self._tell(member, HistoryEvent(key, in_time(entries), replay))
            return
        d = self.history.recent(key, count)
        d.addCallback(
            lambda entries: self._tell(member, HistoryEvent(key, in_time(entries), replay)))
        d.addErrback(self._read_failed, member, "history")

    def search(self, member: Member, words: str) -> None:
        """
        Tell C{member} the newest L{SEARCH_LIMIT} messages of its room that
        hold every one of C{words}, if L{SearchGate} lets it search now.  A
        store that cannot search answers with an error event.

        @raise ChatError: if the member or the server has searched too much lately.
        """
        room = self._current(member).name
        d = self.searches.run(member, lambda: self.history.search(room, words, SEARCH_LIMIT))

        def found(entries: Sequence[Entry]) -> None:
            complete = getattr(entries, "complete", True)
            self._tell(member, Search(room, words, entries, complete))

        d.addCallback(found)
        d.addErrback(self._read_failed, member, "search")

    def _tell(self, member: Member, event: Event) -> None:
        """Send C{event} to C{member} if it is still online (a read may answer late)."""
        if self.members.get(member.key) is member:
            member.participant.send(event)

    def _read_failed(self, failure: Failure, member: Member, what: str) -> None:
        """A history read failed: one error event for C{member}, a log line for a fault."""
        if failure.check(ChatError):
            text = str(failure.value)
        else:
            self.log.failure("reading {what} for {name} failed", failure,
                             what=what, name=member.name)
            text = "the server could not read the %s; try again later" % what
        self._tell(member, Error(text))

    def help(self, member: Member) -> None:
        """Tell C{member} every command."""
        member.participant.send(Help(HELP))

    # -- moderation (SPEC 8) ------------------------------------------------

    def _check_muted(self, member: Member, room_key: str | None) -> None:
        """@raise Muted: if C{member} may not speak in the room (C{None}: privately)."""
        mute = self.moderation.muted(member, room_key)
        if mute is None:
            return
        if mute.room is None:
            raise Muted("you are muted on this server%s" % self._left(mute))
        # SPEC 8's exact line (how long is said when the mute is announced)
        raise Muted("you are muted in #%s" % mute.room)

    def _left(self, ban: Ban) -> str:
        """C{" (for 9m more)"} for a timed ban or mute, C{""} for one until lifted."""
        if ban.until is None:
            return ""
        return " (for %s more)" % format_duration(ban.until - self.clock.seconds())

    def _for(self, until: float | None, when: float) -> str:
        return " for %s" % format_duration(until - when) if until is not None else ""

    def _announce(
        self, member: Member | None, key: str, text: str, change: str,
        user: str | None = None, detail: str | None = None, actor: str | None = None,
        here_only: bool = False,
    ) -> None:
        """
        Tell the room C{key} what C{member} (C{None}: the server, or the
        C{actor} of another process) did; the actor, if not in the room, is
        told too.  C{here_only}: this process's members only (what every
        process of a cluster announces for itself, as an expiry).
        """
        when, stamp = self.now()
        notice = Notice(key, text, when, stamp, user, change,
                        member.name if member is not None else actor, detail)
        if here_only:
            self.local_bus.publish(key, notice)
        else:
            self.bus.publish(key, notice)
        if member is not None:
            room = self.rooms.get(key)
            if room is None or member not in room.members:
                member.participant.send(Info(text))

    def opered(self, member: Member, account: str) -> None:
        """C{member} became an operator by proving the account C{account} (IRC OPER)."""
        self._oper_accounts[member] = account

    def actor_name(self, member: Member) -> str:
        """
        Who did a moderation action, for its log: the account C{member} is
        logged in to (an IRC nick can differ from it and change), else the
        operator account it proved with IRC OPER, else its name.
        """
        account = getattr(member, "account", None)
        if account is not None:
            return str(account.name)
        return self._oper_accounts.get(member, member.name)

    def _apply(self, kind: str, room: str | None, target: str, member: Member,
               until: float | None = None, reason: str = "") -> float:
        """Apply one change by C{member} now; returns when."""
        when = self.clock.seconds()
        by = self.actor_name(member)
        self.moderation.make(Change(kind, room, target, by, until, reason, when))
        return when

    def _expired(self, change: Change) -> None:
        """
        A timed ban or mute lifted itself: its room (if here) is told.  In
        a cluster every process lifts it at the same time (the same
        C{until}) and tells its own members only, so each is told once.
        """
        if change.room is None or change.room not in self.rooms:
            return
        what = "ban" if change.kind == "unban" else "mute"
        self._announce(None, change.room, "the %s on %s in #%s expired"
                       % (what, change.target, change.room),
                       change.kind + "ned" if what == "ban" else change.kind + "d",
                       detail=change.target, here_only=True)

    def applied_elsewhere(self, change: Change, live: bool = True,
                          version: Version | None = None) -> None:
        """
        A moderation change made on another process of a cluster: the same
        state here (kept in this process's store and log, never published
        again), and, if C{live} (not read while catching up on start-up),
        its effects on this process's members: those a ban matches leave
        the room (announced here), a gban closes their sessions, a kick or
        a kill of one of them, a wall told to them.  The announcement of
        the change itself came through the bus from the process that made it.
        A change older (its C{version}) than this process's last of the
        same item is dropped (L{Moderation.merge}).
        """
        kind, key = change.kind, change.room
        if kind == "forget" and key is not None and (
                key in self.rooms or self.directory.members(key)):
            return  # someone is in it still (here, or joined meanwhile elsewhere)
        if not self.moderation.merge(change, version) or not live:
            return
        if kind == "ban":
            if key is None:
                self._close_banned(change.until, change.reason)
            else:
                self._kick_banned(None, key, change.by)
        elif kind == "kick" and key is not None:
            target = self.members.get(change.target.lower())
            room = self.rooms.get(key)
            if target is not None and room is not None and target in room.members:
                self._leave_room(target, room)
                if target.room is None and not getattr(target.participant, "multi_room",
                                                       False):
                    self._enter(target, LOBBY, current=True, first=False)
        elif kind == "kill":
            target = self.members.get(change.target.lower())
            if target is not None:
                self._killed(target, change.by, change.reason)
        elif kind == "wall":
            self._wall(change.by, change.reason)

    def _need_op(self, member: Member, key: str) -> None:
        if not self.moderation.is_op(member, key):
            raise NotOp("you are not an op in #%s" % key)

    def _need_operator(self, member: Member, what: str) -> None:
        if not is_operator(member):
            raise NotOperator("/%s is for server operators only" % what)

    def _protect(self, member: Member, key: str, name: str, verb: str) -> None:
        """
        @raise Protected: if a room op (not an operator) would C{verb} a
            server operator online as C{name}, or the room's owner.
        """
        if is_operator(member):
            return
        target = self.directory.find(name)
        if target is not None and is_operator(target):
            raise Protected("%s is a server operator: you cannot %s them" % (target.name, verb))
        owner = self.moderation.owner(key)
        if owner is not None and not self.moderation.is_owner(member, key) and (
                name.casefold() == owner
                or (target is not None and account_key(target) == owner)):
            raise Protected("%s owns #%s: you cannot %s them" % (name, key, verb))

    def _not_self(self, member: Member, target: str) -> None:
        if target_matches(target, member):
            raise ChatError("that is you (your name or address)")

    def topic(self, member: Member, room: str, text: str | None) -> None:
        """
        C{/topic}: without C{text}, tell C{member} the room's topic (a
        L{Topic} event, C{text} C{""} if none); with it, set it (C{""}
        clears).  An unclaimed room's topic is anyone's in it; a claimed
        room's is for its ops.

        @raise NotInRoom: setting the topic of a room one is not in (operators may).
        @raise NotOp: setting a claimed room's topic, not an op there.
        """
        key = room_key(room)
        topic = self.moderation.topic(key)
        if text is None:
            member.participant.send(topic if topic is not None else Topic(key, ""))
            return
        text = clean(text).strip()[:TOPIC_MAX]
        present = key in self.rooms and member in self.rooms[key].members
        if not present and not is_operator(member):
            raise NotInRoom("you are not in #%s" % key)
        if self.moderation.mute_count:  # a topic is said to the room too
            self._check_muted(member, key)
        if self.moderation.topic_locked(key):
            self._need_op(member, key)
        elif key not in self.rooms and not self.directory.members(key):  # (on any process)
            raise NoSuchTarget("there is no room #%s" % key)
        self._apply("topic", key, "", member, reason=text)
        if text:
            said = "%s set the topic of #%s: %s" % (member.name, key, text)
        else:
            said = "%s cleared the topic of #%s" % (member.name, key)
        self._announce(member, key, said, "topic", detail=text)

    def kick(self, member: Member, room: str, name: str, reason: str = "") -> None:
        """
        C{/kick}: C{name} leaves the room (telnet and browser users land
        in the lobby; IRC users just leave the channel).

        @raise NotOp: unless C{member} is an op there.
        @raise NoSuchTarget: if nobody called C{name} is in the room.
        @raise Protected: for a room op kicking an operator or the owner.
        """
        key = room_key(room)
        self._need_op(member, key)
        target = self.directory.find(name)
        # a member of another process (a cluster) is in its replica's rooms
        if target is None or not any(r.name == key for r in target.rooms):
            raise NoSuchTarget("nobody called %s is in #%s" % (name, key))
        if target is member:
            raise ChatError("that is you (/leave leaves)")
        self._protect(member, key, target.name, "kick")
        if key == LOBBY and not getattr(target.participant, "multi_room", False):
            raise ChatError("nobody leaves #%s: try /mute, /gmute or /kill" % LOBBY)
        reason = clean(reason).strip()[:REASON_MAX]
        # announced first: in a cluster the kicked member's process, told
        # by the change, moves it after its room heard why
        self._kick_out(member, target, key, reason)
        self._apply("kick", key, target.name, member, reason=reason)

    def _kick_out(self, member: Member | None, target: Member, key: str, reason: str,
                  actor: str = "") -> None:
        """
        C{target} leaves the room C{key}, kicked by C{member} (or the
        C{actor} of another process); the room (and it) are told.  A
        member of another process is only announced here: its own process
        moves it (L{applied_elsewhere}).
        """
        by = member.name if member is not None else actor
        text = "%s was kicked from #%s by %s" % (target.name, key, by)
        if reason:
            text += " (%s)" % reason
        self._announce(member, key, text, "kicked", user=target.name, detail=reason, actor=by)
        room = self.rooms.get(key)
        if room is None or target not in room.members:
            return
        self._leave_room(target, room)
        if target.room is None and not getattr(target.participant, "multi_room", False):
            self._enter(target, LOBBY, current=True, first=False)

    def ban(self, member: Member, room: str, target: str, duration: float | None,
            reason: str = "") -> None:
        """
        C{/ban}: C{target} (a name, an address or a CIDR network) may not
        join the room for C{duration} seconds (C{None}: until lifted);
        anyone it matches in the room is kicked.

        @raise NotOp: unless C{member} is an op there.
        @raise Protected: for a room op banning an operator or the owner by name.
        """
        key = room_key(room)
        if key == LOBBY:
            raise ChatError("#%s has no bans: operators have /gban" % LOBBY)
        self._need_op(member, key)
        canonical = parse_target(target)
        self._not_self(member, canonical)
        if target_kind(canonical) == "name":
            self._protect(member, key, canonical, "ban")
        reason = clean(reason).strip()[:REASON_MAX]
        when = self.clock.seconds()
        until = when + duration if duration is not None else None
        text = "%s banned %s from #%s%s" % (member.name, canonical, key, self._for(until, when))
        if reason:
            text += " (%s)" % reason
        self._announce(member, key, text, "banned", detail=canonical)
        # after its announcement: in a cluster each process then kicks its
        # own members it matches (L{applied_elsewhere})
        self._apply("ban", key, canonical, member, until, reason)
        self._kick_banned(member, key)

    def _kick_banned(self, member: Member | None, key: str, actor: str = "") -> None:
        """This process's members in the room C{key} that its bans match are kicked."""
        where = self.rooms.get(key)
        if where is not None:
            for present in list(where.members):
                if present is not member and self.moderation.banned(present, key) is not None:
                    self._kick_out(member, present, key, "banned", actor)

    def unban(self, member: Member, room: str, target: str) -> None:
        """
        C{/unban}: lift a ban of the room.

        @raise NoSuchTarget: if C{target} is not banned there.
        """
        key = room_key(room)
        self._need_op(member, key)
        canonical = parse_target(target)
        state = self.moderation.state(key)
        if state is None or state.bans.get(canonical) is None:
            raise NoSuchTarget("%s is not banned from #%s" % (canonical, key))
        self._apply("unban", key, canonical, member)
        self._announce(member, key, "%s lifted the ban on %s in #%s"
                       % (member.name, canonical, key), "unbanned", detail=canonical)

    def bans(self, member: Member, room: str | None) -> None:
        """C{/bans}: tell C{member} the room's bans and mutes (C{None}: the server's)."""
        key = room_key(room) if room is not None else None
        if key is None:
            self._need_operator(member, "bans server")
        member.participant.send(Bans(key, self.moderation.bans(key),
                                     self.moderation.mutes(key), self.clock.seconds()))

    def mute(self, member: Member, room: str, target: str, duration: float | None,
             reason: str = "") -> None:
        """
        C{/mute}: C{target} (a name, address or CIDR) stays in the room and
        reads, but its lines to the room are refused (L{Muted}) for
        C{duration} seconds (C{None}: until lifted).
        """
        key = room_key(room)
        self._need_op(member, key)
        canonical = parse_target(target)
        self._not_self(member, canonical)
        if target_kind(canonical) == "name":
            self._protect(member, key, canonical, "mute")
        reason = clean(reason).strip()[:REASON_MAX]
        when = self.clock.seconds()
        until = when + duration if duration is not None else None
        self._apply("mute", key, canonical, member, until, reason)
        text = "%s muted %s in #%s%s" % (member.name, canonical, key, self._for(until, when))
        if reason:
            text += " (%s)" % reason
        self._announce(member, key, text, "muted", detail=canonical)

    def unmute(self, member: Member, room: str, target: str) -> None:
        """C{/unmute}: lift a mute of the room."""
        key = room_key(room)
        self._need_op(member, key)
        canonical = parse_target(target)
        state = self.moderation.state(key)
        if state is None or state.mutes.get(canonical) is None:
            raise NoSuchTarget("%s is not muted in #%s" % (canonical, key))
        self._apply("unmute", key, canonical, member)
        self._announce(member, key, "%s unmuted %s in #%s" % (member.name, canonical, key),
                       "unmuted", detail=canonical)

    def claim_room(self, member: Member, room: str) -> None:
        """
        C{/claim}: the room becomes C{member}'s (an account's): it keeps
        its topic, ops and bans when empty, and its owner manages its ops.
        """
        key = room_key(room)
        account = account_key(member)
        if account is None:
            raise NeedAccount("only accounts can claim rooms (/register first)")
        if key == LOBBY:
            raise ChatError("#%s is everyone's" % LOBBY)
        where = self.rooms.get(key)
        if where is None or member not in where.members:
            raise NotInRoom("you are not in #%s" % key)
        owner = self.moderation.owner(key)
        if owner is not None:
            if owner == account:
                raise ChatError("#%s is yours already" % key)
            raise ChatError("#%s is claimed by %s" % (key, owner))
        self._apply("claim", key, member.name, member)
        self._announce(member, key, "%s claimed #%s" % (member.name, key), "claimed",
                       user=member.name)

    def _need_owner(self, member: Member, key: str) -> None:
        if not self.moderation.claimed(key):
            raise ChatError("#%s is not claimed (/claim it first)" % key)
        if not (is_operator(member) or self.moderation.is_owner(member, key)):
            raise NotOp("only the owner of #%s (or an operator) manages its ops" % key)

    def op(self, member: Member, room: str, name: str) -> None:
        """C{/op}: the owner (or an operator) makes C{name} (online, an account) an op."""
        key = room_key(room)
        if self.founder_ops and not self.moderation.claimed(key):
            self._transient_op(member, key, name, True)
            return
        self._need_owner(member, key)
        target = self.directory.find(name)
        if target is None:
            raise NoSuchTarget("nobody called %s is online" % name)
        account = account_key(target)
        if account is None:
            raise NeedAccount("%s is a guest: only accounts can be ops" % target.name)
        state = self.moderation.state(key)
        if state is not None and (account == state.owner or account in state.ops):
            raise ChatError("%s is an op of #%s already" % (target.name, key))
        self._apply("op", key, account, member)
        self._announce(member, key, "%s made %s an op of #%s" % (member.name, target.name, key),
                       "opped", user=target.name)

    def deop(self, member: Member, room: str, name: str) -> None:
        """C{/deop}: the owner (or an operator) takes op from C{name}."""
        key = room_key(room)
        if self.founder_ops and not self.moderation.claimed(key):
            self._transient_op(member, key, name, False)
            return
        self._need_owner(member, key)
        account = name.casefold()
        target = self.directory.find(name)
        if target is not None and account_key(target) is not None:
            account = account_key(target) or account
        state = self.moderation.state(key)
        if state is not None and account == state.owner:
            raise Protected("the owner of #%s stays an op" % key)
        if state is None or account not in state.ops:
            raise NoSuchTarget("%s is not an op of #%s" % (name, key))
        shown = target.name if target is not None else name
        self._apply("deop", key, account, member)
        self._announce(member, key, "%s took op from %s in #%s" % (member.name, shown, key),
                       "deopped", user=shown)

    def _transient_op(self, member: Member, key: str, name: str, op: bool) -> None:
        """
        C{/op} or C{/deop} in an unclaimed room with C{--founder-ops}: its
        ops (guests too) make others ops until the room empties (not stored).
        """
        self._need_op(member, key)
        where = self.rooms.get(key)
        target = self.directory.find(name)
        if where is None or target is None or target not in where.members:
            raise NoSuchTarget("nobody called %s is in #%s" % (name, key))
        if not self.moderation.set_transient_op(key, target, op):
            raise ChatError("%s is %s op of #%s" % (target.name, "an" if op else "not an", key))
        self.log.info("moderation: {by} {kind} {target} in #{room} (until it empties)",
                      by=self.actor_name(member), kind="op" if op else "deop",
                      target=target.name, room=key)
        if op:
            text = "%s made %s an op of #%s" % (member.name, target.name, key)
        else:
            text = "%s took op from %s in #%s" % (member.name, target.name, key)
        self._announce(member, key, text, "opped" if op else "deopped", user=target.name)

    def voice(self, member: Member, room: str, name: str, voiced: bool) -> None:
        """
        IRC C{MODE +v}/C{-v}: a voiced member of the room is heard in spite
        of a room mute (not a server-wide one), until it leaves the room.

        @raise NotOp: unless C{member} is an op there.
        @raise NoSuchTarget: if nobody called C{name} is in the room.
        """
        key = room_key(room)
        self._need_op(member, key)
        where = self.rooms.get(key)
        target = self.directory.find(name)
        if where is None or target is None or target not in where.members:
            raise NoSuchTarget("nobody called %s is in #%s" % (name, key))
        if not self.moderation.set_voice(key, target, voiced):
            raise ChatError("%s %s a voice in #%s" % (
                target.name, "has" if voiced else "has no", key))
        self.log.info("moderation: {by} {kind} {target} in #{room}", by=self.actor_name(member),
                      kind="voice" if voiced else "devoice", target=target.name, room=key)
        if voiced:
            text = "%s gave %s a voice in #%s (heard even if muted)" % (
                member.name, target.name, key)
        else:
            text = "%s took the voice of %s in #%s" % (member.name, target.name, key)
        self._announce(member, key, text, "voiced" if voiced else "devoiced", user=target.name)

    def lock_topic(self, member: Member, room: str, locked: bool) -> None:
        """
        IRC C{MODE +t}/C{-t}: whether only ops set the room's topic.  A
        claimed room's always is (C{+t} there changes nothing); an unclaimed
        room's is unlocked until one of its ops (C{--founder-ops}) or an
        operator locks it, until it empties.

        @raise NotOp: unless C{member} is an op there.
        """
        key = room_key(room)
        self._need_op(member, key)
        if self.moderation.claimed(key):
            if not locked:
                raise ChatError("the topic of a claimed room is for its ops")
            return
        if key not in self.rooms:
            raise NoSuchTarget("there is no room #%s" % key)
        if not self.moderation.set_topic_lock(key, locked):
            return
        if locked:
            text = "%s locked the topic of #%s: ops set it" % (member.name, key)
        else:
            text = "%s unlocked the topic of #%s: anyone in it sets it" % (member.name, key)
        self._announce(member, key, text, "locked" if locked else "unlocked")

    def kill(self, member: Member, name: str, reason: str = "") -> None:
        """C{/kill} (operators): disconnect C{name}; its rooms are told why."""
        self._need_operator(member, "kill")
        target = self.directory.find(name)
        if target is None:
            raise NoSuchTarget("nobody called %s is online" % name)
        if target is member:
            raise ChatError("that is you (/quit leaves)")
        reason = clean(reason).strip()[:REASON_MAX]
        self._apply("kill", None, target.name, member, reason=reason)
        self._killed(target, member.name, reason)
        member.participant.send(Info("disconnected %s" % target.name))

    def _killed(self, target: Member, by: str, reason: str) -> None:
        """C{target} (of this process; else nothing) is disconnected by C{by}."""
        if self.members.get(target.key) is not target:
            return  # another process's member: its process closes it
        why = "was disconnected by %s" % by
        if reason:
            why += " (%s)" % reason
        self._disconnect(target, "you were " + why[4:], "killed", why)

    def _disconnect(self, target: Member, told: str, code: str, why: str) -> None:
        target.participant.send(Error(told, code))
        self.remove(target, why)
        target.participant.close()

    def gban(self, member: Member, target: str, duration: float | None,
             reason: str = "") -> None:
        """
        C{/gban} (operators): C{target} (a name, an address or a CIDR) is
        refused at connect and login; sessions it matches are closed
        (operators' are not).
        """
        self._need_operator(member, "gban")
        canonical = parse_target(target)
        if target_matches(canonical, member):
            raise ChatError("that would ban you")
        found = self.directory.find(canonical) if target_kind(canonical) == "name" else None
        if found is not None and is_operator(found):
            # their session is never closed: the ban would only lock them out later
            raise Protected("%s is a server operator: chat-admin deop them first" % found.name)
        reason = clean(reason).strip()[:REASON_MAX]
        when = self.clock.seconds()
        until = when + duration if duration is not None else None
        self._apply("ban", None, canonical, member, until, reason)
        closed = self._close_banned(until, reason)
        member.participant.send(Info("banned %s from the server%s; %d session%s closed"
                                     % (canonical, self._for(until, when), closed,
                                        "" if closed == 1 else "s")))

    def _close_banned(self, until: float | None, reason: str) -> int:
        """Close this process's sessions a server ban matches (not operators'); how many."""
        told = "you are banned from this server"
        if until is not None:
            told += " (for %s more)" % format_duration(until - self.clock.seconds())
        if reason:
            told += ": " + reason
        closed = 0
        for present in list(self.members.values()):
            if not is_operator(present) and self.moderation.server_ban(
                    present.key, address_of(present)) is not None:
                self._disconnect(present, told, BannedFromServer.code,
                                 "was banned from the server")
                closed += 1
        return closed

    def ungban(self, member: Member, target: str) -> None:
        """C{/ungban} (operators): lift a server-wide ban."""
        self._need_operator(member, "ungban")
        canonical = parse_target(target)
        state = self.moderation.state(None)
        if state is None or state.bans.get(canonical) is None:
            raise NoSuchTarget("%s is not banned from the server" % canonical)
        self._apply("unban", None, canonical, member)
        member.participant.send(Info("lifted the server ban on %s" % canonical))

    def gmute(self, member: Member, target: str, duration: float | None,
              reason: str = "") -> None:
        """
        C{/gmute} (operators): C{target} (a name, an address or a CIDR)
        reads but says nothing anywhere, rooms or private, for
        C{duration} seconds (C{None}: until lifted).
        """
        self._need_operator(member, "gmute")
        canonical = parse_target(target)
        # Operators are never muted, so muting the operator's own address
        # (a teacher in the classroom it silences) is allowed: said, not refused.
        reason = clean(reason).strip()[:REASON_MAX]
        when = self.clock.seconds()
        until = when + duration if duration is not None else None
        self._apply("mute", None, canonical, member, until, reason)
        note = " (operators are not muted)" if target_matches(canonical, member) else ""
        member.participant.send(Info("muted %s on the server%s%s"
                                     % (canonical, self._for(until, when), note)))

    def ungmute(self, member: Member, target: str) -> None:
        """C{/ungmute} (operators): lift a server-wide mute."""
        self._need_operator(member, "ungmute")
        canonical = parse_target(target)
        state = self.moderation.state(None)
        if state is None or state.mutes.get(canonical) is None:
            raise NoSuchTarget("%s is not muted on the server" % canonical)
        self._apply("unmute", None, canonical, member)
        member.participant.send(Info("lifted the server mute on %s" % canonical))

    def wall(self, member: Member, text: str) -> None:
        """C{/wall} (operators): a notice to everyone online (a L{Notice}, C{change} C{wall})."""
        self._need_operator(member, "wall")
        text = clean(text).strip()
        if not text:
            raise ChatError("usage: /wall <text>")
        self._apply("wall", None, "", member, reason=text)
        self._wall(member.name, text)

    def _wall(self, by: str, text: str) -> None:
        """
        The wall's notice to everyone online on this process (in a
        cluster every process tells its own members: L{applied_elsewhere}).
        """
        when, stamp = self.now()
        notice = Notice(None, "[wall] %s: %s" % (by, text), when, stamp, None,
                        "wall", by, text)
        self.local_bus.publish_once([(key, notice) for key in self.rooms])
        for present in self.members.values():
            if not present.rooms:  # IRC users in no channel
                present.participant.send(notice)

    def whois(self, member: Member, name: str) -> None:
        """
        C{/whois}: tell C{member} about C{name} (a L{Whois} event: rooms,
        account or guest, idle time, connected since; the address for
        operators only).
        """
        target = self.directory.find(name)
        if target is None:
            raise NoSuchTarget("nobody called %s is online" % name)
        now = self.clock.seconds()
        last = getattr(target.participant, "last_active", None)
        since = target.since
        idle = max(0.0, now - (last if last else since))
        member.participant.send(Whois(
            target.name, account_key(target) is not None, is_operator(target),
            [room.name for room in target.rooms], since, idle,
            address_of(target) if is_operator(member) else None,
            self.moderation.away.get(target.key)))

    def away(self, member: Member, text: str | None) -> None:
        """C{/away}: with C{text}, mark C{member} away (private messages get it back); else back."""
        text = clean(text or "").strip()[:TOPIC_MAX]
        if text:
            self.moderation.away[member.key] = text
            member.participant.send(Info("you are marked as away: %s" % text))
        elif self.moderation.away.pop(member.key, None) is not None:
            member.participant.send(Info("you are no longer marked as away"))
        else:
            member.participant.send(Info("you were not away"))
            return
        self.directory.changed(member)

    # -- stopping ---------------------------------------------------------

    def wait_empty(self) -> Deferred[None]:
        """A Deferred that fires when nobody is online any more."""
        if not self.members:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._empty_waiters.append(waiter)
        return waiter

    def shutdown(self) -> int:
        """
        Tell this process's members the server is stopping and close them;
        return how many.  (Not a fan-out for the bus: it closes this
        process's own connections, and other processes' members stay.)
        """
        self._stopping = True
        event = Shutdown()
        count = 0
        for member in list(self.members.values()):  # closing them changes the dict
            member.participant.send(event)
            member.participant.close()
            count += 1
        return count
