"""Tests for the chat domain, L{twisted_chat.domain.server}."""

from __future__ import annotations

import json
import os
import time

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.domain.bus import LocalBus
from twisted_chat.domain.directory import LocalDirectory
from twisted_chat.domain.events import Entry, Error, Message, Notice, Private, TimeZone, Users
from twisted_chat.domain.events import History as HistoryEvent
from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.errors import BadName, ChatError, NameTaken, NoSuchTarget, NotInRoom
from twisted_chat.frontends.line.render import lines as line_lines
from twisted_chat.frontends.web.render import json_text, to_json
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
        self.assertEqual(alice_out.lines(),
                         ["You are now in #dev.", "Users in #dev (2): alice, carol"])
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

    def test_recall_in_time_order(self) -> None:
        """
        A line stored late with its original time (a cluster's, said during
        a Redis outage) is shown where it was said, not where it arrived.
        """
        alice, alice_out = self.add("alice")
        now = self.clock.seconds()
        self.server.history.append(Entry(LOBBY, "alice", "second", now + 2))
        self.server.history.append(Entry(LOBBY, "bob", "first, late", now + 1))
        self.server.history.append(Entry(LOBBY, "alice", "third", now + 3))
        self.server.recall(alice, 0)
        out = alice_out.lines()
        self.assertEqual([line.split("] ", 1)[1] for line in out[1:4]],
                         ["bob: first, late", "alice: second", "alice: third"])

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
        self.assertEqual(line_lines(event), ["Times are UTC+05:30 (the server's time zone)."])
        self.assertEqual(to_json(event), {
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
            data = json.loads(json_text(event))
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
        self.assertEqual(alice.rooms, ())
        self.assertNotIn("dev", self.server.rooms)
        for call in (lambda: self.server.users(alice, False), lambda: self.server.say(alice, "x"),
                     lambda: self.server.recall(alice, 5),
                     lambda: self.server.search(alice, "x")):
            error = self.assertRaises(NotInRoom, call)
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
        self.assertEqual(alice.rooms, ())
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
        self.assertEqual(line_lines(event),
                         ["Users online (2): alice (#lobby, #dev), Bob (#lobby)"])
        self.assertEqual(to_json(event)["users"], [
            {"name": "alice", "room": LOBBY, "rooms": [LOBBY, "dev"]},
            {"name": "Bob", "room": LOBBY, "rooms": [LOBBY]},
        ])
        alice_out.events.clear()
        self.server.users(alice, everyone=False)  # one room's list: unchanged
        self.assertEqual(to_json(alice_out.events[0])["users"],
                         [{"name": "alice", "room": LOBBY}, {"name": "Bob", "room": LOBBY}])

    def test_rooms_count_members_of_several(self) -> None:
        alice, alice_out = self.add("alice", "dev")
        self.add("bob", "dev")
        alice_out.events.clear()
        self.server.room_list(alice)
        self.assertEqual(alice_out.events[0].rooms, [(LOBBY, 2), ("dev", 2)])


class BusTests(SynchronousTestCase):
    """L{LocalBus} delivers to this process's members of a room, or one member."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = ChatServer(MemoryHistory(), self.clock)
        self.bus = self.server.bus
        self.people = {}
        for name, rooms in [("alice", ["dev", "ops"]), ("bob", ["dev"]), ("carol", ["ops"])]:
            participant = FakeParticipant()
            member = self.successResultOf(self.server.claim(name, participant))
            for room in rooms:
                self.server.join(member, room, move=False)
            self.people[name] = (member, participant)
        for _, participant in self.people.values():
            participant.events.clear()

    def received(self, name: str) -> list[object]:
        events = list(self.people[name][1].events)
        self.people[name][1].events.clear()
        return events

    def test_is_local(self) -> None:
        self.assertIsInstance(self.bus, LocalBus)

    def test_publish(self) -> None:
        event = Notice("dev", "x", 0.0, "00:00:00")
        self.bus.publish("dev", event, exclude=self.people["bob"][0])
        self.assertEqual(self.received("alice"), [event])
        self.assertEqual(self.received("bob"), [])
        self.assertEqual(self.received("carol"), [])
        self.bus.publish("nowhere", event)  # no such room: nobody, no error
        self.assertEqual([self.received(n) for n in self.people], [[], [], []])

    def test_publish_once_first_pair_wins(self) -> None:
        dev = Notice("dev", "in dev", 0.0, "00:00:00")
        ops = Notice("ops", "in ops", 0.0, "00:00:00")
        self.bus.publish_once([("nowhere", dev), ("dev", dev), ("ops", ops)])
        self.assertEqual(self.received("alice"), [dev])
        self.assertEqual(self.received("bob"), [dev])
        self.assertEqual(self.received("carol"), [ops])
        self.bus.publish_once([("dev", dev), ("ops", ops)], exclude=self.people["alice"][0])
        self.assertEqual(self.received("alice"), [])
        self.assertEqual(self.received("carol"), [ops])

    def test_private(self) -> None:
        event = Private("bob", "alice", "psst", 0.0, "00:00:00")
        self.assertTrue(self.bus.private("alice", event))
        self.assertEqual(self.received("alice"), [event])
        self.assertFalse(self.bus.private("nobody", event))


class RecordingBus(LocalBus):
    """A local bus that notes each call, as a backplane's bus would see them."""

    calls: list[str]

    def publish(self, room_key, event, exclude=None):  # type: ignore[no-untyped-def]
        self.calls.append("publish %s %s" % (room_key, type(event).__name__))

    def publish_once(self, pairs, exclude=None):  # type: ignore[no-untyped-def]
        self.calls.append("publish_once %s" % ",".join(key for key, _ in pairs))

    def private(self, recipient_key, event):  # type: ignore[no-untyped-def]
        self.calls.append("private %s" % recipient_key)
        return True


class BusSeamTests(SynchronousTestCase):
    """Every fan-out of the domain goes through the bus it is given, nothing around it."""

    def test_everything_through_the_bus(self) -> None:
        calls: list[str] = []

        def make(rooms, members):  # type: ignore[no-untyped-def]
            bus = RecordingBus(rooms, members)
            bus.calls = calls
            return bus

        server = ChatServer(MemoryHistory(), Clock(), bus=make)
        people = {}
        for name in ("alice", "bob"):
            participant = FakeParticipant()
            people[name] = self.successResultOf(server.claim(name, participant)), participant
            server.join(people[name][0], LOBBY)
        alice, alice_out = people["alice"]
        _, bob_out = people["bob"]
        bob_out.events.clear()
        server.join(alice, "dev", move=False)
        server.say(alice, "hi", room="dev")
        server.say(alice, "hello")
        server.part(alice, "dev")
        server.message(alice, "bob", "psst")
        server.remove(alice, "quit")
        self.assertEqual(calls, [
            "publish lobby Notice", "publish lobby Notice",  # the two logins
            "publish dev Notice", "publish dev Message", "publish lobby Message",
            "publish dev Notice", "private bob", "publish_once lobby",
        ])
        # the recording bus delivered nothing: so nothing went around it
        self.assertEqual(bob_out.events, [])
        self.assertEqual([type(e).__name__ for e in alice_out.events],
                         ["TimeZone", "Users", "History", "Joined", "Users", "History",
                          "Private"])


class DirectoryTests(SynchronousTestCase):
    """L{LocalDirectory}: names, where everyone is, and the rooms."""

    def setUp(self) -> None:
        self.server = ChatServer(MemoryHistory(), Clock())
        self.directory = self.server.directory

    def member(self, name: str, *rooms: str) -> Member:
        member = self.successResultOf(self.server.claim(name, FakeParticipant()))
        for room in rooms:
            self.server.join(member, room, move=False)
        return member

    def test_is_local(self) -> None:
        self.assertIsInstance(self.directory, LocalDirectory)

    def test_claim(self) -> None:
        member = Member(FakeParticipant())
        self.assertIs(self.successResultOf(self.directory.claim("Alice", member)), member)
        self.assertEqual((member.name, member.key), ("Alice", "alice"))
        self.assertIs(self.directory.find("ALICE"), member)
        self.assertIs(self.server.members["alice"], member)
        taken = self.failureResultOf(self.directory.claim("alice", Member(FakeParticipant())),
                                     NameTaken)
        self.assertEqual(str(taken.value), "the name alice is taken; pick another")
        self.failureResultOf(self.directory.claim("no spaces", Member(FakeParticipant())),
                             BadName)
        self.directory.release(Member(FakeParticipant(), "alice", "alice"))  # not the holder
        self.assertIs(self.directory.find("alice"), member)
        self.directory.release(member)
        self.assertIsNone(self.directory.find("alice"))

    def test_queries(self) -> None:
        self.member("bob", LOBBY)
        self.member("Alice", "dev", LOBBY)
        self.member("carol")  # in no room yet
        self.assertEqual(self.directory.everyone(),
                         [("Alice", ["dev", LOBBY]), ("bob", [LOBBY]), ("carol", [])])
        self.assertEqual(self.directory.rooms(), [(LOBBY, 2), ("dev", 1)])
        self.assertEqual(self.directory.members(LOBBY), ["Alice", "bob"])
        self.assertEqual(self.directory.members("nowhere"), [])

    def test_users_all_member_in_no_room(self) -> None:
        alice = self.member("alice", LOBBY)
        self.member("irc")
        out = alice.participant
        self.server.users(alice, everyone=True)
        [event] = out.events[-1:]
        self.assertIsInstance(event, Users)
        self.assertEqual(line_lines(event), ["Users online (2): alice (#lobby), irc"])
        self.assertEqual(to_json(event)["users"][1], {"name": "irc", "room": "", "rooms": []})


class PendingHistory(MemoryHistory):
    """A store whose reads answer when the test says (a store on a thread, or shared)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[Deferred[list[Entry]], list[Entry]]] = []

    def recent(self, room: str, limit: int) -> Deferred[list[Entry]]:
        d: Deferred[list[Entry]] = Deferred()
        self.reads.append((d, self.recent_now(room, limit)))
        return d

    def answer(self) -> None:
        d, entries = self.reads.pop(0)
        d.callback(entries)


class BrokenHistory(MemoryHistory):
    """A store whose reads fail: a fault (C{RuntimeError}) or a refusal (a ChatError)."""

    def recent(self, room: str, limit: int) -> Deferred[list[Entry]]:
        return fail(RuntimeError("disk on fire"))

    def search(self, room: str, words: str, limit: int) -> Deferred[list[Entry]]:
        return fail(ChatError("search is not available here"))


class AsyncHistoryTests(SynchronousTestCase):
    """History reads are Deferreds: the domain sends what they find when they fire."""

    def make(self, history: MemoryHistory) -> ChatServer:
        clock = Clock()
        clock.advance(1_700_000_000)
        return ChatServer(history, clock, replay=3)

    def test_join_order_with_a_late_store(self) -> None:
        history = PendingHistory()
        server = self.make(history)
        history.append(Entry("lobby", "old", "said before", 1.0))
        participant = FakeParticipant()
        alice = self.successResultOf(server.claim("alice", participant))
        server.join(alice, LOBBY)
        self.assertEqual([type(e).__name__ for e in participant.events], ["TimeZone", "Users"])
        history.answer()
        self.assertEqual([type(e).__name__ for e in participant.events],
                         ["TimeZone", "Users", "History"])
        self.assertEqual(participant.events[-1].entries, [Entry("lobby", "old", "said before",
                                                               1.0)])

    def test_late_answer_after_leaving(self) -> None:
        """A read that answers after the member went is dropped quietly."""
        history = PendingHistory()
        server = self.make(history)
        participant = FakeParticipant()
        alice = self.successResultOf(server.claim("alice", participant))
        server.join(alice, LOBBY)
        server.remove(alice, "quit")
        participant.events.clear()
        history.answer()
        self.assertEqual(participant.events, [])

    def test_failed_read_is_one_error(self) -> None:
        server = self.make(BrokenHistory())
        participant = FakeParticipant()
        alice = self.successResultOf(server.claim("alice", participant))
        server.join(alice, LOBBY)
        self.assertEqual(participant.lines(), [
            "Times are %s (the server's time zone)."
            % zone_name(utc_offset(server.clock.seconds())),
            "Users in #lobby (1): alice",
            "ERROR the server could not read the history; try again later"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        server.recall(alice, 5)
        self.assertEqual(participant.lines(),
                         ["ERROR the server could not read the history; try again later"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_refused_search_is_one_error_not_logged(self) -> None:
        server = self.make(BrokenHistory())
        participant = FakeParticipant()
        alice = self.successResultOf(server.claim("alice", participant))
        server.join(alice, LOBBY)
        self.flushLoggedErrors(RuntimeError)
        participant.events.clear()
        logged: list[dict[str, object]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        server.search(alice, "deploy")
        self.assertEqual(participant.events, [Error("search is not available here")])
        self.assertEqual([e for e in logged if e.get("log_failure")], [])


class SlowDirectory(LocalDirectory):
    """A directory whose claims answer when the test says (a cluster's would)."""

    pending: list[tuple[Deferred[Member], str, Member]]

    def claim(self, name: str, member: Member) -> Deferred[Member]:
        d: Deferred[Member] = Deferred()
        self.pending.append((d, name, member))
        return d

    def answer(self) -> None:
        d, name, member = self.pending.pop(0)
        super().claim(name, member).chainDeferred(d)


class PendingClaimTests(SynchronousTestCase):
    """A name claim that completes later holds the session's input meanwhile."""

    def setUp(self) -> None:
        self.world = World()
        server = self.world.server
        self.directory = SlowDirectory(server.rooms, server.members, LOBBY)
        self.directory.pending = []
        server.directory = self.directory

    def test_input_held_until_claimed(self) -> None:
        bob, bob_out = self.world.connect()
        bob.dataReceived(b"x\r\nbob\r\n")
        self.directory.answer()
        alice, alice_out = self.world.connect()
        alice.dataReceived(b"x\r\nalice\r\nhello\r\n")
        self.assertTrue(alice.paused)
        self.assertNotIn(b"Welcome, alice", alice_out.value())
        lines(bob_out)
        self.directory.answer()
        self.assertFalse(alice.paused)
        out = lines(alice_out)
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.", out)
        self.assertIn("Users in #lobby (2): alice, bob", out)
        self.assertTrue(lines(bob_out)[-1].endswith("alice: hello"))

    def test_refused_later(self) -> None:
        bob, _ = self.world.connect()
        bob.dataReceived(b"x\r\nbob\r\n")
        self.directory.answer()
        alice, alice_out = self.world.connect()
        alice.dataReceived(b"x\r\nBOB\r\n")
        lines(alice_out)
        self.directory.answer()
        self.assertEqual(lines(alice_out),
                         ["ERROR the name BOB is taken; pick another", "Username:"])
        self.assertFalse(alice.paused)
        alice.dataReceived(b"alice\r\n")
        self.directory.answer()
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.",
                      lines(alice_out))

    def test_gone_before_the_answer(self) -> None:
        """The connection closes while the claim waits: the name is freed when it comes."""
        alice, _ = self.world.connect()
        alice.dataReceived(b"x\r\nalice\r\n")
        alice.connectionLost(Failure(ConnectionError()))
        self.directory.answer()
        self.assertEqual(self.world.server.members, {})
        self.assertEqual(self.world.server.lobby.members, {})
