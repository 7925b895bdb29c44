"""
Running it for real: the C{--config} file, the shipped contrib/ files (the
example config, the systemd unit, the Grafana dashboard), JSON logs, and
C{twistd chat --config ... --metrics ...} scraped over loopback.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.helpers import ROOT, LineClient, ServerProcess, log_in, temp_dir, twistd_command
from twisted_chat.logs import (
    JSON_LOG_ENV,
    event_as_json,
    json_file_observer,
    text_and_json_observer,
)
from twisted_chat.tap import Options, build, config_arguments, config_from_options, config_keys

CONTRIB = os.path.join(ROOT, "contrib")


def write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class ConfigFileTests(SynchronousTestCase):
    """C{--config PATH}: a TOML file of long option names, overridden by the command line."""

    def setUp(self) -> None:
        self.dir = temp_dir(self)

    def config(self, text: str) -> str:
        return write(self.dir, "chat.toml", text)

    def test_settings_from_the_file(self) -> None:
        """Every kind of key: strings, numbers, and lists for repeatable options."""
        path = self.config(
            'port = ["tcp:7001", "tcp:7002:interface=127.0.0.1"]\n'
            'db = ":memory:"\nmax-line = 2048\nrate = 2.5\npasscode = "s3cret"\n'
            'web = 7003\nweb-origin = ["https://chat.example.com"]\n'
            'limit-exempt = ["127.0.0.1", "::1"]\nmetrics = "tcp:0:interface=127.0.0.1"\n')
        config = config_from_options(parse("--config", path))
        self.assertEqual(config.ports, ("tcp:7001", "tcp:7002:interface=127.0.0.1"))
        self.assertEqual((config.db, config.max_line, config.rate), (":memory:", 2048, 2.5))
        self.assertEqual(config.passcode, b"s3cret")
        self.assertEqual(config.web, "tcp:7003")
        self.assertEqual(config.web_origins, ("https://chat.example.com",))
        self.assertEqual(config.limit_exempt, ("127.0.0.1", "::1"))
        self.assertEqual(config.metrics, "tcp:0:interface=127.0.0.1")

    def test_command_line_overrides(self) -> None:
        """A value on the command line wins; a --port there replaces the file's whole list."""
        path = self.config('port = ["tcp:7001", "tcp:7002"]\nmax-line = 2048\n'
                           'limit-exempt = ["10.0.0.1"]\n')
        options = parse("--max-line", "512", "--config", path, "--port", "7005")
        self.assertEqual(options["max-line"], 512)
        self.assertEqual(options["ports"], ["tcp:7005"])
        self.assertEqual(options["limit-exempt"], ["10.0.0.1"])  # not given: the file's
        options = parse("--config=" + path)
        self.assertEqual(options["ports"], ["tcp:7001", "tcp:7002"])

    def test_passcode_on_the_command_line_replaces_the_files(self) -> None:
        """--passcode on the command line overrides the file's passcode-file (not 'both given')."""
        secret = write(self.dir, "secret", "from-file\n")
        path = self.config('passcode-file = "%s"\n' % secret)
        self.assertEqual(parse("--config", path)["passcode-bytes"], b"from-file")
        self.assertEqual(parse("--config", path, "--passcode", "cli")["passcode-bytes"], b"cli")

    def assertRefused(self, text: str, message: str) -> None:
        path = self.config(text)
        with self.assertRaises(usage.UsageError) as caught:
            parse("--config", path)
        self.assertEqual(str(caught.exception), "config file %s: %s" % (path, message))

    def test_unknown_key(self) -> None:
        """An unknown key is named, with the option it probably meant."""
        self.assertRefused('prot = ["tcp:8080"]\n', "unknown key 'prot' (did you mean 'port'?)")
        self.assertRefused("colour = 1\n", "unknown key 'colour'")

    def test_bad_values(self) -> None:
        """A bad value names its key; a list where one value goes, or a table, is refused."""
        self.assertRefused("max-line = 3\n", "max-line = 3: 3 is out of range (16 to 1048576)")
        self.assertRefused('rate = "fast"\n', "rate = fast: 'fast' is not a number")
        self.assertRefused('db = ["a", "b"]\n', "'db' takes one value, not a list")
        self.assertRefused("db = true\n", "'db' must be a string or a number")
        self.assertRefused("port = [[1]]\n", "'port' must be a list of strings")
        self.assertRefused("[web]\nport = 1\n", "'web' must be a string or a number")
        self.assertRefused('web-origin = ["nope"]\n',
                           "--web-origin 'nope' is not an origin like https://chat.example.com")
        self.assertRefused('port = ["tcp:99999"]\n',
                           "--port tcp:99999: '99999' is not a port number (0 to 65535)")

    def test_not_toml(self) -> None:
        """A file that is not TOML, or not there, is one line naming it."""
        self.assertRefused("port = \n", "Invalid value (at line 1, column 8)")
        missing = os.path.join(self.dir, "missing.toml")
        with self.assertRaises(usage.UsageError) as caught:
            parse("--config", missing)
        self.assertEqual(str(caught.exception),
                         "config file %s: No such file or directory" % missing)

    def test_one_line_under_twistd(self) -> None:
        """Under twistd a bad key is one line on stderr (and a hint), and exit status 1."""
        path = self.config('prot = ["tcp:8080"]\n')
        options = Options()
        options.parent = object()  # type: ignore[assignment]
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as caught:
            options.parseOptions(["--config", path])
        self.assertEqual(caught.exception.code, 1)
        self.assertEqual(stderr.getvalue().splitlines()[0],
                         "twistd chat: config file %s: unknown key 'prot'"
                         " (did you mean 'port'?)" % path)


class ContribTests(SynchronousTestCase):
    """The files in contrib/ work with this version of the server."""

    def test_example_config(self) -> None:
        """contrib/chat.toml parses, each key is a real option, and it loads."""
        path = os.path.join(CONTRIB, "chat.toml")
        with open(path, "rb") as f:
            table = tomllib.load(f)
        keys = config_keys(Options())
        self.assertEqual(set(table) - set(keys), set())
        self.assertTrue({"port", "web", "web-origin", "limit-exempt", "passcode-file", "db",
                         "metrics"} <= set(table))
        self.assertEqual(len(config_arguments(Options(), table, path)),
                         sum(len(v) if isinstance(v, list) else 1 for v in table.values()))
        # the passcode file exists only under the unit: the command line's wins here
        config = config_from_options(parse("--config", path, "--passcode", "x"))
        self.assertEqual(config.metrics, "tcp:9100:interface=127.0.0.1")
        self.assertEqual(config.web_origins, ("https://chat.example.com",))

    def test_unit_runs_the_example_config(self) -> None:
        """The unit runs twistd in the foreground, without a pid file, on the config."""
        with open(os.path.join(CONTRIB, "twisted-chat.service")) as f:
            unit = f.read()
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)
        assert exec_start is not None
        self.assertIn(" -n --pidfile= chat --config /etc/twisted-chat/chat.toml",
                      exec_start.group(1))
        for line in ("Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "DynamicUser=yes", "StateDirectory=twisted-chat",
                     "WorkingDirectory=/var/lib/twisted-chat"):
            self.assertIn("\n%s\n" % line, unit)
        with open(os.path.join(CONTRIB, "chat.toml")) as f:
            self.assertIn("/run/credentials/twisted-chat.service/passcode", f.read())

    def test_readme(self) -> None:
        """The README shows contrib/chat.toml as it is, and its alerts use exported metrics."""
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        with open(os.path.join(CONTRIB, "chat.toml"), encoding="utf-8") as f:
            self.assertIn("```toml\n%s```" % f.read(), readme)
        alerts = re.search(r"```yaml\n(.*?)```", readme, re.S)
        assert alerts is not None
        exprs = re.findall(r"expr: (.*)", alerts.group(1))
        self.assertEqual(len(exprs), 3)
        exported = self.exported()
        for expr in exprs:
            found = set(re.findall(r"\b((?:chat|process|python)_[a-z_]+)", expr))
            self.assertEqual(found - exported, set(), expr)

    def exported(self) -> set[str]:
        """The sample names of a server built with --metrics."""
        from twisted_chat.config import ChatConfig

        service = build(ChatConfig(db=":memory:", metrics="tcp:0:interface=127.0.0.1"),
                        MemoryReactorClock())
        return {sample.name for family in service.registry.collect()
                for sample in family.samples}

    def test_dashboard_uses_exported_metrics(self) -> None:
        """Every query of the Grafana dashboard names a metric a server with --metrics exports."""
        exported = self.exported()
        self.assertIn("python_twisted_reactor_tick_time_seconds_bucket", exported)
        with open(os.path.join(CONTRIB, "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        self.assertEqual(dashboard["title"], "twisted-chat")
        ids = [panel["id"] for panel in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        named = set()
        for panel in dashboard["panels"]:
            self.assertTrue(panel["targets"], panel["title"])
            for target in panel["targets"]:
                self.assertTrue(target["refId"])
                found = set(re.findall(r"\b((?:chat|process|python)_[a-z_]+)", target["expr"]))
                self.assertTrue(found, target["expr"])
                self.assertEqual(found - exported, set(), panel["title"])
                named |= found
        for wanted in ("chat_connections", "chat_messages_total", "chat_deliveries_total",
                       "chat_logins_total", "python_twisted_reactor_tick_time_seconds_bucket",
                       "chat_history_queued_messages"):
            self.assertIn(wanted, named)
        for variable in dashboard["templating"]["list"]:
            metric = re.search(r"label_values\((\w+)", variable["query"]["query"])
            assert metric is not None
            self.assertIn(metric.group(1), exported)


@pytest.mark.e2e
class SystemdUnitTests(SynchronousTestCase):
    """C{systemd-analyze verify} accepts the unit, with nothing to say about it."""

    def test_verify(self) -> None:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            if os.environ.get("CI"):
                self.fail("systemd-analyze must be installed in CI (apt-get install systemd)")
            raise self.skipTest("systemd-analyze is not installed")
        directory = temp_dir(self)
        with open(os.path.join(CONTRIB, "twisted-chat.service")) as f:
            unit = f.read()
        # verify checks that the program exists: this checkout's twistd stands in
        # for the one the unit expects under /opt/twisted-chat
        twistd = twistd_command()[0]
        path = write(directory, "twisted-chat.service",
                     unit.replace("/opt/twisted-chat/bin/twistd", twistd))
        result = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                                timeout=60, check=False)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))


class JSONLogTests(SynchronousTestCase):
    """C{--logger twisted_chat.logs.json_observer}: one JSON object per line, with fields."""

    def test_fields(self) -> None:
        """A login is one line with its fields; an error carries its traceback on that line."""
        out = io.StringIO()
        log = Logger(namespace="twisted_chat.session", observer=json_file_observer(out))
        log.info("{name} logged in from {peer}", name="alice", peer="192.0.2.7:40000")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.failure("line from {name} failed", name="bob")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        login, error = (json.loads(line) for line in lines)
        self.assertEqual(login["text"], "alice logged in from 192.0.2.7:40000")
        self.assertEqual(login["event"], "{name} logged in from {peer}")
        self.assertEqual((login["name"], login["peer"], login["level"]),
                         ("alice", "192.0.2.7:40000", "info"))
        self.assertEqual(login["namespace"], "twisted_chat.session")
        self.assertEqual(error["level"], "critical")
        self.assertIn("ZeroDivisionError", error["traceback"])

    def test_text_and_json(self) -> None:
        """The text-and-JSON observer writes both; a JSON log it cannot open is one line."""
        directory = temp_dir(self)
        path = os.path.join(directory, "chat.json")
        self.patch(os, "environ", {**os.environ, JSON_LOG_ENV: path})
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        observer = text_and_json_observer()
        verifyObject(ILogObserver, observer)
        Logger(namespace="t", observer=observer).warn("refused {host}", host="192.0.2.9")
        self.assertIn("[t#warn] refused 192.0.2.9", stdout.getvalue())
        with open(path, encoding="utf-8") as f:
            self.assertEqual(json.loads(f.read())["host"], "192.0.2.9")
        self.patch(os, "environ", {**os.environ, JSON_LOG_ENV: directory + "/no/such/dir"})
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit):
            text_and_json_observer()
        self.assertEqual(stderr.getvalue(), "twistd chat: cannot write the JSON log %s/no/such/dir:"
                         " No such file or directory\n" % directory)

    def test_odd_values(self) -> None:
        """Values that are not JSON types become strings; a field called 'text' is kept."""
        line = event_as_json({"log_format": "{text} {peer}", "text": "hi", "peer": object(),
                              "log_time": 0.0})
        record = json.loads(line)
        self.assertEqual(record["field_text"], "hi")
        self.assertTrue(record["peer"].startswith("<object"))
        self.assertEqual(record["time"], "1970-01-01T00:00:00.000+00:00")


@pytest.mark.e2e
class OperateEndToEndTests(SynchronousTestCase):
    """C{twistd chat --config chat.toml} with metrics on, scraped over loopback."""

    def scrape(self, port: int) -> dict[str, float]:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode("utf-8")
        return {"%s%s" % (s.name, sorted(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def test_config_and_metrics(self) -> None:
        """Counts before and after known activity match; /health says ok; JSON logs too."""
        directory = temp_dir(self)
        write(directory, "chat.toml",
              'metrics = "tcp:0:interface=127.0.0.1"\nrate = 0\ndb = "chat.db"\n'
              'port = ["tcp:1"]  # replaced by the test\'s --port\n')
        json_log = os.path.join(directory, "chat.log.json")
        server = ServerProcess(
            self, "--config", "chat.toml", cwd=directory,
            twistd_args=["--logger", "twisted_chat.logs.text_and_json_observer"],
            env={"TWISTED_CHAT_JSON_LOG": json_log})
        metrics_port = server._wait_for_ports(20, 1, "metrics")[0]
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % metrics_port,
                                    timeout=10) as r:
            self.assertEqual(r.read(), b"ok\n")
        before = self.scrape(metrics_port)
        self.assertEqual(before["chat_users_online[]"], 0)
        alice, bob = log_in(self, server.port, "alice", "bob")
        wrong = LineClient(server.port)
        self.addCleanup(wrong.close)
        wrong.send("not-the-passcode")
        wrong.read_until("wrong passcode")
        for text in ("one", "two", "three"):
            alice.send(text)
            bob.read_until(text)
        alice.send("/quit")
        alice.read_to_close()
        bob.send("/users")
        bob.read_until("bob")
        after = self.scrape(metrics_port)
        self.assertEqual(after["chat_logins_total[('result', 'ok')]"], 2)
        self.assertEqual(after["chat_logins_total[('result', 'wrong_passcode')]"], 1)
        self.assertEqual(after["chat_messages_total[('kind', 'message')]"], 3)
        self.assertEqual(after["chat_deliveries_total[('kind', 'message')]"], 3)
        self.assertEqual(after["chat_disconnects_total[('reason', 'quit')]"], 1)
        self.assertEqual(after["chat_users_online[]"], 1)
        self.assertEqual(after["chat_connections[('frontend', 'line')]"], 2)  # bob, wrong
        self.assertGreater(after["process_resident_memory_bytes[]"], 0)
        self.assertGreater(after["python_twisted_reactor_tick_time_seconds_count[]"], 0)
        # a graceful stop; twistd then exits by the signal, as systemd expects
        self.assertEqual(server.stop(), -signal.SIGTERM, server.output())
        # the text log as usual, and the JSON lines besides
        self.assertIn("alice logged in from 127.0.0.1:", server.output())
        with open(json_log, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        logins = [r for r in records if r["event"] == "{name} logged in from {peer}"]
        self.assertEqual(sorted(r["name"] for r in logins), ["alice", "bob"])
        refused = [r for r in records if r["event"].startswith("wrong passcode from")]
        self.assertEqual([r["attempt"] for r in refused], [1])
