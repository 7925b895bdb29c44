"""
End-to-end tests: the real C{twistd chat} and C{python -m twisted_chat.client}
as subprocesses in plain mode (pipes, no terminal), on 127.0.0.1 only.

Every wait is bounded: subprocess timeouts and L{LineClient}'s deadlines.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import ROOT, LineClient, ServerProcess, make_certificate, temp_dir

pytestmark = pytest.mark.e2e
"""Every test here runs chat-client as a process, mostly against the real twistd."""

TIMEOUT = 15


def client_command(port: int, *args: str) -> list[str]:
    """The client, run the way C{python -m twisted_chat.client} runs it."""
    return [sys.executable, "-m", "twisted_chat.client", "--port", str(port), *args]


def client_env() -> dict[str, str]:
    """The environment with this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_client(port: int, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the client to completion with C{stdin} piped in."""
    return subprocess.run(
        client_command(port, *args),
        input=stdin,
        capture_output=True,
        env=client_env(),
        cwd=ROOT,
        timeout=TIMEOUT,
    )


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PlainClientTests(SynchronousTestCase):
    """The client in plain mode against the real server."""

    def setUp(self) -> None:
        self.server = ServerProcess(self)
        self.bob = LineClient(self.server.port)
        self.addCleanup(self.bob.close)
        self.bob.login("bob")

    def assertOneLineError(self, result: subprocess.CompletedProcess[bytes], text: str) -> None:
        """The client failed with exactly one line on stderr containing C{text}."""
        self.assertNotEqual(result.returncode, 0)
        stderr = result.stderr.decode("utf-8")
        self.assertNotIn("Traceback", stderr)
        self.assertEqual(len(stderr.splitlines()), 1, stderr)
        self.assertTrue(stderr.startswith("chat-client: "), stderr)
        self.assertIn(text, stderr)

    def test_say_and_quit(self) -> None:
        """Piped C{hi} and C{/quit}: the room hears it and the client exits 0."""
        result = run_client(self.server.port, b"hi\n/quit\n", "--name", "alice", "--passcode", "x")
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        output = result.stdout.decode("utf-8").splitlines()
        self.assertIn("Welcome, alice! You are in #lobby. Type /help for commands.", output)
        self.assertEqual(output[-1], "Goodbye!")
        self.assertNotIn("\x1b", result.stdout.decode("utf-8"))
        self.assertTrue(self.bob.read_until("alice: hi")[-1].endswith("] alice: hi"))
        self.bob.read_until("*** alice quit")

    def test_input_end_quits(self) -> None:
        """Input that ends without C{/quit}: every line is still delivered, then a clean quit."""
        lines = "".join("line %d\n" % n for n in range(12)).encode()
        result = run_client(self.server.port, lines, "--username", "alice", "--passcode", "x")
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        seen = self.bob.read_until("alice: line 11")
        self.assertEqual(len([line for line in seen if "] alice: line " in line]), 12)
        self.assertFalse([line for line in seen if "ERROR" in line])
        self.bob.read_until("*** alice quit")

    def test_answers_from_input(self) -> None:
        """Without options the first input lines answer the prompts."""
        result = run_client(self.server.port, b"x\nalice\nhello\n")
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        self.bob.read_until("alice: hello")

    def test_wrong_passcode(self) -> None:
        """A wrong passcode: non-zero, one readable line, no traceback."""
        result = run_client(self.server.port, b"hi\n", "--name", "alice", "--passcode", "nope")
        self.assertOneLineError(result, "wrong passcode")

    def test_taken_name(self) -> None:
        """A taken name with piped input: non-zero with the server's reason."""
        result = run_client(self.server.port, b"hi\n", "--name", "BOB", "--passcode", "x")
        self.assertOneLineError(result, "taken")

    def test_server_goes_away(self) -> None:
        """When the server stops, the client says so and exits non-zero."""
        client = subprocess.Popen(
            client_command(self.server.port, "--name", "alice", "--passcode", "x"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=client_env(),
            cwd=ROOT,
        )
        self.addCleanup(lambda: client.poll() is None and client.kill())
        self.bob.read_until("*** alice joined #lobby")
        self.server.stop()
        _, stderr = client.communicate(timeout=TIMEOUT)
        self.assertOneLineError(
            subprocess.CompletedProcess(client.args, client.returncode, b"", stderr),
            "the server shut down",
        )


class TLSClientTests(SynchronousTestCase):
    """C{--tls} against a server on an C{ssl:} endpoint."""

    def test_tls(self) -> None:
        """With C{--ca} the client trusts a self-signed server; without it, it refuses."""
        directory = temp_dir(self)
        key, cert = make_certificate(directory)
        endpoint = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (key, cert)
        server = ServerProcess(self, "--port", endpoint, cwd=directory)
        port = server.ports[1]  # ours is the second --port
        result = run_client(
            port, b"hi\n", "--tls", "--ca", cert, "--name", "alice", "--passcode", "x"
        )
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        self.assertIn(b"Welcome, alice!", result.stdout)
        result = run_client(port, b"hi\n", "--tls", "--name", "alice", "--passcode", "x")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"certificate verify failed", result.stderr)


class UnreachableTests(SynchronousTestCase):
    """The client without a server."""

    def test_refused(self) -> None:
        """A closed port: non-zero with one line saying the connection was refused."""
        result = run_client(free_port(), b"hi\n", "--name", "alice", "--passcode", "x")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr.decode("utf-8").strip().splitlines(),
            ["chat-client: cannot connect to 127.0.0.1:%s: connection refused" % result.args[4]],
        )
