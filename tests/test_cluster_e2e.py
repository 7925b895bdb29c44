"""
End to end: real C{twistd chat} processes sharing a real C{redis-server}
(Debian's; the test is skipped without one), SPEC section 10.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import LineClient, ServerProcess, log_in, temp_dir

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
# A short heartbeat: a killed process is taken for dead after four (0.8 s).
BEAT = "0.2"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(REDIS), reason="needs redis-server"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A throw-away redis-server on a free loopback port, without persistence."""

    def __init__(self, case: SynchronousTestCase, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = temp_dir(case)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()
        case.addCleanup(self.stop)

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def node(case: SynchronousTestCase, redis: RedisServer, name: str, *args: str,
         cwd: str | None = None) -> ServerProcess:
    server = ServerProcess(case, "--redis", redis.url, "--node-name", name,
                           "--redis-heartbeat", BEAT, "--db", "chat.db", *args, cwd=cwd)
    wait_for(lambda: "connected to redis://" in server.output(), "%s never connected" % name)
    return server


def wait_for(check: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def ask_until(client: LineClient, command: str, wanted: str, timeout: float = 10.0) -> str:
    """Send C{command} until a line containing C{wanted} comes back; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.send(command)
        client.send("/help")
        lines = client.read_until(lambda line: line.startswith("Commands"))
        for line in lines:
            if wanted in line:
                return line
        time.sleep(0.1)
    raise AssertionError("%s never showed %r" % (command, wanted))


class TwoProcesses(SynchronousTestCase):

    def test_chat_across_processes(self) -> None:
        redis = RedisServer(self)
        a, b = node(self, redis, "a"), node(self, redis, "b")
        (alice,) = log_in(self, a.port, "alice")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(alice, "/users", "bob")
        alice.send("hello from a")
        bob.read_until("alice: hello from a")
        bob.send("/msg alice psst")
        alice.read_until("psst")
        ask_until(bob, "/users all", "alice")
