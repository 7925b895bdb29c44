"""
End to end: moderation on the real C{twistd -n chat --irc ... --founder-ops}
with the C{irc} package from PyPI: an IRC op kicks and bans an IRC user,
and a telnet user in the room sees both.
"""

from __future__ import annotations

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ServerProcess, log_in
from tests.test_irc_e2e import IRCClient

pytestmark = pytest.mark.e2e


class IRCModerationEndToEndTests(SynchronousTestCase):
    def test_kick_and_ban(self) -> None:
        server = ServerProcess(self, "--irc", "tcp:0:interface=127.0.0.1",
                               "--server-name", "chat.test", "--db", ":memory:",
                               "--founder-ops")
        irc_port = server._wait_for_ports(20.0, 1, "IRC")[0]
        ann = IRCClient(irc_port, "ann", "x")
        self.addCleanup(ann.close)
        ann.wait(lambda e: e[0] == "welcome")
        ann.connection.join("#den")  # the founder: its op
        names = ann.wait(lambda e: e[0] == "namreply")
        self.assertIn("@ann", names[2][2].split())
        bob = IRCClient(irc_port, "bob", "x")
        self.addCleanup(bob.close)
        bob.wait(lambda e: e[0] == "welcome")
        bob.connection.join("#den")
        bob.wait(lambda e: e[0] == "endofnames")
        (tess,) = log_in(self, server.port, "tess")
        tess.send("/join den")
        tess.read_until("Users in #den (3)")

        ann.connection.kick("#den", "bob", "calm down")
        kick = bob.wait(lambda e: e[0] == "kick")
        self.assertEqual((kick[1].split("!")[0], kick[2]), ("ann", ["bob", "calm down", "#den"]))
        tess.read_until("bob was kicked from #den by ann (calm down)")

        ann.connection.mode("#den", "+b bob!*@*")
        mode = ann.wait(lambda e: e[0] == "mode")
        self.assertEqual(mode[2], ["+b", "bob!*@*", "#den"])
        tess.read_until("ann banned bob from #den")
        bob.connection.join("#den")
        refused = bob.wait(lambda e: e[0] == "bannedfromchan")
        self.assertEqual(refused[2][0], "#den")

        ann.connection.mode("#den", "-b bob!*@*")
        tess.read_until("ann lifted the ban on bob in #den")
        bob.connection.join("#den")
        bob.wait(lambda e: e[0] == "join" and e[1].startswith("bob!"))
