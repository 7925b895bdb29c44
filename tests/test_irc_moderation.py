"""
Moderation on IRC (SPEC 8, issue 16), through StringTransport and a Clock:
KICK, MODE +o/-o/+v/-v/+b/-b (masks, the m: mute extban, the ban list),
+t and TOPIC, KILL, WHOIS, AWAY, the numerics, and what telnet users see
of it (and IRC users of theirs).
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PEER, lines
from tests.test_irc_sasl import SASLWorld, numerics
from twisted_chat.frontends.irc.protocol import IRCProtocol

HOST = PEER.host
CLOAK = "twisted-chat"  # the host every user shows (SPEC 8: addresses are for operators)


class ModWorld(SASLWorld):
    """Accounts (an operator, opr), IRC and telnet on one server, --founder-ops on."""

    def __init__(self, founder_ops: bool = True) -> None:
        super().__init__()
        self.server.founder_ops = founder_ops
        self.add("Root", "root password", operator=True)

    def irc_from(self, nick: str, host: str = HOST) -> tuple[IRCProtocol, StringTransport]:
        address = IPv4Address("TCP", host, 40000)
        protocol = self.irc_factory.buildProtocol(address)
        assert isinstance(protocol, IRCProtocol)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        send(protocol, "NICK %s" % nick, "USER u 0 * :Real Name")
        assert b" 001 %s " % nick.encode() in transport.value(), transport.value()
        transport.clear()
        return protocol, transport


def send(protocol: IRCProtocol | object, *lines_: str) -> None:
    protocol.dataReceived(  # type: ignore[attr-defined]
        "".join(line + "\r\n" for line in lines_).encode("utf-8"))


def prefix(nick: str, host: str = CLOAK) -> str:
    return "%s!u@%s" % (nick, host)


class ModerationTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.world = ModWorld()
        self.ann, self.aout = self.world.irc_from("ann")
        send(self.ann, "JOIN #chan")  # the founder: its op (--founder-ops)
        self.bob, self.bout = self.world.irc_from("bob")
        send(self.bob, "JOIN #chan")
        lines(self.aout)
        lines(self.bout)

    def both(self) -> tuple[list[str], list[str]]:
        return lines(self.aout), lines(self.bout)


class ISupportTests(SynchronousTestCase):
    def test_005(self) -> None:
        """005 advertises only what is offered: b, n, t, prefixes o and v, the m: extban."""
        world = ModWorld()
        protocol, transport = world.irc()
        send(protocol, "NICK a", "USER u 0 * :A")
        isupport = " ".join(line for line in lines(transport) if " 005 " in line)
        for token in ("CHANMODES=b,,,nt", "PREFIX=(ov)@+", "EXTBAN=,m", "TARGMAX=", "KICK:4"):
            self.assertIn(token, isupport)


class FounderTests(ModerationTestCase):
    def test_names_show_the_founder(self) -> None:
        """With --founder-ops the channel's creator is @ in NAMES, WHO and WHOIS."""
        send(self.bob, "NAMES #chan", "WHO #chan", "WHOIS ann")
        out = lines(self.bout)
        self.assertIn(":irc.test 353 bob = #chan :@ann bob", out)
        self.assertIn(":irc.test 352 bob #chan u %s irc.test ann H@ :0 Real Name" % CLOAK, out)
        self.assertIn(":irc.test 319 bob ann @#chan", out)

    def test_who_nick(self) -> None:
        """WHO of a nick shows its first channel and its prefix there."""
        send(self.bob, "WHO ann", "WHO bob")
        out = lines(self.bout)
        self.assertEqual(out[0], ":irc.test 352 bob #chan u %s irc.test ann H@ :0 Real Name"
                         % CLOAK)
        self.assertEqual(out[2].split()[8], "H")

    def test_info(self) -> None:
        """INFO: 371s and 374; 402 for another server."""
        send(self.bob, "INFO", "INFO other.server")
        self.assertEqual(numerics(lines(self.bout)), ["371", "371", "374", "402"])

    def test_default_no_ops(self) -> None:
        """SPEC 8's default: an unclaimed channel has no ops, so KICK is 482."""
        world = ModWorld(founder_ops=False)
        ann, aout = world.irc_from("ann")
        bob, _ = world.irc_from("bob")
        send(ann, "JOIN #chan")
        send(bob, "JOIN #chan")
        lines(aout)
        send(ann, "NAMES #chan", "KICK #chan bob")
        out = lines(aout)
        self.assertIn(":irc.test 353 ann = #chan :ann bob", out)
        self.assertEqual(out[-1], ":irc.test 482 ann #chan "
                         ":You're not channel operator (you are not an op in #chan)")


class KickTests(ModerationTestCase):
    def test_kick(self) -> None:
        """An op's KICK: everyone in the channel (the kicked too) sees it; it leaves."""
        send(self.ann, "KICK #chan bob behave")
        kick = ":%s KICK #chan bob behave" % prefix("ann")
        self.assertEqual(self.both(), ([kick], [kick]))
        self.assertFalse(self.bob._in("chan"))

    def test_default_reason(self) -> None:
        """Without a reason, the kicker's nick (RFC 2812)."""
        send(self.ann, "KICK #chan bob")
        self.assertEqual(lines(self.aout), [":%s KICK #chan bob ann" % prefix("ann")])

    def test_errors(self) -> None:
        """482 for a non-op, 442 outside, 401 no such nick, 441 not there, 403 no channel."""
        carol, cout = self.world.irc_from("carol")
        send(carol, "KICK #chan bob")
        send(self.bob, "KICK #chan ann")
        send(self.ann, "KICK #chan nobody", "KICK #chan carol", "KICK #nope bob")
        self.assertEqual(numerics(lines(cout)), ["442"])
        self.assertEqual(numerics(lines(self.bout)), ["482"])
        self.assertEqual(numerics(lines(self.aout)), ["401", "441", "403"])
        self.assertTrue(self.bob._in("chan"))

    def test_several(self) -> None:
        """KICK #chan a,b kicks both: one KICK line each."""
        carol, cout = self.world.irc_from("carol")
        send(carol, "JOIN #chan")
        lines(self.aout)
        send(self.ann, "KICK #chan bob,carol :out")
        self.assertEqual(lines(self.aout), [":%s KICK #chan bob out" % prefix("ann"),
                                            ":%s KICK #chan carol out" % prefix("ann")])


class OpTests(ModerationTestCase):
    def test_op_and_deop(self) -> None:
        """MODE +o gives op (seen as MODE by all), -o takes it; 482 for a non-op."""
        send(self.bob, "MODE #chan +o bob")
        self.assertEqual(numerics(lines(self.bout)), ["482"])
        send(self.ann, "MODE #chan +o bob")
        mode = ":%s MODE #chan +o bob" % prefix("ann")
        self.assertEqual(self.both(), ([mode], [mode]))
        send(self.bob, "KICK #chan ann")  # an op now
        self.assertEqual(lines(self.bout), [":%s KICK #chan ann bob" % prefix("bob")])
        send(self.bob, "JOIN #chan")  # bob stays an op; ann is back, not an op
        send(self.ann, "JOIN #chan", "MODE #chan -o bob")
        self.assertEqual(lines(self.aout)[-1], ":irc.test 482 ann #chan "
                         ":You're not channel operator (you are not an op in #chan)")

    def test_op_errors(self) -> None:
        """401 for no such nick, 441 for one not in the channel, 403 for no channel."""
        self.world.irc_from("carol")
        send(self.ann, "MODE #chan +o nobody", "MODE #chan +o carol", "MODE #nope +o bob")
        self.assertEqual(numerics(lines(self.aout)), ["401", "441", "403"])

    def test_voice_spares_a_mute(self) -> None:
        """+v: a voiced member speaks in spite of a room mute; NAMES shows +."""
        send(self.ann, "MODE #chan +b m:bob!*@*", "MODE #chan +v bob")
        self.assertEqual(self.both()[1][-1], ":%s MODE #chan +v bob" % prefix("ann"))
        send(self.bob, "PRIVMSG #chan heard", "NAMES #chan")
        self.assertEqual(lines(self.aout), [":%s PRIVMSG #chan heard" % prefix("bob")])
        self.assertIn(":irc.test 353 bob = #chan :@ann +bob", lines(self.bout))


    def test_multi_prefix(self) -> None:
        """An op with a voice is @+ with multi-prefix, @ without; WHOIS +#chan for a voice."""
        send(self.ann, "MODE #chan +v ann", "MODE #chan +v bob", "CAP REQ multi-prefix")
        lines(self.aout)
        send(self.ann, "NAMES #chan")
        send(self.bob, "NAMES #chan", "WHOIS bob")
        self.assertIn(":irc.test 353 ann = #chan :@+ann +bob", lines(self.aout))
        out = lines(self.bout)
        self.assertIn(":irc.test 353 bob = #chan :@ann +bob", out)
        self.assertIn(":irc.test 319 bob bob +#chan", out)


class BanTests(ModerationTestCase):
    def test_ban_by_nick(self) -> None:
        """+b nick!*@*: MODE to all, the banned member kicked; JOIN is 474; -b lifts it."""
        send(self.ann, "MODE #chan +b BOB!*@*")
        ban = ":%s MODE #chan +b bob!*@*" % prefix("ann")
        kick = ":%s KICK #chan bob banned" % prefix("ann")
        self.assertEqual(self.both(), ([ban, kick], [ban, kick]))
        send(self.bob, "JOIN #chan")
        self.assertEqual(lines(self.bout), [
            ":irc.test 474 bob #chan :you are banned from #chan"])
        send(self.ann, "MODE #chan +b", "MODE #chan b")
        out = lines(self.aout)
        self.assertEqual(out[0], ":irc.test 367 ann #chan bob!*@* %s %d"
                         % (prefix("ann"), self.world.clock.seconds()))
        self.assertEqual(numerics(out), ["367", "368", "367", "368"])
        send(self.ann, "MODE #chan -b bob!*@*")
        self.assertEqual(lines(self.aout), [":%s MODE #chan -b bob!*@*" % prefix("ann")])
        send(self.bob, "JOIN #chan")
        self.assertEqual(lines(self.bout)[0], ":%s JOIN #chan" % prefix("bob"))

    def test_ban_by_address_and_network(self) -> None:
        """*!*@address and *!*@cidr are the domain's address and network bans."""
        carol, cout = self.world.irc_from("carol", "10.1.2.3")
        dave, dout = self.world.irc_from("dave", "203.0.113.9")
        send(self.ann, "MODE #chan +b *!*@10.0.0.0/8", "MODE #chan +b *!*@203.0.113.9")
        self.assertEqual(lines(self.aout), [
            ":%s MODE #chan +b *!*@10.0.0.0/8" % prefix("ann"),
            ":%s MODE #chan +b *!*@203.0.113.9" % prefix("ann")])
        self.assertEqual(sorted(ban.target for ban in self.world.server.moderation.bans("chan")),
                         ["10.0.0.0/8", "203.0.113.9"])
        send(carol, "JOIN #chan")
        send(dave, "JOIN #chan")
        self.assertEqual(numerics(lines(cout)), ["474"])
        self.assertEqual(numerics(lines(dout)), ["474"])

    def test_bad_masks(self) -> None:
        """Masks the domain cannot hold are refused with 696, nothing banned."""
        send(self.ann, "MODE #chan +b ba*!*@*", "MODE #chan +b *!*@example.com",
             "MODE #chan +b bob!x@*")
        self.assertEqual(numerics(lines(self.aout)), ["696", "696", "696"])
        self.assertEqual(self.world.server.moderation.bans("chan"), [])

    def test_non_op(self) -> None:
        """A non-op's +b is 482; anyone may list the bans."""
        send(self.bob, "MODE #chan +b ann!*@*", "MODE #chan +b")
        self.assertEqual(numerics(lines(self.bout)), ["482", "368"])

    def test_mute_extban(self) -> None:
        """+b m:nick!*@* mutes: PRIVMSG and NOTICE are 404 and reach nobody; -b lifts it."""
        send(self.ann, "MODE #chan +b m:bob!*@*")
        mute = ":%s MODE #chan +b m:bob!*@*" % prefix("ann")
        self.assertEqual(self.both(), ([mute], [mute]))
        send(self.bob, "PRIVMSG #chan :hi", "NOTICE #chan :hi", "MODE #chan +b")
        out = lines(self.bout)
        self.assertEqual(out[0], ":irc.test 404 bob #chan :you are muted in #chan")
        self.assertEqual(numerics(out), ["404", "404", "367", "368"])
        self.assertIn(" #chan m:bob!*@* ", out[2])
        self.assertEqual(lines(self.aout), [])
        send(self.ann, "MODE #chan -b m:bob!*@*")
        send(self.bob, "PRIVMSG #chan back")
        self.assertEqual(lines(self.aout), [":%s MODE #chan -b m:bob!*@*" % prefix("ann"),
                                            ":%s PRIVMSG #chan back" % prefix("bob")])


class TopicTests(ModerationTestCase):
    def test_topic_lock(self) -> None:
        """Unclaimed: anyone sets the topic; +t (an op's) makes it 482 for others; -t."""
        send(self.ann, "MODE #chan")
        self.assertEqual(lines(self.aout), [":irc.test 324 ann #chan +n"])
        send(self.bob, "TOPIC #chan :free", "MODE #chan +t")
        self.assertEqual(numerics(lines(self.bout)), ["TOPIC", "482"])
        send(self.ann, "MODE #chan +t")
        self.assertEqual(lines(self.bout), [":%s MODE #chan +t" % prefix("ann")])
        send(self.bob, "TOPIC #chan :mine")
        self.assertEqual(numerics(lines(self.bout)), ["482"])
        lines(self.aout)
        send(self.ann, "MODE #chan", "MODE #chan -t")
        self.assertEqual(lines(self.aout), [":irc.test 324 ann #chan +nt",
                                            ":%s MODE #chan -t" % prefix("ann")])

    def test_claimed_room_is_plus_t(self) -> None:
        """A claimed room is +t: its topic is for ops (482 for others)."""
        world = ModWorld(founder_ops=False)
        opr, rout = world.irc_from("opr")
        send(opr, "OPER Root :root password", "JOIN #den")
        bob, bout = world.irc_from("bob")
        send(bob, "JOIN #den")
        lines(bout)
        member = opr.session.member
        assert member is not None
        member.account = world.accounts.get("Root")  # type: ignore[attr-defined]
        world.server.claim_room(member, "den")
        self.assertEqual(lines(bout), [":irc.test NOTICE #den :opr claimed #den",
                                       ":%s MODE #den +to opr" % prefix("opr")])
        send(bob, "MODE #den", "TOPIC #den :mine")
        self.assertEqual(lines(bout), [
            ":irc.test 324 bob #den +nt",
            ":irc.test 482 bob #den :you are not an op in #den"])


class ServerMuteTests(ModerationTestCase):
    def test_muted_notice_to_a_user_reaches_nobody(self) -> None:
        """
        Server-muted (/gmute): a NOTICE to an IRC user is dropped like a
        PRIVMSG (it went round the domain's mute check), and so is a topic.
        """
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        root = opr.session.member
        assert root is not None
        self.world.server.gmute(root, "bob", None)
        lines(self.aout)
        lines(self.bout)
        send(self.bob, "NOTICE ann :psst", "PRIVMSG ann :psst", "TOPIC #chan :BUY NOW")
        self.assertEqual(lines(self.aout), [])
        self.assertEqual(lines(self.bout), [
            ":irc.test NOTICE bob :ERROR you are muted on this server",  # the PRIVMSG
            ":irc.test 404 bob #chan :you are muted on this server"])  # the TOPIC
        send(self.bob, "PART #chan :BUY NOW")
        self.assertEqual(lines(self.aout), [":bob!u@twisted-chat PART #chan"])


    def test_muted_cannot_change_nick(self) -> None:
        """A muted user's NICK is 447 and nobody sees it: a room mute (the m:
        extban) or a server-wide one (/gmute); once lifted the rename works."""
        send(self.ann, "MODE #chan +b m:bob!*@*")
        self.both()
        send(self.bob, "NICK spam1")
        self.assertEqual(self.both(), ([], [
            ":irc.test 447 bob :Can't change nickname while muted in #chan"]))
        send(self.ann, "MODE #chan -b m:bob!*@*")
        self.both()
        send(self.bob, "NICK bobby")
        self.assertEqual(lines(self.aout), [":%s NICK bobby" % prefix("bob")])
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        root = opr.session.member
        assert root is not None
        self.world.server.gmute(root, "bobby", None)
        self.both()
        send(self.bob, "PART #chan", "NICK spam2")
        self.assertEqual(lines(self.bout)[-1],
                         ":irc.test 447 bobby :Can't change nickname while muted on this server")
        self.assertIsNotNone(self.world.server.directory.find("bobby"))
        self.assertIsNone(self.world.server.directory.find("spam2"))

    def test_log_records_the_account(self) -> None:
        """The moderation log (each change's C{by}) names the actor's account,
        not its nick: SASL's (Alice, renamed al) or the one OPER proved (Root,
        nick opr); a guest's is its nick."""
        from tests.test_irc_sasl import plain
        al, out = self.world.irc()
        send(al, "CAP LS 302", "NICK Alice", "USER a 0 * :A", "CAP REQ sasl",
             "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "correct horse"),
             "CAP END", "NICK al", "JOIN #den", "MODE #den +b m:bob!*@*", "TOPIC #den :t")
        self.assertIn(":Alice!a@twisted-chat NICK al", out.value().decode())
        moderation = self.world.server.moderation
        self.assertEqual([(ban.target, ban.by) for ban in moderation.mutes("den")],
                         [("bob", "Alice")])
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password", "MODE #chan +b carol!*@*")
        self.assertIn(" 381 opr ", rout.value().decode())
        self.assertEqual([ban.by for ban in moderation.bans("chan")], ["Root"])
        send(self.ann, "MODE #chan +b m:carol!*@*")  # a guest: its nick
        self.assertEqual([ban.by for ban in moderation.mutes("chan")], ["ann"])
        send(opr, "QUIT")
        self.assertEqual(self.world.server._oper_accounts, {})

class KillTests(ModerationTestCase):
    def test_kill(self) -> None:
        """KILL: 481 for a non-operator; an operator's closes the target with an
        ERROR, and the channel sees a QUIT."""
        send(self.bob, "KILL ann :bye")
        self.assertEqual(numerics(lines(self.bout)), ["481"])
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password", "KILL nobody")
        self.assertEqual(numerics(lines(rout))[-1], "401")
        send(opr, "KILL bob :spam")
        self.assertEqual(lines(self.bout), [
            "ERROR :Closing link: %s (you were disconnected by opr (spam))" % HOST])
        self.assertTrue(self.bout.disconnecting)
        self.assertEqual(lines(self.aout), [":%s QUIT :Killed (opr (spam))" % prefix("bob")])
        self.assertIsNone(self.world.server.directory.find("bob"))


    def test_gban(self) -> None:
        """A server ban closes a present IRC user with one ERROR line naming it, and
        refuses a new connection from that address the same way."""
        opr, _ = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        member = opr.session.member
        assert member is not None
        dave, dout = self.world.irc_from("dave", "198.51.100.9")
        self.world.server.gban(member, "198.51.100.0/24", None, "spam")
        self.assertEqual(lines(dout), [
            "ERROR :Closing link: 198.51.100.9 (you are banned from this server: spam)"])
        self.assertTrue(dout.disconnecting)
        self.assertEqual(lines(self.bout), [])  # another address: untouched
        address = IPv4Address("TCP", "198.51.100.5", 40000)
        carol = self.world.irc_factory.buildProtocol(address)
        carol_out = StringTransport(peerAddress=address)
        carol.makeConnection(carol_out)
        self.assertEqual(lines(carol_out), [
            "ERROR :Closing link: 198.51.100.5 (you are banned from this server: spam)"])
        self.assertTrue(carol_out.disconnecting)


class WhoisAwayTests(ModerationTestCase):
    def test_whois(self) -> None:
        """WHOIS through the domain: channels with @, idle and signon; the address
        (338) and 330 only where due."""
        self.world.clock.advance(30)
        send(self.bob, "WHOIS ann")
        out = lines(self.bout)
        self.assertEqual(numerics(out), ["311", "319", "312", "317", "318"])
        self.assertEqual(out[3], ":irc.test 317 bob ann 30 %d :seconds idle, signon time"
                         % (self.world.clock.seconds() - 30))
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        lines(rout)
        send(opr, "WHOIS ann", "WHOIS opr")
        out = lines(rout)
        self.assertIn(":irc.test 338 opr ann u@%s %s :Actual user@host, Actual IP"
                      % (HOST, HOST), out)
        self.assertIn(":irc.test 313 opr opr :is an IRC operator", out)
        send(self.bob, "WHOIS opr")
        self.assertNotIn("338", numerics(lines(self.bout)))

    def test_away(self) -> None:
        """AWAY through the domain: 306/305, 301 to a PRIVMSG and in WHOIS, away-notify."""
        send(self.ann, "CAP REQ away-notify")
        lines(self.aout)
        send(self.bob, "AWAY :lunch")
        self.assertEqual(lines(self.bout),
                         [":irc.test 306 bob :You have been marked as being away"])
        self.assertEqual(lines(self.aout), [":%s AWAY lunch" % prefix("bob")])
        self.assertEqual(self.world.server.moderation.away, {"bob": "lunch"})
        send(self.ann, "PRIVMSG bob :hi", "WHOIS bob")
        out = lines(self.aout)
        self.assertEqual(out[0], ":irc.test 301 ann bob lunch")
        self.assertIn(":irc.test 301 ann bob lunch", out[1:])
        send(self.bob, "NICK robert")
        self.assertEqual(self.world.server.moderation.away, {"robert": "lunch"})  # kept
        send(self.bob, "AWAY")
        self.assertEqual(lines(self.bout)[-1],
                         ":irc.test 305 robert :You are no longer marked as being away")
        self.assertEqual(self.world.server.moderation.away, {})


class CloakTests(ModerationTestCase):
    """IRC users' addresses are shown to no one (SPEC 8): every host is the cloak,
    only an operator's WHOIS has the address (338), and bans match the address."""

    def test_no_address_shown(self) -> None:
        carol, cout = self.world.irc_from("carol", "198.51.100.77")
        send(self.bob, "CAP REQ userhost-in-names")
        send(carol, "JOIN #chan", "PRIVMSG #chan :hi", "NICK carla", "AWAY :out")
        send(self.bob, "WHOIS carla", "WHO #chan", "WHO carla %cuhinfr",
             "USERHOST carla", "NAMES #chan")
        send(carol, "QUIT :bye")
        send(self.bob, "WHOWAS carla", "MONITOR + carla")
        seen = lines(self.bout) + lines(self.aout)
        self.assertTrue(seen)
        self.assertFalse([line for line in seen if "198.51.100.77" in line])
        self.assertIn(":carol!u@%s PRIVMSG #chan hi" % CLOAK, seen)
        self.assertIn(":irc.test 311 bob carla u %s * :Real Name" % CLOAK, seen)

    def test_operator_sees_address_and_bans_match_it(self) -> None:
        carol, cout = self.world.irc_from("carol", "198.51.100.77")
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        lines(rout)
        send(opr, "WHOIS carol")
        out = lines(rout)
        self.assertIn(":irc.test 311 opr carol u %s * :Real Name" % CLOAK, out)
        self.assertEqual([line for line in out if "198.51.100.77" in line], [
            (":irc.test 338 opr carol u@198.51.100.77 198.51.100.77 "
             ":Actual user@host, Actual IP")])
        send(self.ann, "MODE #chan +b *!*@198.51.100.77")
        send(carol, "JOIN #chan")
        self.assertEqual(lines(cout), [
            ":irc.test 474 carol #chan :you are banned from #chan"])


class CrossFrontendTests(SynchronousTestCase):
    """What telnet users do is seen natively on IRC, and the other way round."""

    def setUp(self) -> None:
        self.world = ModWorld()
        self.telnet, self.tout = self.world.login("tess")
        self.telnet.dataReceived(b"/join chan\r\n")  # the founder: its op
        self.irc, self.out = self.world.irc_from("bob")
        send(self.irc, "JOIN #chan")
        lines(self.out)
        lines(self.tout)

    def test_empty_claimed_room_listed(self) -> None:
        """A claimed room left empty persists (SPEC 8): /rooms and LIST show it
        with 0 members; an empty unclaimed one is gone."""
        self.world.add("tess2", "tess password")
        owner, oout = self.world.connect()
        owner.dataReceived(b"tess2\r\ntess password\r\n")
        self.assertIn(b"Welcome, ", oout.value())
        owner.dataReceived(b"/join den\r\n/claim\r\n/join gone\r\n/join lobby\r\n")
        send(self.irc, "PART #chan")
        self.telnet.dataReceived(b"/join lobby\r\n")
        lines(self.tout)
        self.telnet.dataReceived(b"/rooms\r\n")
        self.assertEqual([line.split("] ", 1)[-1] for line in lines(self.tout)],
                         ["Rooms (2): #lobby (2), #den (0)"])
        lines(self.out)
        send(self.irc, "LIST")
        self.assertEqual(lines(self.out), [
            ":irc.test 321 bob Channel :Users  Name",
            ":irc.test 322 bob #lobby 2 :",
            ":irc.test 322 bob #den 0 :",
            ":irc.test 323 bob :End of /LIST"])

    def test_lusers_counts_every_operator(self) -> None:
        """LUSERS 252 counts operators on every front end: a telnet one and an
        IRC one after OPER."""
        self.world.add("tel", "tel password", operator=True)
        tel, tout = self.world.connect()
        tel.dataReceived(b"tel\r\ntel password\r\n")
        self.assertIn(b"Welcome, ", tout.value())
        send(self.irc, "LUSERS")
        self.assertIn(":irc.test 252 bob 1 :operator(s) online", lines(self.out))
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password", "LUSERS")
        self.assertIn(":irc.test 252 opr 2 :operator(s) online", lines(rout))

    def test_telnet_kick_is_an_irc_kick(self) -> None:
        self.telnet.dataReceived(b"/kick bob flooding\r\n")
        self.assertEqual(lines(self.out), [
            ":tess!tess@twisted-chat KICK #chan bob flooding"])
        self.assertFalse(self.irc._in("chan"))

    def test_telnet_op_mute_topic(self) -> None:
        self.telnet.dataReceived(b"/op bob\r\n/mute bob 10m\r\n/topic hello\r\n")
        self.assertEqual(lines(self.out), [
            ":tess!tess@twisted-chat MODE #chan +o bob",
            ":tess!tess@twisted-chat MODE #chan +b m:bob!*@*",
            ":tess!tess@twisted-chat TOPIC #chan hello"])

    def test_irc_ban_seen_on_telnet(self) -> None:
        self.world.server.op(self.world.server.directory.find("tess"), "chan", "bob")
        lines(self.tout)
        send(self.irc, "MODE #chan +b carol!*@*", "MODE #chan +b m:dave!*@*")
        out = [line[11:] for line in lines(self.tout)]
        self.assertEqual(out, ["*** bob banned carol from #chan ***",
                               "*** bob muted dave in #chan ***"])

    def test_wall_and_expiry(self) -> None:
        """A /wall is a NOTICE from the server; an expired mute a server MODE -b."""
        self.telnet.dataReceived(b"/mute bob 1m\r\n")
        lines(self.out)
        self.world.clock.advance(61)
        self.assertEqual(lines(self.out), [":irc.test MODE #chan -b m:bob!*@*"])
        opr, rout = self.world.irc_from("opr")
        send(opr, "OPER Root :root password")
        member = opr.session.member
        assert member is not None
        self.world.server.wall(member, "restart at noon")
        self.assertEqual(lines(self.out), [":irc.test NOTICE bob :[wall] opr: restart at noon"])

    def test_irc_text_cannot_drive_a_terminal(self) -> None:
        """
        A topic, a kick reason, an away text and a part reason typed on IRC
        reach telnet users without control characters or escape sequences.
        """
        opr, _ = self.world.irc_from("opr")
        send(opr, "OPER Root :root password", "JOIN #chan")
        lines(self.tout)
        send(opr, "TOPIC #chan :A\x1b[2JB\x1b]0;title\x07C",
             "KICK #chan bob :E\x1b[31mF\x07G",
             "AWAY :H\x1b[5mI",
             "PART #chan :J\x1b[1mK")
        self.telnet.dataReceived(b"/whois opr\r\n/topic\r\n")
        out = b"".join(self.tout.value().splitlines())
        self.tout.clear()
        for control in (b"\x1b", b"\x07"):
            self.assertNotIn(control, out)
        text = out.decode()
        for seen in ("set the topic of #chan: ABC ***", "kicked from #chan by opr (EFG)",
                     "away: HI", "(JK)"):
            self.assertIn(seen, text)
