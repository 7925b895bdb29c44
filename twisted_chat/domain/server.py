"""
The chat domain: members, rooms and what they say.  Synchronous: it returns
values or raises L{ChatError}; it never sees bytes or sockets.  Fan-out lives
in L{Room.broadcast}, so a later backplane can forward a room's events to
other server processes in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_chat.commands import HELP, MAX_HISTORY, SEARCH_LIMIT
from twisted_chat.errors import ChatError, NameTaken, NoSuchTarget, NotInRoom
from twisted_chat.domain.events import (
    Entry,
    Event,
    Help,
    History as HistoryEvent,
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
from twisted_chat.interfaces import History, Participant
from twisted_chat.ratelimit import TokenBucket
from twisted_chat.text import check_name, clock_stamp, room_key, utc_offset

LOBBY = "lobby"
# The user list shown on joining a room is cut here; /users shows everyone.
JOIN_LIST_LIMIT = 100
# A search runs on the reactor (up to history.SEARCH_BUDGET, 0.25 s), so
# each member may search SEARCH_RATE times a second, SEARCH_BURST in a row ...
SEARCH_RATE = 0.5
SEARCH_BURST = 3
# ... and all searches together may take SEARCH_SHARE of the server's time
# (seconds of searching a second), with SEARCH_SHARE_BURST seconds in hand.
SEARCH_SHARE = 0.25
SEARCH_SHARE_BURST = 0.5


class Member:
    """A logged-in user: a unique name, one room, one participant."""

    __slots__ = ("name", "key", "room", "participant")

    def __init__(self, participant: Participant, name: str = "", key: str = "") -> None:
        self.name = name
        self.key = key
        self.room: Room | None = None
        self.participant = participant

    def __repr__(self) -> str:
        return "<Member %s>" % (self.name,)


class Room:
    """
    A named set of members; it delivers events to its local members.
    """

    __slots__ = ("name", "members")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[Member, None] = {}

    def broadcast(self, event: Event, exclude: Member | None = None) -> None:
        """Send C{event} to every member of the room but C{exclude}."""
        for member in self.members:
            if member is not exclude:
                member.participant.send(event)

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

    def run(self, member: Member, search: Callable[[], Sequence[Entry]]) -> Sequence[Entry]:
        """
        Run C{search} for C{member} if the allowances permit, counting its time.

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

    @ivar members: online members by lower-cased name.
    @ivar rooms: rooms by lower-cased name; a room other than the lobby
        exists while someone is in it.
    """

    log = Logger()

    def __init__(
        self, history: History, clock: IReactorTime, replay: int = 20,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        @param history: where room messages are kept.
        @param clock: what time it is (C{[HH:MM:SS]} stamps).
        @param replay: how many messages to show on joining a room, and the
            default of C{/history}.
        @param timer: wall-clock time, to measure how long searches take.
        """
        self.history = history
        self.clock = clock
        self.searches = SearchGate(clock, timer)
        self.replay = replay
        self.members: dict[str, Member] = {}
        self.lobby = Room(LOBBY)
        self.rooms: dict[str, Room] = {LOBBY: self.lobby}
        self._second = -1
        self._stamp = ""
        self._empty_waiters: list[Deferred[None]] = []
        self._stopping = False

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

    def claim(self, name: str, participant: Participant, member: Member | None = None) -> Member:
        """
        Register C{member} (or a new member for C{participant}) as C{name};
        it is in no room yet.

        @raise ChatError: if the name is bad or taken (case-insensitively).
        """
        check_name(name)
        key = name.lower()
        if key in self.members:
            raise NameTaken("the name %s is taken; pick another" % name)
        if member is None:
            member = Member(participant)
        member.name = name
        member.key = key if key != name else name  # one string when already lower case
        self.members[member.key] = member
        return member

    def remove(self, member: Member, why: str) -> None:
        """
        Take C{member} offline, telling its room C{why} (e.g. C{quit}).
        Removing a member twice does nothing.
        """
        if self.members.get(member.key) is not member:
            return
        del self.members[member.key]
        self.searches.forget(member)
        room = member.room
        if room is not None:
            self._leave_room(member, room)
            if not self._stopping:  # after the shutdown notice, departures are noise
                room.broadcast(
                    self.notice(room, "%s %s" % (member.name, why), member.name, "offline")
                )
        member.room = None
        if not self.members and self._empty_waiters:
            waiters, self._empty_waiters = self._empty_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _leave_room(self, member: Member, room: Room) -> None:
        del room.members[member]
        if not room.members and room is not self.lobby:
            del self.rooms[room.name]

    def join(self, member: Member, name: str) -> None:
        """
        Move C{member} into the room called C{name}, creating it if new.

        The old room sees the member leave, the new one sees it join, and
        the member is told who is there and what was said recently.  A
        member in no room yet has just logged in: it is told the server's
        time zone first, once.

        @raise ChatError: for a bad room name, or the room the member is in.
        """
        key = room_key(name)
        old = member.room
        if old is not None and old.name == key:
            raise ChatError("you are already in #%s" % key)
        if old is not None:
            self._leave_room(member, old)
            old.broadcast(
                self.notice(old, "%s left #%s" % (member.name, old.name), member.name, "left")
            )
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(key)
            self.log.info("room #{room} created by {name}", room=key, name=member.name)
        room.broadcast(
            self.notice(room, "%s joined #%s" % (member.name, key), member.name, "joined")
        )
        room.members[member] = None
        member.room = room
        send = member.participant.send
        if old is not None:
            send(Joined(key))
        else:
            send(TimeZone(utc_offset(self.clock.seconds())))
        send(self._users_in(room, JOIN_LIST_LIMIT))
        send(HistoryEvent(key, self.history.recent(key, self.replay), replay=True))

    def leave(self, member: Member) -> None:
        """
        Move C{member} back to the lobby.

        @raise ChatError: if it is in the lobby already.
        """
        if member.room is self.lobby:
            raise ChatError("you are already in #%s (use /join <room> to move)" % LOBBY)
        self.join(member, LOBBY)

    # -- talking ----------------------------------------------------------

    def say(self, member: Member, text: str, action: bool = False) -> None:
        """C{member} says C{text} (or acts it, C{/me}) to its room."""
        room = member.room
        when, stamp = self.now()
        entry = Entry(room.name, member.name, text, when, action)
        room.broadcast(Message(entry, stamp), exclude=member)
        self.history.append(entry)

    def message(self, member: Member, target: str, text: str) -> None:
        """
        C{/msg target text}: a private message when C{target} is someone
        online, else a message to C{target} if it is the member's room.
        A target written with C{#} is always a room.

        @raise ChatError: if there is no such user or room, or the member is
            not in that room.
        """
        if not target.startswith("#"):
            recipient = self.members.get(target.lower())
            if recipient is not None:
                self.private(member, recipient, text)
                return
        try:
            key = room_key(target)
        except ChatError:
            raise NoSuchTarget("nobody called %s is online" % target) from None
        if member.room.name == key:
            self.say(member, text)
        elif key in self.rooms:
            raise NotInRoom("you are not in #%s (/join #%s first)" % (key, key))
        elif target.startswith("#"):
            raise NoSuchTarget("there is no room #%s" % key)
        else:
            raise NoSuchTarget("nobody called %s is online and there is no room #%s" % (target, key))

    def private(self, member: Member, recipient: Member, text: str) -> None:
        """Send C{text} to C{recipient} alone; the sender gets a confirmation."""
        if recipient is member:
            raise ChatError("that is you; /msg someone else")
        when, stamp = self.now()
        recipient.participant.send(Private(member.name, recipient.name, text, when, stamp))
        member.participant.send(
            Private(member.name, recipient.name, text, when, stamp, outgoing=True)
        )

    # -- looking around ---------------------------------------------------

    def _users_in(self, room: Room, limit: int | None = None) -> Users:
        names = sorted((m.name for m in room.members), key=str.lower)
        shown = names if limit is None else names[:limit]
        return Users(room.name, [(name, room.name) for name in shown], len(names))

    def users(self, member: Member, everyone: bool) -> None:
        """Tell C{member} who is in its room, or (C{everyone}) online."""
        if not everyone:
            member.participant.send(self._users_in(member.room))
            return
        pairs = sorted(
            ((m.name, m.room.name if m.room else LOBBY) for m in self.members.values()),
            key=lambda pair: pair[0].lower(),
        )
        member.participant.send(Users(None, pairs, len(pairs)))

    def room_list(self, member: Member) -> None:
        """Tell C{member} every room with its member count, lobby first."""
        rooms = sorted(self.rooms.values(), key=lambda r: (r is not self.lobby, r.name))
        member.participant.send(Rooms([(room.name, len(room)) for room in rooms]))

    def recall(self, member: Member, count: int) -> None:
        """Tell C{member} the last C{count} (0: the default) messages of its room."""
        count = min(count or self.replay, MAX_HISTORY)
        room = member.room.name
        member.participant.send(HistoryEvent(room, self.history.recent(room, count), replay=False))

    def search(self, member: Member, words: str) -> None:
        """
        Tell C{member} the newest L{SEARCH_LIMIT} messages of its room that
        hold every one of C{words}, if L{SearchGate} lets it search now.

        @raise ChatError: if the history store cannot search, or the member
            or the server has searched too much lately.
        """
        room = member.room.name
        found = self.searches.run(
            member, lambda: self.history.search(room, words, SEARCH_LIMIT))
        complete = getattr(found, "complete", True)
        member.participant.send(Search(room, words, found, complete))

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
        """Tell everyone the server is stopping and close them; return how many."""
        self._stopping = True
        event = Shutdown()
        count = 0
        for member in list(self.members.values()):  # closing them changes the dict
            member.participant.send(event)
            member.participant.close()
            count += 1
        return count
