"""
The browser client in a real browser: headless Chromium driven by Selenium
against the real C{twistd -n chat --web}, chatting with telnet users.

Skipped when Chromium, chromedriver or Selenium is missing, except under CI
(the C{CI} environment variable), where that is a failure.  Set
C{TWISTED_CHAT_SCREENSHOT=path.png} to save a screenshot of the chat.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .helpers import LineClient, ServerProcess, temp_dir

pytestmark = pytest.mark.e2e
"""Every test here starts the real twistd and a headless Chromium."""

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
)
WAIT = 10.0  # seconds, for every explicit wait

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover
    webdriver = None


def missing() -> str | None:
    """Why the browser tests cannot run here, or C{None}."""
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return "%s is missing (apt-get install chromium chromium-driver)" % path
    return None


# Every message line on the page as (class, text).
LINES_JS = """
return Array.from(document.querySelectorAll('#messages li'))
            .map(li => [li.className, li.textContent]);
"""


class Page:
    """The chat page in one headless Chromium, with bounded explicit waits."""

    def __init__(self, case: SynchronousTestCase, url: str) -> None:
        profile = temp_dir(case)
        options = Options()
        options.binary_location = CHROMIUM
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_argument("--user-data-dir=" + profile)
        service = Service(CHROMEDRIVER, log_output=os.path.join(profile, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=options)
        case.addCleanup(self.driver.quit)
        self.driver.set_window_size(1000, 640)
        self.url = url
        self.driver.get(url)

    def until(self, condition: Any, what: str) -> Any:
        """Wait (at most L{WAIT} seconds) until C{condition(driver)} is truthy."""
        try:
            return WebDriverWait(self.driver, WAIT).until(condition)
        except TimeoutException:
            raise AssertionError(
                "the page never showed %s; it has %r" % (what, self.lines())
            ) from None

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def lines(self) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in self.driver.execute_script(LINES_JS)]

    def wait_line(self, text: str, cls: str | None = None) -> None:
        """Wait for a message line containing C{text} (with class C{cls})."""
        self.until(
            lambda _: any(text in line and (cls is None or cls in classes.split())
                          for classes, line in self.lines()),
            "a line with %r" % text,
        )

    def wait_text(self, css: str, text: str) -> None:
        self.until(lambda d: text in d.find_element(By.CSS_SELECTOR, css).text,
                   "%r in %s" % (text, css))

    def log_in(self, name: str, passcode: str = "x") -> None:
        """Log in with the keyboard only: type, then Enter."""
        self.until(lambda d: d.find_element(By.ID, "passcode").is_displayed(), "the login form")
        passcode_input = self.find("#passcode")
        name_input = self.find("#name")
        name_input.clear()
        name_input.send_keys(name)
        passcode_input.clear()
        passcode_input.send_keys(passcode, Keys.ENTER)
        self.wait_line("Welcome, %s!" % name)

    def type(self, text: str) -> None:
        """Type C{text} in the message box and press Enter."""
        box = self.find("#message")
        box.send_keys(text, Keys.ENTER)


class BrowserTests(SynchronousTestCase):
    """A browser user and telnet users in the same rooms."""

    def setUp(self) -> None:
        reason = missing()
        if reason is not None:
            if os.environ.get("CI"):
                self.fail("the browser tests must run in CI: " + reason)
            raise SkipTest(reason)
        self.server = ServerProcess(self, "--web", "tcp:0:interface=127.0.0.1", "--db", "chat.db")
        self.url = "http://127.0.0.1:%d/" % self.server.web_port

    def telnet(self, name: str) -> LineClient:
        client = LineClient(self.server.port)
        self.addCleanup(client.close)
        client.login(name)
        return client

    def test_chat_with_telnet(self) -> None:
        """Log in, chat both ways, message privately, switch rooms, see history, reload."""
        bob = self.telnet("bob")
        bob.send("morning!")
        carol = self.telnet("carol")
        page = Page(self, self.url)
        self.assertEqual(self.accessible_names(page, "input"), {"Passcode", "Name"})
        page.log_in("alice")
        self.assertEqual(self.accessible_names(page, "input"), {"Message"})
        self.assertEqual(self.accessible_names(page, "section", role=True),
                         {("region", "Messages"), ("region", "Rooms"), ("region", "Users")})
        page.wait_line("morning!", "history")  # the lobby's history, marked as such
        bob.read_until("alice joined #lobby")
        page.wait_text("#users", "bob")

        page.type("hello from the browser")
        bob.read_until("alice: hello from the browser")
        carol.send("hi alice <img src=x onerror=alert(1)>")
        page.wait_line("carol: hi alice <img src=x onerror=alert(1)>")
        self.assertEqual(page.driver.execute_script(
            "return document.querySelectorAll('#messages img').length"), 0)

        # Clicking a user starts a private message.
        page.until(lambda d: d.find_elements(By.XPATH, "//ul[@id='users']//button[.='bob']"),
                   "bob in the user list")
        page.driver.find_element(By.XPATH, "//ul[@id='users']//button[.='bob']").click()
        self.assertEqual(page.find("#message").get_attribute("value"), "/msg bob ")
        page.type("psst")
        bob.read_until("[PRIVATE] alice: psst")
        bob.send("/msg alice got it")
        page.wait_line("got it", "private")
        page.type("/me waves")
        bob.read_until("* alice waves")

        # Switch rooms by command, then back by clicking the room list.
        page.type("/join #dev")
        page.wait_text("#room-title", "#dev")
        bob.read_until("alice left #lobby")
        page.wait_text("#rooms", "#lobby")
        if os.environ.get("TWISTED_CHAT_SCREENSHOT"):
            self.screenshot(page, bob, carol)
        page.until(lambda d: d.find_elements(By.XPATH, "//ul[@id='rooms']//button[@data-room='lobby']"),
                   "#lobby in the room list")
        page.driver.find_element(By.XPATH, "//ul[@id='rooms']//button[@data-room='lobby']").click()
        page.wait_text("#room-title", "#lobby")
        page.wait_line("hello from the browser", "history")
        bob.read_until("alice joined #lobby")

        # Reload: the page forgets the session; logging in again shows history.
        page.driver.refresh()
        bob.read_until("alice disconnected")
        self.assertEqual(page.find("#name").get_attribute("value"), "alice")  # remembered
        page.log_in("alice")
        page.wait_line("hello from the browser", "history")
        page.wait_line("carol: hi alice <img", "history")
        bob.read_until("alice joined #lobby")

    def accessible_names(self, page: Page, css: str, role: bool = False) -> set[Any]:
        """
        The accessible names (and roles) Chromium computes for the visible
        elements matching C{css} (SPEC section 5).
        """
        return {(el.aria_role, el.accessible_name) if role else el.accessible_name
                for el in page.driver.find_elements(By.CSS_SELECTOR, css) if el.is_displayed()}

    def screenshot(self, page: Page, bob: LineClient, carol: LineClient) -> None:
        """Fill the page a little and save it where TWISTED_CHAT_SCREENSHOT says."""
        bob.send("/join #dev")
        page.wait_text("#users", "bob")
        bob.send("the web client works from here too")
        page.wait_line("the web client works")
        page.type("nice, and history shows up when you join")
        bob.read_until("nice, and history")
        page.find("#message").send_keys("/msg bob ")
        page.driver.execute_script("document.activeElement.blur()")
        page.driver.save_screenshot(os.environ["TWISTED_CHAT_SCREENSHOT"])
        page.find("#message").clear()
        bob.send("/join #lobby")

    def test_reconnects(self) -> None:
        """When the server restarts, the page says so, reconnects and logs in again."""
        page = Page(self, self.url)
        page.log_in("alice")
        port = self.server.web_port
        self.server.stop()
        page.wait_line("Server shutting down")
        page.wait_text("#status", "reconnecting")
        self.server = ServerProcess(
            self, "--web", "tcp:%d:interface=127.0.0.1" % port, "--db", "chat.db",
            cwd=self.server.cwd,
        )
        page.until(lambda _: len([line for _, line in page.lines()
                                  if "Welcome, alice!" in line]) == 2, "a second welcome")
        page.wait_line("Connection lost")
        bob = self.telnet("bob")
        bob.send("welcome back")
        page.wait_line("bob: welcome back")

    def test_phone_width(self) -> None:
        """On a phone-width screen nothing scrolls sideways and the message box is on screen."""
        page = Page(self, self.url)
        page.driver.set_window_size(360, 740)
        page.log_in("alice")
        width = page.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        self.assertLessEqual(width[0], width[1])
        box = page.find("#message")
        self.assertTrue(box.is_displayed())
        bottom = page.driver.execute_script(
            "return arguments[0].getBoundingClientRect().bottom <= window.innerHeight", box)
        self.assertTrue(bottom)
        self.assertTrue(page.find("#rooms").is_displayed())
