"""
IRC SASL PLAIN (SPEC section 7) through StringTransport and a Clock, with
the accounts tests' in-memory store and fake hasher.
"""

from __future__ import annotations

import base64

from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PEER, lines
from tests.test_accounts import AccountWorld
from twisted_chat.frontends.irc.protocol import IRCFactory, IRCHub, IRCProtocol

NAME = "irc.test"


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(("%s\0%s\0%s" % (authzid, authcid, password)).encode()).decode()


class SASLWorld(AccountWorld):
    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self.add("Alice", "correct horse")
        self.irc_factory = IRCFactory(self.context, IRCHub(NAME, self.clock))

    def irc(self) -> tuple[IRCProtocol, StringTransport]:
        protocol = self.irc_factory.buildProtocol(PEER)
        assert isinstance(protocol, IRCProtocol)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        return protocol, transport


def send(protocol: IRCProtocol, *lines_: str) -> None:
    protocol.dataReceived("".join(line + "\r\n" for line in lines_).encode("utf-8"))


def numerics(out: list[str]) -> list[str]:
    return [line.split()[1] for line in out if line.startswith(":")]


class SASLTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.world = SASLWorld()
        self.protocol, self.transport = self.world.irc()

    def test_cap_ls(self) -> None:
        """CAP LS 302 offers sasl=PLAIN, CAP LS plain sasl; CAP REQ sasl is acknowledged."""
        send(self.protocol, "CAP LS 302")
        self.assertIn(" sasl=PLAIN ", lines(self.transport)[0])
        send(self.protocol, "CAP LS", "CAP REQ sasl")
        out = lines(self.transport)
        self.assertIn(" sasl ", out[0])
        self.assertNotIn("sasl=", out[0])
        self.assertEqual(out[1], ":irc.test CAP * ACK sasl")

    def test_success(self) -> None:
        """PLAIN with the right password: 900 and 903; then the account's nick (any case)."""
        send(self.protocol, "CAP LS 302", "CAP REQ sasl", "NICK alice", "USER a 0 * :A",
             "AUTHENTICATE PLAIN")
        out = lines(self.transport)
        self.assertEqual(out[-1], "AUTHENTICATE +")
        send(self.protocol, "AUTHENTICATE " + plain("alice", "correct horse"))
        out = lines(self.transport)
        self.assertEqual(numerics(out), ["900", "903"])
        self.assertEqual(out[0], ":irc.test 900 * *!a@%s Alice :You are now logged in as Alice"
                         % "twisted-chat")
        send(self.protocol, "CAP END")
        out = lines(self.transport)
        self.assertTrue(out[0].startswith(":irc.test 001 Alice "), out)
        self.assertEqual(self.protocol.session.account.name, "Alice")  # type: ignore[union-attr]
        send(self.protocol, "AUTHENTICATE PLAIN")
        self.assertEqual(numerics(lines(self.transport)), ["907"])

    def test_wrong_password(self) -> None:
        """A wrong password: 904 and no 464; the third closes the connection."""
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "wrong"))
        out = lines(self.transport)
        self.assertEqual(numerics(out), ["904"])
        self.assertIn("wrong password", out[-1])
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("nobody", "x"))
        self.assertEqual(numerics(lines(self.transport)), ["904"])
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "y"))
        out = lines(self.transport)
        self.assertEqual(numerics(out), ["904"])
        self.assertTrue(out[-1].startswith("ERROR "))
        self.assertTrue(self.transport.disconnecting)

    def test_registered_nick_without_sasl(self) -> None:
        """A registered nick without SASL gets 433 and no 001; a guest nick works after."""
        send(self.protocol, "NICK alice", "USER a 0 * :A")
        out = lines(self.transport)
        self.assertEqual(numerics(out), ["433"])
        self.assertIn(" 433 * alice :", out[0])
        send(self.protocol, "NICK bob")
        self.assertIn("001", numerics(lines(self.transport)))
        self.assertIsNone(self.protocol.session.account)
        send(self.protocol, "AUTHENTICATE PLAIN")  # after registration: not offered
        self.assertEqual(numerics(lines(self.transport)), ["462"])

    def test_sasl_other_nick(self) -> None:
        """SASL as Alice does not let the client take another registered nick."""
        self.world.add("Carol", "secret words")
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "correct horse"),
             "NICK carol", "USER a 0 * :A")
        self.assertEqual(numerics(lines(self.transport)), ["900", "903", "433"])

    def test_guests_no(self) -> None:
        """--guests no: an unregistered nick gets 433; SASL and the account's nick register."""
        world = SASLWorld(guests=False)
        protocol, transport = world.irc()
        send(protocol, "NICK bob", "USER b 0 * :B")
        out = lines(transport)
        self.assertEqual(numerics(out), ["433"])
        self.assertIn("registered accounts only", out[0])
        send(protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "correct horse"),
             "NICK Alice")
        self.assertEqual(numerics(lines(transport))[:3], ["900", "903", "001"])

    def test_abort(self) -> None:
        """AUTHENTICATE * aborts (906); a new PLAIN can begin."""
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE *")
        out = lines(self.transport)
        self.assertEqual(out[0], "AUTHENTICATE +")
        self.assertEqual(numerics(out), ["906"])
        send(self.protocol, "AUTHENTICATE PLAIN")
        self.assertEqual(lines(self.transport), ["AUTHENTICATE +"])

    def test_chunks_and_too_long(self) -> None:
        """
        400-byte chunks add up (a + ends a multiple of 400); a chunk over 400
        gets 905, over 1600 in all 904.
        """
        self.world.add("Dave", "p" * 294)
        payload = plain("Dave", "p" * 294)
        self.assertEqual(len(payload), 400)
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + payload)
        self.assertEqual(lines(self.transport), ["AUTHENTICATE +"])
        send(self.protocol, "AUTHENTICATE +")
        self.assertEqual(numerics(lines(self.transport)), ["900", "903"])
        protocol, transport = self.world.irc()
        send(protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE " + "A" * 401)
        self.assertEqual(numerics(lines(transport)), ["905"])
        send(protocol, "AUTHENTICATE PLAIN", *["AUTHENTICATE " + "A" * 400] * 5)
        self.assertEqual(numerics(lines(transport)), ["904"])

    def test_mechanisms_and_malformed(self) -> None:
        """Another mechanism: 908 PLAIN and 904; bad base64 or fields: 904; no parameter: 461."""
        send(self.protocol, "AUTHENTICATE EXTERNAL")
        out = lines(self.transport)
        self.assertEqual(numerics(out), ["908", "904"])
        self.assertIn(" 908 * PLAIN :", out[0])
        send(self.protocol, "AUTHENTICATE PLAIN", "AUTHENTICATE ###")
        self.assertEqual(numerics(lines(self.transport)), ["904"])
        send(self.protocol, "AUTHENTICATE PLAIN",
             "AUTHENTICATE " + base64.b64encode(b"only\0two").decode())
        self.assertEqual(numerics(lines(self.transport)), ["904"])
        send(self.protocol, "AUTHENTICATE PLAIN",
             "AUTHENTICATE " + plain("Alice", "correct horse", authzid="Bob"))
        self.assertEqual(numerics(lines(self.transport)), ["904"])
        send(self.protocol, "AUTHENTICATE")
        self.assertEqual(numerics(lines(self.transport)), ["461"])


class OperTests(SynchronousTestCase):
    def test_oper(self) -> None:
        """OPER: 464 for a wrong password, 491 for no operator, 381 and operator status."""
        world = SASLWorld()
        world.add("Root", "root password", operator=True)
        protocol, transport = world.irc()
        send(protocol, "NICK guest", "USER g 0 * :G")
        lines(transport)
        send(protocol, "OPER Root wrong", "OPER nobody x", "OPER Alice correct horse",
             "OPER Alice :correct horse")
        self.assertEqual(numerics(lines(transport)), ["464", "464", "464", "491"])
        self.assertFalse(protocol.session.operator)
        world.clock.advance(61)  # the account throttle (3 a minute) forgets
        send(protocol, "OPER root :root password")
        out = lines(transport)
        self.assertEqual(numerics(out), ["381", "MODE"])
        self.assertEqual(out[-1], ":guest!g@%s MODE guest +o" % "twisted-chat")
        self.assertTrue(protocol.session.operator)
        self.assertEqual(protocol.session.user.name, "guest")
        send(protocol, "WHO guest", "WHOIS guest")
        out = lines(transport)
        self.assertEqual(out[0].split()[8], "H*")
        self.assertIn(":irc.test 313 guest guest :is an IRC operator", out)

    def test_oper_answers_in_order(self) -> None:
        """A slow hash check holds the lines after OPER: its answer comes first."""
        world = SASLWorld()
        world.add("Root", "root password", operator=True)
        protocol, transport = world.irc()
        send(protocol, "NICK guest", "USER g 0 * :G")
        lines(transport)
        pending: list[Deferred[bool]] = []

        def held(hash: str, password: str) -> Deferred[bool]:
            d: Deferred[bool] = Deferred()
            pending.append(d)
            return d

        world.hasher.verify = held  # type: ignore[method-assign]
        send(protocol, "OPER Root :root password", "PING tok")
        self.assertEqual(lines(transport), [])
        pending[0].callback(True)
        out = lines(transport)
        self.assertEqual(numerics(out)[0], "381")
        self.assertEqual(out[-1], ":irc.test PONG irc.test tok")
