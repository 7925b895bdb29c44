"""
End to end: the real C{twistd -n chat} on a loopback port, talked to over
sockets as telnet would.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from twisted.trial.unittest import SynchronousTestCase

from .helpers import ROOT, LineClient, ServerProcess, log_in, temp_dir, twistd_command

pytestmark = pytest.mark.e2e
"""Every test here starts the real twistd and talks to it over loopback."""


class EndToEndTests(SynchronousTestCase):
    """Two people chat through a real server."""

    def test_two_clients_chat(self) -> None:
        server = ServerProcess(self, "--db", "chat.db")
        alice = LineClient(server.port)
        self.addCleanup(alice.close)
        bob = LineClient(server.port)
        self.addCleanup(bob.close)
        self.assertEqual(alice.read_until("Passcode:"), ["Welcome to twisted-chat.", "Passcode:"])
        alice.login("alice")
        bob.login("bob")
        alice.read_until("*** bob joined #lobby ***")
        bob.send("Hello everyone!")
        self.assertRegex(alice.read_until("Hello")[-1],
                         r"^\[\d\d:\d\d:\d\d\] bob: Hello everyone!$")
        alice.send("/msg bob psst")
        self.assertRegex(bob.read_until("PRIVATE")[-1],
                         r"^\[\d\d:\d\d:\d\d\] \[PRIVATE\] alice: psst$")
        alice.send("/join #General")
        self.assertEqual(alice.read_until("Users in")[-2:],
                         ["You are now in #general.", "Users in #general (1): alice"])
        bob.read_until("*** alice left #lobby ***")
        alice.send("/quit bye")
        self.assertEqual(alice.read_to_close(), ["Goodbye!"])
        self.assertEqual(server.stop(), -signal.SIGTERM)
        log = server.output()
        self.assertIn("alice logged in from 127.0.0.1", log)
        self.assertNotIn("Traceback", log)

    def test_shutdown_and_history_survive_restart(self) -> None:
        """SIGTERM tells everyone; after a restart /history shows what was said."""
        directory = temp_dir(self)
        server = ServerProcess(self, "--db", "chat.db", cwd=directory)
        alice, bob = log_in(self, server.port, "alice", "bob")
        alice.send("remember this", "/me waves")
        bob.read_until("* alice waves")
        server.stop()
        self.assertEqual(alice.read_to_close()[-1], "*** Server shutting down ***")
        self.assertEqual(bob.read_to_close()[-1], "*** Server shutting down ***")
        self.assertNotIn("Traceback", server.output())

        again = ServerProcess(self, "--db", "chat.db", cwd=directory)
        carol = LineClient(again.port)
        self.addCleanup(carol.close)
        replay = carol.login("carol") + carol.read_until("--- end of history ---")
        self.assertTrue(any(line.endswith("] alice: remember this") for line in replay), replay)
        carol.send("/history 5")
        out = carol.read_until("--- end of history ---")
        self.assertRegex(out[-3], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice: remember this$")
        self.assertRegex(out[-2], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \* alice waves$")
        again.stop()

    def test_open_server_warns(self) -> None:
        server = ServerProcess(self, "--db", ":memory:", passcode=None)
        client = LineClient(server.port)
        self.addCleanup(client.close)
        self.assertEqual(client.read_until("Username:"), ["Welcome to twisted-chat.", "Username:"])
        self.assertIn("no --passcode given", server.output())
        server.stop()

    def test_usage_error_exits(self) -> None:
        """A bad option is a usage error, not a traceback."""
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            twistd_command() + ["-n", "--pidfile=", "chat", "--passcode", "a",
                                "--passcode-file", "/nonexistent"],
            cwd=temp_dir(self), env=env, capture_output=True, timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        output = (result.stdout + result.stderr).decode()
        self.assertIn("not both", output)
        self.assertNotIn("Traceback", output)

    def test_bad_database_exits(self) -> None:
        """A database that cannot be used stops start-up with one clear line."""
        env = dict(os.environ, PYTHONPATH=ROOT)
        directory = temp_dir(self)
        with open(os.path.join(directory, "bad.db"), "wb") as f:
            f.write(b"not a database" * 100)
        result = subprocess.run(
            twistd_command() + ["-n", "--pidfile=", "chat", "--db", "bad.db",
                                "--port", "tcp:0:interface=127.0.0.1"],
            cwd=directory, env=env, capture_output=True, timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        output = (result.stdout + result.stderr).decode()
        self.assertIn("cannot use history database bad.db", output)
        self.assertNotIn("Traceback", output)
