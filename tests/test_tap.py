"""Tests for C{twistd chat}'s options and wiring, L{twisted_chat.tap}."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from unittest import SkipTest

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_chat.config import ChatConfig
from twisted_chat.service import ChatService, Listener
from twisted_chat.storage.history import HistoryError
from twisted_chat.tap import (
    LISTEN_BACKLOG,
    Options,
    build,
    config_from_options,
    fit_descriptors,
    with_backlog,
)

from .helpers import (
    ROOT,
    ServerProcess,
    log_in,
    make_certificate,
    only,
    temp_dir,
    twistd_command,
)


def parse(*args: str) -> ChatConfig:
    options = Options()
    options.parseOptions(list(args))
    return config_from_options(options)


class OptionsTests(SynchronousTestCase):
    """C{twistd chat} options become a L{ChatConfig}."""

    def test_defaults(self) -> None:
        config = parse()
        self.assertEqual(config, ChatConfig())
        self.assertEqual(config.ports, ("tcp:8080",))
        self.assertIsNone(config.passcode)
        self.assertEqual((config.max_line, config.rate, config.burst, config.history),
                         (1024, 5.0, 10, 20))

    def test_everything(self) -> None:
        config = parse("--port", "9000", "-p", "tcp:9001:interface=127.0.0.1",
                       "--passcode", "pässword", "--db", ":memory:", "--max-line", "200",
                       "--rate", "0", "--burst", "3", "--history", "7", "--sendq", "65536")
        self.assertEqual(config.ports, ("tcp:9000", "tcp:9001:interface=127.0.0.1"))
        self.assertEqual(config.passcode, "pässword".encode())
        self.assertEqual((config.db, config.max_line, config.rate, config.burst,
                          config.history, config.sendq), (":memory:", 200, 0.0, 3, 7, 65536))

    def test_passcode_file(self) -> None:
        """One trailing newline is stripped; the rest is the passcode."""
        path = os.path.join(temp_dir(self), "secret")
        for content, expected in ((b"abc\n", b"abc"), (b"abc\r\n", b"abc"),
                                  (b"abc\n\n", b"abc\n"), (b" a b ", b" a b ")):
            with open(path, "wb") as f:
                f.write(content)
            self.assertEqual(parse("--passcode-file", path).passcode, expected)

    def test_usage_errors(self) -> None:
        path = os.path.join(temp_dir(self), "empty")
        open(path, "w").close()
        for args in (["--passcode", "a", "--passcode-file", path],
                     ["--passcode-file", path],
                     ["--passcode-file", path + ".missing"],
                     ["--passcode", ""],
                     ["--max-line", "ten"], ["--max-line", "0"], ["--rate", "-1"],
                     ["--burst", "0"], ["--history", "201"], ["--bogus"]):
            self.assertRaises(usage.UsageError, parse, *args)

    def test_help_documents_options(self) -> None:
        text = str(Options())
        for option in ("--port", "--passcode", "--passcode-file", "--db", "--max-line",
                       "--rate", "--burst", "--history", "--sendq"):
            self.assertIn(option, text)


class PluginTests(SynchronousTestCase):
    """twistd finds the plugin."""

    def test_listed(self) -> None:
        import twisted.plugins

        makers = {p.tapname: p for p in getPlugins(IServiceMaker, twisted.plugins)}
        self.assertIn("chat", makers)
        maker = makers["chat"]
        self.assertTrue(verifyObject(IServiceMaker, maker))
        self.assertIs(maker.options, Options)


class BuildTests(SynchronousTestCase):
    """L{build} wires a service with one listener per --port."""

    def test_listeners(self) -> None:
        reactor = MemoryReactorClock()
        service = build(parse("--port", "1234", "--port", "tcp:1235:interface=127.0.0.1",
                              "--db", ":memory:", "--passcode", "x"), reactor)
        self.assertIsInstance(service, ChatService)
        listeners = list(service)
        self.assertEqual(len(listeners), 2)
        self.assertTrue(all(isinstance(child, Listener) for child in listeners))
        service.privilegedStartService()
        service.startService()
        self.assertEqual([port[0] for port in reactor.tcpServers], [1234, 1235])
        self.assertEqual(reactor.tcpServers[1][3], "127.0.0.1")
        self.successResultOf(service.stopService())

    def test_backlog(self) -> None:
        """
        TCP listeners queue up to LISTEN_BACKLOG completed connections (not
        Twisted's 50: a reconnect storm would wait for retransmitted
        handshakes), unless the description gives its own.
        """
        reactor = MemoryReactorClock()
        service = build(parse("--port", "1234", "--port", "tcp:1235:backlog=7",
                              "--irc", "tcp:1236:interface=127.0.0.1", "--db", ":memory:"),
                        reactor)
        service.privilegedStartService()
        self.assertEqual([port[2] for port in reactor.tcpServers], [LISTEN_BACKLOG, 7,
                                                                    LISTEN_BACKLOG])
        self.assertEqual(with_backlog("unix:/tmp/x"), "unix:/tmp/x")
        self.successResultOf(service.stopService())

    def test_web_address_known(self) -> None:
        """Once --web listens, sessions know the page's address (for HTTP at the telnet port)."""
        reactor = MemoryReactorClock()
        service = build(parse("--port", "1234", "--web", "ssl:8443:privateKey=%s:certKey=%s"
                              % make_certificate(temp_dir(self)), "--db", ":memory:"), reactor)
        self.assertEqual(service.context.listening, {})
        service.privilegedStartService()
        self.assertEqual(service.context.listening, {"web": "https://0.0.0.0:8443/"})
        self.successResultOf(service.stopService())

    def test_irc_listeners(self) -> None:
        """--irc (repeatable) adds IRC listeners sharing one hub, named by --server-name."""
        from twisted_chat.frontends.irc.protocol import IRCFactory

        reactor = MemoryReactorClock()
        config = parse("--port", "1234", "--irc", "6667", "--irc", "tcp:6668:interface=127.0.0.1",
                       "--server-name", "irc.example.com", "--db", ":memory:")
        self.assertEqual(config.ircs, ("tcp:6667", "tcp:6668:interface=127.0.0.1"))
        self.assertEqual(config.server_name, "irc.example.com")
        service = build(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.assertEqual([port[0] for port in reactor.tcpServers], [1234, 6667, 6668])
        factories = [port[1] for port in reactor.tcpServers[1:]]
        self.assertTrue(all(isinstance(factory, IRCFactory) for factory in factories))
        self.assertIs(factories[0].hub, factories[1].hub)
        self.assertEqual(factories[0].hub.server_name, "irc.example.com")
        self.successResultOf(service.stopService())

    def test_bad_database(self) -> None:
        path = os.path.join(temp_dir(self), "nodir", "chat.db")
        self.assertRaises(HistoryError, build, parse("--db", path), MemoryReactorClock())


class PortCheckTests(SynchronousTestCase):
    """Port mistakes are usage errors with a clear message, caught before listening."""

    def assertUsageError(self, args: list[str], message: str) -> None:
        error = self.assertRaises(usage.UsageError, parse, *args)
        self.assertEqual(str(error), message)

    def test_not_a_port(self) -> None:
        self.assertUsageError(["--port", "tcp:abc"],
                              "--port tcp:abc: 'abc' is not a port number (0 to 65535)")
        self.assertUsageError(["--port", "99999"],
                              "--port tcp:99999: '99999' is not a port number (0 to 65535)")
        self.assertUsageError(["--web", "tcp:port=x"],
                              "--web tcp:port=x: 'x' is not a port number (0 to 65535)")

    def test_bad_endpoint(self) -> None:
        """What only building the endpoint finds is one line naming the option too."""
        reactor = MemoryReactorClock()
        error = self.assertRaises(ValueError, build, parse("--port", "nosuch:1", "--db",
                                                           ":memory:"), reactor)
        self.assertIn("--port nosuch:1: ", str(error))
        error = self.assertRaises(ValueError, build, parse("--web", "ssl:8443:privateKey=no.pem",
                                                           "--db", ":memory:"), reactor)
        self.assertIn("--web ssl:8443:privateKey=no.pem: ", str(error))
        self.assertIn("no.pem", str(error))

    def test_overlapping(self) -> None:
        self.assertUsageError(["--port", "8080", "--port", "8080"], "--port 8080 is given twice")
        self.assertUsageError(["--port", "8080", "--web", "8080"],
                              "--port tcp:8080 and --web tcp:8080 would both listen on port 8080")
        self.assertUsageError(["--web", "tcp:8080:interface=127.0.0.1"],  # --port's default
                              "--port tcp:8080 and --web tcp:8080:interface=127.0.0.1"
                              " would both listen on port 8080")

    def test_irc_overlapping(self) -> None:
        """--irc is checked against --port and --web; --server-name must be a host name."""
        self.assertUsageError(["--port", "6667", "--irc", "6667"],
                              "--port tcp:6667 and --irc tcp:6667 would both listen on port 6667")
        self.assertUsageError(["--irc", "tcp:abc"],
                              "--irc tcp:abc: 'abc' is not a port number (0 to 65535)")
        self.assertUsageError(["--irc", "6667", "--server-name", "bad name"],
                              "--server-name 'bad name' is not a host name like irc.example.com")

    def test_not_overlapping(self) -> None:
        """Different interfaces, port 0 and other kinds of endpoint may share a number."""
        config = parse("--port", "tcp:8080:interface=127.0.0.1",
                       "--port", "tcp:8080:interface=127.0.0.2",
                       "--port", "tcp:0:interface=127.0.0.1", "--web", "tcp:0:interface=127.0.0.1",
                       "--port", "unix:/tmp/x.sock")
        self.assertEqual(len(config.ports), 4)


class UsageOutputTests(SynchronousTestCase):
    """What twistd shows for a usage error, --version and --help."""

    def run_twistd_options(self, *args: str) -> tuple[int, str, str]:
        import io
        from contextlib import redirect_stderr, redirect_stdout

        from twisted.scripts.twistd import ServerOptions

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                ServerOptions().parseOptions(["chat", *args])
            except SystemExit as e:
                return e.code, out.getvalue(), err.getvalue()
        self.fail("no exit")

    def test_usage_error_is_one_line(self) -> None:
        """Under twistd a usage error is the message and a hint, not all of --help."""
        code, out, err = self.run_twistd_options("--bad")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "twistd chat: option --bad not recognized\n"
                              "(see twistd chat --help)\n")

    def test_version(self) -> None:
        from twisted_chat import __version__

        code, out, _ = self.run_twistd_options("--version")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("twisted-chat %s (Twisted " % __version__), out)

    def test_help(self) -> None:
        """--help names the version and says loopback is not exempt by default."""
        from twisted_chat import __version__

        code, out, _ = self.run_twistd_options("--help")
        self.assertEqual(code, 0)
        self.assertIn("twisted-chat %s:" % __version__, out)
        self.assertNotIn("loopback included", out)
        self.assertIn("loopback is held to the limit", " ".join(out.split()))


class DescriptorTests(SynchronousTestCase):
    """The connection limit is fitted to the file descriptor limit at start-up."""

    def fit(self, max_clients: int | None, soft: int, hard: int, settable: bool = True
            ) -> tuple[int, str | None, list[tuple[int, int]]]:
        import resource

        calls: list[tuple[int, int]] = []

        def getrlimit(which: int) -> tuple[int, int]:
            self.assertEqual(which, resource.RLIMIT_NOFILE)
            return soft, hard

        def setrlimit(which: int, limits: tuple[int, int]) -> None:
            self.assertEqual(which, resource.RLIMIT_NOFILE)
            if not settable:
                raise ValueError("not allowed")
            calls.append(limits)

        limit, note = fit_descriptors(max_clients, getrlimit, setrlimit)
        return limit, note, calls

    def test_raises_soft_to_hard(self) -> None:
        self.assertEqual(self.fit(None, 1024, 1 << 20), (10_000, None, [(1 << 20, 1 << 20)]))
        self.assertEqual(self.fit(50_000, 1024, 1 << 20), (50_000, None, [(1 << 20, 1 << 20)]))

    def test_default_lowered(self) -> None:
        """Without --max-clients the limit is lowered to fit, with one line for the log."""
        limit, note, calls = self.fit(None, 1024, 1024)
        self.assertEqual((limit, calls), (1024 - 32 - 128, []))
        self.assertIn("limit (ulimit -n) is 1024, so at most %d connections" % limit, note)
        limit, note, _ = self.fit(None, 1024, 4096, settable=False)
        self.assertEqual(limit, 1024 - 32 - 128)
        self.assertEqual(self.fit(None, 64, 64)[0], 64 - 32 - 8)

    def test_explicit_refused(self) -> None:
        """
        An explicit --max-clients the limit cannot hold is refused with one
        line, and what fits is served (the server still starts).
        """
        limit, note, _ = self.fit(2000, 1024, 1024)
        self.assertEqual(limit, 864)
        self.assertEqual(note, "--max-clients 2000 refused: it needs about 2160 file descriptors"
                         " but the limit is 1024 (ulimit -n); at most 864 connections are"
                         " served, more get 'the server is full' (raise the limit to serve"
                         " more)")
        self.assertEqual(self.fit(864, 1024, 1024), (864, None, []))
        self.assertEqual(self.fit(865, 1024, 1024)[0], 864)

    def test_too_low(self) -> None:
        self.assertRaises(ValueError, self.fit, None, 32, 32)

    def test_options_remember_explicit(self) -> None:
        options = Options()
        options.parseOptions([])
        self.assertEqual((options["max-clients"], options["max-clients-given"]), (10_000, False))
        options = Options()
        options.parseOptions(["--max-clients", "10000"])
        self.assertTrue(options["max-clients-given"])


def run_twistd(case: SynchronousTestCase, *args: str, cwd: str | None = None
               ) -> tuple[int, str, str]:
    """Run the real twistd to its end; return its exit status, stdout and stderr."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(twistd_command() + list(args), cwd=cwd or temp_dir(case), env=env,
                            capture_output=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.e2e
class StartUpErrorTests(SynchronousTestCase):
    """The real twistd: each start-up mistake is one line and exit status 1."""

    def busy_port(self) -> int:
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        return busy.getsockname()[1]

    def test_port_in_use(self) -> None:
        port = self.busy_port()
        code, out, err = run_twistd(self, "-n", "--pidfile=", "chat", "--db", ":memory:",
                                    "--port", "tcp:%d:interface=127.0.0.1" % port)
        self.assertEqual(code, 1)
        self.assertEqual(only((out + err).splitlines(), "cannot listen|Traceback|Error"),
                         [(out + err).splitlines()[-1]])
        self.assertTrue((out + err).rstrip().endswith(
            "twistd chat: cannot listen on 127.0.0.1:%d: address already in use" % port), out + err)

    def test_port_in_use_daemon(self) -> None:
        """A daemonizing twistd reports the whole line, not cut mid-word."""
        port = self.busy_port()
        directory = temp_dir(self)
        self.addCleanup(self.kill_daemon, os.path.join(directory, "twistd.pid"))
        code, out, err = run_twistd(
            self, "--pidfile", os.path.join(directory, "twistd.pid"),
            "--logfile", os.path.join(directory, "twistd.log"), "chat", "--db", ":memory:",
            "--web", "tcp:%d:interface=127.0.0.1" % port, cwd=directory)
        self.assertEqual(code, 1)
        self.assertIn("twistd chat: cannot listen on --web 127.0.0.1:%d: address already in use'"
                      % port, out + err)
        self.assertNotIn("Traceback", out + err)

    def kill_daemon(self, pidfile: str) -> None:
        """Should the daemon have started after all, stop it."""
        try:
            with open(pidfile) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def test_usage_mistakes(self) -> None:
        for args, message in (
            (["--bad"], "option --bad not recognized"),
            (["--port", "tcp:abc"], "--port tcp:abc: 'abc' is not a port number (0 to 65535)"),
            (["--port", "99999"], "--port tcp:99999: '99999' is not a port number (0 to 65535)"),
            (["--port", "8080", "--port", "8080"], "--port 8080 is given twice"),
            (["--port", "8080", "--web", "8080"],
             "--port tcp:8080 and --web tcp:8080 would both listen on port 8080"),
        ):
            code, out, err = run_twistd(self, "-n", "--pidfile=", "chat", *args)
            self.assertEqual((code, out, err), (
                1, "", "twistd chat: %s\n(see twistd chat --help)\n" % message))

    def test_database_in_missing_directory(self) -> None:
        """The message is printed once."""
        code, out, err = run_twistd(self, "-n", "--pidfile=", "chat", "--port",
                                    "tcp:0:interface=127.0.0.1", "--db", "/nonexistent/dir/x.db")
        self.assertEqual(code, 1)
        self.assertEqual((out + err).count("cannot use history database"), 1, out + err)

    def test_explicit_max_clients_over_limit(self) -> None:
        """
        A --max-clients the descriptor limit cannot hold is refused with one
        line at start-up (SPEC 11), and the server serves what fits: the
        benchmark harness passes --max-clients 100000 under a limit of 20,000.
        """
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY:
            raise SkipTest("no descriptor limit")
        server = ServerProcess(self, "--db", ":memory:", "--max-clients", str(hard))
        log_in(self, server.port, "alice")
        output = server.output()
        self.assertEqual(output.count("--max-clients %d refused: it needs about" % hard), 1,
                         output)
        self.assertNotIn("Traceback", output)

    def test_version(self) -> None:
        from twisted_chat import __version__

        code, out, _ = run_twistd(self, "chat", "--version")
        self.assertEqual((code, out.split(" (")[0]), (0, "twisted-chat " + __version__))
