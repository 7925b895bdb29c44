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
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_chat.commands import HELP, MAX_HISTORY, SEARCH_LIMIT
from twisted_chat.domain.bus import Bus, LocalBus
from twisted_chat.domain.directory import Directory, LocalDirectory
from twisted_chat.domain.events import (
    Entry,
    Error,
    Event,
    Help,
    Joined,
    Message,
    Notice,
    Private,
    Rooms,
    Search,
    Shutdown,
    TimeZone,
    Users,
)
from twisted_chat.domain.events import (
    History as HistoryEvent,
)
from twisted_chat.errors import ChatError, NameTaken, NoSuchTarget, NotInRoom
from twisted_chat.interfaces import History, Participant
from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.text import clock_stamp, room_key, utc_offset

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


class Member:
    """
    A logged-in user: a unique name, the rooms it is in, one participant.

    @ivar rooms: the rooms it is in, in join order.
    @ivar room: its current room (the one room of telnet and browser
        sessions, where their lines go), one of L{rooms}; C{None} in none.
    """

    __slots__ = ("name", "key", "room", "rooms", "participant")

    def __init__(self, participant: Participant, name: str = "", key: str = "") -> None:
        self.name = name
        self.key = key
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
    """

    log = Logger()

    def __init__(
        self, history: History, clock: IReactorTime, replay: int = 20,
        timer: Callable[[], float] = time.monotonic,
        bus: BusFactory = LocalBus, directory: DirectoryFactory = LocalDirectory,
        observer: ChatObserver = NULL_OBSERVER,
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
        """
        self.history = history
        self.clock = clock
        self.searches = SearchGate(clock, timer)
        self.replay = replay
        self.members: dict[str, Member] = {}
        self.lobby = Room(LOBBY)
        self.rooms: dict[str, Room] = {LOBBY: self.lobby}
        self.observer = observer
        self.bus = bus(self.rooms, self.members)
        self.bus.observer = observer  # deliveries are counted where they happen
        self.directory = directory(self.rooms, self.members, LOBBY)
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
        d.addCallbacks(self._claimed, self._claim_refused)
        return d

    def _claimed(self, member: Member) -> Member:
        self.observer.login("ok")
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
        self.searches.forget(member)
        rooms = list(member.rooms)
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
        if not room.members and room is not self.lobby:
            del self.rooms[room.name]

    def _depart(self, member: Member, room: Room, reason: str = "") -> None:
        """C{member} leaves C{room}, which is told (with C{reason}, if any)."""
        self._leave_room(member, room)
        if self._gather(room, member.name, "left"):
            return
        text = "%s left #%s" % (member.name, room.name)
        if reason:
            text += " (%s)" % reason
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
                                             None, change, tuple(names)))

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
        first = member.room is None
        if move and member.room is not None:
            self._depart(member, member.room)
        self._enter(member, key, current=move, first=first)

    def _enter(self, member: Member, key: str, current: bool, first: bool) -> None:
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(key)
            self.log.info("room #{room} created by {name}", room=key, name=member.name)
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
        when, stamp = self.now()
        if not self.bus.private(
                recipient.key, Private(member.name, recipient.name, text, when, stamp)):
            raise NoSuchTarget("nobody called %s is online" % recipient.name)
        self.observer.message("private")
        member.participant.send(
            Private(member.name, recipient.name, text, when, stamp, outgoing=True)
        )

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
        member.participant.send(Rooms(self.directory.rooms()))

    def recall(self, member: Member, count: int) -> None:
        """Tell C{member} the last C{count} (0: the default) messages of its room."""
        count = min(count or self.replay, MAX_HISTORY)
        self._replay(member, self._current(member).name, count, replay=False)

    def _replay(self, member: Member, key: str, count: int, replay: bool) -> None:
        """Tell C{member} the last C{count} messages of the room C{key} once read."""
        d = self.history.recent(key, count)
        d.addCallback(lambda entries: self._tell(member, HistoryEvent(key, entries, replay)))
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
