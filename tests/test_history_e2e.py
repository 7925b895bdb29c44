"""
End to end: room history with the real C{twistd -n chat}: C{/search} on a
file database and after a restart, and databases that are locked, on a
read-only filesystem or on a full one.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .helpers import ROOT, LineClient, ServerProcess, log_in, temp_dir, twistd_command

pytestmark = pytest.mark.e2e
"""Every test here starts the real twistd (some as a daemon)."""


def start_fails(case: SynchronousTestCase, directory: str, db: str) -> str:
    """Run twistd with C{--db db}; assert it exits non-zero; return its output."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(
        twistd_command() + ["-n", "--pidfile=", "chat", "--db", db,
                            "--port", "tcp:0:interface=127.0.0.1"],
        cwd=directory, env=env, capture_output=True, timeout=60,
    )
    output = (result.stdout + result.stderr).decode()
    case.assertNotEqual(result.returncode, 0, output)
    case.assertNotIn("Traceback", output)
    return output


def tiny_filesystem(case: SynchronousTestCase, size: str) -> str:
    """A tmpfs of C{size} mounted for this test, or SkipTest where we may not mount."""
    directory = temp_dir(case)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", directory],
                            capture_output=True, timeout=30)
    if result.returncode != 0:
        raise SkipTest("cannot mount a tmpfs here: %s" % result.stderr.decode().strip())
    case.addCleanup(subprocess.run, ["umount", "-l", directory], timeout=30)
    return directory


class SearchEndToEndTests(SynchronousTestCase):
    """C{/search} through a real server."""

    def test_search_file_db_and_restart(self) -> None:
        directory = temp_dir(self)
        server = ServerProcess(self, "--db", "chat.db", cwd=directory)
        alice, bob = log_in(self, server.port, "alice", "bob")
        alice.send("deploy at noon", "lunch first", '/me deploys "AND" -x *')
        bob.read_until("deploys")
        bob.send("/search deploy")
        out = bob.read_until("--- end of search ---")
        self.assertEqual(out[-4], '--- 2 matches for "deploy" in #lobby ---')
        self.assertRegex(out[-3], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] alice: deploy at noon$")
        self.assertRegex(out[-2], r'^\[[-\d :]+\] \* alice deploys "AND" -x \*$')
        bob.send('/search "AND" -x', "/search zebra")
        self.assertEqual(bob.read_until("--- end of search ---")[0],
                         '--- 1 match for ""AND" -x" in #lobby ---')
        self.assertEqual(bob.read_until("zebra"), ['No messages in #lobby match "zebra".'])
        server.stop()

        again = ServerProcess(self, "--db", "chat.db", cwd=directory)
        carol = LineClient(again.port)
        self.addCleanup(carol.close)
        carol.login("carol")
        carol.send("/search LUNCH")
        out = carol.read_until("--- end of search ---")
        self.assertTrue(out[-2].endswith("] alice: lunch first"), out)
        again.stop()
        self.assertNotIn("Traceback", server.output() + again.output())

    def test_search_memory_db(self) -> None:
        server = ServerProcess(self, "--db", ":memory:")
        alice = LineClient(server.port)
        self.addCleanup(alice.close)
        alice.login("alice")
        alice.send("remember the milk", "/search milk")
        out = alice.read_until("--- end of search ---")
        self.assertEqual(out[-3], '--- 1 match for "milk" in #lobby ---')
        server.stop()


class Daemon:
    """C{twistd chat} as a daemon (no C{-n}): it forks after building the service."""

    def __init__(self, case: SynchronousTestCase, directory: str) -> None:
        self.directory = directory
        self.log = os.path.join(directory, "twistd.log")
        env = dict(os.environ, PYTHONPATH=ROOT)
        started_before = self.output().count("line protocol listening")
        subprocess.run(
            twistd_command() + ["--pidfile", "twistd.pid", "--logfile", "twistd.log", "chat",
                                "--passcode", "x", "--db", "chat.db",
                                "--port", "tcp:0:interface=127.0.0.1"],
            cwd=directory, env=env, check=True, timeout=60,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ports = re.findall(r"line protocol listening on 127\.0\.0\.1:(\d+)", self.output())
            if len(ports) > started_before:
                self.port = int(ports[-1])
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the daemon did not start:\n" + self.output())
        with open(os.path.join(directory, "twistd.pid")) as f:
            self.pid = int(f.read())
        case.addCleanup(self.kill)

    def output(self) -> str:
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 15.0) -> None:
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            raise AssertionError("the daemon did not stop:\n" + self.output())

    def kill(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGKILL)


class DaemonEndToEndTests(SynchronousTestCase):
    """
    Without C{-n}, twistd forks after the database is opened; the daemon
    must write on a connection of its own.
    """

    def test_history_survives_daemon_restart(self) -> None:
        directory = temp_dir(self)
        daemon = Daemon(self, directory)
        alice, bob = log_in(self, daemon.port, "alice", "bob")
        alice.send("said to a daemon")
        bob.read_until("said to a daemon")
        daemon.stop()
        daemon = Daemon(self, directory)
        (carol,) = log_in(self, daemon.port, "carol")
        replay = carol.read_until("--- end of history ---")
        self.assertTrue(any(line.endswith("alice: said to a daemon") for line in replay), replay)
        carol.send("/history 5")
        out = carol.read_until("--- end of history ---")
        self.assertEqual(out[0], "--- last message in #lobby ---")
        self.assertTrue(out[1].endswith("alice: said to a daemon"), out)
        carol.send("/search daemon")
        self.assertIn("1 match", carol.read_until("--- end of search ---")[0])
        daemon.stop()
        self.assertNotIn("Traceback", daemon.output())
        db = sqlite3.connect(os.path.join(directory, "chat.db"))
        self.addCleanup(db.close)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone(), ("ok",))


class DatabaseFaultEndToEndTests(SynchronousTestCase):
    """Databases twistd cannot use: a clear start-up error or chat goes on."""

    def test_locked_at_startup(self) -> None:
        """Another process holds an exclusive lock: twistd waits briefly, then says so."""
        directory = temp_dir(self)
        holder = sqlite3.connect(os.path.join(directory, "chat.db"), isolation_level=None)
        self.addCleanup(holder.close)
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE held (x)")
        output = start_fails(self, directory, "chat.db")
        self.assertIn("twistd chat: cannot use history database chat.db: database is locked",
                      output)

    def test_read_only_filesystem(self) -> None:
        """A database on a read-only filesystem (root ignores chmod; a mount does not)."""
        directory = tiny_filesystem(self, "4m")
        db = sqlite3.connect(os.path.join(directory, "chat.db"))
        db.execute("CREATE TABLE x (y)")
        db.commit()
        db.close()
        subprocess.run(["mount", "-o", "remount,ro", directory], check=True, timeout=30)
        output = start_fails(self, temp_dir(self), os.path.join(directory, "chat.db"))
        self.assertIn("twistd chat: cannot use history database", output)
        self.assertRegex(output, "readonly|unable to open|read-only")

    def test_disk_fills_mid_run(self) -> None:
        """The filesystem fills up: one logged error, chat and /history go on."""
        directory = tiny_filesystem(self, "1m")
        path = os.path.join(directory, "chat.db")
        server = ServerProcess(self, "--db", path, "--rate", "0")
        alice, bob = log_in(self, server.port, "alice", "bob")
        with open(os.path.join(directory, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass  # the disk is full
        for i in range(50):
            alice.send("message %d %s" % (i, "x" * 400))
        last = bob.read_until("message 49 ")
        self.assertEqual(len([line for line in last if "alice: message" in line]), 50)
        bob.send("/history 3")
        self.assertTrue(bob.read_until("--- end of history ---")[-2].endswith("x" * 400))
        # The write that fails comes within FLUSH_DELAY of the messages.
        deadline = time.monotonic() + 10
        while "keeping history in memory" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        output = server.output()
        self.assertIn("failed (database or disk is full); keeping history in memory", output)
        self.assertEqual(output.count("keeping history in memory"), 1)
        server.stop()
        self.assertNotIn("Traceback", server.output())
