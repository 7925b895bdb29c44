"""
Moderation across a cluster (SPEC 8 and 10), on the in-process fake Redis
(tests/fakeredis.py) with a L{Clock}: changes made on one process apply on
every process, actions reach members of other processes, and a process
started late or after Redis lost its data learns the state.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakeredis import FakeRedis
from tests.test_cluster import BEAT, Addressed, Process
from twisted_chat.domain.events import Error, Message, Notice, Topic, Whois
from twisted_chat.errors import BannedFromRoom, ChatError, Muted, NotOp


class ModerationCluster(SynchronousTestCase):

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.redis = FakeRedis(self.clock)
        self.a = Process(self.redis, "a")
        self.b = Process(self.redis, "b")

    def quiet(self, *participants: Addressed) -> None:
        self.redis.pump()
        for participant in participants:
            participant.events.clear()

    def notices(self, participant: Addressed) -> list[tuple[str | None, str]]:
        found = [(e.change, e.text) for e in participant.events if isinstance(e, Notice)]
        participant.events.clear()
        return found

    def state_events(self, process: Process) -> list[dict[str, Any]]:
        """The moderation state entries C{process} put on the stream."""
        found = []
        for _, fields in self.redis.streams["twisted-chat:log"]:
            batch = json.loads(fields[1])
            if batch["n"] == process.node.instance:
                found += [e["change"] for e in batch["e"]
                          if e["k"] == "state" and e["topic"] == "moderation"]
        return found

    def test_every_state_change_applies_everywhere_once(self) -> None:
        """Claim, op, topic, ban, mute (room and server-wide): the same state, stored, on b."""
        a, b = self.a, self.b
        owner, _ = a.user("owner", "den", account=True)
        oper, _ = a.user("oper", operator=True)
        b.user("helper", account=True)
        a.server.claim_room(owner, "den")
        a.server.op(owner, "den", "helper")
        a.server.topic(owner, "den", "welcome")
        a.server.ban(owner, "den", "troll", 3600, "spam")
        a.server.mute(owner, "den", "198.18.0.0/24", None)
        a.server.gban(oper, "10.0.0.9", None, "abuse")
        a.server.gmute(oper, "shouty", 600)
        self.redis.pump()
        mine, theirs = a.server.moderation, b.server.moderation
        self.assertEqual(theirs.snapshot(), mine.snapshot())
        self.assertEqual(theirs.ops("den"), ["owner", "helper"])
        topic = theirs.topic("den")
        assert topic is not None
        self.assertEqual((topic.text, topic.by), ("welcome", "owner"))
        # kept in b's own store, as b's load() would read it after a restart
        self.assertEqual(sorted(map(repr, b.store.load())), sorted(map(repr, a.store.load())))
        self.assertEqual([c.kind for c in b.server.moderation.modlog(10)],
                         ["claim", "op", "topic", "ban", "mute", "ban", "mute"])
        # no loops: b published none of what it applied
        self.assertEqual(len(self.state_events(a)), 7)
        self.assertEqual(self.state_events(b), [])
        # and lifting is replicated too
        a.server.unban(owner, "den", "troll")
        a.server.deop(owner, "den", "helper")
        a.server.ungban(oper, "10.0.0.9")
        self.redis.pump()
        self.assertEqual(theirs.snapshot(), mine.snapshot())
        self.assertEqual(theirs.ban_count, 0)

    def test_ban_on_a_refuses_a_join_on_b_and_kicks_there(self) -> None:
        a, b = self.a, self.b
        owner, owners = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        troll, trolls = b.user("troll", "den", host="203.0.113.9")
        newcomer, _ = b.user("newcomer", host="203.0.113.9")
        _, watchers = b.user("watcher", "den", host="203.0.113.9")
        _, innocents = b.user("innocent", "den")
        self.quiet(owners, trolls, watchers, innocents)
        a.server.ban(owner, "den", "203.0.113.9", None, "spam")  # known on b only
        self.redis.pump()
        # troll (b) was in #den: kicked by b (one notice, for everyone), now in the lobby;
        # watcher (an address match too) likewise
        kicked = [text for change, text in self.notices(owners) if change == "kicked"]
        self.assertEqual(sorted(kicked), ["troll was kicked from #den by owner (banned)",
                                          "watcher was kicked from #den by owner (banned)"])
        self.assertEqual(sorted(text for change, text in self.notices(innocents)
                                if change == "kicked"), kicked)
        self.assertEqual(troll.room, b.server.lobby)
        self.assertEqual(a.server.directory.members("den"), ["innocent", "owner"])
        self.assertRaises(BannedFromRoom, b.server.join, newcomer, "den")

    def test_topic_set_on_a_is_shown_on_b(self) -> None:
        a, b = self.a, self.b
        alice, _ = a.user("alice", "den")
        bob, bobs = b.user("bob")
        _, carols = b.user("carol", "den")
        a.server.topic(alice, "den", "plans for friday")
        self.redis.pump()
        # the notice keeps its actor and detail across (IRC renders TOPIC from them)
        [told] = [e for e in carols.events if isinstance(e, Notice)]
        self.assertEqual((told.change, told.actor, told.detail),
                         ("topic", "alice", "plans for friday"))
        b.server.join(bob, "den")
        self.redis.pump()
        [topic] = [e for e in bobs.events if isinstance(e, Topic)]
        self.assertEqual((topic.text, topic.by), ("plans for friday", "alice"))
        # an operator sets the topic of a room only another process has
        oper, _ = a.user("oper", operator=True)
        b.user("dora", "attic")
        a.server.topic(oper, "attic", "dusty")
        self.redis.pump()
        self.assertEqual(b.server.moderation.topic("attic").text, "dusty")  # type: ignore[union-attr]
        # an unclaimed room's topic is forgotten only once nobody is in it anywhere
        a.server.join(alice, "lobby")
        b.server.join(b.server.members["carol"], "lobby")
        self.redis.pump()
        self.assertIsNotNone(b.server.moderation.topic("den"))
        self.assertIsNotNone(a.server.moderation.topic("den"))
        b.server.join(bob, "lobby")
        self.redis.pump()
        self.assertIsNone(b.server.moderation.topic("den"))
        self.assertIsNone(a.server.moderation.topic("den"))

    def test_muted_on_a_cannot_speak_on_b(self) -> None:
        a, b = self.a, self.b
        owner, owners = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        shouty, shoutys = b.user("shouty", "den")
        _, others = b.user("other", "den")
        a.server.mute(owner, "den", "shouty", 600)
        self.quiet(owners, shoutys, others)
        self.assertRaises(Muted, b.server.say, shouty, "LOUD")
        self.redis.pump()
        self.assertFalse([e for e in owners.events + others.events + shoutys.events
                          if isinstance(e, Message)])
        # the mute lifts itself on both at once: each process tells its own members, once
        self.redis.advance(600.5, step=1)
        self.assertEqual(self.notices(owners),
                         [("unmuted", "the mute on shouty in #den expired")])
        self.assertEqual(self.notices(others),
                         [("unmuted", "the mute on shouty in #den expired")])
        b.server.say(shouty, "better")
        self.redis.pump()
        self.assertEqual([e.entry.text for e in owners.events if isinstance(e, Message)],
                         ["better"])
        self.assertEqual(self.state_events(b), [])  # the expiry was not published

    def test_kick_from_a_of_a_user_on_b(self) -> None:
        a, b = self.a, self.b
        owner, owners = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        bob, bobs = b.user("bob", "den")
        _, carols = b.user("carol", "den")
        self.quiet(owners, bobs, carols)
        a.server.kick(owner, "den", "bob", "enough")
        self.redis.pump()
        told = ("kicked", "bob was kicked from #den by owner (enough)")
        self.assertEqual(self.notices(owners), [told])
        self.assertEqual(self.notices(carols), [told])
        self.assertEqual(self.notices(bobs)[0], told)
        self.assertEqual(bob.room, b.server.lobby)
        self.assertEqual(a.server.directory.members("den"), ["carol", "owner"])
        # a telnet user is not kicked from the lobby, on any process
        self.assertRaises(ChatError, a.server.kick, owner, "lobby", "bob")

    def test_kill_and_gban_of_users_on_b(self) -> None:
        a, b = self.a, self.b
        oper, opers = a.user("oper", operator=True)
        _, victims = b.user("victim")
        _, classroom = b.user("pupil", host="198.51.100.20")
        _, colleague = b.user("colleague", operator=True, host="198.51.100.21")
        a.server.kill(oper, "victim", "bye")
        self.redis.pump()
        self.assertTrue(victims.closed)
        self.assertIn("you were disconnected by oper (bye)",
                      [e.text for e in victims.events if isinstance(e, Error)])
        self.assertIsNone(a.server.directory.find("victim"))
        self.quiet(opers)
        a.server.gban(oper, "198.51.100.0/24", None)
        self.redis.pump()
        self.assertTrue(classroom.closed)
        self.assertFalse(colleague.closed)  # operators are never closed
        self.assertIsNone(a.server.directory.find("pupil"))
        # and the address is refused at connect on b too
        self.assertIsNotNone(b.server.moderation.server_ban(None, "198.51.100.99"))

    def test_wall_reaches_everyone_once(self) -> None:
        a, b = self.a, self.b
        oper, opers = a.user("oper", operator=True)
        _, alices = a.user("alice", "den")
        _, bobs = b.user("bob", "attic")  # a room only b has
        _, carols = b.user("carol")
        self.quiet(opers, alices, bobs, carols)
        a.server.wall(oper, "restart at noon")
        self.redis.pump()
        for participant in (opers, alices, bobs, carols):
            self.assertEqual(self.notices(participant),
                             [("wall", "[wall] oper: restart at noon")])

    def test_whois_and_away_of_a_remote_user(self) -> None:
        a, b = self.a, self.b
        oper, opers = a.user("oper", operator=True)
        alice, alices = a.user("alice")
        bob, _ = b.user("bob", "den", account=True, host="203.0.113.5")
        b.server.away(bob, "lunch")
        self.redis.pump()
        a.server.whois(alice, "bob")
        [whois] = alices.events
        assert isinstance(whois, Whois)
        self.assertEqual((whois.name, whois.account, whois.operator, whois.rooms, whois.away,
                          whois.address), ("bob", True, False, ["den"], "lunch", None))
        self.assertEqual(whois.since, bob.since)
        a.server.whois(oper, "bob")
        self.assertEqual(opers.events[-1].address, "203.0.113.5")  # type: ignore[attr-defined]
        # a private message to the away user gets the away text back, from any process
        alices.events.clear()
        a.server.message(alice, "bob", "hi")
        self.assertEqual([type(e).__name__ for e in alices.events], ["Private", "Away"])
        # operator status is seen from the other process (IRC 313 reads it)
        b.server.whois(bob, "oper")
        self.assertTrue(b.server.directory.find("oper").operator)  # type: ignore[union-attr]
        # an operator now (IRC OPER): the others see it at once
        bob.operator = True  # type: ignore[attr-defined]
        b.server.directory.changed(bob)
        self.redis.pump()
        self.assertTrue(a.server.directory.find("bob").operator)  # type: ignore[union-attr]
        b.server.away(bob, None)
        self.redis.pump()
        self.assertNotIn("bob", a.server.moderation.away)
        b.server.away(bob, "again")
        self.redis.pump()
        b.server.remove(bob, "quit")
        self.redis.pump()
        self.assertNotIn("bob", a.server.moderation.away)

    def test_room_op_checks_use_replicated_state(self) -> None:
        """An op made on a acts on b; a deop on a takes it away on b."""
        a, b = self.a, self.b
        owner, _ = a.user("owner", "den", account=True)
        helper, _ = b.user("helper", "den", account=True)
        b.user("guest", "den")
        a.server.claim_room(owner, "den")
        self.redis.pump()
        self.assertRaises(NotOp, b.server.kick, helper, "den", "guest")
        a.server.op(owner, "den", "helper")
        self.redis.pump()
        b.server.kick(helper, "den", "guest")
        a.server.deop(owner, "den", "helper")
        self.redis.pump()
        self.assertRaises(NotOp, b.server.topic, helper, "den", "mine")

    def test_late_process_catches_up_the_state_without_effects(self) -> None:
        a = self.a
        owner, _ = a.user("owner", "den", account=True)
        oper, _ = a.user("oper", operator=True)
        a.server.claim_room(owner, "den")
        a.server.ban(owner, "den", "troll", None)
        a.server.wall(oper, "old news")
        self.redis.pump()
        c = Process(self.redis, "c")
        self.assertEqual(c.server.moderation.snapshot(), a.server.moderation.snapshot())
        _, dave = c.user("dave")
        self.redis.pump()
        self.assertEqual(self.notices(dave), [])  # the old wall is not told again
        self.assertEqual([ch.kind for ch in c.store.modlog(10)], ["claim", "ban", "wall"])

    def test_redis_lost_its_data_a_new_process_learns_the_state(self) -> None:
        a, b = self.a, self.b
        owner, _ = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        a.server.topic(owner, "den", "kept")
        a.server.mute(owner, "den", "shouty", None)
        self.redis.pump()
        self.redis.stop(flush=True)
        a.server.ban(owner, "den", "troll", None)  # during the outage: queued
        self.redis.start()
        self.redis.pump()
        self.assertIsNotNone(b.server.moderation.state("den").bans.get("troll"))  # type: ignore[union-attr]
        c = Process(self.redis, "c")  # the stream holds none of the earlier changes
        self.redis.pump()
        self.assertEqual(c.server.moderation.snapshot(), a.server.moderation.snapshot())
        # answers to c's hello are for c only: a and b applied nothing twice
        self.assertEqual([ch.kind for ch in b.store.modlog(10)],
                         ["claim", "topic", "mute", "ban"])

    def test_restarted_process_keeps_its_state_and_catches_up(self) -> None:
        """Its own --db (the store) and the stream since its saved position."""
        import os

        from tests.helpers import temp_dir
        from twisted_chat.cluster.node import Positions

        path = os.path.join(temp_dir(self), "b.db")
        a = self.a
        b = Process(self.redis, "b2", positions=Positions(path))
        owner, _ = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        self.redis.pump()
        b.node.stopService()
        self.redis.advance(BEAT)
        a.server.ban(owner, "den", "troll", None)
        self.redis.pump()
        again = Process(self.redis, "b2", positions=Positions(path), moderation=b.store)
        self.assertEqual(again.server.moderation.snapshot(), a.server.moderation.snapshot())

    def test_irc_whois_of_a_remote_operator(self) -> None:
        """IRC WHOIS on a of an operator on b: 311, its rooms (319) and 313."""
        from twisted.cred.checkers import AllowAnonymousAccess
        from twisted.cred.portal import Portal
        from twisted.internet.testing import StringTransport

        from tests.helpers import PEER
        from twisted_chat.auth.cred import ChatRealm
        from twisted_chat.config import ChatConfig
        from twisted_chat.frontends.irc.protocol import IRCFactory, IRCHub, IRCProtocol
        from twisted_chat.session.session import SessionContext

        a, b = self.a, self.b
        context = SessionContext.create(
            a.server, Portal(ChatRealm(a.server), [AllowAnonymousAccess()]),
            ChatConfig(passcode=None, db=":memory:"), self.clock)
        protocol = IRCFactory(context, IRCHub("irc.test", self.clock)).buildProtocol(PEER)
        assert isinstance(protocol, IRCProtocol)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"NICK ann\r\nUSER u 0 * :Ann\r\n")
        self.redis.pump()
        b.user("root", "den", operator=True)
        transport.clear()
        protocol.dataReceived(b"WHOIS root\r\n")
        said = transport.value().decode()
        self.assertIn(" 319 ann root @#den", said)  # an operator is an op in every room
        self.assertIn(" 313 ann root :", said)
        self.assertIn(" 318 ann root :", said)

    def test_same_ban_changed_on_both_sides_of_an_outage_converges(self) -> None:
        """Last writer wins: a ban set again on b then lifted on a, two topics, while apart."""
        a, b = self.a, self.b
        owner, _ = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        helper, _ = b.user("helper", "den", account=True)
        a.server.op(owner, "den", "helper")
        a.server.ban(owner, "den", "troll", None, "first")
        self.redis.pump()
        self.redis.stop()
        self.clock.advance(10)
        b.server.ban(helper, "den", "troll", None, "again")  # later, but published first
        self.clock.advance(10)
        a.server.unban(owner, "den", "troll")  # the latest
        a.server.topic(owner, "den", "from a")  # earlier than b's
        self.clock.advance(10)
        b.server.topic(helper, "den", "from b")
        self.redis.start()
        self.redis.pump()
        for process in (a, b):
            self.assertEqual(process.server.moderation.bans("den"), [])
            self.assertEqual(process.server.moderation.topic("den").text,  # type: ignore[union-attr]
                             "from b")
        self.assertEqual(a.server.moderation.snapshot(), b.server.moderation.snapshot())

    def test_a_change_made_after_another_wins_whatever_the_clocks(self) -> None:
        """A process whose clock runs behind still lifts a ban it saw set."""
        from twisted_chat.domain.moderation import Change

        a, b = self.a, self.b
        owner, _ = a.user("owner", "den", account=True)
        a.server.claim_room(owner, "den")
        a.server.ban(owner, "den", "troll", None)
        self.redis.pump()
        behind = self.clock.seconds() - 30  # b's clock, half a minute behind a's
        b.server.moderation.make(Change("unban", "den", "troll", "owner", None, "", behind))
        self.redis.pump()
        self.assertEqual(a.server.moderation.bans("den"), [])
        # and an old change arriving late (a stale replay) changes nothing
        b.server.moderation.shared = None
        a.server.applied_elsewhere(Change("ban", "den", "troll", "owner", None, "", behind))
        self.assertEqual(a.server.moderation.bans("den"), [])
