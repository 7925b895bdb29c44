"""Tests for C{twistd chat}'s options and wiring, L{twisted_chat.tap}."""

from __future__ import annotations

import os

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_chat.config import ChatConfig
from twisted_chat.storage.history import HistoryError
from twisted_chat.service import ChatService, Listener
from twisted_chat.tap import Options, build, config_from_options

from .helpers import temp_dir


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

    def test_bad_database(self) -> None:
        path = os.path.join(temp_dir(self), "nodir", "chat.db")
        self.assertRaises(HistoryError, build, parse("--db", path), MemoryReactorClock())
