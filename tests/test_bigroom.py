"""
A room of thousands (SPEC 11): in a room of more than BIG_ROOM members,
joins, leaves and quits are summarised once every SUMMARY_EVERY seconds.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.events import Notice, Users
from twisted_chat.domain.server import (
    BIG_ROOM,
    JOIN_LIST_LIMIT,
    LOBBY,
    SUMMARY_EVERY,
    ChatServer,
    Member,
)
from twisted_chat.frontends.irc import render as irc_render
from twisted_chat.frontends.line.render import wire
from twisted_chat.frontends.web.render import to_json
from twisted_chat.storage.history import MemoryHistory

from .helpers import FakeParticipant


class BigRoomTests(SynchronousTestCase):

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.server = ChatServer(MemoryHistory(), self.clock)
        self.watcher, self.watching = self.add("watcher", "big")
        self.others: list[tuple[Member, FakeParticipant]] = []

    def add(self, name: str, room: str) -> tuple[Member, FakeParticipant]:
        participant = FakeParticipant()
        member = self.successResultOf(self.server.claim(name, participant))
        self.server.join(member, room)
        return member, participant

    def fill(self, count: int) -> None:
        for i in range(count):
            self.others.append(self.add("u%d" % i, "big"))

    def notices(self) -> list[Notice]:
        out = [e for e in self.watching.events if isinstance(e, Notice)]
        self.watching.events.clear()
        return out

    def test_small_room_told_at_once(self) -> None:
        """Up to BIG_ROOM members, each join is its own notice, at once."""
        self.fill(BIG_ROOM - 1)
        notices = self.notices()
        self.assertEqual(len(notices), BIG_ROOM - 1)
        self.assertEqual(notices[-1].text, "u%d joined #big" % (BIG_ROOM - 2))
        self.assertEqual(notices[-1].user, "u%d" % (BIG_ROOM - 2))

    def test_joins_summarised(self) -> None:
        """
        Past BIG_ROOM members, a second's joins are one notice, SUMMARY_EVERY
        seconds later, naming the first three and counting the rest; its
        users name everyone.
        """
        self.fill(BIG_ROOM)  # the room has BIG_ROOM + 1 members now
        self.notices()
        self.fill(0)
        for i in range(40):
            self.others.append(self.add("late%d" % i, "big"))
        self.assertEqual(self.notices(), [])
        self.clock.advance(SUMMARY_EVERY)
        [summary] = self.notices()
        self.assertEqual(summary.text, "late0, late1, late2 and 37 others joined #big")
        self.assertEqual(summary.change, "joined")
        self.assertIsNone(summary.user)
        self.assertEqual(summary.users, tuple("late%d" % i for i in range(40)))
        self.assertIn(b"*** late0, late1, late2 and 37 others joined #big ***", wire(summary))
        self.clock.advance(SUMMARY_EVERY)
        self.assertEqual(self.notices(), [])  # nothing new: no notice

    def test_leaves_and_quits_summarised(self) -> None:
        """Leaves and quits in a big room are summarised apart."""
        self.fill(BIG_ROOM + 5)
        self.clock.advance(SUMMARY_EVERY)
        self.notices()
        for member, _ in self.others[:2]:
            self.server.join(member, LOBBY)
        for member, _ in self.others[2:5]:
            self.server.remove(member, "quit")
        self.assertEqual(self.notices(), [])
        self.clock.advance(SUMMARY_EVERY)
        texts = sorted(notice.text for notice in self.notices())
        self.assertEqual(texts, ["u0 and u1 left #big", "u2, u3 and u4 went offline"])

    def test_two_names(self) -> None:
        self.fill(BIG_ROOM + 1)
        self.clock.advance(SUMMARY_EVERY)
        self.notices()
        self.add("x", "big")
        self.clock.advance(SUMMARY_EVERY)
        self.assertEqual([n.text for n in self.notices()], ["x joined #big"])

    def test_join_list_is_cut(self) -> None:
        """A newcomer to a big room gets its first JOIN_LIST_LIMIT names and the count."""
        self.fill(BIG_ROOM + 10)
        _, newcomer = self.add("newcomer", "big")
        [users] = [e for e in newcomer.events if isinstance(e, Users)]
        self.assertEqual(users.total, BIG_ROOM + 12)
        self.assertEqual(len(users.users), JOIN_LIST_LIMIT)
        names = [name for name, _ in users.users]
        self.assertEqual(names, sorted(names, key=str.lower))
        self.assertIn("watcher", names)

    def test_irc_and_web(self) -> None:
        """IRC gets one JOIN line per name (nick lists stay right); the page gets the names."""
        self.fill(BIG_ROOM)
        self.notices()
        self.add("a", "big")
        self.add("b", "big")
        self.clock.advance(SUMMARY_EVERY)
        [summary] = self.notices()
        plain, tagged = irc_render.room_event(summary, lambda n: "%s!%s@h" % (n, n), "irc.test")
        self.assertEqual(plain, b":a!a@h JOIN #big\r\n:b!b@h JOIN #big\r\n")
        self.assertEqual(tagged.count(b"JOIN #big"), 2)
        data = to_json(summary)
        self.assertEqual((data["users"], data["change"]), (["a", "b"], "joined"))

    def test_stopping_tells_nobody(self) -> None:
        self.fill(BIG_ROOM + 1)
        self.clock.advance(SUMMARY_EVERY)
        self.notices()
        self.add("z", "big")
        self.server.shutdown()
        self.watching.events.clear()
        self.clock.advance(SUMMARY_EVERY)
        self.assertEqual(self.notices(), [])
