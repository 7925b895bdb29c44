"""
End to end over TLS: the real C{twistd -n chat} with an C{ssl:} listener
next to a plain one, a self-signed certificate made at run time, and
clients of both kinds (and the bundled client) chatting with each other.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

from .helpers import ROOT, LineClient, ServerProcess, make_certificate, temp_dir

pytestmark = pytest.mark.e2e
"""Every test here starts the real twistd on a TLS port."""


class TLSLineClient(LineClient):
    """L{LineClient} over TLS, trusting only C{cafile} and checking the host name."""

    def __init__(self, port: int, cafile: str, server_hostname: str = "127.0.0.1",
                 timeout: float = 10.0) -> None:
        super().__init__(port, timeout)
        context = ssl.create_default_context(cafile=cafile)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)


class TLSTests(SynchronousTestCase):
    """An C{ssl:} listener beside a plain one, sharing the same rooms."""

    def setUp(self) -> None:
        self.directory = temp_dir(self)
        key, cert = make_certificate(self.directory)
        self.cafile = cert
        self.server = ServerProcess(
            self, "--db", ":memory:", "--rate", "0",
            "--port", "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (key, cert),
            cwd=self.directory,
        )
        self.assertEqual(len(self.server.ports), 2, self.server.output())
        self.plain_port, self.tls_port = self.server.ports

    def connect_plain(self) -> LineClient:
        client = LineClient(self.plain_port)
        self.addCleanup(client.close)
        return client

    def connect_tls(self, hostname: str = "127.0.0.1") -> TLSLineClient:
        client = TLSLineClient(self.tls_port, self.cafile, server_hostname=hostname)
        self.addCleanup(client.close)
        return client

    def test_tls_and_plain_chat(self) -> None:
        """A TLS user and a plain user see each other's messages, both ways."""
        secure = self.connect_tls()
        self.assertTrue(secure.sock.version().startswith("TLS"), secure.sock.version())
        self.assertEqual(secure.read_until("Passcode:"), ["Welcome to twisted-chat.", "Passcode:"])
        plain = self.connect_plain()
        secure.login("sec")
        plain.login("plain")
        secure.read_until("*** plain joined #lobby ***")
        secure.send("over TLS: h\u00e9llo \U0001f512")
        self.assertRegex(plain.read_until("over TLS")[-1],
                         r"^\[\d\d:\d\d:\d\d\] sec: over TLS: h\u00e9llo \U0001f512$")
        plain.send("in the clear", "/msg sec psst")
        self.assertRegex(secure.read_until("in the clear")[-1],
                         r"^\[\d\d:\d\d:\d\d\] plain: in the clear$")
        self.assertRegex(secure.read_until("PRIVATE")[-1],
                         r"^\[\d\d:\d\d:\d\d\] \[PRIVATE\] plain: psst$")
        secure.close()
        plain.read_until("*** sec disconnected ***")
        self.server.stop()
        log = self.server.output()
        self.assertIn("sec logged in from 127.0.0.1", log)
        self.assertNotIn("Traceback", log)

    def test_server_closes_tls_connections(self) -> None:
        """
        C{/quit} and a third wrong passcode close a TLS connection, as they
        do a plain one (TLS holds a close back while a producer is registered).
        """
        quitter = self.connect_tls()
        quitter.login("quitter")
        quitter.send("/quit")
        self.assertEqual(quitter.read_to_close()[-1], "Goodbye!")
        guesser = self.connect_tls()
        guesser.send("a", "b", "c")
        self.assertEqual(guesser.read_to_close()[-1], "ERROR too many attempts")

    def test_localhost_name_verifies(self) -> None:
        """The certificate also verifies as C{localhost} (its DNS name)."""
        client = self.connect_tls(hostname="localhost")
        self.assertEqual(client.login("named")[-1],
                         "Welcome, named! You are in #lobby. Type /help for commands.")

    def test_plain_client_on_tls_port_gets_nothing(self) -> None:
        """Cleartext sent to the TLS port is never answered in cleartext."""
        sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(b"x\r\nintruder\r\nhello\r\n")
        received = b""
        sock.settimeout(5)
        try:
            while len(received) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        self.assertNotIn(b"Welcome", received)
        self.assertNotIn(b"Passcode", received)
        watcher = self.connect_plain()
        watcher.login("watcher")
        watcher.send("/users all")
        self.assertEqual(watcher.read_until("Users online")[-1],
                         "Users online (1): watcher (#lobby)")

    def test_bundled_client_over_tls(self) -> None:
        """C{chat-client --tls --ca} with piped input says hi, quits and exits 0."""
        plain = self.connect_plain()
        plain.login("plain")
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            [sys.executable, "-m", "twisted_chat.client", "--tls", "--ca", self.cafile,
             "--host", "127.0.0.1", "--port", str(self.tls_port),
             "--name", "tlsbot", "--passcode", "x"],
            input=b"hi\n/quit\n", capture_output=True, env=env, cwd=self.directory, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        seen = plain.read_until("tlsbot: hi")
        self.assertRegex(seen[-1], r"^\[\d\d:\d\d:\d\d\] tlsbot: hi$")
        plain.read_until("*** tlsbot quit ***")

    def test_bundled_client_refuses_untrusted_certificate(self) -> None:
        """Without C{--ca} the self-signed certificate is refused, with a non-zero exit."""
        env = dict(os.environ, PYTHONPATH=ROOT, SSL_CERT_FILE=os.devnull)
        result = subprocess.run(
            [sys.executable, "-m", "twisted_chat.client", "--tls",
             "--host", "127.0.0.1", "--port", str(self.tls_port),
             "--name", "mallory", "--passcode", "x"],
            input=b"hi\n/quit\n", capture_output=True, env=env, cwd=self.directory, timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertIn("TLS", output)
        self.assertNotIn("Traceback", output)
        watcher = self.connect_plain()
        watcher.login("watcher")
        watcher.send("/users all")
        self.assertEqual(watcher.read_until("Users online")[-1],
                         "Users online (1): watcher (#lobby)")
