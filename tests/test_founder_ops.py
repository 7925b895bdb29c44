"""
Tests for C{--founder-ops} in the domain: the first member of an empty
unclaimed room is its op until the room empties; its ops make others ops
(guests too) and lock the topic (IRC's C{+t}), none of it stored.
"""

from __future__ import annotations

from twisted_chat.domain.server import ChatServer
from twisted_chat.errors import ChatError, NoSuchTarget, NotInRoom, NotOp
from twisted_chat.storage.history import MemoryHistory
from twisted_chat.tap import Options, config_from_options

from .helpers import temp_dir
from .test_moderation import ModerationTestCase


class FounderOpsTestCase(ModerationTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = ChatServer(MemoryHistory(), self.clock, founder_ops=True)
        self.moderation = self.server.moderation


class FounderOpsTests(FounderOpsTestCase):
    def test_first_member_is_op_until_the_room_empties(self) -> None:
        alice, _ = self.add("alice", "den")
        bob, _ = self.add("bob", "den")
        self.assertTrue(self.moderation.is_op(alice, "den"))
        self.assertFalse(self.moderation.is_op(bob, "den"))
        self.server.part(alice, "den")
        self.server.join(alice, "den")  # back: the room did not empty, no op now
        self.assertFalse(self.moderation.is_op(alice, "den"))
        self.assertFalse(self.moderation.is_op(bob, "den"))
        self.server.join(alice, "lobby")
        self.server.join(bob, "lobby")
        self.assertEqual(self.moderation.transient, {})  # the room went: nothing kept
        self.server.join(bob, "den")
        self.assertTrue(self.moderation.is_op(bob, "den"))

    def test_no_founder_in_the_lobby_or_claimed_rooms(self) -> None:
        carol, _ = self.add("carol")
        self.assertFalse(self.moderation.is_op(carol, "lobby"))
        alice, _ = self.add("alice", "den", account=True)
        self.server.claim_room(alice, "den")
        self.server.join(alice, "lobby")  # a claimed room persists empty
        bob, _ = self.add("bob", "den")
        self.assertFalse(self.moderation.is_op(bob, "den"))

    def test_founder_kicks_and_ops_a_guest(self) -> None:
        alice, out = self.add("alice", "den")
        bob, _ = self.add("bob", "den")
        carol, _ = self.add("carol", "den")
        self.assertRaises(NotOp, self.server.op, bob, "den", "bob")
        self.server.op(alice, "den", "bob")
        self.assertTrue(self.moderation.is_op(bob, "den"))
        self.assertEqual(self.notices(out)[-1], ("opped", "alice made bob an op of #den"))
        self.server.kick(bob, "den", "carol")
        self.assertNotIn(carol, self.server.rooms["den"].members)
        self.server.deop(alice, "den", "bob")
        self.assertFalse(self.moderation.is_op(bob, "den"))
        self.assertRaises(NotOp, self.server.kick, bob, "den", "alice")
        self.assertRaises(ChatError, self.server.deop, alice, "den", "bob")  # not an op now

    def test_op_needs_the_target_in_the_room(self) -> None:
        alice, _ = self.add("alice", "den")
        self.add("bob", "lobby")
        self.assertRaises(NoSuchTarget, self.server.op, alice, "den", "bob")
        self.assertRaises(NoSuchTarget, self.server.op, alice, "den", "nobody")

    def test_rename_keeps_op(self) -> None:
        """Transient ops are members, not names: a rename (IRC NICK) keeps them."""
        alice, _ = self.add("alice", "den")
        self.server.directory.release(alice)
        self.successResultOf(self.server.directory.claim("alicia", alice))
        self.assertTrue(self.moderation.is_op(alice, "den"))

    def test_topic_lock(self) -> None:
        alice, out = self.add("alice", "den")
        bob, _ = self.add("bob", "den")
        self.server.topic(bob, "den", "free for all")  # unlocked by default (SPEC 8)
        self.assertRaises(NotOp, self.server.lock_topic, bob, "den", True)
        self.server.lock_topic(alice, "den", True)
        self.assertIn(("locked", "alice locked the topic of #den: ops set it"), self.notices(out))
        self.assertRaises(NotOp, self.server.topic, bob, "den", "mine")
        self.server.topic(alice, "den", "ops only")
        self.server.lock_topic(alice, "den", False)
        self.server.topic(bob, "den", "free again")
        topic = self.moderation.topic("den")
        assert topic is not None
        self.assertEqual(topic.text, "free again")

    def test_nothing_is_stored(self) -> None:
        alice, _ = self.add("alice", "den")
        self.add("bob", "den")
        self.server.op(alice, "den", "bob")
        self.server.lock_topic(alice, "den", True)
        self.assertEqual(list(self.moderation.rooms()), [])
        self.assertEqual(self.moderation.modlog(), [])


class WithoutFounderOpsTests(ModerationTestCase):
    """The default (SPEC 8): unclaimed rooms have no ops."""

    def test_default_off(self) -> None:
        alice, _ = self.add("alice", "den")
        self.assertFalse(self.moderation.is_op(alice, "den"))
        self.assertRaises(ChatError, self.server.op, alice, "den", "alice")
        self.assertRaises(NotOp, self.server.lock_topic, alice, "den", True)

    def test_operator_locks_an_unclaimed_topic(self) -> None:
        root, _ = self.add("root", "den", operator=True)
        bob, _ = self.add("bob", "den")
        self.server.lock_topic(root, "den", True)
        self.assertRaises(NotOp, self.server.topic, bob, "den", "x")
        self.assertRaises(NotInRoom, self.server.topic, self.add("eve")[0], "den", "x")

    def test_option(self) -> None:
        options = Options()
        options.parseOptions(["--founder-ops"])
        self.assertTrue(config_from_options(options).founder_ops)
        options = Options()
        options.parseOptions([])
        self.assertFalse(config_from_options(options).founder_ops)

    def test_config_key(self) -> None:
        """founder-ops is a --config key (true or false) and in --help."""
        path = temp_dir(self) + "/chat.toml"
        with open(path, "w") as f:
            f.write("founder-ops = true\n")
        options = Options()
        options.parseOptions(["--config", path])
        self.assertTrue(config_from_options(options).founder_ops)
        self.assertIn("--founder-ops", str(options))
