"""Tests for the chat domain, L{twisted_chat.domain.server}."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.errors import ChatError, NameTaken, NoSuchTarget, NotInRoom
from twisted_chat.domain.events import Entry, Message
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.text import clock_stamp

from .helpers import FakeParticipant


class ServerTests(SynchronousTestCase):
    """L{ChatServer} keeps members and rooms."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.history = MemoryHistory()
        self.server = ChatServer(self.history, self.clock, replay=3)
        self.stamp = clock_stamp(self.clock.seconds())

    def add(self, name: str) -> tuple[Member, FakeParticipant]:
        participant = FakeParticipant()
        member = self.server.claim(name, participant)
        self.server.join(member, LOBBY)
        participant.lines()
        return member, participant

    def test_claim_unique_case_insensitive(self) -> None:
        self.add("Alice")
        error = self.assertRaises(NameTaken, self.server.claim, "alice", FakeParticipant())
        self.assertIn("taken", str(error))

    def test_name_free_after_remove(self) -> None:
        alice, _ = self.add("alice")
        self.server.remove(alice, "disconnected")
        self.add("ALICE")
        self.assertEqual(list(self.server.members), ["alice"])

    def test_say_no_echo(self) -> None:
        """Others in the room get the message; the sender gets nothing."""
        alice, alice_out = self.add("alice")
        _, bob_out = self.add("bob")
        alice_out.lines()
        self.server.say(alice, "hello")
        self.assertEqual(bob_out.lines(), ["[%s] alice: hello" % self.stamp])
        self.assertEqual(alice_out.lines(), [])

    def test_say_same_bytes_for_everyone(self) -> None:
        """One message event, encoded once, reaches every other member."""
        alice, _ = self.add("alice")
        outs = [self.add("u%d" % i)[1] for i in range(5)]
        self.server.say(alice, "hi")
        events = [out.events[-1] for out in outs]
        self.assertIsInstance(events[0], Message)
        self.assertTrue(all(event is events[0] for event in events))

    def test_join_notices(self) -> None:
        """The old room sees the leave, the new one the join; the mover sees who is there."""
        alice, alice_out = self.add("alice")
        bob, bob_out = self.add("bob")
        carol, carol_out = self.add("carol")
        self.server.join(carol, "#dev")
        for out in (alice_out, bob_out, carol_out):
            out.lines()
        self.server.join(alice, "DEV")
        self.assertEqual(bob_out.lines()[-1], "[%s] *** alice left #lobby ***" % self.stamp)
        self.assertEqual(carol_out.lines(), ["[%s] *** alice joined #dev ***" % self.stamp])
        self.assertEqual(alice_out.lines(), ["You are now in #dev.", "Users in #dev (2): alice, carol"])
        self.assertIs(alice.room, self.server.rooms["dev"])

    def test_join_same_room(self) -> None:
        alice, _ = self.add("alice")
        self.assertRaises(ChatError, self.server.join, alice, "#Lobby")

    def test_empty_room_disappears_lobby_stays(self) -> None:
        alice, _ = self.add("alice")
        self.server.join(alice, "tmp")
        self.assertIn("tmp", self.server.rooms)
        self.server.leave(alice)
        self.assertNotIn("tmp", self.server.rooms)
        self.server.remove(alice, "quit")
        self.assertEqual(list(self.server.rooms), [LOBBY])

    def test_leave_in_lobby(self) -> None:
        alice, _ = self.add("alice")
        self.assertRaises(ChatError, self.server.leave, alice)

    def test_history_replayed_on_join(self) -> None:
        """Joining shows the last few messages of the room, marked as history."""
        alice, _ = self.add("alice")
        self.server.join(alice, "dev")
        for i in range(5):
            self.server.say(alice, "m%d" % i)
        bob, bob_out = self.add("bob")
        self.server.join(bob, "dev")
        out = bob_out.lines()
        self.assertEqual(out[2], "--- recent messages in #dev ---")
        self.assertTrue(out[3].endswith("] alice: m2"), out)
        self.assertTrue(out[5].endswith("] alice: m4"), out)
        self.assertEqual(out[6], "--- end of history ---")

    def test_recall(self) -> None:
        alice, alice_out = self.add("alice")
        self.server.say(alice, "one")
        self.server.say(alice, "two", action=True)
        self.server.recall(alice, 0)
        out = alice_out.lines()
        self.assertEqual(out[0], "--- last 2 messages in #lobby ---")
        self.assertRegex(out[1], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice: one$")
        self.assertRegex(out[2], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \* alice two$")

    def test_recall_empty(self) -> None:
        alice, alice_out = self.add("alice")
        self.server.recall(alice, 5)
        self.assertEqual(alice_out.lines(), ["No messages in #lobby yet."])

    def test_private(self) -> None:
        """A private message reaches only its recipient; the sender gets a confirmation."""
        alice, alice_out = self.add("alice")
        _, bob_out = self.add("bob")
        _, carol_out = self.add("carol")
        alice_out.lines()
        bob_out.lines()
        self.server.message(alice, "BOB", "psst")
        self.assertEqual(bob_out.lines(), ["[%s] [PRIVATE] alice: psst" % self.stamp])
        self.assertEqual(alice_out.lines(), ["[%s] [PRIVATE to bob] psst" % self.stamp])
        self.assertEqual(carol_out.lines(), [])
        self.assertEqual(self.history.recent(LOBBY, 10), [])

    def test_private_to_self(self) -> None:
        alice, _ = self.add("alice")
        self.assertRaises(ChatError, self.server.message, alice, "alice", "me")

    def test_message_to_own_room(self) -> None:
        """/msg <room> with the member's room, with or without #, says it there."""
        alice, _ = self.add("alice")
        _, bob_out = self.add("bob")
        self.server.message(alice, "lobby", "a")
        self.server.message(alice, "#LOBBY", "b")
        self.assertEqual([line[11:] for line in bob_out.lines()], ["alice: a", "alice: b"])

    def test_user_wins_over_room(self) -> None:
        """Without #, an online user of the same name as a room gets it privately."""
        alice, _ = self.add("alice")
        dev, dev_out = self.add("dev")
        self.server.join(alice, "dev")
        dev_out.lines()
        self.server.message(alice, "dev", "hi")
        self.assertEqual(dev_out.lines(), ["[%s] [PRIVATE] alice: hi" % self.stamp])

    def test_message_to_other_room(self) -> None:
        alice, _ = self.add("alice")
        bob, _ = self.add("bob")
        self.server.join(bob, "dev")
        error = self.assertRaises(NotInRoom, self.server.message, alice, "#dev", "hi")
        self.assertIn("/join #dev", str(error))
        self.assertRaises(NotInRoom, self.server.message, alice, "dev", "hi")

    def test_message_to_nobody(self) -> None:
        alice, _ = self.add("alice")
        self.assertRaises(NoSuchTarget, self.server.message, alice, "ghost", "hi")
        self.assertRaises(NoSuchTarget, self.server.message, alice, "#ghost", "hi")
        self.assertRaises(NoSuchTarget, self.server.message, alice, "bad!name", "hi")

    def test_users(self) -> None:
        alice, alice_out = self.add("alice")
        bob, _ = self.add("Bob")
        self.add("carol")
        self.server.join(bob, "dev")
        alice_out.lines()
        self.server.users(alice, everyone=False)
        self.server.users(alice, everyone=True)
        self.assertEqual(alice_out.lines(), [
            "Users in #lobby (2): alice, carol",
            "Users online (3): alice (#lobby), Bob (#dev), carol (#lobby)",
        ])

    def test_rooms(self) -> None:
        alice, alice_out = self.add("alice")
        bob, _ = self.add("bob")
        self.server.join(bob, "zoo")
        self.server.join(alice, "art")
        alice_out.lines()
        self.server.room_list(alice)
        self.assertEqual(alice_out.lines(), ["Rooms (3): #lobby (0), #art (1), #zoo (1)"])

    def test_remove_announces_once(self) -> None:
        alice, _ = self.add("alice")
        _, bob_out = self.add("bob")
        self.server.remove(alice, "quit (bye)")
        self.server.remove(alice, "disconnected")
        self.assertEqual(bob_out.lines(), ["[%s] *** alice quit (bye) ***" % self.stamp])
        self.assertNotIn(alice, self.server.lobby.members)

    def test_shutdown(self) -> None:
        """Everyone is told and closed; wait_empty fires once they are gone."""
        alice, alice_out = self.add("alice")
        bob, bob_out = self.add("bob")
        alice_out.lines()
        self.assertEqual(self.server.shutdown(), 2)
        self.assertEqual(alice_out.lines(), ["*** Server shutting down ***"])
        self.assertTrue(alice_out.closed and bob_out.closed)
        waiting = self.server.wait_empty()
        self.assertNoResult(waiting)
        self.server.remove(alice, "disconnected")
        self.assertEqual(bob_out.lines(), ["*** Server shutting down ***"])  # no departures
        self.server.remove(bob, "disconnected")
        self.assertIsNone(self.successResultOf(waiting))

    def test_stamp_follows_clock(self) -> None:
        alice, _ = self.add("alice")
        _, bob_out = self.add("bob")
        self.clock.advance(3661)
        self.server.say(alice, "later")
        self.assertEqual(bob_out.lines(), ["[%s] alice: later" % clock_stamp(self.clock.seconds())])

    def test_history_entries(self) -> None:
        """Room messages are kept with room, sender, text and time."""
        alice, _ = self.add("alice")
        self.server.say(alice, "kept")
        self.assertEqual(self.history.recent(LOBBY, 5),
                         [Entry(LOBBY, "alice", "kept", self.clock.seconds(), False)])
