"""
End to end: the real C{twistd -n chat --irc ...}, a telnet user and an IRC
user on the C{irc} package from PyPI (a client nobody here wrote) chatting
both ways.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import irc.client
import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ServerProcess, log_in

pytestmark = pytest.mark.e2e


class IRCClient:
    """The irc package's client, with bounded waits for what arrives."""

    def __init__(self, port: int, nick: str, password: str | None) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[tuple[str, str, list[str]]] = []
        self.reactor.add_global_handler("all_events", self._record)
        self.connection = self.reactor.server().connect(
            "127.0.0.1", port, nick, password=password, username="bobby", ircname="Bob B")

    def _record(self, connection: Any, event: Any) -> None:
        self.events.append((event.type, str(event.source or ""),
                            [str(arg) for arg in event.arguments] + [str(event.target or "")]))

    def wait(self, predicate: Callable[[tuple[str, str, list[str]]], bool],
             timeout: float = 10.0) -> tuple[str, str, list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    self.events.remove(event)
                    return event
            self.reactor.process_once(0.05)
        raise AssertionError("never saw it; got %r" % (self.events,))

    def close(self) -> None:
        self.connection.close()


class IRCEndToEndTests(SynchronousTestCase):
    def test_telnet_and_irc_chat(self) -> None:
        server = ServerProcess(self, "--irc", "tcp:0:interface=127.0.0.1",
                               "--server-name", "chat.test", "--db", ":memory:")
        irc_port = server._wait_for_ports(20.0, 1, "IRC")[0]
        client = IRCClient(irc_port, "bob", "x")
        self.addCleanup(client.close)
        client.wait(lambda e: e[0] == "welcome")
        client.connection.join("#lobby")
        client.wait(lambda e: e[0] == "endofnames")
        (alice,) = log_in(self, server.port, "alice")
        client.wait(lambda e: e[0] == "join" and e[1].startswith("alice!"))

        alice.send("hello from telnet", "/me waves", "/msg bob psst")
        event = client.wait(lambda e: e[0] == "pubmsg")
        self.assertEqual((event[1].split("!")[0], event[2]), ("alice", ["hello from telnet",
                                                                        "#lobby"]))
        event = client.wait(lambda e: e[0] == "action")
        self.assertEqual(event[2][0], "waves")
        event = client.wait(lambda e: e[0] == "privmsg")
        self.assertEqual(event[2][0], "psst")

        client.connection.privmsg("#lobby", "hello from irc")
        client.connection.action("#lobby", "dances")
        client.connection.privmsg("alice", "secret")
        alice.read_until("bob: hello from irc")
        alice.read_until("* bob dances")
        alice.read_until("[PRIVATE] bob: secret")

        client.connection.quit("bye now")
        alice.read_until("bob quit (bye now)")
