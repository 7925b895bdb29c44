"""
Tests for moderation in the domain: L{twisted_chat.domain.moderation} and
the moderation methods of L{twisted_chat.domain.server.ChatServer}, driven
by a L{Clock} (expiry, one shared timer).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.auth.cred import Visitor
from twisted_chat.domain.events import Away, Bans, Error, Notice, Topic, Whois
from twisted_chat.domain.moderation import (
    Change,
    Moderation,
    format_duration,
    parse_duration,
    parse_target,
)
from twisted_chat.domain.server import LOBBY, ChatServer, Member
from twisted_chat.errors import (
    BadUsage,
    BannedFromRoom,
    ChatError,
    Muted,
    NeedAccount,
    NoSuchTarget,
    NotInRoom,
    NotOp,
    NotOperator,
    Protected,
)
from twisted_chat.storage.accounts import Account
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.text import clock_stamp, date_stamp

from .helpers import FakeParticipant


class Peer(FakeParticipant):
    """A participant with an address (as every front end has)."""

    def __init__(self, host: str = "192.0.2.7") -> None:
        super().__init__()
        self.host = host

    def peer_host(self) -> str:
        return self.host


class ParsingTests(SynchronousTestCase):
    """Durations and targets."""

    def test_durations(self) -> None:
        self.assertEqual(parse_duration("30s"), 30)
        self.assertEqual(parse_duration("30m"), 1800)
        self.assertEqual(parse_duration("2h"), 7200)
        self.assertEqual(parse_duration("7D"), 7 * 86400)
        self.assertEqual(parse_duration("1w"), 7 * 86400)
        self.assertIsNone(parse_duration("spam"))
        self.assertIsNone(parse_duration("2nd"))  # a reason ("2nd warning")
        self.assertRaises(BadUsage, parse_duration, "9999w")

    def test_bad_durations(self) -> None:
        """A word that looks like a duration but is none is an error, not a reason."""
        for word in ("2x", "-5m", "+5m", "30", "1.5h", "10min", "2hours", "3days"):
            with self.assertRaises(BadUsage, msg=word) as caught:
                parse_duration(word)
            self.assertEqual(str(caught.exception),
                             "%s is not a duration (like 30s, 30m, 2h, 7d, 1w)" % word)
        self.assertRaises(BadUsage, parse_duration, "0m")
        self.assertRaises(BadUsage, parse_duration, "9999w")

    def test_format_duration(self) -> None:
        self.assertEqual(format_duration(45), "45s")
        self.assertEqual(format_duration(600), "10m")
        self.assertEqual(format_duration(7500), "2h 5m")
        self.assertEqual(format_duration(0.2), "0s")

    def test_targets(self) -> None:
        self.assertEqual(parse_target("Bob"), "bob")
        self.assertEqual(parse_target("192.0.2.7"), "192.0.2.7")
        self.assertEqual(parse_target("192.0.2.9/24"), "192.0.2.0/24")
        self.assertEqual(parse_target("2001:DB8::1"), "2001:db8::1")
        self.assertEqual(parse_target("::ffff:192.0.2.7"), "192.0.2.7")
        for bad in ("", "a b", "1.2.3.4/99", "x" * 21, "*!*@*", "fe80::zz"):
            self.assertRaises(BadUsage, parse_target, bad)


class ModerationTestCase(SynchronousTestCase):
    """A server with helpers for accounts, guests and operators."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.server = ChatServer(MemoryHistory(), self.clock)
        self.moderation = self.server.moderation

    def add(self, name: str, room: str = LOBBY, account: bool = False,
            operator: bool = False, host: str = "192.0.2.7") -> tuple[Member, Peer]:
        participant = Peer(host)
        visitor = Visitor(self.server, participant,
                          Account(name, "x", operator) if account or operator else None,
                          operator)
        member = self.successResultOf(self.server.claim(name, participant, visitor))
        self.server.join(member, room)
        participant.events.clear()
        return member, participant

    def notices(self, participant: Peer) -> list[tuple[str | None, str]]:
        found = [(e.change, e.text) for e in participant.events if isinstance(e, Notice)]
        participant.events.clear()
        return found


class ClaimAndOpTests(ModerationTestCase):
    """Claimed rooms, owners and ops."""

    def test_unclaimed_room_has_no_ops(self) -> None:
        alice, _ = self.add("alice", "den", account=True)
        self.assertFalse(self.moderation.is_op(alice, "den"))
        self.assertRaises(NotOp, self.server.kick, alice, "den", "bob")

    def test_claim_makes_owner_an_op(self) -> None:
        alice, out = self.add("alice", "den", account=True)
        self.server.claim_room(alice, "den")
        self.assertTrue(self.moderation.is_op(alice, "den"))
        self.assertEqual(self.notices(out), [("claimed", "alice claimed #den")])
        error = self.assertRaises(ChatError, self.server.claim_room, alice, "den")
        self.assertEqual(str(error), "#den is yours already")

    def test_guest_cannot_claim(self) -> None:
        guest, _ = self.add("guest", "den")
        error = self.assertRaises(NeedAccount, self.server.claim_room, guest, "den")
        self.assertIn("only accounts", str(error))

    def test_lobby_cannot_be_claimed(self) -> None:
        alice, _ = self.add("alice", account=True)
        self.assertRaises(ChatError, self.server.claim_room, alice, LOBBY)

    def test_claim_needs_presence(self) -> None:
        alice, _ = self.add("alice", account=True)
        self.assertRaises(NotInRoom, self.server.claim_room, alice, "den")

    def test_op_and_deop(self) -> None:
        alice, out = self.add("alice", "den", account=True)
        bob, _ = self.add("bob", "den", account=True)
        guest, _ = self.add("guest", "den")
        self.server.claim_room(alice, "den")
        self.server.op(alice, "den", "Bob")
        self.assertTrue(self.moderation.is_op(bob, "den"))
        self.assertRaises(NeedAccount, self.server.op, alice, "den", "guest")
        # an op is not the owner: ops are the owner's to manage
        self.assertRaises(NotOp, self.server.op, bob, "den", "guest")
        self.assertRaises(Protected, self.server.deop, alice, "den", "alice")
        self.server.deop(alice, "den", "bob")
        self.assertFalse(self.moderation.is_op(bob, "den"))
        self.assertRaises(NoSuchTarget, self.server.deop, alice, "den", "bob")
        changes = [change for change, _ in self.notices(out)]
        self.assertEqual(changes[-2:], ["opped", "deopped"])

    def test_operator_is_op_everywhere(self) -> None:
        root, _ = self.add("root", "den", operator=True)
        self.assertTrue(self.moderation.is_op(root, "den"))
        self.assertTrue(self.moderation.is_op(root, "elsewhere"))

    def test_claimed_room_state_outlives_its_members(self) -> None:
        alice, _ = self.add("alice", "den", account=True)
        self.server.claim_room(alice, "den")
        self.server.topic(alice, "den", "dragons")
        self.server.leave(alice)
        self.assertNotIn("den", self.server.rooms)
        self.assertEqual(self.moderation.owner("den"), "alice")
        topic = self.moderation.topic("den")
        assert topic is not None
        self.assertEqual((topic.text, topic.by), ("dragons", "alice"))


class TopicTests(ModerationTestCase):
    """Topics: free in unclaimed rooms, for ops in claimed ones."""

    def test_unclaimed_topic_is_anyones(self) -> None:
        guest, out = self.add("guest", "den")
        self.server.topic(guest, "den", "hello world")
        self.assertEqual(self.notices(out),
                         [("topic", "guest set the topic of #den: hello world")])
        self.server.topic(guest, "den", None)
        self.assertEqual(out.events, [Topic("den", "hello world", "guest", self.clock.seconds())])

    def test_no_topic(self) -> None:
        guest, out = self.add("guest", "den")
        self.server.topic(guest, "den", None)
        self.assertEqual(out.lines(), ["#den has no topic."])

    def test_topic_told_on_join(self) -> None:
        guest, _ = self.add("guest", "den")
        self.server.topic(guest, "den", "hi")
        _, out = self.add("other")
        self.server.join(self.server.members["other"], "den")
        self.assertIn(Topic("den", "hi", "guest", self.clock.seconds()), out.events)

    def test_unclaimed_topic_forgotten_when_empty(self) -> None:
        guest, _ = self.add("guest", "den")
        self.server.topic(guest, "den", "hi")
        self.server.leave(guest)
        self.assertIsNone(self.moderation.topic("den"))
        self.assertEqual(list(self.moderation.rooms()), [])

    def test_claimed_topic_for_ops(self) -> None:
        alice, _ = self.add("alice", "den", account=True)
        guest, _ = self.add("guest", "den")
        self.server.claim_room(alice, "den")
        error = self.assertRaises(NotOp, self.server.topic, guest, "den", "mine")
        self.assertEqual(str(error), "you are not an op in #den")
        self.server.topic(alice, "den", "")
        self.assertIsNone(self.moderation.topic("den"))

    def test_topic_needs_presence(self) -> None:
        guest, _ = self.add("guest")
        self.add("other", "den")
        self.assertRaises(NotInRoom, self.server.topic, guest, "den", "x")

    def test_topic_cut(self) -> None:
        guest, _ = self.add("guest", "den")
        self.server.topic(guest, "den", "x" * 1000)
        topic = self.moderation.topic("den")
        assert topic is not None
        self.assertEqual(len(topic.text), 390)


class KickBanTests(ModerationTestCase):
    """Kicks and bans."""

    def setUp(self) -> None:
        super().setUp()
        self.alice, self.alice_out = self.add("alice", "den", account=True)
        self.server.claim_room(self.alice, "den")
        self.troll, self.troll_out = self.add("troll", "den", host="198.51.100.5")
        self.alice_out.events.clear()

    def test_kick_lands_in_lobby(self) -> None:
        self.server.kick(self.alice, "den", "Troll", "be nice")
        self.assertEqual(self.troll.room, self.server.lobby)
        self.assertIn(("kicked", "troll was kicked from #den by alice (be nice)"),
                      self.notices(self.troll_out))
        self.assertEqual(self.notices(self.alice_out),
                         [("kicked", "troll was kicked from #den by alice (be nice)")])

    def test_kick_multi_room_participant_leaves_only(self) -> None:
        self.troll.participant.multi_room = True  # type: ignore[attr-defined]
        self.server.join(self.troll, "other", move=False)
        self.server.kick(self.alice, "den", "troll")
        self.assertEqual([room.name for room in self.troll.rooms], ["other"])

    def test_kick_nobody(self) -> None:
        self.assertRaises(NoSuchTarget, self.server.kick, self.alice, "den", "ghost")

    def test_kick_by_non_op(self) -> None:
        error = self.assertRaises(NotOp, self.server.kick, self.troll, "den", "alice")
        self.assertEqual(error.numeric, "482")

    def test_op_cannot_kick_operator_or_owner(self) -> None:
        bob, _ = self.add("bob", "den", account=True)
        self.server.op(self.alice, "den", "bob")
        root, _ = self.add("root", "den", operator=True)
        self.assertRaises(Protected, self.server.kick, bob, "den", "root")
        self.assertRaises(Protected, self.server.kick, bob, "den", "alice")
        self.assertRaises(Protected, self.server.ban, bob, "den", "root", None)
        # an operator overrides
        self.server.kick(root, "den", "alice")
        self.assertNotIn(self.alice, self.server.rooms["den"].members)

    def test_ban_by_name_kicks_and_refuses_join(self) -> None:
        self.server.ban(self.alice, "den", "TROLL", None, "spam")
        self.assertEqual(self.troll.room, self.server.lobby)
        error = self.assertRaises(BannedFromRoom, self.server.join, self.troll, "den")
        self.assertEqual(str(error), "you are banned from #den")
        self.assertEqual(error.numeric, "474")
        self.assertIn(("banned", "alice banned troll from #den (spam)"),
                      self.notices(self.alice_out))

    def test_ban_by_address_and_cidr(self) -> None:
        self.server.ban(self.alice, "den", "198.51.100.0/24", 3600)
        self.assertEqual(self.troll.room, self.server.lobby)
        _, other_out = self.add("sock", host="198.51.100.77")
        sock = self.server.members["sock"]
        self.assertRaises(BannedFromRoom, self.server.join, sock, "den")
        self.server.unban(self.alice, "den", "198.51.100.0/24")
        self.server.ban(self.alice, "den", "198.51.100.77", None)
        self.server.join(self.troll, "den")  # .5 is not .77
        self.assertRaises(BannedFromRoom, self.server.join, sock, "den")

    def test_cannot_ban_self(self) -> None:
        self.assertRaises(ChatError, self.server.ban, self.alice, "den", "alice", None)
        self.assertRaises(ChatError, self.server.ban, self.alice, "den", "192.0.2.0/24", None)

    def test_no_bans_in_lobby(self) -> None:
        root, _ = self.add("root", operator=True)
        self.assertRaises(ChatError, self.server.ban, root, LOBBY, "troll", None)

    def test_operator_never_banned_from_rooms(self) -> None:
        self.server.ban(self.alice, "den", "198.51.100.0/24", None)
        root, _ = self.add("root", operator=True, host="198.51.100.1")
        self.server.join(root, "den")
        self.assertIn(root, self.server.rooms["den"].members)

    def test_owner_not_banned_from_own_room(self) -> None:
        """An op's address ban that also covers the owner neither kicks nor locks them out."""
        bob, _ = self.add("bob", "den", account=True, host="198.51.100.9")
        self.server.op(self.alice, "den", "bob")
        self.server.ban(bob, "den", "192.0.2.0/24", None)  # alice's network
        self.assertIn(self.alice, self.server.rooms["den"].members)
        self.server.leave(self.alice)
        self.server.join(self.alice, "den")

    def test_unban_missing(self) -> None:
        error = self.assertRaises(NoSuchTarget, self.server.unban, self.alice, "den", "x")
        self.assertEqual(str(error), "x is not banned from #den")

    def test_timed_ban_expires_with_one_timer(self) -> None:
        self.server.ban(self.alice, "den", "troll", 600)
        self.server.ban(self.alice, "den", "sock", 60)
        self.server.ban(self.alice, "den", "puppet", 7200)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.alice_out.events.clear()
        self.clock.advance(60)
        self.assertEqual(self.notices(self.alice_out),
                         [("unbanned", "the ban on sock in #den expired")])
        self.assertRaises(BannedFromRoom, self.server.join, self.troll, "den")
        self.clock.advance(540)
        self.server.join(self.troll, "den")
        self.assertEqual([ban.target for ban in self.moderation.bans("den")], ["puppet"])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(6600)
        self.assertEqual(self.moderation.bans("den"), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.moderation.ban_count, 0)

    def test_lifted_ban_does_not_expire_a_new_one(self) -> None:
        """A stale timer entry (the ban lifted, then set again longer) lifts nothing."""
        self.server.ban(self.alice, "den", "troll", 60)
        self.server.unban(self.alice, "den", "troll")
        self.server.ban(self.alice, "den", "troll", 600)
        self.clock.advance(61)
        self.assertEqual([ban.target for ban in self.moderation.bans("den")], ["troll"])
        self.clock.advance(540)
        self.assertEqual(self.moderation.bans("den"), [])

    def test_stale_expiries_pruned(self) -> None:
        """Bans set and lifted again and again leave no growing timer table."""
        for _ in range(500):
            self.server.ban(self.alice, "den", "sock", 86400)
            self.server.unban(self.alice, "den", "sock")
        self.assertLessEqual(len(self.moderation._expiries), 65)
        self.server.ban(self.alice, "den", "sock", 60)
        self.clock.advance(60)
        self.assertEqual(self.moderation.bans("den"), [])

    def test_bans_listed(self) -> None:
        self.server.ban(self.alice, "den", "troll", 600, "spam")
        self.server.mute(self.alice, "den", "10.0.0.0/8", None)
        self.troll_out.events.clear()
        self.server.bans(self.troll, "den")
        event = self.troll_out.events[-1]
        assert isinstance(event, Bans)
        self.assertEqual([(b.target, b.by, b.reason) for b in event.bans],
                         [("troll", "alice", "spam")])
        self.assertEqual([b.target for b in event.mutes], ["10.0.0.0/8"])
        self.assertEqual(self.troll_out.lines()[:2],
                         ["Bans in #den (1):",
                          "  troll (by alice, %s, 10m left): spam"
                          % date_stamp(self.clock.seconds())])


class MuteTests(ModerationTestCase):
    """Mutes: the member stays and reads, but cannot speak."""

    def setUp(self) -> None:
        super().setUp()
        self.alice, self.alice_out = self.add("alice", "den", account=True)
        self.server.claim_room(self.alice, "den")
        self.troll, self.troll_out = self.add("troll", "den", host="198.51.100.5")
        self.reader, self.reader_out = self.add("reader", "den")
        self.alice_out.events.clear()

    def test_nothing_checked_without_mutes(self) -> None:
        self.assertEqual(self.moderation.mute_count, 0)
        self.assertIsNone(self.moderation.muted(self.troll, "den"))

    def test_muted_line_reaches_nobody(self) -> None:
        self.server.mute(self.alice, "den", "troll", 600)
        self.reader_out.events.clear()
        self.alice_out.events.clear()
        error = self.assertRaises(Muted, self.server.say, self.troll, "spam")
        self.assertEqual(str(error), "you are muted in #den")
        self.assertEqual(error.numeric, "404")
        self.assertEqual(self.reader_out.events, [])
        self.assertEqual(self.alice_out.events, [])
        self.assertEqual(self.successResultOf(self.server.history.recent("den", 5)), [])
        # still reads
        self.troll_out.events.clear()
        self.server.say(self.alice, "hello")
        stamp = clock_stamp(self.clock.seconds())
        self.assertEqual(self.troll_out.lines(), ["[%s] alice: hello" % stamp])

    def test_mute_expires(self) -> None:
        self.server.mute(self.alice, "den", "troll", 60)
        self.clock.advance(60)
        self.server.say(self.troll, "back")
        self.assertEqual(self.moderation.mute_count, 0)

    def test_unmute(self) -> None:
        self.server.mute(self.alice, "den", "198.51.100.5", None)
        self.assertRaises(Muted, self.server.say, self.troll, "x")
        self.server.unmute(self.alice, "den", "198.51.100.5")
        self.server.say(self.troll, "x")
        self.assertRaises(NoSuchTarget, self.server.unmute, self.alice, "den", "troll")

    def test_room_mute_is_per_room(self) -> None:
        self.server.mute(self.alice, "den", "troll", None)
        self.server.join(self.troll, "elsewhere")
        self.server.say(self.troll, "fine here")

    def test_ops_not_muted_in_their_room(self) -> None:
        root, _ = self.add("root", "den", operator=True, host="203.0.113.1")
        self.server.mute(root, "den", "192.0.2.0/24", None)  # alice's address
        self.server.say(self.alice, "still here")  # the owner is an op
        self.assertRaises(Muted, self.server.say, self.reader, "x")

    def test_gmute_silences_everywhere_but_reads(self) -> None:
        root, root_out = self.add("root", "den", operator=True, host="203.0.113.1")
        self.server.gmute(root, "198.51.100.0/24", 3600)
        self.assertEqual(root_out.lines()[-1], "muted 198.51.100.0/24 on the server for 1h")
        error = self.assertRaises(Muted, self.server.say, self.troll, "x")
        self.assertEqual(str(error), "you are muted on this server (for 1h more)")
        self.assertRaises(Muted, self.server.message, self.troll, "alice", "psst")
        self.server.join(self.troll, "elsewhere")
        self.assertRaises(Muted, self.server.say, self.troll, "x")
        self.server.ungmute(root, "198.51.100.0/24")
        self.server.say(self.troll, "x")

    def test_gmute_of_the_operators_own_network(self) -> None:
        """A teacher mutes the classroom it sits in: the class reads, the teacher speaks."""
        root, root_out = self.add("root", "den", operator=True, host="198.51.100.9")
        self.server.gmute(root, "198.51.100.0/24", 1800)
        self.assertEqual(root_out.lines()[-1],
                         "muted 198.51.100.0/24 on the server for 30m (operators are not muted)")
        self.assertRaises(Muted, self.server.say, self.troll, "x")
        self.server.say(root, "quiet please")

    def test_gmute_refused_for_non_operator(self) -> None:
        error = self.assertRaises(NotOperator, self.server.gmute, self.alice, "troll", None)
        self.assertEqual(error.numeric, "481")


class ServerCommandTests(ModerationTestCase):
    """kill, gban, wall, whois and away."""

    def test_kill(self) -> None:
        root, _ = self.add("root", operator=True)
        troll, troll_out = self.add("troll")
        _, out = self.add("reader")
        self.server.kill(root, "troll", "enough")
        self.assertTrue(troll_out.closed)
        self.assertIn(Error("you were disconnected by root (enough)", "killed"),
                      troll_out.events)
        self.assertNotIn("troll", self.server.members)
        self.assertEqual(self.notices(out),
                         [("offline", "troll was disconnected by root (enough)")])
        self.assertRaises(NotOperator, self.server.kill, self.server.members["reader"],
                          "root", "")

    def test_gban_closes_present_sessions_and_refuses_later(self) -> None:
        root, root_out = self.add("root", operator=True, host="203.0.113.1")
        _, troll_out = self.add("troll", host="198.51.100.5")
        self.server.gban(root, "198.51.100.0/24", None, "spam")
        self.assertTrue(troll_out.closed)
        self.assertNotIn("troll", self.server.members)
        self.assertEqual(root_out.lines()[-1],
                         "banned 198.51.100.0/24 from the server; 1 session closed")
        ban = self.moderation.server_ban("anyone", "198.51.100.9")
        assert ban is not None
        self.assertEqual(ban.reason, "spam")
        self.assertIsNone(self.moderation.server_ban("anyone", "203.0.113.9"))
        self.server.ungban(root, "198.51.100.0/24")
        self.assertIsNone(self.moderation.server_ban("anyone", "198.51.100.9"))

    def test_gban_cannot_hit_self(self) -> None:
        root, _ = self.add("root", operator=True, host="203.0.113.1")
        self.assertRaises(ChatError, self.server.gban, root, "203.0.113.0/24", None)

    def test_wall(self) -> None:
        root, _ = self.add("root", operator=True)
        _, out = self.add("reader", "den")
        self.server.wall(root, "restart at noon")
        self.assertEqual(self.notices(out), [("wall", "[wall] root: restart at noon")])

    def test_whois(self) -> None:
        root, root_out = self.add("root", operator=True)
        bob, bob_out = self.add("bob", "den", account=True, host="198.51.100.5")
        self.clock.advance(30)
        self.server.whois(bob, "root")
        event = bob_out.events[-1]
        assert isinstance(event, Whois)
        self.assertEqual((event.name, event.operator, event.rooms, event.address),
                         ("root", True, [LOBBY], None))
        self.assertEqual(event.idle, 30)
        self.server.whois(root, "bob")
        event = root_out.events[-1]
        assert isinstance(event, Whois)
        self.assertEqual((event.account, event.address), (True, "198.51.100.5"))
        self.assertRaises(NoSuchTarget, self.server.whois, root, "ghost")

    def test_away(self) -> None:
        alice, alice_out = self.add("alice")
        bob, bob_out = self.add("bob")
        self.server.away(bob, "lunch")
        self.server.message(alice, "bob", "hi")
        self.assertEqual(alice_out.events[-1], Away("bob", "lunch"))
        self.assertEqual(alice_out.lines()[-1], "bob is away: lunch")
        self.server.whois(alice, "bob")
        self.assertEqual(alice_out.lines()[-1], "  away: lunch")
        self.server.away(bob, None)
        self.server.message(alice, "bob", "hi")
        self.assertNotIsInstance(alice_out.events[-1], Away)
        self.server.away(bob, "gone")
        self.server.remove(bob, "quit")
        self.assertEqual(self.moderation.away, {})


class ApplyTests(SynchronousTestCase):
    """L{Moderation.apply} is the one entry point; a store sees every change."""

    def test_store_sees_changes_and_reloads(self) -> None:
        recorded: list[Change] = []

        class Store:
            def load(self) -> list[Change]:
                return [Change("ban", "den", "troll", "alice", 1000.0, "", 0.0),
                        Change("topic", "den", "", "alice", None, "hi", 5.0)]

            def record(self, change: Change) -> None:
                recorded.append(change)

            def modlog(self, limit: int) -> list[Change]:
                return recorded[-limit:]

            def close(self) -> None:
                pass

        clock = Clock()
        clock.advance(500)
        moderation = Moderation(clock, Store())
        self.assertEqual(moderation.bans("den"), [])  # nothing until loaded
        moderation.load()
        self.assertEqual([ban.target for ban in moderation.bans("den")], ["troll"])
        topic = moderation.topic("den")
        assert topic is not None
        self.assertEqual(topic.text, "hi")
        self.assertEqual(recorded, [])  # loading records nothing
        clock.advance(500)  # the loaded ban expires on the loaded timer
        self.assertEqual(moderation.bans("den"), [])
        self.assertEqual([(c.kind, c.target, c.reason) for c in recorded],
                         [("unban", "troll", "expired")])

    def test_same_expiry_on_the_server_and_in_a_room(self) -> None:
        """
        A server-wide mute and a room's ending at the same moment (a
        classroom and a troll muted for 10m in the same second) both take
        and both expire: the timer's table never compares a room with none.
        """
        clock = Clock()
        moderation = Moderation(clock)
        for room in (None, "den", None):
            moderation.apply(Change("mute", room, "troll" if room else "192.0.2.0/24",
                                    "root", 600.0, "", 0.0))
        moderation.apply(Change("mute", None, "sock", "root", 600.0, "", 0.0))
        self.assertEqual(len(moderation.mutes(None)), 2)
        self.assertEqual(len(moderation.mutes("den")), 1)
        clock.advance(600)
        self.assertEqual((moderation.mutes(None), moderation.mutes("den")), ([], []))

    def test_unknown_kind(self) -> None:
        self.assertRaises(ValueError, Moderation(Clock()).apply, Change("frobnicate", None))
