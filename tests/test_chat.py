"""Tests for the chat domain, L{twisted_chat.domain.server}."""

from __future__ import annotations

import json
import os
import time

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.errors import ChatError, NameTaken, NoSuchTarget, NotInRoom
from twisted_chat.domain.events import Entry, Message, Notice, Private, TimeZone
from twisted_chat.domain.events import History as HistoryEvent
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.text import clock_stamp, utc_offset, zone_name

from .helpers import FakeParticipant, World, fired, lines


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
        member = self.successResultOf(self.server.claim(name, participant))
        self.server.join(member, LOBBY)
        participant.lines()
        return member, participant

    def test_claim_unique_case_insensitive(self) -> None:
        self.add("Alice")
        error = self.failureResultOf(
            self.server.claim("alice", FakeParticipant()), NameTaken).value
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
        self.assertEqual(fired(self.history.recent(LOBBY, 10)), [])

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
        self.assertEqual(fired(self.history.recent(LOBBY, 5)),
                         [Entry(LOBBY, "alice", "kept", self.clock.seconds(), False)])


class SaidForYouTests(SynchronousTestCase):
    """What a telnet user sees of lines the server says for them (issue 12 items 14-16)."""

    def setUp(self) -> None:
        self.world = World()
        self.alice, self.alice_out = self.world.login("alice")
        self.bob, self.bob_out = self.world.login("bob")
        lines(self.alice_out)

    def test_shortcuts_shown_to_sender(self) -> None:
        """C{:)}, C{:(}, C{:mytime} and C{:+1hr} tell the sender what the room saw."""
        now = self.world.clock.seconds()
        said = {":)": "[feeling happy]", ":(": "[feeling sad]",
                ":mytime": time.ctime(now), ":+1hr": time.ctime(now + 3600)}
        for line, text in said.items():
            self.bob.dataReceived(line.encode() + b"\r\n")
            self.assertEqual(lines(self.bob_out), ["You said: " + text], line)
            self.assertEqual([out[11:] for out in lines(self.alice_out)], ["bob: " + text])

    def test_ordinary_messages_not_echoed(self) -> None:
        """A message, an escaped shortcut and C{/me} get no echo (SPEC 2.2)."""
        self.bob.dataReceived(b"hello\r\n\\:)\r\n/me waves\r\n")
        self.assertEqual(lines(self.bob_out), [])
        self.assertEqual([out[11:] for out in lines(self.alice_out)],
                         ["bob: hello", "bob: :)", "* bob waves"])

    def test_invisible_message_not_sent(self) -> None:
        """A line of zero-width or bidi characters is empty: nobody gets a blank line."""
        for text in ("\u200b\u200b\u200b", "\u202e\u2066\u2069", "\ufeff \u2060", "\u3164"):
            self.bob.dataReceived(text.encode() + b"\r\n")
            self.bob.dataReceived(b"/me " + text.encode() + b"\r\n")
        self.assertEqual(lines(self.alice_out), [])
        self.assertEqual(fired(self.world.history.recent("lobby", 10)), [])
        lines(self.bob_out)
        self.bob.dataReceived("/msg alice \u3164\u200b\r\n".encode())
        self.assertEqual(lines(self.bob_out), ["ERROR that message is empty"])
        self.assertEqual(lines(self.alice_out), [])

    def test_format_characters_removed_for_others(self) -> None:
        """A bidi override cannot reorder what the room sees."""
        self.bob.dataReceived("see \u202etxt.exe\u202c here\r\n".encode())
        self.assertEqual(lines(self.alice_out)[0][11:], "bob: see txt.exe here")

    def test_latin1_becomes_replacement_character(self) -> None:
        """Bytes that are not UTF-8 reach others as U+FFFD (SPEC 2, docs/PROTOCOL.md)."""
        self.bob.dataReceived("caf\u00e9\r\n".encode("latin-1"))
        self.assertEqual(lines(self.alice_out)[0][11:], "bob: caf\ufffd")

    def test_zone_said_at_login(self) -> None:
        """Right after the welcome line, once: the server's offset from UTC."""
        carol, carol_out = self.world.connect()
        carol.dataReceived(b"x\r\ncarol\r\n")
        out = lines(carol_out)
        welcome = out.index("Welcome, carol! You are in #lobby. Type /help for commands.")
        offset = utc_offset(self.world.clock.seconds())
        self.assertEqual(out[welcome + 1], "Times are %s (the server's time zone)."
                         % zone_name(offset))
        carol.dataReceived(b"/join dev\r\n/leave\r\n")
        self.assertFalse([line for line in lines(carol_out) if line.startswith("Times are")])

    def test_zone_follows_tz(self) -> None:
        """The offset is the server's local one (TZ), at the time of login."""
        old = os.environ.get("TZ")
        os.environ["TZ"] = "XST-05:30"  # POSIX form: no tz database needed

        def restore() -> None:
            if old is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = old
            time.tzset()

        self.addCleanup(restore)
        time.tzset()
        event = TimeZone(utc_offset(self.world.clock.seconds()))
        self.assertEqual(event.lines(), ["Times are UTC+05:30 (the server's time zone)."])
        self.assertEqual(event.to_json(), {
            "type": "info", "text": "Times are UTC+05:30 (the server's time zone).",
            "utc_offset": 19800})

    def test_json_events_carry_epoch_time(self) -> None:
        """Messages, notices and private messages carry C{time}: seconds since the epoch."""
        now = self.world.clock.seconds()
        entry = Entry("lobby", "bob", "hi", now)
        events = [Message(entry, "00:00:00"), Notice("lobby", "x", now, "00:00:00"),
                  Private("bob", "alice", "hi", now, "00:00:00"),
                  HistoryEvent("lobby", [entry], replay=True)]
        for event in events:
            data = json.loads(event.json_text)
            data = data["messages"][0] if "messages" in data else data
            self.assertEqual(data["time"], now, event)


class ManyRoomsTests(SynchronousTestCase):
    """A member may be in several rooms (an IRC JOIN adds one); /join still moves."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.history = MemoryHistory()
        self.server = ChatServer(self.history, self.clock, replay=3)
        self.stamp = clock_stamp(self.clock.seconds())

    def add(self, name: str, *rooms: str) -> tuple[Member, FakeParticipant]:
        """A member in the lobby and then (added, not moved) C{rooms}; output cleared."""
        participant = FakeParticipant()
        member = self.successResultOf(self.server.claim(name, participant))
        self.server.join(member, LOBBY)
        for room in rooms:
            self.server.join(member, room, move=False)
        participant.lines()
        return member, participant

    def test_join_adds_a_room(self) -> None:
        alice, alice_out = self.add("alice")
        _, bob_out = self.add("bob")
        alice_out.lines()
        self.server.join(alice, "#Dev", move=False)
        self.assertEqual([room.name for room in alice.rooms], [LOBBY, "dev"])
        self.assertIs(alice.room, self.server.lobby)  # the current room stays
        self.assertEqual(alice_out.lines(), ["You are now in #dev.", "Users in #dev (1): alice"])
        self.assertEqual(bob_out.lines(), [])  # the lobby hears nothing: alice is still there
        self.assertEqual(self.server.rooms["dev"].members, {alice: None})
        error = self.assertRaises(ChatError, self.server.join, alice, "dev", move=False)
        self.assertEqual(str(error), "you are already in #dev")
        self.assertRaises(ChatError, self.server.join, alice, "lobby")

    def test_move_leaves_only_the_current_room(self) -> None:
        alice, _ = self.add("alice", "dev")
        self.server.join(alice, "ops")
        self.assertEqual([room.name for room in alice.rooms], ["dev", "ops"])
        self.assertIs(alice.room, self.server.rooms["ops"])

    def test_say_to_one_of_the_rooms(self) -> None:
        alice, alice_out = self.add("alice", "dev")
        _, bob_out = self.add("bob")
        _, carol_out = self.add("carol", "dev")
        for out in (alice_out, bob_out, carol_out):
            out.lines()
        self.server.say(alice, "in dev", room="dev")
        self.assertEqual(carol_out.lines(), ["[%s] alice: in dev" % self.stamp])
        self.assertEqual(bob_out.lines(), [])
        self.server.message(alice, "#dev", "again")
        self.assertEqual(carol_out.lines(), ["[%s] alice: again" % self.stamp])
        self.assertEqual([e.text for e in fired(self.history.recent("dev", 5))],
                         ["in dev", "again"])
        error = self.assertRaises(NotInRoom, self.server.say, alice, "x", room="ops")
        self.assertEqual(str(error), "you are not in #ops (/join #ops first)")
        self.assertEqual(alice_out.lines(), [])

    def test_part_one_of_several(self) -> None:
        alice, alice_out = self.add("alice", "dev")
        _, carol_out = self.add("carol", "dev")
        _, bob_out = self.add("bob")
        for out in (alice_out, carol_out, bob_out):
            out.lines()
        self.server.part(alice, "dev", "lunch")
        self.assertEqual(carol_out.lines(), ["[%s] *** alice left #dev (lunch) ***" % self.stamp])
        self.assertEqual(bob_out.lines(), [])
        self.assertEqual(list(alice.rooms), [self.server.lobby])
        self.assertEqual(alice_out.lines(), [])
        error = self.assertRaises(NotInRoom, self.server.part, alice, "dev")
        self.assertEqual(str(error), "you are not in #dev")
        self.assertRaises(NotInRoom, self.server.part, alice, "nowhere")

    def test_part_current_room_of_many(self) -> None:
        """The current room goes to the next room joined; with none left, none."""
        alice, _ = self.add("alice", "dev")
        self.server.part(alice, LOBBY, to_lobby=False)
        self.assertIs(alice.room, self.server.rooms["dev"])
        self.server.part(alice, "dev", to_lobby=False)
        self.assertIsNone(alice.room)
        self.assertEqual(alice.rooms, {})
        self.assertNotIn("dev", self.server.rooms)
        error = self.assertRaises(NotInRoom, self.server.users, alice, False)
        self.assertEqual(str(error), "you are in no room (/join <room> first)")
        self.server.join(alice, "dev", move=False)
        self.assertIs(alice.room, self.server.rooms["dev"])

    def test_one_room_member_parts_to_the_lobby(self) -> None:
        """A telnet or browser member parting its only room goes back to #lobby, like /leave."""
        alice, alice_out = self.add("alice")
        _, bob_out = self.add("bob")
        self.server.join(alice, "dev")
        alice_out.lines()
        bob_out.lines()
        self.server.part(alice, "dev", "bye")
        self.assertIs(alice.room, self.server.lobby)
        self.assertEqual(list(alice.rooms), [self.server.lobby])
        self.assertEqual(alice_out.lines(), ["You are now in #lobby.",
                                             "Users in #lobby (2): alice, bob"])
        self.assertEqual(bob_out.lines(), ["[%s] *** alice joined #lobby ***" % self.stamp])
        error = self.assertRaises(ChatError, self.server.part, alice, LOBBY)
        self.assertEqual(str(error), "you are already in #lobby (use /join <room> to move)")

    def test_quit_told_once_per_recipient(self) -> None:
        """Someone sharing several rooms with the leaver gets one notice, not one per room."""
        alice, _ = self.add("alice", "dev", "ops")
        _, bob_out = self.add("bob", "dev", "ops")
        carol, carol_out = self.add("carol")
        self.server.join(carol, "ops")
        carol_out.lines()
        _, dave_out = self.add("dave")  # only in the lobby
        for out in (bob_out, carol_out, dave_out):
            out.lines()
        self.server.remove(alice, "quit")
        self.assertEqual(bob_out.lines(), ["[%s] *** alice quit ***" % self.stamp])
        self.assertEqual(carol_out.lines(), ["[%s] *** alice quit ***" % self.stamp])
        self.assertEqual(dave_out.lines(), ["[%s] *** alice quit ***" % self.stamp])
        self.assertEqual(alice.rooms, {})
        self.assertIsNone(alice.room)
        self.assertNotIn(alice, self.server.rooms["dev"].members)
        self.assertNotIn(alice, self.server.lobby.members)

    def test_quit_notice_names_the_first_shared_room(self) -> None:
        alice, _ = self.add("alice", "dev", "ops")
        bob, bob_out = self.add("bob", "ops")
        self.server.part(bob, LOBBY, to_lobby=False)
        bob_out.events.clear()
        self.server.remove(alice, "quit")
        [notice] = bob_out.events
        self.assertEqual((notice.room, notice.user, notice.change), ("ops", "alice", "offline"))

    def test_users_all_lists_every_room(self) -> None:
        alice, alice_out = self.add("alice", "dev")
        self.add("Bob")
        alice_out.events.clear()
        self.server.users(alice, everyone=True)
        [event] = alice_out.events
        self.assertEqual(event.lines(), ["Users online (2): alice (#lobby, #dev), Bob (#lobby)"])
        self.assertEqual(event.to_json()["users"], [
            {"name": "alice", "room": LOBBY, "rooms": [LOBBY, "dev"]},
            {"name": "Bob", "room": LOBBY, "rooms": [LOBBY]},
        ])
        alice_out.events.clear()
        self.server.users(alice, everyone=False)  # one room's list: unchanged
        self.assertEqual(alice_out.events[0].to_json()["users"],
                         [{"name": "alice", "room": LOBBY}, {"name": "Bob", "room": LOBBY}])

    def test_rooms_count_members_of_several(self) -> None:
        alice, alice_out = self.add("alice", "dev")
        self.add("bob", "dev")
        alice_out.events.clear()
        self.server.room_list(alice)
        self.assertEqual(alice_out.events[0].rooms, [(LOBBY, 2), ("dev", 2)])
