"""
The real C{telnet} (inetutils or netkit) under C{tmux}, against the real
C{twistd -n chat}: what a person at a terminal sees and sends.

Skipped when C{telnet} or C{tmux} is missing, except under CI (the C{CI}
environment variable), where that is a failure.  Every wait polls the tmux
screen with a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .helpers import LineClient, ServerProcess, temp_dir

WAIT = 10.0  # seconds, for every wait
PASSCODE = "hunter2-secret"


def missing() -> str | None:
    """Why these tests cannot run here, or C{None}."""
    for program in ("telnet", "tmux"):
        if shutil.which(program) is None:
            return "%s is missing (apt-get install telnet tmux)" % program
    return None


pytestmark = pytest.mark.e2e


class Terminal:
    """One C{telnet} in a detached tmux session on a private tmux server."""

    def __init__(self, case: SynchronousTestCase, port: int) -> None:
        self.socket = os.path.join(temp_dir(case), "tmux")
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm")
        env.pop("TMUX", None)
        self.env = env
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "chat",
                  "telnet 127.0.0.1 %d" % port)
        case.addCleanup(self.tmux, "kill-server", check=False)

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-u", "-S", self.socket, *args], env=self.env,
                                capture_output=True, timeout=WAIT, check=check)
        return result.stdout.decode("utf-8", "replace")

    def screen(self) -> str:
        """What the terminal shows now (with its history)."""
        return self.tmux("capture-pane", "-p", "-S", "-200", "-t", "chat")

    def type(self, text: str) -> None:
        """Type C{text} literally, then Enter."""
        self.tmux("send-keys", "-t", "chat", "-l", text)
        self.tmux("send-keys", "-t", "chat", "Enter")

    def key(self, name: str) -> None:
        """Press one key (C{C-c}, C{C-]}, ...)."""
        self.tmux("send-keys", "-t", "chat", name)

    def wait_for(self, text: str, after: int = 0) -> str:
        """Wait until C{text} shows (at or past offset C{after}); return the screen."""
        deadline = time.monotonic() + WAIT
        while True:
            screen = self.screen()
            if text in screen[after:]:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError("the terminal never showed %r; it shows:\n%s"
                                     % (text, screen))
            time.sleep(0.05)

    def log_in(self, name: str) -> str:
        self.wait_for("Passcode:")
        self.type(PASSCODE)
        self.wait_for("Username:")
        self.type(name)
        return self.wait_for("Welcome, %s!" % name)


class RealTelnetTests(SynchronousTestCase):
    """A person on telnet, and another on a plain socket."""

    def setUp(self) -> None:
        why = missing()
        if why is not None:
            if os.environ.get("CI"):
                self.fail(why)
            raise SkipTest(why)
        self.server = ServerProcess(self, "--db", ":memory:", passcode=PASSCODE)
        self.term = Terminal(self, self.server.port)
        self.screen = self.term.log_in("tina")
        (self.bob,) = self.log_in("bob")
        self.term.wait_for("*** bob joined #lobby ***")

    def log_in(self, name: str) -> list[LineClient]:
        client = LineClient(self.server.port)
        self.addCleanup(client.close)
        client.login(name, PASSCODE)
        return [client]

    def hears(self, text: str) -> None:
        """
        Bob says C{text} until the terminal shows it: telnet rightly drops
        what arrives between an interrupt key and the server's answer to its
        DO TIMING-MARK, so one line said at once may be lost; none, ever, is
        the bug.
        """
        deadline = time.monotonic() + WAIT
        for attempt in range(int(WAIT / 0.5) + 1):
            self.bob.send("%s (%d)" % (text, attempt))
            poll_until = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < poll_until:
                if "bob: %s (" % text in self.term.screen():
                    return
                time.sleep(0.05)
        raise AssertionError("the terminal never showed %r; it shows:\n%s"
                             % (text, self.term.screen()))

    def test_passcode_not_shown(self) -> None:
        """The passcode is not echoed; the name typed after it is."""
        self.assertNotIn(PASSCODE, self.screen)
        self.assertIn("\ntina\n", self.screen)

    def test_still_hears_after_interrupt_keys(self) -> None:
        """After Ctrl-C, Ctrl-\\ and Ctrl-Z the telnet user still sees the room."""
        for key in ("C-c", "C-\\", "C-z"):
            self.term.key(key)
            self.hears("after %s" % key)
        self.term.type("and I can still talk")
        self.bob.read_until("tina: and I can still talk")

    def test_utf8_arrives_intact(self) -> None:
        """ă Ś 本 typed on telnet reach a socket user as typed."""
        self.term.type("ă Ś 本 ok")
        self.assertTrue(self.bob.read_until("tina: ")[-1].endswith("tina: ă Ś 本 ok"))
        self.bob.send("żółć 本")
        self.term.wait_for("bob: żółć 本")

    def test_character_mode(self) -> None:
        """After C{mode character} lines still go out whole and show as typed."""
        self.term.key("C-]")
        self.term.wait_for("telnet>")
        self.term.type("mode character")
        time.sleep(0.3)  # telnet negotiates with the server, then returns to the session
        mark = len(self.term.screen())
        self.term.type("typed after mode character")
        self.bob.read_until("tina: typed after mode character")
        self.term.wait_for("typed after mode character", after=mark - 200)
        self.bob.send("heard in character mode")
        self.term.wait_for("bob: heard in character mode")
        self.term.type("/users")
        self.term.wait_for("Users in #lobby (2): bob, tina")

    def test_second_telnet_logs_in_after_ctrl_c_at_prompt(self) -> None:
        """Ctrl-C at the passcode prompt is not a wrong passcode; the login goes on."""
        other = Terminal(self, self.server.port)
        other.wait_for("Passcode:")
        other.key("C-c")
        time.sleep(0.2)
        other.type(PASSCODE)
        other.wait_for("Username:")
        screen = other.screen()
        self.assertNotIn("ERROR", screen)
        self.assertNotIn(PASSCODE, screen)
