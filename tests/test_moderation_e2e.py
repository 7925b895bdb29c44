"""
End to end (SPEC 8): the real twistd with a real --db file: a claimed
room's topic and a ban survive a restart.
"""

from __future__ import annotations

import os

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import LineClient, ServerProcess, temp_dir

pytestmark = pytest.mark.e2e

TIMEOUT = 30


class ModerationEndToEnd(SynchronousTestCase):
    def client(self, port: int) -> LineClient:
        client = LineClient(port, timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client

    def test_ban_and_topic_survive_a_restart(self) -> None:
        directory = temp_dir(self)
        server = ServerProcess(self, "--db", "chat.db", cwd=directory)
        alice = self.client(server.port)
        alice.login("alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered: from now on this name needs your password")
        troll = self.client(server.port)
        troll.login("troll")
        alice.send("/join den", "/claim")
        alice.read_until(lambda line: line.endswith("*** alice claimed #den ***"))
        alice.send("/topic Dragons only")
        alice.read_until(lambda line: line.endswith(
            "*** alice set the topic of #den: Dragons only ***"))
        troll.send("/join den")
        troll.read_until("You are now in #den.")
        alice.send("/ban troll 1d spamming")
        troll.read_until(lambda line: line.endswith(
            "*** troll was kicked from #den by alice (banned) ***"))
        troll.read_until("You are now in #lobby.")
        troll.send("/join den")
        troll.read_until("ERROR you are banned from #den (for 1d more)")
        for client in (alice, troll):
            client.send("/quit")
            client.read_to_close()
        server.stop()
        first_log = server.output()  # (the next twistd writes the same file)
        self.assertIn("moderation: alice ban troll in #den for 1d: spamming", first_log)

        again = ServerProcess(self, "--db", "chat.db", cwd=directory)
        troll = self.client(again.port)
        troll.login("troll")
        troll.send("/join den")
        out = troll.read_until(lambda line: line.startswith("ERROR you are banned from #den"))
        self.assertRegex(out[-1], r"^ERROR you are banned from #den \(for 23h 59m more\)$|"
                                  r"^ERROR you are banned from #den \(for 1d more\)$")
        carol = self.client(again.port)
        carol.login("carol")
        carol.send("/join den")
        carol.read_until(lambda line: line.startswith("Topic of #den: Dragons only (set by alice"))
        carol.send("/topic mine now")
        carol.read_until("ERROR you are not an op in #den")  # still claimed
        carol.send("/bans")
        carol.read_until(lambda line: line.startswith("  troll (by alice, ")
                         and line.endswith(": spamming"))
        for client in (troll, carol):
            client.send("/quit")
            client.read_to_close()
        again.stop()
        self.assertNotIn("Traceback", again.output())
        self.assertTrue(os.path.exists(os.path.join(directory, "chat.db")))
