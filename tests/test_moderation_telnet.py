"""
Moderation from telnet: each command typed on the line protocol
(StringTransport), with accounts, guests and an operator.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.frontends.line.protocol import ChatLineProtocol

from .helpers import lines
from .test_accounts import AccountWorld

TROLL_HOST = "198.51.100.5"


class TelnetModerationTests(SynchronousTestCase):
    """Alice owns #den; root is an operator; troll and reader are guests."""

    def setUp(self) -> None:
        self.world = AccountWorld()
        self.world.add("alice", "alice-password")
        self.world.add("bob", "bob-password")
        self.world.add("root", "root-password", operator=True)
        self.alice, self.alice_out = self.login("alice", "alice-password", "203.0.113.1")
        self.root, self.root_out = self.login("root", "root-password", "203.0.113.2")
        self.troll, self.troll_out = self.login("troll", host=TROLL_HOST)
        self.reader, self.reader_out = self.login("reader", host="203.0.113.3")
        for protocol in (self.alice, self.troll, self.reader):
            self.type(protocol, "/join den")
        self.type(self.alice, "/claim")
        self.clear()

    def login(self, name: str, password: str | None = None,
              host: str = "192.0.2.7") -> tuple[ChatLineProtocol, StringTransport]:
        protocol, transport = self.connect(host)
        protocol.dataReceived(name.encode() + b"\r\n")
        if password is not None:
            protocol.dataReceived(password.encode() + b"\r\n")
        assert b"Welcome, " in transport.value(), transport.value()
        transport.clear()
        return protocol, transport

    def connect(self, host: str) -> tuple[ChatLineProtocol, StringTransport]:
        peer = IPv4Address("TCP", host, 40000)
        protocol = self.world.factory.buildProtocol(peer)
        assert isinstance(protocol, ChatLineProtocol)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    def type(self, protocol: ChatLineProtocol, line: str) -> None:
        protocol.dataReceived(line.encode() + b"\r\n")

    def clear(self) -> None:
        for transport in (self.alice_out, self.root_out, self.troll_out, self.reader_out):
            transport.clear()

    def said(self, transport: StringTransport) -> list[str]:
        """The lines written, without the [HH:MM:SS] stamps."""
        return [line.split("] ", 1)[1] if line.startswith("[") else line
                for line in lines(transport)]

    def test_help_lists_moderation(self) -> None:
        self.type(self.reader, "/help")
        out = "\n".join(lines(self.reader_out))
        for command in ("/topic", "/kick", "/ban", "/unban", "/bans", "/mute", "/unmute",
                        "/claim", "/op", "/deop", "/kill", "/gban", "/ungban", "/gmute",
                        "/ungmute", "/wall", "/whois", "/away"):
            self.assertIn("  " + command, out)

    def test_claim_announced(self) -> None:
        self.type(self.reader, "/claim")
        self.assertEqual(lines(self.reader_out),
                         ["ERROR only accounts can claim rooms (/register first)"])

    def test_topic(self) -> None:
        self.type(self.troll, "/topic mine now")
        self.assertEqual(lines(self.troll_out), ["ERROR you are not an op in #den"])
        self.type(self.alice, "/topic Dragons only")
        self.assertEqual(self.said(self.reader_out),
                         ["*** alice set the topic of #den: Dragons only ***"])
        self.type(self.reader, "/topic")
        [line] = lines(self.reader_out)
        self.assertTrue(line.startswith("Topic of #den: Dragons only (set by alice on "), line)
        # shown on joining
        self.type(self.root, "/join den")
        self.assertTrue(any(line.startswith("Topic of #den: Dragons only")
                            for line in lines(self.root_out)))
        self.type(self.alice, "/topic -")
        self.type(self.reader, "/topic")
        self.assertEqual(self.said(self.reader_out)[-1], "#den has no topic.")

    def test_kick_lands_in_lobby(self) -> None:
        self.type(self.reader, "/kick troll")
        self.assertEqual(lines(self.reader_out), ["ERROR you are not an op in #den"])
        self.type(self.alice, "/kick troll stop that")
        self.assertEqual(self.said(self.reader_out),
                         ["*** troll was kicked from #den by alice (stop that) ***"])
        out = self.said(self.troll_out)
        self.assertEqual(out[0], "*** troll was kicked from #den by alice (stop that) ***")
        self.assertIn("You are now in #lobby.", out)
        self.alice_out.clear()
        self.type(self.alice, "/kick root")
        self.assertEqual(lines(self.alice_out), ["ERROR nobody called root is in #den"])

    def test_op_cannot_kick_operator(self) -> None:
        bob, bob_out = self.login("bob", "bob-password")
        self.type(bob, "/join den")
        self.type(self.root, "/join den")
        self.type(self.alice, "/op bob")
        self.assertIn("*** alice made bob an op of #den ***", self.said(self.reader_out))
        bob_out.clear()
        self.type(bob, "/kick root")
        self.assertEqual(lines(bob_out),
                         ["ERROR root is a server operator: you cannot kick them"])
        self.type(bob, "/kick alice")
        self.assertEqual(lines(bob_out), ["ERROR alice owns #den: you cannot kick them"])
        self.type(bob, "/kick troll")
        self.assertIn("*** troll was kicked from #den by bob ***", self.said(self.reader_out))
        self.type(self.alice, "/deop bob")
        self.type(bob, "/kick reader")
        self.assertEqual(lines(bob_out)[-1], "ERROR you are not an op in #den")

    def test_ban_by_name_with_duration(self) -> None:
        self.type(self.alice, "/ban troll 2h spamming links")
        self.assertEqual(self.said(self.reader_out)[:2], [
            "*** alice banned troll from #den for 2h (spamming links) ***",
            "*** troll was kicked from #den by alice (banned) ***"])
        lines(self.troll_out)
        self.type(self.troll, "/join den")
        self.assertEqual(lines(self.troll_out), ["ERROR you are banned from #den (for 2h more)"])
        self.world.clock.advance(7200)
        self.type(self.troll, "/join den")
        self.assertIn("You are now in #den.", lines(self.troll_out))
        self.assertIn("*** the ban on troll in #den expired ***", self.said(self.reader_out))

    def test_ban_by_address_unban_and_bans(self) -> None:
        self.type(self.alice, "/ban 198.51.100.0/24")
        self.assertEqual(self.said(self.alice_out)[0],
                         "*** alice banned 198.51.100.0/24 from #den ***")
        sock, sock_out = self.login("sock", host="198.51.100.200")
        self.type(sock, "/join den")
        self.assertEqual(lines(sock_out), ["ERROR you are banned from #den"])
        self.reader_out.clear()
        self.type(self.reader, "/bans")
        out = lines(self.reader_out)
        self.assertEqual(out[0], "Bans in #den (1):")
        self.assertTrue(out[1].startswith("  198.51.100.0/24 (by alice, "), out[1])
        self.assertTrue(out[1].endswith(", until lifted)"), out[1])
        self.assertEqual(out[2], "No mutes in #den.")
        self.type(self.alice, "/unban 198.51.100.0/24")
        self.assertEqual(self.said(self.reader_out),
                         ["*** alice lifted the ban on 198.51.100.0/24 in #den ***"])
        self.type(sock, "/join den")
        self.assertIn("You are now in #den.", lines(sock_out))

    def test_ban_usage(self) -> None:
        self.type(self.alice, "/ban")
        self.assertEqual(lines(self.alice_out),
                         ["ERROR usage: /ban <name|address|cidr> [duration] [reason]"])
        self.type(self.alice, "/ban *!*@*")
        self.assertEqual(lines(self.alice_out), [
            "ERROR a target is a name, an address or a CIDR network (like 192.0.2.0/24)"])
        self.type(self.alice, "/ban troll 0m")
        self.assertEqual(lines(self.alice_out),
                         ["ERROR a duration is at least 1s (none: until lifted)"])
        self.type(self.alice, "/mute troll 10min spam")
        self.assertEqual(lines(self.alice_out),
                         ["ERROR 10min is not a duration (like 30s, 30m, 2h, 7d, 1w)"])
        self.assertEqual(lines(self.reader_out), [])  # nothing done, nothing announced
        self.type(self.alice, "/ban troll 2nd warning")
        self.assertEqual(self.said(self.reader_out)[0],
                         "*** alice banned troll from #den (2nd warning) ***")

    def test_muted_sets_no_topic(self) -> None:
        """A muted user cannot say it in a topic either (an unclaimed room's is anyone's)."""
        for protocol in (self.troll, self.reader):
            self.type(protocol, "/join free")
        self.type(self.root, "/join free")
        self.type(self.root, "/mute troll 10m")
        self.clear()
        self.type(self.troll, "/topic BUY CHEAP STUFF")
        self.assertEqual(lines(self.troll_out), ["ERROR you are muted in #free"])
        self.assertEqual(lines(self.reader_out), [])
        self.type(self.reader, "/topic free for all")
        self.assertEqual(self.said(self.troll_out),
                         ["*** reader set the topic of #free: free for all ***"])

    def test_muted_part_and_quit_say_no_reason(self) -> None:
        """A muted user's /quit reason is not said either (nor an IRC PART's)."""
        self.type(self.root, "/gmute troll 10m")
        self.type(self.alice, "/mute reader 10m")
        self.clear()
        self.type(self.troll, "/quit BUY CHEAP STUFF")
        self.type(self.reader, "/quit CHEAP STUFF HERE")
        self.assertEqual(self.said(self.alice_out),
                         ["*** troll quit ***", "*** reader quit ***"])

    def test_muted_line_reaches_nobody(self) -> None:
        self.type(self.alice, "/mute troll 10m")
        self.assertEqual(self.said(self.reader_out), ["*** alice muted troll in #den for 10m ***"])
        lines(self.troll_out)
        lines(self.alice_out)
        self.type(self.troll, "buy my stuff")
        self.type(self.troll, "/me shouts")
        self.assertEqual(lines(self.troll_out), ["ERROR you are muted in #den"] * 2)
        self.assertEqual(lines(self.reader_out), [])
        self.assertEqual(lines(self.alice_out), [])
        self.type(self.alice, "still here?")
        self.assertEqual(self.said(self.troll_out), ["alice: still here?"])  # still reads
        self.type(self.alice, "/unmute troll")
        self.type(self.troll, "sorry")
        self.assertIn("troll: sorry", self.said(self.reader_out))

    def test_kill(self) -> None:
        self.type(self.alice, "/kill troll")
        self.assertEqual(lines(self.alice_out), ["ERROR /kill is not for you (operator only)"])
        self.type(self.root, "/kill troll enough")
        self.assertEqual(lines(self.troll_out), ["ERROR you were disconnected by root (enough)"])
        self.assertTrue(self.troll_out.disconnecting)
        self.assertEqual(self.said(self.reader_out),
                         ["*** troll was disconnected by root (enough) ***"])
        self.assertEqual(lines(self.root_out), ["disconnected troll"])

    def test_gban_of_an_operator_online(self) -> None:
        """
        /gban naming an operator who is online is refused: their session is
        never closed, so the ban would only lock them out at their next login.
        """
        self.world.add("root2", "root2-password", operator=True)
        self.login("root2", "root2-password", "203.0.113.9")
        lines(self.root_out)
        self.type(self.root, "/gban ROOT2 1h")
        self.assertEqual(lines(self.root_out),
                         ["ERROR root2 is a server operator: chat-admin deop them first"])
        self.type(self.root, "/bans server")
        self.assertEqual(lines(self.root_out),
                         ["No bans on the server.", "No mutes on the server."])
        self.type(self.root, "/gmute troll")
        lines(self.root_out)
        self.type(self.root, "/bans server")
        self.assertEqual(lines(self.root_out)[:2], ["No bans on the server.",
                                                    "Mutes on the server (1):"])

    def test_gban_closes_and_refuses(self) -> None:
        self.type(self.root, "/gban 198.51.100.0/24 1d classroom spam")
        self.assertEqual(lines(self.troll_out),
                         ["ERROR you are banned from this server (for 1d more): classroom spam"])
        self.assertTrue(self.troll_out.disconnecting)
        self.assertEqual(lines(self.root_out),
                         ["banned 198.51.100.0/24 from the server for 1d; 1 session closed"])
        # a new connection from there: one ERROR line, closed
        protocol, transport = self.connect("198.51.100.9")
        out = lines(transport)
        self.assertEqual(out[-1],
                         "ERROR you are banned from this server (for 1d more): classroom spam")
        self.assertTrue(transport.disconnecting)
        # a banned name, from anywhere, at login
        self.type(self.root, "/gban troll")
        protocol, transport = self.connect("203.0.113.50")
        lines(transport)
        protocol.dataReceived(b"Troll\r\n")
        self.assertEqual(lines(transport), ["ERROR you are banned from this server"])
        self.assertTrue(transport.disconnecting)
        self.type(self.root, "/ungban troll")
        self.assertEqual(lines(self.root_out)[-1], "lifted the server ban on troll")
        self.login("troll", host="203.0.113.50")

    def test_gmute(self) -> None:
        self.type(self.root, "/gmute 198.51.100.0/24 30m")
        self.assertEqual(lines(self.root_out), ["muted 198.51.100.0/24 on the server for 30m"])
        self.type(self.troll, "hello?")
        self.type(self.troll, "/msg reader psst")
        self.assertEqual(lines(self.troll_out),
                         ["ERROR you are muted on this server (for 30m more)"] * 2)
        self.assertEqual(lines(self.reader_out), [])
        self.type(self.root, "/ungmute 198.51.100.0/24")
        self.type(self.troll, "hello?")
        self.assertEqual(self.said(self.reader_out), ["troll: hello?"])

    def test_wall(self) -> None:
        self.type(self.root, "/wall restart at noon")
        for transport in (self.alice_out, self.troll_out, self.reader_out, self.root_out):
            self.assertEqual(self.said(transport), ["*** [wall] root: restart at noon ***"])

    def test_whois(self) -> None:
        self.world.clock.advance(100)
        self.type(self.troll, "hi")
        self.world.clock.advance(20)
        self.reader_out.clear()
        self.type(self.reader, "/whois Troll")
        out = lines(self.reader_out)
        self.assertTrue(out[0].startswith("troll is a guest, online since "), out)
        self.assertTrue(out[0].endswith(", idle 20s"), out)
        self.assertEqual(out[1:], ["  rooms: #den"])
        self.type(self.root, "/whois troll")
        self.assertEqual(lines(self.root_out)[-1], "  address: " + TROLL_HOST)
        self.type(self.reader, "/whois root")
        self.assertTrue(lines(self.reader_out)[0].startswith("root is an operator"))
        self.type(self.reader, "/whois ghost")
        self.assertEqual(lines(self.reader_out), ["ERROR nobody called ghost is online"])

    def test_away(self) -> None:
        self.type(self.reader, "/away at lunch")
        self.assertEqual(lines(self.reader_out), ["you are marked as away: at lunch"])
        lines(self.alice_out)
        self.type(self.alice, "/msg reader are you there?")
        out = self.said(self.alice_out)
        self.assertEqual(out[-1], "reader is away: at lunch")
        self.type(self.reader, "/away")
        self.assertEqual(self.said(self.reader_out)[-1], "you are no longer marked as away")
        self.type(self.alice, "/msg reader back?")
        self.assertNotIn("reader is away", "\n".join(self.said(self.alice_out)))


class WhoisWithoutFloodLimitTests(SynchronousTestCase):
    """C{--rate 0} (no flood limit): /whois still knows when someone last spoke."""

    def test_idle_counts_from_the_last_line(self) -> None:
        world = AccountWorld(rate=0)
        troll, _ = world.login("troll")
        reader, reader_out = world.login("reader")
        world.clock.advance(100)
        troll.dataReceived(b"hi\r\n")
        world.clock.advance(20)
        reader_out.clear()
        reader.dataReceived(b"/whois troll\r\n")
        out = lines(reader_out)
        self.assertTrue(out[0].endswith(", idle 20s"), out)
