"""
The password prompt of the browser page in a real headless Chromium, against
the real twistd: a name registered over telnet before a restart asks for its
password, a wrong one is refused, the right one logs in.
"""

from __future__ import annotations

import os

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .helpers import LineClient, ServerProcess, temp_dir
from .test_web_browser import Page, missing

pytestmark = pytest.mark.e2e


class BrowserPasswordTests(SynchronousTestCase):
    def setUp(self) -> None:
        reason = missing()
        if reason is not None:
            if os.environ.get("CI"):
                self.fail("the browser tests must run in CI: " + reason)
            raise SkipTest(reason)

    def test_password_prompt(self) -> None:
        directory = temp_dir(self)
        args = ("--web", "tcp:0:interface=127.0.0.1", "--db", "chat.db")
        server = ServerProcess(self, *args, cwd=directory)
        alice = LineClient(server.port)
        self.addCleanup(alice.close)
        alice.login("alice")
        alice.send("/register correct horse battery")
        alice.read_until("alice is registered")
        server.stop()

        again = ServerProcess(self, *args, cwd=directory)
        page = Page(self, "http://127.0.0.1:%d/" % again.web_port)
        page.until(lambda d: page.find("#passcode").is_displayed(), "the login form")
        self.assertFalse(page.find("#password").is_displayed())
        page.find("#name").send_keys("alice")
        page.find("#passcode").send_keys("x\n")
        page.wait_text("#login-error", "alice is registered: give its password")
        page.until(lambda d: page.find("#password").is_displayed(), "the password field")
        self.assertEqual(page.find("label[for=password]").text, "Password")
        self.assertEqual(page.js("return document.activeElement.id"), "password")
        page.find("#password").send_keys("wrong horse\n")
        page.wait_text("#login-error", "wrong password")
        page.until(lambda d: page.find("#password").is_displayed(), "the password field again")
        page.find("#password").send_keys("correct horse battery\n")
        page.wait_line("Welcome, alice!")
        saved = page.js("return sessionStorage.getItem('twisted-chat-login') || ''")
        self.assertIn("alice", saved)  # remembered for a reload, without the password
        self.assertNotIn("correct horse", saved)
        self.assertNotIn("Traceback", again.output())
