"""
Shared fakes and helpers: a fake participant, a wired in-memory server
driven by a L{Clock}, and a real C{twistd} for end-to-end tests.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.cred.checkers import AllowAnonymousAccess
from twisted.cred.portal import Portal
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.auth.cred import ChatRealm, PasscodeChecker
from twisted_chat.config import ChatConfig
from twisted_chat.domain.events import Event
from twisted_chat.domain.server import ChatServer
from twisted_chat.frontends.line.protocol import OFFERS, ChatLineFactory, ChatLineProtocol
from twisted_chat.frontends.line.render import lines as render_lines
from twisted_chat.interfaces import History
from twisted_chat.metrics.observer import NULL_OBSERVER, ChatObserver
from twisted_chat.session.session import SessionContext
from twisted_chat.storage.history import MemoryHistory

PEER = IPv4Address("TCP", "192.0.2.7", 40000)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def temp_dir(case: SynchronousTestCase) -> str:
    """A fresh directory removed after the test (self.mktemp writes into the repo under pytest)."""
    path = tempfile.mkdtemp(prefix="twisted-chat-test-")
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def fired(d: Deferred[Any]) -> Any:
    """
    The result of C{d}, which must have fired already (a store or a
    directory that answers at once); its failure is raised here.
    """
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if not outcome:
        raise AssertionError("%r has not fired" % (d,))
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


class FakeParticipant:
    """Records what the domain sends it."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def send(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def lines(self) -> list[str]:
        """Every event as text, then forget them."""
        out = [line for event in self.events for line in render_lines(event)]
        self.events.clear()
        return out


class World:
    """
    A whole server without sockets: one L{ChatServer}, one line factory and
    a L{Clock}.
    """

    def __init__(
        self,
        passcode: bytes | None = b"x",
        config: ChatConfig | None = None,
        history: History | None = None,
        checker: object | None = None,
        observer: ChatObserver = NULL_OBSERVER,
    ) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)  # a plausible "now"
        self.config = config or ChatConfig(passcode=passcode, db=":memory:")
        self.history = history if history is not None else MemoryHistory()
        self.server = ChatServer(self.history, self.clock, self.config.history,
                                 observer=observer)
        realm = ChatRealm(self.server)
        if checker is not None:
            self.portal = Portal(realm, [checker])
        elif passcode is None:
            self.portal = Portal(realm, [AllowAnonymousAccess()])
        else:
            self.portal = Portal(realm, [PasscodeChecker(passcode)])
        self.context = SessionContext.create(self.server, self.portal, self.config, self.clock)
        self.deadlines = self.context.deadlines
        self.factory = ChatLineFactory(self.context)

    def connect(self) -> tuple[ChatLineProtocol, StringTransport]:
        """A new connection that has just received the greeting."""
        protocol = self.factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        return protocol, transport

    def login(self, name: str, passcode: bytes = b"x") -> tuple[ChatLineProtocol, StringTransport]:
        """A connection logged in as C{name}, its output so far cleared."""
        protocol, transport = self.connect()
        prefix = passcode + b"\r\n" if self.factory.needs_passcode else b""
        protocol.dataReceived(prefix + name.encode() + b"\r\n")
        assert b"Welcome, " in transport.value(), transport.value()
        transport.clear()
        return protocol, transport


GREETING = b"Welcome to twisted-chat."


def without_offers(data: bytes) -> bytes:
    """C{data} without the telnet offers at the end of the greeting line."""
    return data.replace(GREETING + OFFERS, GREETING)


def lines(transport: StringTransport) -> list[str]:
    """
    What was written to C{transport} as lines (checking CRLF), then cleared.
    The greeting's telnet offers are left out; any other 0xFF byte fails.
    """
    data = without_offers(transport.value())
    transport.clear()
    if not data:
        return []
    assert data.endswith(b"\r\n"), data
    text = data.decode("utf-8")
    parts = text.split("\r\n")[:-1]
    assert not any("\n" in part or "\r" in part for part in parts), data
    return parts


# -- end to end ---------------------------------------------------------------

def twistd_command() -> list[str]:
    """The real twistd of this Python."""
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class ServerProcess:
    """
    C{twistd -n chat} on a free loopback port, in a temporary directory.
    """

    def __init__(self, case: SynchronousTestCase, *args: str, cwd: str | None = None,
                 passcode: str | None = "x", timeout: float = 20.0,
                 twistd_args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.cwd = cwd or temp_dir(case)
        command = twistd_command() + ["-n", "--pidfile=", *twistd_args, "chat",
                                      "--port", "tcp:0:interface=127.0.0.1"]
        if passcode is not None:
            command += ["--passcode", passcode]
        command += list(args)
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.log_path = os.path.join(self.cwd, "twistd.out")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (stop() closes it)
        self.process = subprocess.Popen(
            command, cwd=self.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        case.addCleanup(self.kill)
        # One line-protocol port per --port, in the order given (ours first).
        expected = 1 + sum(arg in ("--port", "-p") for arg in args)
        self.ports = self._wait_for_ports(timeout, expected)
        self.port = self.ports[0]
        # With --web: the port of the page and its WebSocket.
        self.web_port = self._wait_for_ports(timeout, 1, "web")[0] if "--web" in args else None

    def output(self) -> str:
        """Everything twistd has logged so far."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _wait_for_ports(self, timeout: float, expected: int,
                        what: str = "line protocol") -> list[int]:
        deadline = time.monotonic() + timeout
        pattern = r"twisted-chat %s listening on 127\.0\.0\.1:(\d+)" % re.escape(what)
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.output())
            if len(found) >= expected:
                return [int(port) for port in found]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError("twistd did not start:\n" + self.output())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal twistd and wait for it to exit; return its exit status."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if not self._log.closed:
            self._log.close()


class LineClient:
    """A blocking telnet-style client with bounded waits."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buffer = b""
        self.seen: list[str] = []
        self.closed = False

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def read_until(self, predicate: Callable[[str], bool] | str) -> list[str]:
        """Read lines until one matches; return every line read so far (and forget them)."""
        if isinstance(predicate, str):
            needle = predicate
            predicate = lambda line: needle in line  # noqa: E731
        deadline = time.monotonic() + self.timeout
        while True:
            for index, line in enumerate(self.seen):
                if predicate(line):
                    found, self.seen = self.seen[: index + 1], self.seen[index + 1:]
                    return found
            if self.closed or time.monotonic() > deadline:
                raise AssertionError("never saw the line; got %r" % (self.seen,))
            self._read(deadline)

    def _read(self, deadline: float) -> None:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            self.closed = True
            return
        self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\r\n")
        self.seen += [without_offers(line).decode("utf-8") for line in complete]

    def read_to_close(self) -> list[str]:
        """Read until the server closes the connection; return the remaining lines."""
        deadline = time.monotonic() + self.timeout
        while not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError("the server never closed; got %r" % (self.seen,))
            self._read(deadline)
        found, self.seen = self.seen, []
        return found

    def login(self, name: str, passcode: str | None = "x") -> list[str]:
        self.send(*([passcode] if passcode is not None else []), name)
        return self.read_until("Welcome, ")

    def close(self) -> None:
        self.sock.close()


def log_in(case: SynchronousTestCase, port: int, *names: str) -> list[LineClient]:
    """Clients connected to C{port} and logged in as C{names}, closed after the test."""
    clients = []
    for name in names:
        client = LineClient(port)
        case.addCleanup(client.close)
        client.login(name)
        clients.append(client)
    return clients


def only(items: Sequence[str], pattern: str) -> list[str]:
    """The items matching the regular expression C{pattern}."""
    return [item for item in items if re.search(pattern, item)]


def make_certificate(directory: str) -> tuple[str, str]:
    """
    Write a self-signed key and certificate for 127.0.0.1 and localhost into
    C{directory}; return their paths.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(directory, "key.pem")
    cert_path = os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
