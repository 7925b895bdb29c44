"""
End to end (SPEC 7): an account registered from telnet logs in from IRC
with SASL PLAIN after a restart of the real twistd on the same --db.
"""

from __future__ import annotations

import base64
import socket
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import LineClient, ServerProcess, temp_dir

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0


class RawIRC:
    """A bare IRC connection: lines out, lines in (bounded in time)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def read_until(self, needle: str) -> list[str]:
        """The lines up to the first holding C{needle}."""
        deadline = time.monotonic() + TIMEOUT
        seen: list[str] = []
        while time.monotonic() < deadline:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                seen.append(line.decode())
                if needle in seen[-1]:
                    return seen
            data = self.sock.recv(65536)
            if not data:
                break
            self.buffer += data
        raise AssertionError("no %r in %r" % (needle, seen))

    def close(self) -> None:
        self.sock.close()


class SASLEndToEnd(SynchronousTestCase):
    def test_register_on_telnet_sasl_on_irc(self) -> None:
        directory = temp_dir(self)
        server = ServerProcess(self, "--db", "chat.db", cwd=directory)
        alice = LineClient(server.port, timeout=TIMEOUT)
        self.addCleanup(alice.close)
        alice.login("alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered: from now on this name needs your password")
        alice.send("/quit")
        alice.read_to_close()
        server.stop()

        again = ServerProcess(self, "--irc", "tcp:0:interface=127.0.0.1",
                              "--server-name", "chat.test", "--db", "chat.db", cwd=directory)
        irc_port = again._wait_for_ports(20.0, 1, "IRC")[0]
        irc = RawIRC(irc_port)
        self.addCleanup(irc.close)
        # without SASL the registered nick is refused
        irc.send("PASS x", "NICK alice", "USER a 0 * :Alice")
        self.assertIn(" 433 * alice ", irc.read_until(" 433 ")[-1])
        irc.send("CAP LS 302")
        self.assertIn("sasl=PLAIN", irc.read_until(" LS ")[-1])
        irc.send("CAP REQ sasl", "AUTHENTICATE PLAIN")
        irc.read_until("AUTHENTICATE +")
        payload = base64.b64encode(b"\0alice\0correct horse battery").decode()
        irc.send("AUTHENTICATE " + payload)
        self.assertIn(" 900 ", irc.read_until(" 903 ")[-2])
        irc.send("NICK ALICE", "CAP END", "JOIN #lobby")
        self.assertIn(" 001 alice ", irc.read_until(" 001 ")[-1])
        irc.read_until(" 366 ")

        bob = LineClient(again.port, timeout=TIMEOUT)
        self.addCleanup(bob.close)
        bob.login("bob")
        bob.send("hello alice")
        self.assertIn("PRIVMSG #lobby :hello alice", irc.read_until("hello alice")[-1])
        irc.send("PRIVMSG #lobby :hi bob, from IRC")
        bob.read_until("alice: hi bob, from IRC")
        irc.send("QUIT :bye")
        bob.read_until("alice quit")
