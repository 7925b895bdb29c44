"""
End to end (SPEC 7): the real twistd with accounts in its --db file:
register, restart, log in again from telnet and from chat-client;
chat-admin on the database while the server runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ROOT, LineClient, ServerProcess, temp_dir

pytestmark = pytest.mark.e2e

TIMEOUT = 30


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def chat_admin(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from twisted_chat.admin import main; main()", *argv],
        capture_output=True, text=True, env=env(), timeout=TIMEOUT)


def chat_client(port: int, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "twisted_chat.client", "--port", str(port), *args],
        input=stdin, capture_output=True, env=env(), cwd=ROOT, timeout=TIMEOUT)


class AccountsEndToEnd(SynchronousTestCase):
    def client(self, port: int) -> LineClient:
        client = LineClient(port, timeout=TIMEOUT)
        self.addCleanup(client.close)
        return client

    def test_register_restart_log_in_again(self) -> None:
        directory = temp_dir(self)
        server = ServerProcess(self, "--db", "chat.db", cwd=directory)
        alice = self.client(server.port)
        alice.login("alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered: from now on this name needs your password")
        alice.send("/quit")
        alice.read_to_close()
        server.stop()
        with open(os.path.join(directory, "chat.db"), "rb") as f:
            self.assertNotIn(b"correct horse", f.read())
        self.assertNotIn("correct horse", server.output())

        again = ServerProcess(self, "--db", "chat.db", cwd=directory)
        mallory = self.client(again.port)
        mallory.send("x", "alice")
        mallory.read_until("Password:")
        mallory.send("guess1234")
        self.assertEqual(mallory.read_until("Username:")[-2:],
                         ["ERROR wrong password", "Username:"])
        alice = self.client(again.port)
        alice.send("x", "alice")
        alice.read_until("Password:")
        alice.send("correct horse battery")
        alice.read_until("Welcome, alice!")
        alice.send("/quit")
        alice.read_to_close()

        result = chat_client(again.port, b"/quit\n", "--name", "alice", "--passcode", "x",
                             "--password", "correct horse battery")
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        self.assertIn(b"Welcome, alice!", result.stdout)
        result = chat_client(again.port, b"/quit\n", "--name", "alice", "--passcode", "x",
                             "--password", "wrong password")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, b"chat-client: login failed: wrong password\n")
        self.assertNotIn("Traceback", again.output())
        self.assertNotIn("correct horse", again.output())

    def test_chat_admin_while_the_server_runs(self) -> None:
        directory = temp_dir(self)
        db = os.path.join(directory, "chat.db")
        server = ServerProcess(self, "--db", "chat.db", "--guests", "no", cwd=directory)
        guest = self.client(server.port)
        guest.send("x", "bob")
        guest.read_until("Username:")
        self.assertEqual(guest.read_until("Username:")[-2:], [
            "ERROR this server admits registered accounts only; log in with yours",
            "Username:"])
        secret = os.path.join(directory, "secret")
        with open(secret, "w") as f:
            f.write("password one\n")
        done = chat_admin("--db", db, "add", "bob", "--password-file", secret)
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "added bob\n", ""))
        guest.send("bob")
        guest.read_until("Password:")
        guest.send("password one")
        guest.read_until("Welcome, bob!")
        guest.send("/quit")
        guest.read_to_close()
        with open(secret, "w") as f:
            f.write("password two\n")
        done = chat_admin("--db", db, "passwd", "bob", "--password-file", secret)
        self.assertEqual(done.returncode, 0, done.stderr)
        bob = self.client(server.port)
        bob.send("x", "bob", "password one")
        bob.read_until("ERROR wrong password")
        bob.send("bob", "password two")
        bob.read_until("Welcome, bob!")
        done = chat_admin("--db", db, "list")
        self.assertEqual(done.stdout.splitlines()[-1], "1 account")
        done = chat_admin("--db", db, "delete", "nobody")
        self.assertEqual((done.returncode, done.stderr), (
            1, "chat-admin: no account named nobody (chat-admin list shows them)\n"))
        done = chat_admin("--db", os.path.join(directory, "missing.db"), "list")
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.splitlines()), 1)
        done = chat_admin("--db", db, "frobnicate")
        self.assertEqual(done.returncode, 2)
        self.assertNotIn("Traceback", server.output())
