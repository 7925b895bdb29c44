"""
Tests for the browser's line ids: a C{say} or C{command} sent with an C{id}
is answered with an C{ack} when the session took it, or with the errors it
caused carrying the same C{id} when it was refused (too long, flood, a bad
command), so the page never shows a dropped line as sent.
"""

from __future__ import annotations

import json

from twisted_chat.config import ChatConfig
from twisted_chat.frontends.web.site import MAX_LINE_ID, ChatWebFactory

from .helpers import World, lines
from .test_web import WebCase, kinds


class AckTests(WebCase):
    """Taken lines are acknowledged; refused ones get errors tagged with their id."""

    def test_say_is_acknowledged_after_delivery(self) -> None:
        """A say with an id reaches the room, then the sender gets an ack with that id."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        sent = alice.send({"type": "say", "text": "hello", "id": 17})
        self.assertEqual(sent, [{"type": "ack", "id": 17}])
        self.assertEqual(lines(bob_out)[0][11:], "alice: hello")

    def test_command_is_acknowledged_after_its_answer(self) -> None:
        """A command's own events come first, then the ack."""
        alice = self.logged_in("alice")
        sent = alice.send({"type": "command", "text": "/join #dev", "id": 3})
        self.assertEqual(kinds(sent), ["joined", "users", "history", "ack"])
        self.assertEqual(sent[-1], {"type": "ack", "id": 3})

    def test_without_id_nothing_changes(self) -> None:
        """A say without an id gets no ack, as before; an error carries no id."""
        alice = self.logged_in("alice")
        self.assertEqual(alice.send({"type": "say", "text": "hi"}), [])
        sent = alice.send({"type": "command", "text": "/dance"})
        self.assertEqual(sent, [{"type": "error", "text": "unknown command /dance (try /help)",
                                 "code": "unknown_command"}])
        self.assertEqual(alice.send({"type": "say", "text": "hi", "id": None}), [])

    def test_bad_command_error_carries_the_id(self) -> None:
        """The session's error for a line carries its id, and no ack follows."""
        alice = self.logged_in("alice")
        sent = alice.send({"type": "command", "text": "/dance", "id": 5})
        self.assertEqual(sent, [
            {"type": "error", "text": "unknown command /dance (try /help)",
             "code": "unknown_command", "id": 5},
        ])
        sent = alice.send({"type": "command", "text": "/msg ghost boo", "id": 6})
        self.assertEqual(kinds(sent), ["error"])
        self.assertEqual(sent[0]["id"], 6)

    def test_too_long_line_carries_the_id(self) -> None:
        """A line over --max-line is refused with its id; nothing is delivered."""
        self.world = World(config=ChatConfig(passcode=b"x", max_line=20))
        self.factory = ChatWebFactory(self.world.context)
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        for kind in ("say", "command"):
            sent = alice.send({"type": kind, "text": "x" * 21, "id": 9})
            self.assertEqual(sent, [{"type": "error", "text": "line too long (max 20 bytes)",
                                     "code": "line_too_long", "id": 9}])
        self.assertEqual(lines(bob_out), [])
        self.assertEqual(alice.send({"type": "say", "text": "x" * 20, "id": 10}),
                         [{"type": "ack", "id": 10}])
        self.assertEqual(lines(bob_out)[0][11:], "alice: " + "x" * 20)

    def test_line_break_carries_the_id(self) -> None:
        """A malformed text field is an error for that line, with its id."""
        alice = self.logged_in("alice")
        sent = alice.send({"type": "say", "text": "a\nb", "id": 1})
        self.assertEqual(kinds(sent), ["error"])
        self.assertEqual(sent[0]["id"], 1)
        sent = alice.send({"type": "command", "id": 2})
        self.assertEqual(kinds(sent), ["error"])
        self.assertEqual(sent[0]["id"], 2)

    def test_before_login_carries_the_id(self) -> None:
        """A line before the login is refused with its id."""
        browser = self.browser()
        browser.transport.take()
        sent = browser.send({"type": "say", "text": "early", "id": 4})
        self.assertEqual(kinds(sent), ["error"])
        self.assertEqual(sent[0]["id"], 4)

    def test_flood_drops_are_all_tagged(self) -> None:
        """
        Past the flood limit every dropped line gets an error with its id,
        though the session warns only once a second; none is acknowledged.
        """
        self.world = World(config=ChatConfig(passcode=b"x", rate=1, burst=2))
        self.factory = ChatWebFactory(self.world.context)
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        for line_id in (1, 2):
            self.assertEqual(alice.send({"type": "say", "text": "ok", "id": line_id}),
                             [{"type": "ack", "id": line_id}])
        sent = alice.send({"type": "say", "text": "dropped", "id": 3})
        self.assertEqual(kinds(sent), ["error"])
        self.assertIn("slow down (at most 1 lines a second)", sent[0]["text"])
        self.assertEqual(sent[0]["id"], 3)
        for line_id in (4, 5):
            sent = alice.send({"type": "say", "text": "dropped", "id": line_id})
            self.assertEqual(sent, [
                {"type": "error", "text": "slow down; this line was dropped", "code": "flood",
                 "id": line_id},
            ])
        self.assertEqual(len(lines(bob_out)), 2)
        self.world.clock.advance(1)
        self.assertEqual(alice.send({"type": "say", "text": "later", "id": 6}),
                         [{"type": "ack", "id": 6}])

    def test_other_events_are_not_tagged(self) -> None:
        """Only errors carry the id; what others say meanwhile does not."""
        bob, _ = self.world.login("bob")
        alice = self.logged_in("alice")
        sent = alice.send({"type": "command", "text": "/msg bob hi", "id": 8})
        self.assertEqual(kinds(sent), ["private", "ack"])
        self.assertNotIn("id", sent[0])
        bob.dataReceived(b"/msg alice /dance\r\n")
        self.assertEqual(kinds(alice.transport.take()), ["private"])

    def test_bad_id(self) -> None:
        """An id that is not a whole number in range is an error; the line is not taken."""
        _, bob_out = self.world.login("bob")
        alice = self.logged_in("alice")
        lines(bob_out)
        for bad in ("7", 1.5, -1, MAX_LINE_ID + 1, True, [1], {"n": 1}):
            sent = alice.send({"type": "say", "text": "hi", "id": bad})
            self.assertEqual(kinds(sent), ["error"], bad)
            self.assertNotIn("id", sent[0])
            self.assertIn('"id" must be a whole number', sent[0]["text"])
        self.assertEqual(lines(bob_out), [])
        self.assertEqual(alice.send({"type": "say", "text": "hi", "id": MAX_LINE_ID}),
                         [{"type": "ack", "id": MAX_LINE_ID}])
        self.assertEqual(alice.send({"type": "say", "text": "hi", "id": 0}),
                         [{"type": "ack", "id": 0}])

    def test_quit_is_not_acknowledged_after_close(self) -> None:
        """/quit with an id: goodbye, then the close; nothing is written after it."""
        alice = self.logged_in("alice")
        sent = alice.send({"type": "command", "text": "/quit", "id": 2})
        self.assertEqual(sent, [{"type": "goodbye"}])
        self.assertEqual(alice.transport.close_code, 1000)

    def test_empty_command_is_acknowledged(self) -> None:
        """An empty command does nothing and is acknowledged (the page's probe)."""
        alice = self.logged_in("alice")
        self.assertEqual(alice.send({"type": "command", "text": "", "id": 11}),
                         [{"type": "ack", "id": 11}])

    def test_tagged_error_keeps_its_text(self) -> None:
        """The tagged form is the plain error plus the id, serialised as JSON text."""
        alice = self.logged_in("alice")
        alice.protocol.textMessageReceived(json.dumps(
            {"type": "command", "text": "/join #bad room", "id": 12}))
        sent = alice.transport.take()
        self.assertEqual(kinds(sent), ["error"])
        self.assertEqual(set(sent[0]), {"type", "text", "code", "id"})
        self.assertEqual(sent[0]["code"], "bad_usage")
