"""
The Redis backplane (twisted_chat.cluster) on an in-process fake Redis
(tests/fakeredis.py: real txredisapi protocols over StringTransport), with
a L{Clock}: several L{ChatServer}s in one test, each with its own node.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.fakeredis import FakeRedis
from tests.helpers import FakeParticipant, fired, temp_dir
from twisted_chat.auth.cred import Visitor
from twisted_chat.cluster import codec
from twisted_chat.cluster.address import parse_url
from twisted_chat.cluster.node import DEAD_AFTER, START_WAIT, ClusterNode, Positions
from twisted_chat.cluster.wire import attach, factories
from twisted_chat.domain.events import Entry, Error, Message, Notice, Private, Users
from twisted_chat.domain.moderation import Moderation
from twisted_chat.domain.server import ChatServer, Member
from twisted_chat.errors import NameTaken
from twisted_chat.storage.accounts import Account
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.storage.moderation import MemoryModeration

BEAT = 5.0


class Process:
    """One chat process: a server with a cluster node on the shared fake Redis."""

    def __init__(self, redis: FakeRedis, name: str, history: Any = None,
                 positions: Positions | None = None, accounts: Any = None,
                 moderation: Any = None) -> None:
        self.redis = redis
        self.node = ClusterNode(redis.link, name, redis.clock, BEAT, positions)
        if accounts is not None:
            from twisted_chat.cluster.accounts import ReplicatedAccounts

            self.accounts = ReplicatedAccounts(accounts, self.node)
        bus, directory = factories(self.node)
        self.history = history if history is not None else MemoryHistory()
        self.store = moderation if moderation is not None else MemoryModeration()
        self.server = ChatServer(self.history, redis.clock, bus=bus, directory=directory,
                                 moderation=Moderation(redis.clock, self.store))
        self.server.moderation.load()
        attach(self.node, self.server)
        self.node.startService()
        redis.pump()

    def user(self, name: str, room: str = "lobby", account: bool = False,
             operator: bool = False, host: str = "192.0.2.7") -> tuple[Member, Addressed]:
        """A user with an address, a guest or an account (an operator's, if C{operator})."""
        participant = Addressed(host)
        visitor = Visitor(self.server, participant,
                          Account(name, "x", operator) if account or operator else None,
                          operator)
        outcome: list[Any] = []
        self.server.claim(name, participant, visitor).addBoth(outcome.append)
        self.redis.pump()
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        self.server.join(visitor, room)
        self.redis.pump()
        participant.events.clear()
        return visitor, participant

    def claim(self, name: str) -> Deferred[Member]:
        d = self.server.claim(name, FakeParticipant())
        self.redis.pump()
        return d

    def login(self, name: str, room: str = "lobby") -> tuple[Member, FakeParticipant]:
        outcome: list[Any] = []
        self.claim(name).addBoth(outcome.append)
        self.redis.pump()
        member = outcome[0]
        if isinstance(member, Failure):
            member.raiseException()
        self.server.join(member, room)
        self.redis.pump()
        participant = member.participant
        assert isinstance(participant, FakeParticipant)
        participant.events.clear()
        return member, participant

    def crash(self) -> None:
        """The process dies: its connections break and never come back."""
        for link in (self.node._cmd_link, self.node._read_link):
            link.stop()
        if self.node._beat is not None and self.node._beat.active():
            self.node._beat.cancel()
        self.node.stopping = True
        self.redis.pump()


class Addressed(FakeParticipant):
    """A participant with an address, as every front end has."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def peer_host(self) -> str:
        return self.host


def texts(participant: FakeParticipant) -> list[str]:
    return participant.lines()


class Cluster(SynchronousTestCase):

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.redis = FakeRedis(self.clock)
        self.logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def quiet(self, *participants: FakeParticipant) -> None:
        """Forget what they were told so far (the others' logins)."""
        self.redis.pump()
        for participant in participants:
            participant.events.clear()

    def processes(self, *names: str) -> list[Process]:
        return [Process(self.redis, name) for name in names]

    def warnings(self, text: str) -> int:
        return sum(text in str(event.get("log_format", "")) for event in self.logged)

    def test_message_reaches_other_process_and_its_history(self) -> None:
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        _, bobs = b.login("bob")
        a.server.say(alice, "hello")
        self.redis.pump()
        [event] = bobs.events
        assert isinstance(event, Message)
        self.assertEqual((event.entry.sender, event.entry.text, event.entry.room),
                         ("alice", "hello", "lobby"))
        self.assertEqual([e.text for e in b.history.recent_now("lobby", 10)], ["hello"])

    def test_one_stream_entry_per_turn(self) -> None:
        """Everything said in one reactor turn is one XADD."""
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        _, bobs = b.login("bob")
        before = sum(c[0] == "XADD" for c in self.redis.commands)
        for i in range(50):
            a.server.say(alice, "line %d" % i)
        self.redis.pump()
        self.assertEqual(sum(c[0] == "XADD" for c in self.redis.commands) - before, 1)
        self.assertEqual(len(bobs.events), 50)

    def test_heartbeat_only_when_silent(self) -> None:
        """A process that publishes anyway adds no heartbeat entries to the stream."""
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        stream = self.redis.streams["twisted-chat:log"]

        def beats() -> int:
            return sum('"beat"' in fields[1] and a.node.instance in fields[1]
                       for _, fields in stream)

        before = beats()
        for _ in range(20):
            a.server.say(alice, "tick")
            self.redis.advance(1.0)
        self.assertEqual(beats(), before)
        self.redis.advance(BEAT * 4)
        self.assertGreaterEqual(beats(), before + 3)
        self.assertIsNotNone(b.server.directory.find("alice"))

    def test_names_unique_across_processes(self) -> None:
        a, b = self.processes("a", "b")
        a.login("alice")
        failure = self.failureResultOf(b.claim("ALICE"))
        failure.trap(NameTaken)
        self.assertEqual(self.redis.get("twisted-chat:name:alice"), a.node.instance)

    def test_name_claimed_at_once_on_two_processes(self) -> None:
        """Neither replica knows yet: Redis's SET NX decides, exactly one wins."""
        a, b = self.processes("a", "b")
        outcomes: list[Any] = []
        a.server.claim("zed", FakeParticipant()).addBoth(outcomes.append)
        b.server.claim("zed", FakeParticipant()).addBoth(outcomes.append)
        self.redis.pump()
        self.assertEqual(sorted(isinstance(o, Failure) for o in outcomes), [False, True])
        [lost] = [o for o in outcomes if isinstance(o, Failure)]
        lost.trap(NameTaken)

    def test_released_name_is_free_everywhere(self) -> None:
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        a.server.remove(alice, "quit")
        self.redis.pump()
        self.assertIsNone(self.redis.get("twisted-chat:name:alice"))
        b.login("alice")

    def test_release_compares_before_deleting(self) -> None:
        """A name key that is no longer ours (it expired and was taken) is left alone."""
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        self.redis.set("twisted-chat:name:alice", b.node.instance)
        a.server.remove(alice, "quit")
        self.redis.pump()
        self.assertEqual(self.redis.get("twisted-chat:name:alice"), b.node.instance)

    def test_directory_sees_everyone(self) -> None:
        a, b = self.processes("a", "b")
        alice, alices = a.login("alice")
        b.login("bob")
        carol, _ = b.login("carol", "ops")
        self.quiet(alices)
        self.assertEqual(a.server.directory.everyone(),
                         [("alice", ["lobby"]), ("bob", ["lobby"]), ("carol", ["ops"])])
        self.assertEqual(a.server.directory.rooms(), [("lobby", 2), ("ops", 1)])
        self.assertEqual(a.server.directory.members("lobby"), ["alice", "bob"])
        found = a.server.directory.find("CAROL")
        assert found is not None
        self.assertEqual([room.name for room in found.rooms], ["ops"])
        a.server.users(alice, everyone=False)
        [users] = alices.events
        assert isinstance(users, Users)
        self.assertEqual(users.users, [("alice", "lobby"), ("bob", "lobby")])
        b.server.part(carol, "ops")
        self.redis.pump()
        self.assertEqual(a.server.directory.rooms(), [("lobby", 3)])

    def test_join_and_leave_notices_cross(self) -> None:
        a, b = self.processes("a", "b")
        _, alices = a.login("alice")
        bob, _ = b.login("bob")
        self.quiet(alices)
        b.server.join(bob, "ops")
        b.server.remove(bob, "quit")
        self.redis.pump()
        self.assertEqual([line.split("] ")[1] for line in texts(alices)],
                         ["*** bob left #lobby ***"])
        a.server.join(a.server.members["alice"], "ops")
        b2, _ = b.login("bob", "ops")
        b.server.remove(b2, "quit (bye)")
        self.redis.pump()
        self.assertIn("*** bob quit (bye) ***", texts(alices)[-1])

    def test_private_message_across(self) -> None:
        a, b = self.processes("a", "b")
        alice, alices = a.login("alice")
        _, bobs = b.login("bob")
        self.quiet(alices)
        a.server.message(alice, "bob", "psst")
        self.redis.pump()
        [event] = bobs.events
        assert isinstance(event, Private)
        self.assertEqual((event.sender, event.recipient, event.text), ("alice", "bob", "psst"))
        [echo] = alices.events
        assert isinstance(echo, Private)
        self.assertTrue(echo.outgoing)

    def test_dead_process_users_leave_with_a_notice(self) -> None:
        a, b = self.processes("a", "b")
        _, alices = a.login("alice")
        b.login("bob")
        self.quiet(alices)
        b.crash()
        self.redis.advance(BEAT * (DEAD_AFTER - 1))
        self.assertEqual(alices.events, [])
        self.redis.advance(BEAT * 2 + 1)
        [notice] = alices.events
        assert isinstance(notice, Notice)
        self.assertEqual((notice.text, notice.change), ("bob disconnected", "offline"))
        self.assertIsNone(a.server.directory.find("bob"))
        # the name key runs out too, within 25 s of the last refresh
        self.redis.advance(30)
        self.assertIsNone(self.redis.get("twisted-chat:name:bob"))

    def test_restarted_node_replaces_its_old_instance(self) -> None:
        """A node back under the same name: its old instance's users leave at once."""
        a, b = self.processes("a", "b")
        _, alices = a.login("alice")
        b.login("bob")
        self.quiet(alices)
        b.crash()
        Process(self.redis, "b")
        self.redis.pump()
        self.assertIn("bob disconnected", texts(alices)[0])
        self.assertEqual(a.server.directory.everyone(), [("alice", ["lobby"])])

    def test_restarted_node_frees_its_old_instances_names(self) -> None:
        """
        A process restarted at once after a crash: its users, gone from
        every list, can log in again at once (their names are not held
        for the old instance until their keys run out).
        """
        a, b = self.processes("a", "b")
        a.login("alice")
        b.login("bob")
        b.crash()
        b2 = Process(self.redis, "b")
        self.redis.pump()
        self.assertIsNone(self.redis.get("twisted-chat:name:bob"))
        self.assertTrue(fired(b2.claim("bob")))
        self.assertEqual(self.redis.get("twisted-chat:name:alice"), a.node.instance)

    def test_dead_process_names_free_when_its_users_leave(self) -> None:
        """Taken for dead: its users' names are free as they leave the lists."""
        a, b = self.processes("a", "b")
        b.login("bob")
        b.crash()
        for _ in range(30):  # the first second it is gone from the lists
            self.redis.advance(1)
            if a.server.directory.find("bob") is None:
                break
        self.assertIsNone(a.server.directory.find("bob"))
        self.assertIsNone(self.redis.get("twisted-chat:name:bob"))
        self.assertTrue(fired(a.claim("bob")))

    def test_stopped_process_says_bye(self) -> None:
        a, b = self.processes("a", "b")
        _, alices = a.login("alice")
        b.login("bob")
        self.quiet(alices)
        b.node.stopService()
        self.redis.pump()
        self.assertIn("bob disconnected (server stopping)", texts(alices)[0])
        self.assertIsNone(self.redis.get("twisted-chat:name:bob"))

    def test_outage_queues_and_publishes_with_original_time(self) -> None:
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        _, bobs = b.login("bob")
        self.redis.stop()
        said_at = self.clock.seconds()
        a.server.say(alice, "while Redis is away")
        self.redis.advance(60, step=1)
        a.server.say(alice, "still away")
        self.assertEqual(bobs.events, [])
        self.redis.start()
        self.redis.pump()
        messages = [e for e in bobs.events if isinstance(e, Message)]
        self.assertEqual([m.entry.text for m in messages], ["while Redis is away", "still away"])
        self.assertEqual(messages[0].entry.when, said_at)
        self.assertEqual(self.warnings("is unreachable"), 2)  # once per process
        # bob was never taken for dead: nobody judges while Redis is away
        self.assertIsNotNone(a.server.directory.find("bob"))

    def test_redis_restart_without_persistence_heals(self) -> None:
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        _, bobs = b.login("bob", "ops")
        self.redis.stop(flush=True)
        a.server.say(alice, "lost?")
        self.redis.start()
        self.redis.pump()
        # names asserted again, the replicas rebuilt, the stream read from its start
        self.assertEqual(self.redis.get("twisted-chat:name:alice"), a.node.instance)
        self.assertEqual(self.redis.get("twisted-chat:name:bob"), b.node.instance)
        self.assertEqual(a.server.directory.rooms(), [("lobby", 1), ("ops", 1)])
        self.assertEqual(b.server.directory.members("lobby"), ["alice"])
        self.assertEqual(b.history.recent_now("lobby", 5)[-1].text, "lost?")
        self.assertEqual(self.warnings("Redis lost its data"), 2)
        # and chat goes on
        a.server.join(alice, "ops")
        bob = b.server.members["bob"]
        b.server.say(bob, "back")
        self.redis.pump()
        self.assertEqual(a.server.directory.members("ops"), ["alice", "bob"])

    def test_same_name_taken_on_both_sides_of_an_outage(self) -> None:
        """Both processes granted a name while apart: when Redis is back one session closes."""
        a, b = self.processes("a", "b")
        self.redis.stop()
        _, first = a.login("zed")
        _, second = b.login("zed")
        self.redis.start()
        self.redis.pump()
        closed = [p for p in (first, second) if p.closed]
        self.assertEqual(len(closed), 1)
        errors = [e for e in closed[0].events if isinstance(e, Error)]
        self.assertEqual([e.code for e in errors], ["name_taken"])

    def test_late_process_catches_up_history_only(self) -> None:
        a, = self.processes("a")
        alice, _ = a.login("alice")
        a.server.say(alice, "early")
        self.redis.pump()
        c = Process(self.redis, "c")
        _, carols = c.login("carol")
        self.assertEqual([e.text for e in c.history.recent_now("lobby", 5)], ["early"])
        self.assertFalse([e for e in carols.events if isinstance(e, Message)])
        # but its replica knows alice (the hello was answered)
        self.assertEqual(c.server.directory.members("lobby"), ["alice", "carol"])

    def test_restarted_process_resumes_from_its_position(self) -> None:
        path = os.path.join(temp_dir(self), "chat.db")
        a, = self.processes("a")
        b = Process(self.redis, "b", positions=Positions(path))
        alice, _ = a.login("alice")
        a.server.say(alice, "one")
        self.redis.pump()
        b.node.stopService()
        self.redis.pump()
        a.server.say(alice, "two")
        self.redis.pump()
        history = MemoryHistory()
        history.append(Entry("lobby", "alice", "one", 0.0))  # what b had stored
        Process(self.redis, "b", history=history, positions=Positions(path))
        self.assertEqual([e.text for e in history.recent_now("lobby", 5)], ["one", "two"])

    def test_crash_soon_after_a_restart_stores_nothing_twice(self) -> None:
        """
        A process that crashes before its first heartbeat: what it said is
        in its --db already; started again, it does not store it twice (its
        position named the instance before, so it took that one's entries
        for someone else's).
        """
        path = os.path.join(temp_dir(self), "chat.db")
        history = MemoryHistory()  # the --db the three instances of b share
        b = Process(self.redis, "b", history=history, positions=Positions(path))
        b.node.stopService()  # a clean stop: its position names this instance
        self.redis.pump()
        b = Process(self.redis, "b", history=history, positions=Positions(path))
        bob, _ = b.login("bob")
        b.server.say(bob, "just before the crash")
        self.redis.pump()
        b.crash()  # before its first heartbeat saved the position
        Process(self.redis, "b", history=history, positions=Positions(path))
        self.assertEqual([e.text for e in history.recent_now("lobby", 5)],
                         ["just before the crash"])

    def test_crash_between_heartbeats_stores_the_others_messages_once(self) -> None:
        """
        Killed between two heartbeats, a process started again read the
        others' messages of that heartbeat again and stored them twice: its
        position is saved soon after what it stores, not only each heartbeat.
        """
        path = os.path.join(temp_dir(self), "chat.db")
        history = MemoryHistory()
        a, = self.processes("a")
        b = Process(self.redis, "b", history=history, positions=Positions(path))
        self.redis.advance(BEAT + 0.1)  # a heartbeat saved b's position
        alice, _ = a.login("alice")
        a.server.say(alice, "said by a")
        self.redis.advance(0.5)  # well before the next heartbeat
        b.crash()
        Process(self.redis, "b", history=history, positions=Positions(path))
        self.assertEqual([e.text for e in history.recent_now("lobby", 5)], ["said by a"])

    def test_duplicate_batch_is_dropped(self) -> None:
        a, b = self.processes("a", "b")
        alice, _ = a.login("alice")
        _, bobs = b.login("bob")
        a.server.say(alice, "once")
        self.redis.pump()
        stream = self.redis.streams["twisted-chat:log"]
        entry_id, fields = stream[-1]
        # the same batch again (a reply lost with its connection, then sent again)
        self.redis.cmd_xadd(self.redis.connections[0], "twisted-chat:log", "*", *fields)
        self.redis.pump()
        self.assertEqual([e.entry.text for e in bobs.events if isinstance(e, Message)], ["once"])

    def test_state_hook(self) -> None:
        """The generic state change: what moderation goes through after merging."""
        a, b = self.processes("a", "b")
        seen: list[tuple[int, dict[str, Any], str]] = []
        b.node.on_state("moderation", lambda version, change, node: seen.append(
            (version, change, node)))
        a.node.publish_state("moderation", 1, {"kind": "topic", "room": "ops", "text": "hi"})
        a.node.publish_state("other", 1, {"x": 1})
        self.redis.pump()
        self.assertEqual(seen, [(1, {"kind": "topic", "room": "ops", "text": "hi"}, "a")])

    def test_accounts_replicated(self) -> None:
        from twisted_chat.cluster.accounts import ReplicatedAccounts
        from twisted_chat.storage.accounts import MemoryAccounts

        a, b = self.processes("a", "b")
        mine, theirs = ReplicatedAccounts(MemoryAccounts(), a.node), MemoryAccounts()
        ReplicatedAccounts(theirs, b.node)
        mine.add("Carol", "$argon2id$one")
        self.redis.pump()
        carol = theirs.get("carol")
        assert carol is not None
        self.assertEqual((carol.name, carol.hash, carol.operator),
                         ("Carol", "$argon2id$one", False))
        mine.set_hash("carol", "$argon2id$two")
        mine.set_operator("carol", True)
        self.redis.pump()
        carol = theirs.get("carol")
        assert carol is not None
        self.assertEqual((carol.hash, carol.operator), ("$argon2id$two", True))
        mine.delete("carol")
        self.redis.pump()
        self.assertIsNone(theirs.get("carol"))
        # a process started later learns the accounts made before (catching up)
        mine.add("dave", "$argon2id$three")
        self.redis.pump()
        late = MemoryAccounts()
        Process(self.redis, "c", accounts=late)
        self.assertEqual([acct.name for acct in late.all()], ["dave"])

    def test_accounts_reach_a_new_process_after_redis_lost_its_data(self) -> None:
        """
        A process started after a Redis restart without persistence (the
        stream is gone) learns the accounts from the others' answers to its
        hello: a guest cannot take a registered name there.
        """
        from twisted_chat.cluster.accounts import ReplicatedAccounts
        from twisted_chat.storage.accounts import MemoryAccounts

        a, b = self.processes("a", "b")
        mine, theirs = ReplicatedAccounts(MemoryAccounts(), a.node), MemoryAccounts()
        ReplicatedAccounts(theirs, b.node)
        mine.add("Dave", "$argon2id$one", operator=True)
        self.redis.pump()
        self.redis.stop(flush=True)
        self.redis.start()
        late = MemoryAccounts()
        late.add("erin", "$argon2id$own")  # its own --db's account is kept
        Process(self.redis, "c", accounts=late)
        self.redis.pump()
        dave = late.get("dave")
        assert dave is not None
        self.assertEqual((dave.name, dave.hash, dave.operator), ("Dave", "$argon2id$one", True))
        self.assertEqual(sorted(acct.name for acct in late.all()), ["Dave", "erin"])
        # the answers are for c only: a and b learn nothing of each other twice,
        # and a snapshot never overwrites an account a process already has
        mine.set_hash("dave", "$argon2id$two")
        self.redis.pump()
        self.assertEqual([acct.name for acct in theirs.all()], ["Dave"])
        dave = late.get("dave")
        assert dave is not None
        self.assertEqual(dave.hash, "$argon2id$two")

    def test_unknown_version_skipped(self) -> None:
        a, b = self.processes("a", "b")
        _, bobs = b.login("bob")
        self.redis.cmd_xadd(self.redis.connections[0], "twisted-chat:log", "*", "d",
                            '{"v": 99, "n": "x", "s": 1, "e": []}')
        alice, _ = a.login("alice")
        a.server.say(alice, "after")
        self.redis.pump()
        self.assertEqual([e.entry.text for e in bobs.events if isinstance(e, Message)],
                         ["after"])
        self.assertEqual(self.warnings("skipped a stream entry"), 2)  # by each process


class Unreachable(SynchronousTestCase):

    def test_redis_unreachable_from_the_start(self) -> None:
        """Logged once; users are served alone; once Redis comes, they are asserted."""
        clock = Clock()
        redis = FakeRedis(clock)
        redis.up = False
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        a = Process(redis, "a")
        pending = a.claim("alice")
        self.assertNoResult(pending)  # the first logins wait for Redis, START_WAIT at most
        redis.advance(START_WAIT, step=1)
        alice = self.successResultOf(pending)
        a.server.join(alice, "lobby")
        a.login("bob")  # after that first wait, at once
        redis.advance(60, step=1)
        self.assertEqual(sum("is unreachable" in str(e.get("log_format")) for e in logged), 1)
        redis.start()
        self.assertEqual(redis.get("twisted-chat:name:alice"), a.node.instance)

    def test_first_login_waits_until_caught_up(self) -> None:
        """
        A login on a process that has not reached Redis yet waits for it
        (so it sees the names and bans the cluster holds), not START_WAIT.
        """
        clock = Clock()
        redis = FakeRedis(clock)
        redis.up = False
        a = Process(redis, "a")
        pending = a.claim("alice")
        redis.advance(1, step=1)
        self.assertNoResult(pending)
        redis.start()
        self.assertIsInstance(self.successResultOf(pending), Member)
        self.assertEqual(redis.get("twisted-chat:name:alice"), a.node.instance)


class Options(SynchronousTestCase):

    def test_redis_options(self) -> None:
        from twisted_chat.tap import Options, config_from_options

        options = Options()
        options.parseOptions(["--redis", "redis://127.0.0.1:7000/2", "--node-name", "n1"])
        config = config_from_options(options)
        self.assertEqual((config.redis, config.node_name, config.redis_heartbeat),
                         ("redis://127.0.0.1:7000/2", "n1", 5.0))
        self.assertIsNone(config_from_options(_parsed([])).redis)

    def test_bad_redis_options(self) -> None:
        from twisted.python.usage import UsageError

        from twisted_chat.tap import Options

        for argv in (["--redis", "http://x"], ["--node-name", "a b"],
                     ["--redis-heartbeat", "0"]):
            self.assertRaises(UsageError, Options().parseOptions, argv)

    def test_config_file(self) -> None:
        path = os.path.join(temp_dir(self), "chat.toml")
        with open(path, "w") as f:
            f.write('redis = "unix:///run/redis.sock?db=1"\nnode-name = "west"\n')
        options = _parsed(["--config", path])
        self.assertEqual((options["redis"], options["node-name"]),
                         ("unix:///run/redis.sock?db=1", "west"))


def _parsed(argv: list[str]) -> Any:
    from twisted_chat.tap import Options

    options = Options()
    options.parseOptions(argv)
    return options


class Codec(SynchronousTestCase):

    def test_round_trip(self) -> None:
        entry = Entry("lobby", "alice", "h\u00e9llo \"x\"", 1700000000.25, True)
        data = codec.encode_batch("a/1", 3, [codec.message(entry)])
        instance, seq, events = codec.decode_batch(data)
        self.assertEqual((instance, seq), ("a/1", 3))
        self.assertEqual(codec.entry_of(events[0]), entry)

    def test_notices_keep_actor_and_detail(self) -> None:
        """A moderation notice (its actor and detail), alone or among others."""
        kicked = Notice("den", "bob was kicked", 1.5, "", "bob", "kicked", "alice", "spam")
        plain = Notice("den", "bob quit", 2.0, "", "bob", "offline")
        for event in (kicked, plain):
            for decoded in (codec.notice_event(codec.notice("den", event)),
                            codec.notice_event(codec.notice_fields(event))):
                self.assertEqual(
                    (decoded.room, decoded.text, decoded.when, decoded.user, decoded.change,
                     decoded.actor, decoded.detail),
                    (event.room, event.text, event.when, event.user, event.change,
                     event.actor, event.detail))
        self.assertEqual(len(codec.notice_fields(plain)), 5)  # as older processes read it

    def test_bad(self) -> None:
        for data in ("", "[]", '{"v": 2}', '{"v": 1, "n": 1, "s": 1, "e": []}', "{"):
            self.assertRaises(codec.BadEntry, codec.decode_batch, data)


class Address(SynchronousTestCase):

    def test_urls(self) -> None:
        a = parse_url("redis://10.0.0.5:6380/3")
        self.assertEqual((a.scheme, a.host, a.port, a.db), ("redis", "10.0.0.5", 6380, 3))
        b = parse_url("rediss://:s3cret@redis.example.com")
        self.assertEqual((b.scheme, b.port, b.db, b.password), ("rediss", 6379, 0, "s3cret"))
        self.assertNotIn("s3cret", str(b))
        c = parse_url("unix:///run/redis.sock?db=2")
        self.assertEqual((c.scheme, c.path, c.db), ("unix", "/run/redis.sock", 2))

    def test_ca(self) -> None:
        path = os.path.join(temp_dir(self), "ca.pem")
        with open(path, "w") as f:
            f.write("")
        self.assertEqual(parse_url("rediss://h:1/0?ca=%s" % path).ca, path)
        self.assertRaises(ValueError, parse_url, "redis://h:1/0?ca=%s" % path)
        self.assertRaises(ValueError, parse_url, "rediss://h:1/0?ca=/no/such.pem")

    def test_bad_urls(self) -> None:
        for url in ("http://x", "redis://h:port/0", "redis://h/x", "unix://", "localhost:6379"):
            self.assertRaises(ValueError, parse_url, url)


class ReplyParsing(SynchronousTestCase):
    """The connection's protocol parses a whole reply in the call that received it."""

    def test_many_bulk_strings_in_one_turn(self) -> None:
        from twisted_chat.cluster.redis import _Protocol

        replies: list[Any] = []

        class Recording(_Protocol):
            def replyReceived(self, reply: Any) -> None:  # noqa: N802
                replies.append(reply)

        protocol = Recording(convertNumbers=False)
        entries = 2000  # deeper than the recursion limit, were it a recursion
        data = b"*%d\r\n" % entries + b"".join(
            b"$%d\r\n%s\r\n" % (len(b"e%d" % i), b"e%d" % i) for i in range(entries))
        half = len(data) // 2
        protocol.dataReceived(data[:half])  # cut anywhere: the rest comes later
        protocol.dataReceived(data[half:])
        # txredisapi's own protocol parses one bulk string a reactor turn
        # (callLater(0)): nothing of it would be here yet
        self.assertEqual(replies, [["e%d" % i for i in range(entries)]])
        self.assertFalse(protocol.paused)
