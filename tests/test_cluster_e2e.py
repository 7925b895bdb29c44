"""
End to end: real C{twistd chat} processes sharing a real C{redis-server}
(Debian's), SPEC section 10, and moderation across them (SPEC 8).  Skipped
without redis-server, except under CI (the C{CI} environment variable),
where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers import LineClient, ServerProcess, log_in, temp_dir

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
# A short heartbeat: a killed process is taken for dead after four (0.8 s).
BEAT = "0.2"

pytestmark = pytest.mark.e2e


def require_redis(case: SynchronousTestCase, path: str = REDIS) -> None:
    """Skip C{case} without redis-server; under CI, fail it instead."""
    if os.path.exists(path):
        return
    reason = "redis-server is missing (apt-get install redis-server)"
    if os.environ.get("CI"):
        case.fail("the cluster tests must run in CI: " + reason)
    raise SkipTest(reason)


class RedisTestCase(SynchronousTestCase):
    """A test that needs redis-server."""

    def setUp(self) -> None:
        require_redis(self)


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


ANSWERS = {"/users": "Users in", "/users all": "Users online", "/rooms": "Rooms (",
           "/history": "[", "/search": "["}


def ask_until(client: LineClient, command: str, wanted: str, timeout: float = 10.0) -> str:
    """Send C{command} until its answer has a line containing C{wanted}; return that line."""
    deadline = time.monotonic() + timeout
    start = ANSWERS[command.split(" ")[0] if command != "/users all" else command]
    while time.monotonic() < deadline:
        client.send(command)
        client.send("/help")
        lines = client.read_until(lambda line: line.startswith("Commands"))
        for line in lines:
            if line.startswith(start) and wanted in line:
                return line
        time.sleep(0.1)
    raise AssertionError("%s never showed %r" % (command, wanted))


def claim(client: LineClient, name: str, outcomes: list[str]) -> None:
    """Log in as C{name} (the passcode sent already); add the answer to C{outcomes}."""
    client.send(name)
    lines = client.read_until(lambda line: "Welcome, " in line or "taken" in line)
    outcomes.append(lines[-1])


class TwoProcesses(RedisTestCase):

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

    def test_three_processes(self) -> None:
        redis = RedisServer(self)
        servers = [node(self, redis, name) for name in ("a", "b", "c")]
        alice, bob, carol = (log_in(self, server.port, name)[0]
                             for server, name in zip(servers, ("alice", "bob", "carol"),
                                                     strict=True))
        ask_until(alice, "/users", "carol")
        carol.send("/join ops")
        ask_until(alice, "/rooms", "#ops (1)")
        alice.send("/join ops")
        carol.read_until("alice joined #ops")
        carol.send("hi from c")
        alice.read_until("carol: hi from c")
        line = ask_until(bob, "/users all", "carol")
        for name in ("alice", "bob", "carol"):
            self.assertIn(name, line)
        self.assertEqual(ask_until(bob, "/rooms", "#ops"), "Rooms (2): #lobby (1), #ops (2)")

    def test_killed_process(self) -> None:
        """A process killed with SIGKILL: its users leave the others' lists, with a notice."""
        redis = RedisServer(self)
        a, b = node(self, redis, "a"), node(self, redis, "b")
        (alice,) = log_in(self, a.port, "alice")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(alice, "/users", "bob")
        b.process.send_signal(signal.SIGKILL)
        alice.read_until("bob disconnected")
        alice.send("/users all")
        self.assertNotIn("bob", alice.read_until("Users online")[-1])
        # and the name is free again (its key expired) for a new user on a
        deadline = time.monotonic() + 15
        while True:
            client = LineClient(a.port)
            self.addCleanup(client.close)
            client.send("x", "bob")
            lines = client.read_until(lambda line: "Welcome, " in line or "taken" in line)
            if "Welcome, " in lines[-1] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertIn("Welcome, bob", lines[-1])

    def test_restarted_process_catches_up(self) -> None:
        """What was said while a process was down is in its history afterwards."""
        redis = RedisServer(self)
        a = node(self, redis, "a")
        b_dir = temp_dir(self)
        b = node(self, redis, "b", cwd=b_dir)
        (alice,) = log_in(self, a.port, "alice")
        alice.send("before the restart")
        time.sleep(0.3)
        b.stop()
        alice.send("while b was down")
        alice.send("/history")
        alice.read_until("while b was down")
        b = node(self, redis, "b", cwd=b_dir)
        (bob,) = log_in(self, b.port, "bob")
        replay = bob.read_until("while b was down")
        said = [line for line in replay if "alice: " in line]
        self.assertEqual(said, [said[0].split("]")[0] + "] alice: before the restart",
                                said[1].split("]")[0] + "] alice: while b was down"])

    def test_redis_restarted_mid_chat(self) -> None:
        """Redis stopped and started again (no persistence): nothing said is lost."""
        redis = RedisServer(self)
        a, b = node(self, redis, "a"), node(self, redis, "b")
        (alice,) = log_in(self, a.port, "alice")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(alice, "/users", "bob")
        redis.stop()
        wait_for(lambda: "is unreachable" in a.output(), "a never noticed")
        alice.send("said during the outage")
        bob.send("bob too")
        redis.start()
        bob.read_until("alice: said during the outage")
        alice.read_until("bob: bob too")
        ask_until(alice, "/users", "bob")
        ask_until(bob, "/history", "alice: said during the outage")
        for server in (a, b):
            self.assertEqual(server.output().count("is unreachable"), 1, server.output())

    def test_outage_logged_once(self) -> None:
        """Redis away for several reconnection attempts: one line says so, not one per attempt."""
        redis = RedisServer(self)
        a = node(self, redis, "a")
        redis.stop()
        wait_for(lambda: "is unreachable" in a.output(), "a never noticed")
        time.sleep(4)  # attempts after about 1 s and 2-3 s
        redis.start()
        wait_for(lambda: "Redis is back" in a.output(), "a never reconnected", timeout=15)
        self.assertEqual(a.output().count("is unreachable"), 1, a.output())
        self.assertNotIn("Scheduling retry", a.output())

    def test_name_race(self) -> None:
        """The same name claimed on two processes at once: exactly one wins."""
        redis = RedisServer(self)
        a, b = node(self, redis, "a"), node(self, redis, "b")
        for attempt in range(5):
            name = "racer%d" % attempt
            clients = [LineClient(a.port), LineClient(b.port)]
            for client in clients:
                self.addCleanup(client.close)
                client.send("x")
            outcomes: list[str] = []
            threads = [threading.Thread(target=claim, args=(c, name, outcomes))
                       for c in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            self.assertEqual(sorted("Welcome, " in line for line in outcomes), [False, True],
                             outcomes)

    def test_irc_across_processes(self) -> None:
        """NAMES, WHO and WHOIS show the other process's users; NICK is unique cluster-wide."""
        redis = RedisServer(self)
        a = node(self, redis, "a", "--irc", "tcp:0:interface=127.0.0.1")
        b = node(self, redis, "b")
        irc_port = int(re.findall(r"IRC listening on 127\.0\.0\.1:(\d+)", a.output())[0])
        (bob,) = log_in(self, b.port, "bob")
        (watcher,) = log_in(self, a.port, "watcher")
        ask_until(watcher, "/users", "bob")
        irc = LineClient(irc_port)
        self.addCleanup(irc.close)
        irc.send("PASS x", "NICK ann", "USER ann 0 * :Ann")
        irc.read_until(" 001 ")
        irc.send("JOIN #lobby")
        names = irc.read_until(" 366 ")
        self.assertIn("bob", next(line for line in names if " 353 " in line))
        irc.send("WHO #lobby")
        who = irc.read_until(" 315 ")
        self.assertTrue([line for line in who if " 352 " in line and " bob " in line], who)
        irc.send("WHOIS bob")
        self.assertIn("#lobby", next(line for line in irc.read_until(" 318 ")
                                 if " 319 " in line))
        irc.send("NICK bob")
        irc.read_until(" 433 ")
        irc.send("NICK anna")
        irc.read_until("NICK")
        ask_until(bob, "/users", "anna")
        bob.send("hi anna")
        irc.read_until("PRIVMSG #lobby :hi anna")


class WithoutRedis(SynchronousTestCase):

    def test_nothing_of_the_cluster_is_imported(self) -> None:
        """Without --redis the server is built as before: no txredisapi, no cluster modules."""
        import sys

        code = ("import sys; from twisted.internet import reactor;"
                " from twisted_chat.tap import Options, build, config_from_options;"
                " o = Options(); o.parseOptions(['--db', ':memory:']);"
                " build(config_from_options(o), reactor);"
                " print(sorted(m for m in sys.modules if 'redis' in m or 'cluster' in m))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=temp_dir(self))
        self.assertEqual(out.stdout.strip(), "[]", out.stderr)


class Accounts(RedisTestCase):

    def test_account_registered_on_one_process_is_one_on_the_other(self) -> None:
        redis = RedisServer(self)
        a, b = node(self, redis, "a"), node(self, redis, "b")
        (alice,) = log_in(self, a.port, "alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered")
        alice.send("/quit")
        alice.read_to_close()
        deadline = time.monotonic() + 10
        while True:  # until b has applied it (and a has freed the name)
            mallory = LineClient(b.port)
            self.addCleanup(mallory.close)
            mallory.send("x", "alice")
            line = mallory.read_until(lambda line: "Password:" in line or "Welcome, " in line
                                      or "taken" in line)[-1]
            if "Password:" in line or time.monotonic() > deadline:
                break
            mallory.close()
            time.sleep(0.2)
        self.assertIn("Password:", line)
        mallory.send("correct horse battery")
        mallory.read_until("Welcome, alice!")


class RefusedByRedis(RedisTestCase):

    def test_wrong_password_and_none(self) -> None:
        """Redis asks a password: said once in the log, and the users are served alone."""
        port = free_port()
        redis = subprocess.Popen(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--requirepass", "s3cret", "--dir", temp_dir(self)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (redis.kill(), redis.wait(10)))
        wait_for(lambda: _listening(port), "redis-server did not start")
        wrong = ServerProcess(self, "--redis", "redis://:nope@127.0.0.1:%d/0" % port,
                              "--redis-heartbeat", BEAT)
        none = ServerProcess(self, "--redis", "redis://127.0.0.1:%d/0" % port,
                             "--redis-heartbeat", BEAT)
        wait_for(lambda: "refused this server" in wrong.output(), wrong.output())
        wait_for(lambda: "refused the cluster's commands" in none.output(), none.output())
        time.sleep(1.0)  # five heartbeats: still said once
        self.assertEqual(none.output().count("refused the cluster's commands"), 1)
        self.assertEqual(wrong.output().count("refused this server"), 1)
        self.assertNotIn("s3cret", wrong.output() + none.output())
        self.assertNotIn("Traceback", wrong.output() + none.output())
        (alice,) = log_in(self, none.port, "alice")
        (bob,) = log_in(self, wrong.port, "bob")
        ask_until(alice, "/users", "alice")
        ask_until(bob, "/users", "bob")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class OtherTransports(RedisTestCase):

    def test_rediss(self) -> None:
        """rediss:// with the server's certificate checked against ?ca=."""
        from tests.helpers import make_certificate

        directory = temp_dir(self)
        key, cert = make_certificate(directory)
        port = free_port()
        redis = subprocess.Popen(
            [REDIS, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
             "--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (redis.kill(), redis.wait(10)))
        wait_for(lambda: _listening(port), "redis-server (TLS) did not start")
        url = "rediss://127.0.0.1:%d/0?ca=%s" % (port, cert)
        a = ServerProcess(self, "--redis", url, "--node-name", "a", "--redis-heartbeat", BEAT)
        b = ServerProcess(self, "--redis", url, "--node-name", "b", "--redis-heartbeat", BEAT)
        for server in (a, b):
            wait_for(lambda server=server: "connected to rediss://" in server.output(),
                     server.output())
        (alice,) = log_in(self, a.port, "alice")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(alice, "/users", "bob")
        bob.send("over TLS")
        alice.read_until("bob: over TLS")

    def test_unix_socket(self) -> None:
        directory = temp_dir(self)
        path = os.path.join(directory, "redis.sock")
        redis = subprocess.Popen(
            [REDIS, "--port", "0", "--unixsocket", path, "--save", "", "--appendonly", "no",
             "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (redis.kill(), redis.wait(10)))
        wait_for(lambda: os.path.exists(path), "redis-server (unix) did not start")
        url = "unix://%s?db=3" % path
        a = ServerProcess(self, "--redis", url, "--node-name", "a", "--redis-heartbeat", BEAT)
        b = ServerProcess(self, "--redis", url, "--node-name", "b", "--redis-heartbeat", BEAT)
        for server in (a, b):
            wait_for(lambda server=server: "connected to unix://" in server.output(),
                     server.output())
        (alice,) = log_in(self, a.port, "alice")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(alice, "/users", "bob")
        bob.send("over a socket")
        alice.read_until("bob: over a socket")


class ModerationAcrossProcesses(RedisTestCase):
    """SPEC 8 on two processes: one chat, one moderation."""

    def test_ban_topic_mute_kick_and_wall(self) -> None:
        redis = RedisServer(self)
        a = node(self, redis, "a", "--operator", "alice", "--burst", "100")
        b = node(self, redis, "b", "--operator", "alice", "--burst", "100")
        (alice,) = log_in(self, a.port, "alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered")
        bob, carol = log_in(self, b.port, "bob", "carol")
        for client in (alice, bob, carol):
            client.send("/join den")
            client.read_until("You are now in #den.")
        ask_until(alice, "/users", "carol")
        alice.send("/claim")
        bob.read_until(lambda line: line.endswith("*** alice claimed #den ***"))
        # a topic set on a: told on b, and shown to whoever joins on b
        alice.send("/topic Dragons only")
        bob.read_until(lambda line: line.endswith(
            "*** alice set the topic of #den: Dragons only ***"))
        carol.send("/join lobby", "/join den")  # (the change came before its notice)
        carol.read_until(lambda line: line.startswith("Topic of #den: Dragons only (set by alice"))
        # muted on a: bob cannot speak on b, his line reaches nobody
        alice.send("/mute bob 10m")
        bob.read_until(lambda line: line.endswith("*** alice muted bob in #den for 10m ***"))
        bob.send("can you hear me")
        bob.read_until(lambda line: line == "ERROR you are muted in #den")
        carol.send("carol was here")
        seen = alice.read_until("carol: carol was here")
        carol.send("/users")
        seen += carol.read_until("Users in #den")  # (after whatever b sent her before)
        self.assertFalse([line for line in seen if "can you hear me" in line], seen)
        # a kick from a of a user on b
        alice.send("/kick bob enough")
        for client in (alice, bob, carol):
            client.read_until(lambda line: line.endswith(
                "*** bob was kicked from #den by alice (enough) ***"))
        bob.read_until("You are now in #lobby.")
        # a ban set on a refuses a JOIN on b
        alice.send("/ban bob 1h")
        carol.read_until(lambda line: line.endswith("*** alice banned bob from #den for 1h ***"))
        bob.send("/join den")
        bob.read_until(lambda line: line.startswith("ERROR you are banned from #den (for "))
        # a wall is seen on both
        alice.send("/wall restart at noon")
        for client in (alice, bob, carol):
            client.read_until(lambda line: line.endswith("*** [wall] alice: restart at noon ***"))
        # a process started late learns it all from the stream
        c = node(self, redis, "c")
        (dave,) = log_in(self, c.port, "dave")
        dave.send("/join den")
        dave.read_until(lambda line: line.startswith("Topic of #den: Dragons only (set by alice"))
        dave.send("/bans")
        dave.read_until(lambda line: line.startswith("  bob (by alice, "))
        for server in (a, b, c):
            self.assertNotIn("Traceback", server.output())
        self.assertIn("moderation: alice ban bob in #den for 1h", b.output())

    def test_server_mute_during_a_redis_restart(self) -> None:
        """A /gmute made while Redis is down (and loses its data) holds on b once it is back."""
        redis = RedisServer(self)
        a = node(self, redis, "a", "--operator", "root")
        b = node(self, redis, "b", "--operator", "root")
        (root,) = log_in(self, a.port, "root")
        root.send("/register correct horse battery")
        root.read_until("root is registered")
        (bob,) = log_in(self, b.port, "bob")
        ask_until(root, "/users", "bob")
        redis.stop()
        wait_for(lambda: "is unreachable" in b.output(), "b never noticed")
        root.send("/gmute bob")
        root.read_until("muted bob on the server")
        redis.start()
        deadline = time.monotonic() + 10
        while True:  # until b has applied it
            bob.send("/msg root ping")
            line = bob.read_until(lambda line: "[PRIVATE to root]" in line
                                  or line.startswith("ERROR"))[-1]
            if line.startswith("ERROR") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(line, "ERROR you are muted on this server")


class MissingRedis(SynchronousTestCase):
    """Without redis-server the cluster tests are skipped, but fail under CI."""

    def test_skipped_without_ci_failed_with(self) -> None:
        missing = os.path.join(temp_dir(self), "no-redis-server")
        saved = os.environ.pop("CI", None)
        if saved is not None:
            self.addCleanup(os.environ.__setitem__, "CI", saved)
        self.assertRaises(SkipTest, require_redis, self, missing)
        os.environ["CI"] = "true"
        if saved is None:
            self.addCleanup(os.environ.pop, "CI", None)
        self.assertRaises(self.failureException, require_redis, self, missing)
        require_redis(self, REDIS if os.path.exists(REDIS) else __file__)  # present: runs
