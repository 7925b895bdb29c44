"""Moderation from the browser: commands sent as C{command} messages, answers as JSON."""

from __future__ import annotations

from twisted_chat.domain.events import Notice
from twisted_chat.frontends.web.render import to_json
from twisted_chat.frontends.web.site import ChatWebSocket

from .test_web import FakeWebSocketTransport, WebCase, kinds


class WebModerationTests(WebCase):
    """A browser user in an unclaimed room (anyone sets the topic) and a telnet op."""

    def test_topic_and_notice(self) -> None:
        alice = self.logged_in("alice")
        bob = self.logged_in("bob")
        alice.send({"type": "command", "text": "/join den"})
        bob.send({"type": "command", "text": "/join den"})
        alice.transport.take()
        bob.send({"type": "command", "text": "/topic Release on Friday"})
        now = self.world.clock.seconds()
        self.assertEqual(alice.transport.take(), [{
            "type": "notice", "room": "den", "text": "bob set the topic of #den: Release on Friday",
            "time": now, "change": "topic", "by": "bob", "detail": "Release on Friday"}])
        sent = alice.send({"type": "command", "text": "/topic"})
        self.assertIn({"type": "topic", "room": "den", "text": "Release on Friday", "by": "bob",
                       "time": now}, sent)
        carol = self.logged_in("carol")
        sent = carol.send({"type": "command", "text": "/join den"})
        self.assertIn("topic", kinds(sent))

    def test_kicked_browser_lands_in_lobby(self) -> None:
        root, _ = self.world.login("root")
        root.session.user.operator = True  # type: ignore[attr-defined]
        troll = self.logged_in("troll")
        troll.send({"type": "command", "text": "/join den"})
        root.dataReceived(b"/join den\r\n/kick troll bye\r\n")
        sent = troll.transport.take()
        kicked = [m for m in sent if m.get("change") == "kicked"]
        self.assertEqual(kicked[0]["user"], "troll")
        self.assertEqual(kicked[0]["by"], "root")
        self.assertIn({"type": "joined", "room": "lobby"}, sent)

    def test_muted_say_is_an_error(self) -> None:
        root, _ = self.world.login("root")
        root.session.user.operator = True  # type: ignore[attr-defined]
        troll = self.logged_in("troll")
        root.dataReceived(b"/gmute troll\r\n")
        sent = troll.send({"type": "say", "text": "spam", "id": 3})
        self.assertEqual(sent[0]["code"], "muted")
        self.assertEqual(sent[0]["text"], "you are muted on this server")

    def test_whois_bans_away(self) -> None:
        alice = self.logged_in("alice")
        self.logged_in("bob")
        alice.transport.take()
        [whois] = alice.send({"type": "command", "text": "/whois bob"})
        self.assertEqual((whois["type"], whois["name"], whois["account"], whois["rooms"]),
                         ("whois", "bob", False, ["lobby"]))
        self.assertNotIn("address", whois)
        [bans] = alice.send({"type": "command", "text": "/bans"})
        self.assertEqual((bans["type"], bans["bans"], bans["mutes"]), ("bans", [], []))
        bob = self.logged_in("dave")
        bob.send({"type": "command", "text": "/away brb"})
        sent = alice.send({"type": "command", "text": "/msg dave hi"})
        self.assertIn({"type": "away", "name": "dave", "text": "brb"}, sent)

    def test_expiry_notice_json(self) -> None:
        """An expiry (no actor, no user) still says what changed."""
        notice = Notice("den", "the ban on troll in #den expired", 5.0, "00:00:05", None,
                        "unbanned", None, "troll")
        self.assertEqual(to_json(notice), {
            "type": "notice", "room": "den", "text": "the ban on troll in #den expired",
            "time": 5.0, "change": "unbanned", "detail": "troll"})

    def test_gbanned_address_refused_at_connect(self) -> None:
        root, _ = self.world.login("root")
        root.session.user.operator = True  # type: ignore[attr-defined]
        victim = self.logged_in("victim")
        root.dataReceived(("/gban %s\r\n" % victim.host).encode())
        sent = victim.transport.take()
        self.assertEqual((sent[-1]["type"], sent[-1]["code"]), ("error", "banned_from_server"))
        self.assertIsNotNone(victim.transport.close_code)
        # a new WebSocket from there: one error, closed, no prompt
        protocol = ChatWebSocket(self.factory, victim.host + ":50001", victim.host)
        transport = FakeWebSocketTransport()
        protocol.negotiationStarted(transport)  # type: ignore[arg-type]
        protocol.negotiationFinished()
        self.assertEqual([(m["type"], m.get("code")) for m in transport.take()],
                         [("error", "banned_from_server")])
        self.assertIsNotNone(transport.close_code)
