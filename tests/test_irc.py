"""
The IRC front end through StringTransport and a Clock: registration, every
command, the limits, and what telnet users and IRC users see of each other.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PEER, World, lines
from twisted_chat.config import ChatConfig
from twisted_chat.domain.events import Entry
from twisted_chat.frontends.irc.protocol import MAX_FRAME, IRCFactory, IRCHub, IRCProtocol
from twisted_chat.frontends.irc.render import server_time
from twisted_chat.text import date_stamp

NAME = "irc.test"


class IRCWorld(World):
    """A L{World} with an IRC factory on the same server."""

    def __init__(self, passcode: bytes | None = None, **kwargs: object) -> None:
        config = kwargs.pop("config", None) or ChatConfig(passcode=passcode, db=":memory:")
        super().__init__(passcode=passcode, config=config, **kwargs)  # type: ignore[arg-type]
        self.hub = IRCHub(NAME, self.clock)
        self.irc_factory = IRCFactory(self.context, self.hub)

    def irc(self) -> tuple[IRCProtocol, StringTransport]:
        protocol = self.irc_factory.buildProtocol(PEER)
        assert isinstance(protocol, IRCProtocol)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        return protocol, transport

    def irc_login(self, nick: str, *caps: str,
                  passcode: str | None = None) -> tuple[IRCProtocol, StringTransport]:
        protocol, transport = self.irc()
        data = b""
        if caps:
            data += b"CAP LS 302\r\nCAP REQ :%s\r\n" % " ".join(caps).encode()
        if passcode is not None:
            data += b"PASS %s\r\n" % passcode.encode()
        data += b"NICK %s\r\nUSER u 0 * :Real Name\r\n" % nick.encode()
        if caps:
            data += b"CAP END\r\n"
        protocol.dataReceived(data)
        assert b" 001 %s " % nick.encode() in transport.value(), transport.value()
        transport.clear()
        return protocol, transport


def send(protocol: IRCProtocol, *lines_: str) -> None:
    protocol.dataReceived("".join(line + "\r\n" for line in lines_).encode("utf-8"))


class RegistrationTests(SynchronousTestCase):
    def test_welcome(self) -> None:
        """NICK and USER (either order) get 001-005, LUSERS and 422."""
        world = IRCWorld()
        protocol, transport = world.irc()
        send(protocol, "USER u 0 * :Real", "NICK alice")
        out = lines(transport)
        numerics = [line.split()[1] for line in out]
        self.assertEqual(numerics[:4], ["001", "002", "003", "004"])
        self.assertIn("422", numerics)
        self.assertIn("251", numerics)
        isupport = " ".join(line for line in out if " 005 " in line)
        for token in ("CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=20", "CHANNELLEN=33",
                      "UTF8ONLY"):
            self.assertIn(" %s " % token, isupport)
        self.assertTrue(out[0].startswith(":irc.test 001 alice :Welcome"))
        self.assertEqual(out[3].split()[3:], ["irc.test", out[3].split()[4], "i", "bnotv", "bov"])
        # online, in no room (no auto-join of the lobby for IRC)
        member = world.server.directory.find("alice")
        self.assertIsNotNone(member)
        self.assertEqual(list(member.rooms), [])

    def test_passcode(self) -> None:
        """A missing or wrong PASS gets 464 and never 001; the right one registers."""
        world = IRCWorld(passcode=b"x")
        protocol, transport = world.irc()
        send(protocol, "NICK alice", "USER u 0 * :R")
        out = lines(transport)
        self.assertEqual([line.split()[1] for line in out], ["464"])
        send(protocol, "PASS wrong", "NICK alice")
        out = lines(transport)
        self.assertEqual([line.split()[1] for line in out], ["464"])
        self.assertFalse(transport.disconnecting)
        send(protocol, "PASS x", "NICK alice")
        self.assertIn(" 001 alice ", transport.value().decode())

    def test_nick_taken_and_bad(self) -> None:
        """433 for a taken nick (a telnet user's too), 432 for a bad one, 431 for none."""
        world = IRCWorld()
        world.login("alice")
        protocol, transport = world.irc()
        send(protocol, "NICK alice", "USER u 0 * :R")
        taken = ":irc.test 433 * alice :the name alice is taken; pick another"
        self.assertEqual(lines(transport), [taken])
        send(protocol, "NICK b@d")
        self.assertEqual(lines(transport)[0].split()[1:4], ["432", "*", "b@d"])
        send(protocol, "NICK :")
        self.assertEqual(lines(transport)[0].split()[1], "431")
        send(protocol, "NICK bob")
        self.assertIn(" 001 bob ", transport.value().decode())

    def test_cap(self) -> None:
        """CAP LS holds registration until CAP END; REQ is ACKed or NAKed as a whole."""
        world = IRCWorld()
        protocol, transport = world.irc()
        send(protocol, "CAP LS 302", "NICK alice", "USER u 0 * :R")
        out = lines(transport)
        self.assertEqual(len(out), 1)
        self.assertIn("server-time", out[0])
        self.assertIn("echo-message", out[0])
        send(protocol, "CAP REQ :server-time bogus")
        self.assertEqual(lines(transport), [":irc.test CAP * NAK :server-time bogus"])
        send(protocol, "CAP REQ :server-time echo-message", "CAP LIST")
        self.assertEqual(lines(transport), [
            ":irc.test CAP * ACK :server-time echo-message",
            ":irc.test CAP * LIST :echo-message server-time"])
        send(protocol, "CAP FOO")
        self.assertEqual(lines(transport)[0].split()[1:4], ["410", "*", "FOO"])
        send(protocol, "CAP END")
        self.assertIn(" 001 alice ", transport.value().decode())

    def test_before_registration(self) -> None:
        """Commands before registration get 451; PING gets PONG; QUIT closes."""
        world = IRCWorld()
        protocol, transport = world.irc()
        send(protocol, "JOIN #a", "PING tok")
        self.assertEqual(lines(transport), [":irc.test 451 * :You have not registered",
                                            ":irc.test PONG irc.test tok"])
        send(protocol, "QUIT :chkport")
        self.assertTrue(lines(transport)[0].startswith("ERROR :"))
        self.assertTrue(transport.disconnecting)

    def test_login_timeout(self) -> None:
        """A connection that never registers is closed after the login timeout."""
        world = IRCWorld()
        protocol, transport = world.irc()
        world.clock.advance(world.config.login_timeout + 1)
        self.assertTrue(transport.disconnecting)


class ChannelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.world = IRCWorld(config=ChatConfig(passcode=None, db=":memory:", rate=0))
        self.irc, self.out = self.world.irc_login("bob")

    def test_join_several(self) -> None:
        """JOIN of two channels: JOIN, 353, 366 for each; joining keeps the others."""
        send(self.irc, "JOIN #a,#b")
        self.assertEqual(lines(self.out), [
            ":bob!u@twisted-chat JOIN #a", ":irc.test 353 bob = #a bob",
            ":irc.test 366 bob #a :End of /NAMES list",
            ":bob!u@twisted-chat JOIN #b", ":irc.test 353 bob = #b bob",
            ":irc.test 366 bob #b :End of /NAMES list"])
        member = self.world.server.directory.find("bob")
        self.assertEqual([room.name for room in member.rooms], ["a", "b"])
        send(self.irc, "JOIN #a", "JOIN #ok,inv@lid")
        out = lines(self.out)
        self.assertEqual(out[0], ":bob!u@twisted-chat JOIN #ok")
        self.assertEqual(out[-1].split()[1:4], ["403", "bob", "inv@lid"])

    def test_part(self) -> None:
        """PART echoes, with the reason; a channel one is not in gets 442 or 403."""
        send(self.irc, "JOIN #a")
        lines(self.out)
        send(self.irc, "PART #a :bye", "PART #a", "PART #nope")
        out = lines(self.out)
        self.assertEqual(out[0], ":bob!u@twisted-chat PART #a bye")
        self.assertEqual(out[1].split()[1], "403")  # the room went with its last member
        self.assertEqual(out[2].split()[1], "403")
        send(self.irc, "JOIN #a")
        alice, _ = self.world.irc_login("alice")
        send(alice, "JOIN #a")
        lines(self.out)
        send(alice, "PART #b")
        self.assertEqual(lines(self.out), [])

    def test_history_replay_batch(self) -> None:
        """Replayed history is the channel's PRIVMSGs with their time, in a batch."""
        when = self.world.clock.seconds() - 60
        self.world.history.append(Entry("a", "alice", "earlier", when))
        self.world.history.append(Entry("a", "alice", "waves", when + 1, action=True))
        irc, out = self.world.irc_login("carol", "batch", "server-time")
        send(irc, "JOIN #a")
        got = lines(out)
        self.assertEqual(got[0].split()[-2:], ["JOIN", "#a"])
        self.assertEqual(got[2].split()[1], "366")
        self.assertEqual(got[3], ":irc.test BATCH +h1 chathistory #a")
        self.assertEqual(got[4], "@time=%s;batch=h1 :alice!alice@twisted-chat PRIVMSG "
                         "#a earlier" % server_time(when))
        self.assertEqual(got[5], "@time=%s;batch=h1 :alice!alice@twisted-chat PRIVMSG "
                         "#a :\x01ACTION waves\x01" % server_time(when + 1))
        self.assertEqual(got[6], ":irc.test BATCH -h1")

    def test_history_without_batch(self) -> None:
        """Without batch, the replay still carries the original time tags."""
        when = self.world.clock.seconds() - 60
        self.world.history.append(Entry("a", "alice", "earlier", when))
        irc, out = self.world.irc_login("carol", "server-time")
        send(irc, "JOIN #a")
        got = lines(out)
        self.assertEqual(got[3], "@time=%s :alice!alice@twisted-chat PRIVMSG #a earlier"
                         % server_time(when))

    def test_history_without_tags(self) -> None:
        """
        A client that enabled no tags gets none (IRCv3): the original time
        is in the replayed line's text.
        """
        when = self.world.clock.seconds() - 60
        self.world.history.append(Entry("a", "alice", "earlier", when))
        send(self.irc, "JOIN #a")
        got = lines(self.out)
        self.assertEqual(got[3], ":alice!alice@twisted-chat PRIVMSG #a :[%s] earlier"
                         % date_stamp(when))
        self.assertFalse([line for line in got if line.startswith("@")])

    def test_names_list_who_whois(self) -> None:
        """NAMES, LIST, WHO and WHOIS see telnet users too."""
        telnet, _ = self.world.login("alice")
        send(self.irc, "JOIN #lobby")
        lines(self.out)
        send(self.irc, "NAMES #lobby", "NAMES #nope")
        self.assertEqual(lines(self.out), [
            ":irc.test 353 bob = #lobby :alice bob", ":irc.test 366 bob #lobby :End of /NAMES list",
            ":irc.test 366 bob #nope :End of /NAMES list"])
        send(self.irc, "LIST")
        out = lines(self.out)
        self.assertEqual(out[1], ":irc.test 322 bob #lobby 2 :")
        self.assertEqual(out[-1].split()[1], "323")
        send(self.irc, "WHO #lobby")
        self.assertEqual(lines(self.out), [
            ":irc.test 352 bob #lobby alice twisted-chat irc.test alice H :0 alice",
            ":irc.test 352 bob #lobby u twisted-chat irc.test bob H :0 Real Name",
            ":irc.test 315 bob #lobby :End of WHO list"])
        send(self.irc, "WHO Real*")
        self.assertEqual(len(lines(self.out)), 2)
        send(self.irc, "WHOIS alice", "WHOIS nobody")
        out = lines(self.out)
        self.assertEqual(out[0], ":irc.test 311 bob alice alice twisted-chat * alice")
        self.assertEqual(out[1], ":irc.test 319 bob alice #lobby")
        self.assertEqual(out[3].split()[1], "317")  # idle and signon: the domain knows
        self.assertEqual(out[4].split()[1], "318")
        self.assertEqual([line.split()[1] for line in out[5:]], ["401", "318"])

    def test_queries(self) -> None:
        """ISON, USERHOST, AWAY, MODE, KICK, OPER, TOPIC, PING, TIME, MOTD, 421."""
        self.world.login("alice")
        send(self.irc, "ISON alice nobody Bob", "USERHOST alice bob")
        self.assertEqual(lines(self.out), [
            ":irc.test 303 bob :alice bob",
            ":irc.test 302 bob :alice=+alice@twisted-chat bob=+u@twisted-chat"])
        send(self.irc, "AWAY :lunch", "USERHOST bob", "AWAY")
        self.assertEqual(lines(self.out), [
            ":irc.test 306 bob :You have been marked as being away",
            ":irc.test 302 bob bob=-u@twisted-chat",
            ":irc.test 305 bob :You are no longer marked as being away"])
        send(self.irc, "JOIN #a")
        lines(self.out)
        send(self.irc, "MODE #a", "MODE #a +o alice", "MODE bob", "KICK #a alice",
             "OPER x y", "OPER x")
        self.assertEqual([line.split()[1] for line in lines(self.out)],
                         ["324", "482", "221", "482", "491", "461"])
        send(self.irc, "TOPIC #a", "TOPIC #a :new topic", "TOPIC #a")
        out = lines(self.out)
        self.assertEqual(out[0].split()[1], "331")
        self.assertEqual(out[1], ":bob!u@twisted-chat TOPIC #a :new topic")
        self.assertEqual(out[2], ":irc.test 332 bob #a :new topic")
        send(self.irc, "PING :tok en", "PING", "TIME", "MOTD", "FOO bar")
        out = lines(self.out)
        self.assertEqual(out[0], ":irc.test PONG irc.test :tok en")
        self.assertEqual([line.split()[1] for line in out[1:]], ["409", "391", "422", "421"])
        self.assertEqual(out[-1], ":irc.test 421 bob FOO :Unknown command")

    def test_nick_change(self) -> None:
        """NICK after registration renames: IRC users see NICK, telnet users a notice."""
        telnet, tout = self.world.login("alice")
        carol, cout = self.world.irc_login("carol")
        send(carol, "JOIN #lobby")
        send(self.irc, "JOIN #lobby")
        lines(self.out)
        lines(cout)
        lines(tout)
        send(self.irc, "NICK alice", "NICK b@d", "NICK Bobby")
        out = lines(self.out)
        self.assertEqual(out[0].split()[1:3], ["433", "bob"])
        self.assertEqual(out[1].split()[1:3], ["432", "bob"])
        self.assertEqual(out[2], ":bob!u@twisted-chat NICK Bobby")
        self.assertEqual(lines(cout), [":bob!u@twisted-chat NICK Bobby"])
        self.assertEqual([line[11:] for line in lines(tout)],
                         ["*** bob is now known as Bobby ***"])
        self.assertIsNone(self.world.server.directory.find("bob"))
        self.assertIs(self.world.server.directory.find("bobby").participant, self.irc)
        telnet.dataReceived(b"/msg Bobby hi\r\n")
        self.assertEqual(lines(self.out), [":alice!alice@twisted-chat PRIVMSG Bobby hi"])
        send(self.irc, "NICK BOBBY", "PRIVMSG #lobby :x")
        self.assertEqual(lines(self.out), [":Bobby!u@twisted-chat NICK BOBBY"])
        self.assertEqual(lines(cout), [":Bobby!u@twisted-chat NICK BOBBY",
                                       ":BOBBY!u@twisted-chat PRIVMSG #lobby x"])
        # the old nick is free at once
        other, _ = self.world.irc_login("bob")

    def test_whowas(self) -> None:
        """WHOWAS answers from IRC users who left, newest first."""
        carol, _ = self.world.irc_login("carol")
        send(carol, "QUIT :bye")
        carol.connectionLost(None)
        send(self.irc, "WHOWAS carol", "WHOWAS nobody", "WHOWAS")
        self.assertEqual(lines(self.out), [
            ":irc.test 314 bob carol u twisted-chat * :Real Name",
            ":irc.test 312 bob carol irc.test twisted-chat",
            ":irc.test 369 bob carol :End of WHOWAS",
            ":irc.test 406 bob nobody :There was no such nickname",
            ":irc.test 369 bob nobody :End of WHOWAS",
            ":irc.test 461 bob WHOWAS :Not enough parameters"])

    def test_invisible(self) -> None:
        """MODE +i hides a user from WHO masks, not from an exact nick or a shared channel."""
        carol, cout = self.world.irc_login("carol")
        send(carol, "MODE carol +i", "MODE carol")
        self.assertEqual(lines(cout), [":carol!u@twisted-chat MODE carol +i",
                                       ":irc.test 221 carol +i"])
        send(self.irc, "WHO car*", "WHO carol")
        self.assertEqual([line.split()[1] for line in lines(self.out)], ["315", "352", "315"])
        send(carol, "JOIN #a")
        send(self.irc, "JOIN #a")
        lines(self.out)
        send(self.irc, "WHO car*")
        self.assertEqual([line.split()[1] for line in lines(self.out)], ["352", "315"])

    def test_whox(self) -> None:
        """WHO mask %fields[,token] answers 354 with the fields in WHOX's order."""
        send(self.irc, "JOIN #a", "WHO bob %nrtuc,42", "WHO bob %n")
        out = lines(self.out)[3:]
        self.assertEqual(out, [":irc.test 354 bob 42 #a u bob :Real Name",
                               ":irc.test 315 bob bob :End of WHO list",
                               ":irc.test 354 bob bob", ":irc.test 315 bob bob :End of WHO list"])

    def test_labeled_response(self) -> None:
        """A labelled command's answer carries the label: one line, a batch, or ACK."""
        irc, out = self.world.irc_login("carol", "labeled-response", "batch")
        send(irc, "@label=a1 PING x", "@label=b2 PONG x", "@label=c3 WHOIS carol")
        got = lines(out)
        self.assertEqual(got[0], "@label=a1 :irc.test PONG irc.test x")
        self.assertEqual(got[1], "@label=b2 :irc.test ACK")
        self.assertEqual(got[2], "@label=c3 :irc.test BATCH +l1 labeled-response")
        self.assertEqual(got[3], "@batch=l1 :irc.test 311 carol carol u twisted-chat * :Real Name")
        self.assertEqual(got[-1], ":irc.test BATCH -l1")
        send(irc, "@label=d4 FOO", "@label=e5 PRIVMSG carol :me")
        got = lines(out)
        self.assertEqual(got[0], "@label=d4 :irc.test 421 carol FOO :Unknown command")
        # to yourself: the message arrives unlabelled (no echo-message here: nothing else)
        self.assertEqual(got[1:], [":carol!u@twisted-chat PRIVMSG carol me",
                                   "@label=e5 :irc.test ACK"])
        send(self.irc, "@label=z PING y")  # bob did not ask for labeled-response
        self.assertEqual(lines(self.out), [":irc.test PONG irc.test y"])

    def test_notice_between_irc_users(self) -> None:
        """A NOTICE from one IRC user to another stays a NOTICE (cleaned), echoed if asked."""
        carol, cout = self.world.irc_login("carol", "echo-message")
        send(carol, "NOTICE bob :ping \x1b[2Jthere")
        self.assertEqual(lines(self.out), [":carol!u@twisted-chat NOTICE bob :ping there"])
        self.assertEqual(lines(cout), [":carol!u@twisted-chat NOTICE bob :ping \x1b[2Jthere"])

    def test_monitor(self) -> None:
        """MONITOR tells when IRC users come and go, and lists and clears."""
        self.world.login("alice")
        send(self.irc, "MONITOR + carol,alice,*!x@y", "MONITOR L")
        self.assertEqual(lines(self.out), [
            ":irc.test 730 bob alice!alice@twisted-chat", ":irc.test 731 bob carol",
            ":irc.test 732 bob carol,alice", ":irc.test 733 bob :End of MONITOR list"])
        carol, _ = self.world.irc_login("carol")
        self.assertEqual(lines(self.out), [":irc.test 730 bob carol!u@twisted-chat"])
        send(carol, "NICK carla")
        self.assertEqual(lines(self.out), [":irc.test 731 bob carol"])
        send(carol, "NICK carol")
        self.assertEqual(lines(self.out), [":irc.test 730 bob carol!u@twisted-chat"])
        send(carol, "NICK Carol", "NICK carol")  # a case change is no news
        self.assertEqual(lines(self.out), [])
        send(carol, "QUIT")
        self.assertEqual(lines(self.out), [":irc.test 731 bob carol"])
        send(self.irc, "MONITOR - carol", "MONITOR S", "MONITOR C", "MONITOR L")
        self.assertEqual(lines(self.out), [":irc.test 730 bob alice!alice@twisted-chat",
                                           ":irc.test 733 bob :End of MONITOR list"])
        self.irc.connectionLost(None)
        self.assertEqual(self.world.hub.watchers, {})

    def test_away_notify(self) -> None:
        """away-notify: channel members (and extended-monitor watchers) hear AWAY."""
        carol, cout = self.world.irc_login("carol", "away-notify")
        dave, dout = self.world.irc_login("dave", "away-notify", "extended-monitor")
        send(dave, "MONITOR + bob")
        send(carol, "JOIN #a")
        lines(cout)
        lines(dout)
        send(self.irc, "AWAY :afk", "JOIN #a")
        self.assertEqual(lines(cout), [":bob!u@twisted-chat JOIN #a",
                                       ":bob!u@twisted-chat AWAY afk"])
        self.assertEqual(lines(dout), [":bob!u@twisted-chat AWAY afk"])
        send(self.irc, "AWAY")
        self.assertEqual(lines(cout), [":bob!u@twisted-chat AWAY"])
        self.assertEqual(lines(dout), [":bob!u@twisted-chat AWAY"])

    def test_topics_of_gone_rooms_forgotten(self) -> None:
        """The topic of an unclaimed room goes with the room: the state does not grow."""
        for number in range(1005):
            send(self.irc, "JOIN #r%d" % number, "TOPIC #r%d :t" % number,
                 "PART #r%d" % number)
        self.assertEqual(list(self.world.server.moderation.rooms()), [])

    def test_away_reply(self) -> None:
        """A PRIVMSG to an away IRC user gets 301."""
        carol, _ = self.world.irc_login("carol")
        send(carol, "AWAY :gone")
        send(self.irc, "PRIVMSG carol :hi")
        self.assertEqual(lines(self.out), [":irc.test 301 bob carol gone"])


class CrossFrontendTests(SynchronousTestCase):
    """Telnet and IRC users see each other natively."""

    def setUp(self) -> None:
        self.world = IRCWorld()
        self.irc, self.out = self.world.irc_login("bob")
        send(self.irc, "JOIN #lobby")
        lines(self.out)
        self.telnet, self.tout = self.world.login("alice")
        self.assertEqual(lines(self.out), [":alice!alice@twisted-chat JOIN #lobby"])

    def test_telnet_to_irc(self) -> None:
        """A telnet line is a PRIVMSG, /me a CTCP ACTION, /msg a private PRIVMSG."""
        self.telnet.dataReceived(b"hello irc\r\n/me dances\r\n/msg bob secret\r\n")
        self.assertEqual(lines(self.out), [
            ":alice!alice@twisted-chat PRIVMSG #lobby :hello irc",
            ":alice!alice@twisted-chat PRIVMSG #lobby :\x01ACTION dances\x01",
            ":alice!alice@twisted-chat PRIVMSG bob secret"])

    def test_irc_to_telnet(self) -> None:
        """PRIVMSG to the channel, an ACTION and a PRIVMSG to the nick reach telnet."""
        send(self.irc, "PRIVMSG #lobby :hi there", "PRIVMSG #lobby :\x01ACTION waves\x01",
             "PRIVMSG alice :psst", "NOTICE #lobby :a notice")
        self.assertEqual([line[11:] for line in lines(self.tout)], [
            "bob: hi there", "* bob waves", "[PRIVATE] bob: psst", "bob: a notice"])
        self.assertEqual(lines(self.out), [])  # no echo without echo-message

    def test_telnet_join_part_quit(self) -> None:
        """A telnet /join is a PART of the old channel, a quit is a QUIT."""
        self.telnet.dataReceived(b"/join dev\r\n")
        self.assertEqual(lines(self.out), [":alice!alice@twisted-chat PART #lobby"])
        send(self.irc, "JOIN #dev")
        lines(self.out)
        self.telnet.dataReceived(b"/quit off to bed\r\n")
        self.assertEqual(lines(self.out), [":alice!alice@twisted-chat QUIT :Quit: off to bed"])

    def test_irc_join_part_quit(self) -> None:
        """IRC JOIN, PART and QUIT are notices on telnet."""
        send(self.irc, "PART #lobby :later", "JOIN #lobby", "QUIT :gone")
        out = [line[11:] for line in lines(self.tout)]
        self.assertEqual(out, ["*** bob left #lobby (later) ***", "*** bob joined #lobby ***",
                               "*** bob quit (gone) ***"])
        self.assertIsNone(self.world.server.directory.find("bob"))

    def test_echo_message(self) -> None:
        """echo-message repeats PRIVMSG and NOTICE to the sender, with server-time."""
        irc, out = self.world.irc_login("carol", "echo-message", "server-time")
        send(irc, "JOIN #lobby")
        lines(out)
        send(irc, "PRIVMSG #lobby :hi", "NOTICE alice :n", "PRIVMSG #nope :x")
        got = lines(out)
        stamp = "@time=%s " % server_time(self.world.clock.seconds())
        self.assertEqual(got[:2], [stamp + ":carol!u@twisted-chat PRIVMSG #lobby hi",
                                   stamp + ":carol!u@twisted-chat NOTICE alice n"])
        self.assertEqual(got[2].split()[1], "403")
        self.assertEqual(lines(self.out), [":carol!u@twisted-chat JOIN #lobby",
                                           ":carol!u@twisted-chat PRIVMSG #lobby hi"])

    def test_notice_to_channel(self) -> None:
        """A NOTICE to a channel is a NOTICE on IRC and a message on telnet, kept in history."""
        irc, out = self.world.irc_login("carol")
        send(irc, "JOIN #lobby")
        lines(self.out)
        lines(out)
        lines(self.tout)
        send(self.irc, "NOTICE #lobby :heads up \x1b[31mred")
        self.assertEqual(lines(out), [":bob!u@twisted-chat NOTICE #lobby :heads up red"])
        self.assertEqual([line[11:] for line in lines(self.tout)], ["bob: heads up red"])
        entries = self.successResultOf(self.world.history.recent("lobby", 5))
        self.assertEqual([(e.sender, e.text) for e in entries], [("bob", "heads up red")])

    def test_irc_line_cut(self) -> None:
        """A text that fits an IRC line but not with the prefix is cut to one line."""
        irc, _ = self.world.irc_login("carol")
        send(irc, "JOIN #lobby")
        lines(self.out)
        send(irc, "PRIVMSG #lobby :" + "a" * 490)
        (line,) = lines(self.out)
        self.assertIn(len(line.encode()) + 2, (511, 512))  # 512 with the trailing ':'
        self.assertTrue(line.endswith("a" * 400))

    def test_long_telnet_line_split(self) -> None:
        """A telnet line longer than an IRC line arrives as several PRIVMSGs."""
        self.telnet.dataReceived(b"word " * 200 + b"\r\n")
        out = lines(self.out)
        self.assertGreater(len(out), 1)
        for line in out:
            self.assertLessEqual(len(line.encode()) + 2, 512)
            self.assertTrue(line.startswith(":alice!alice@twisted-chat PRIVMSG #lobby :word"))

    def test_errors(self) -> None:
        """Missing targets: 401, 403, 404, 412; a NOTICE never gets an error."""
        send(self.irc, "PRIVMSG nobody :x", "PRIVMSG #nope :x", "PRIVMSG #lobby :",
             "NOTICE nobody :x", "NOTICE #nope :x")
        self.assertEqual([line.split()[1] for line in lines(self.out)], ["401", "403", "412"])
        self.telnet.dataReceived(b"/join dev\r\n")
        lines(self.out)
        send(self.irc, "PRIVMSG #dev :x")
        self.assertEqual([line.split()[1] for line in lines(self.out)], ["404"])


class LimitTests(SynchronousTestCase):
    def test_long_line(self) -> None:
        """511 bytes get 417 and the session stays; 510 are fine."""
        world = IRCWorld()
        irc, out = world.irc_login("bob")
        irc.dataReceived(b"PING :" + b"a" * 504 + b"\r\n")
        self.assertEqual(lines(out)[0].split()[1], "PONG")
        irc.dataReceived(b"PING :" + b"a" * 505 + b"\r\n")
        self.assertEqual(lines(out), [":irc.test 417 bob :Input line was too long"])
        irc.dataReceived(b"PING " + b"b" * (MAX_FRAME + 10))
        irc.dataReceived(b"b" * 100 + b"\r\nPING ok\r\n")
        self.assertEqual(lines(out), [":irc.test 417 bob :Input line was too long",
                                      ":irc.test PONG irc.test ok"])
        self.assertFalse(out.disconnecting)

    def test_invalid_utf8(self) -> None:
        """Bad UTF-8 gets FAIL <command> INVALID_UTF8 and the line is dropped."""
        world = IRCWorld()
        telnet, tout = world.login("alice")
        irc, out = world.irc_login("bob")
        send(irc, "JOIN #lobby")
        lines(out)
        lines(tout)
        irc.dataReceived(b"PRIVMSG #lobby :caf\xe9\r\n")
        self.assertEqual(lines(out)[0].split()[:4], [":irc.test", "FAIL", "PRIVMSG",
                                                     "INVALID_UTF8"])
        self.assertEqual(lines(tout), [])
        self.assertFalse(out.disconnecting)

    def test_framing(self) -> None:
        """Lines split across reads and pipelined lines, LF or CRLF, are put together."""
        world = IRCWorld()
        irc, out = world.irc()
        for chunk in (b"NI", b"CK bo", b"b\nUSER u 0 * :R", b"\r", b"\nPING x\r\nPI"):
            irc.dataReceived(chunk)
        got = lines(out)
        self.assertEqual(got[0].split()[1:3], ["001", "bob"])
        self.assertEqual(got[-1], ":irc.test PONG irc.test x")

    def test_flood(self) -> None:
        """The flood limit applies to IRC lines: past the burst, lines are dropped."""
        world = IRCWorld(config=ChatConfig(passcode=None, db=":memory:", rate=1, burst=3))
        telnet, tout = world.login("alice")
        irc, out = world.irc_login("bob")
        send(irc, "JOIN #lobby")
        lines(tout)
        send(irc, *["PRIVMSG #lobby :m%d" % i for i in range(6)])
        self.assertEqual(len(lines(tout)), 2)  # the JOIN took the first token
        self.assertIn("slow down", lines(out)[-1])
        send(irc, *["WHO #lobby"] * 3)
        self.assertEqual(lines(out), [])  # still dropped (told once a second)
        self.assertFalse(out.disconnecting)

    def test_sendq(self) -> None:
        """A client that stops reading is dropped past the sendq; others are not."""
        world = IRCWorld(config=ChatConfig(passcode=None, db=":memory:", sendq=4096, rate=0))
        irc, out = world.irc_login("bob")
        send(irc, "JOIN #lobby")
        telnet, _ = world.login("alice")
        irc.send_queue.pauseProducing()
        for _ in range(100):
            telnet.dataReceived(b"x" * 100 + b"\r\n")
        self.assertTrue(irc.send_queue.overflowed)
        self.assertTrue(out.disconnecting)
        self.assertLess(len(out.value()), 4096 + 2000)

    def test_no_input_closes(self) -> None:
        """Odd input (NUL, tags only, a prefix only, empty) closes nothing."""
        world = IRCWorld()
        irc, out = world.irc_login("bob")
        irc.dataReceived(b"PRIVMSG \x00 x\r\n@a=b\r\n:prefix\r\n\r\n   \r\n"
                         b"@" + b"t" * 9000 + b" PING x\r\nPING ok\r\n")
        self.assertEqual(lines(out)[-1], ":irc.test PONG irc.test ok")
        self.assertFalse(out.disconnecting)

    def test_connection_limit(self) -> None:
        """The connection limits apply: past max-per-ip the factory refuses."""
        world = IRCWorld(config=ChatConfig(passcode=None, db=":memory:", max_per_ip=1))
        world.irc()
        refused = world.irc_factory.buildProtocol(PEER)
        self.assertNotIsInstance(refused, IRCProtocol)
