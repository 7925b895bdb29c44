"""
The browser client in a real browser: headless Chromium driven by Selenium
against the real C{twistd -n chat --web}, chatting with telnet users.

Skipped when Chromium, chromedriver or Selenium is missing, except under CI
(the C{CI} environment variable), where that is a failure.  Set
C{TWISTED_CHAT_SCREENSHOT=path.png} to save a screenshot of the chat, and
C{TWISTED_CHAT_SCREENSHOT_PHONE=path.png} one at 390 x 844 with a dozen rooms.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .helpers import LineClient, ServerProcess, temp_dir
from .test_accounts_e2e import chat_admin

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
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
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

    def viewport(self, width: int | None = None, height: int | None = None) -> None:
        """Make the viewport C{width} x C{height} CSS pixels (a phone), or back to the window."""
        if width is None:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            self.until(lambda d: d.execute_script("return window.innerWidth") > 600,
                       "the window's own viewport")
            return
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True,
        })
        self.until(lambda d: d.execute_script("return window.innerWidth") == width,
                   "a %d px wide viewport" % width)

    def wheel(self, css: str, delta_y: int) -> None:
        """Turn the mouse wheel over C{css}, as a user scrolls."""
        ActionChains(self.driver).scroll_from_origin(
            ScrollOrigin.from_element(self.find(css)), 0, delta_y).perform()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def at_bottom(self) -> bool:
        """Whether the message list is scrolled to its end."""
        return self.js("const r = document.getElementById('messages-region');"
                       "return r.scrollHeight - r.scrollTop - r.clientHeight < 2;")


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

    def test_moderation_on_the_page(self) -> None:
        """A topic shows in the room's title; kicks, whois and bans are readable lines."""
        bob = self.telnet("bob")
        bob.send("/join den")
        page = Page(self, self.url)
        page.log_in("alice")
        page.type("/join den")
        page.wait_text("#room-title", "#den")
        bob.send("/topic Release on Friday")
        page.wait_line("bob set the topic of #den: Release on Friday")
        page.wait_text("#room-title", "#den \u2014 Release on Friday")
        page.type("/whois bob")
        page.wait_line("bob is a guest, online since")
        page.wait_line("rooms: #den")
        # idle time in the units telnet uses (idle 5s, 2m 3s), not "idle 5 s"
        whois = [text for _, text in page.lines() if "bob is a guest" in text][-1]
        self.assertRegex(whois, r", idle \d+s$")
        page.type("/bans")
        page.wait_line("No bans in #den.")
        page.type("/kick bob")
        page.wait_line("failed: you are not an op in #den")
        page.wait_text("#users", "bob")  # moderation notices leave the user list alone
        bob.send("/register bob-password")
        bob.read_until("bob is registered")
        bob.send("/claim", "/ban troll 7d spam", "/mute carol 90m")
        page.wait_line("bob muted carol in #den")
        page.type("/bans")
        # what is left, in telnet's units: 6d 23h, 1h 29m (not 10079 min)
        page.until(lambda _: any(re.search(r"^  troll \(by bob, (1w|6d 23h) left\): spam$", text)
                                 for _, text in page.lines()), "the ban's time left")
        page.until(lambda _: any(re.search(r"^  carol \(by bob, (1h 30m|1h 29m) left\)$", text)
                                 for _, text in page.lines()), "the mute's time left")

    def test_killed_page_stays_out(self) -> None:
        """
        A page /kill'ed by an operator shows why and does not log straight
        back in (its reconnection would undo the kill).
        """
        directory = temp_dir(self)
        server = ServerProcess(self, "--web", "tcp:0:interface=127.0.0.1", "--db", "chat.db",
                               cwd=directory)
        root = LineClient(server.port)
        self.addCleanup(root.close)
        root.login("root")
        root.send("/register root-password")
        root.read_until("root is registered")
        root.send("/quit")
        root.read_to_close()
        done = chat_admin("--db", os.path.join(directory, "chat.db"), "op", "root")
        self.assertEqual(done.returncode, 0, done.stderr)
        root = LineClient(server.port)
        self.addCleanup(root.close)
        root.send("x", "root", "root-password")
        root.read_until("Welcome, root!")
        page = Page(self, "http://127.0.0.1:%d/" % server.web_port)
        page.log_in("mallory")
        root.send("/kill mallory enough")
        root.read_until("disconnected mallory")
        page.until(lambda d: d.find_element(By.ID, "login").is_displayed(), "the login form")
        page.wait_text("#login-error", "you were disconnected by root (enough)")
        # a reconnection would log in within a few seconds (backoff 1-2 s)
        time.sleep(4)  # the page's own reconnection timer: nothing to poll for
        root.send("/whois mallory")
        self.assertIn("ERROR nobody called mallory is online",
                      root.read_until(lambda line: "mallory" in line and "online" in line))

    def test_chat_with_telnet(self) -> None:
        """Log in, chat both ways, message privately, switch rooms, see history, reload."""
        bob = self.telnet("bob")
        bob.send("morning!")
        carol = self.telnet("carol")
        page = Page(self, self.url)
        self.assertEqual(self.accessible_names(page, "input"),
                         {"Passcode", "Name", "Remember for this tab"})
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
        lobby_button = "//ul[@id='rooms']//button[@data-room='lobby']"
        page.until(lambda d: d.find_elements(By.XPATH, lobby_button), "#lobby in the room list")
        page.driver.find_element(By.XPATH, lobby_button).click()
        page.wait_text("#room-title", "#lobby")
        page.wait_line("hello from the browser", "history")
        bob.read_until("alice joined #lobby")

        # Reload: the tab remembers the login and logs in again by itself.
        page.driver.refresh()
        bob.read_until("alice disconnected")
        page.wait_line("Welcome, alice!")
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
        page.viewport(360, 740)  # a window cannot be made that narrow
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

    def last_line(self, page: Page, css: str) -> tuple[str, str]:
        """The class and text of the last message line matching C{css}."""
        return tuple(page.js(
            "const all = document.querySelectorAll(arguments[0]);"
            "const li = all[all.length - 1]; return li ? [li.className, li.textContent] : null;",
            css) or ("", ""))

    def test_stays_pinned_through_resizes(self) -> None:
        """
        Shrinking the window to a phone and back keeps the list following new
        messages; scrolled up, a new message shows the "new messages" button.
        """
        bob = self.telnet("bob")
        page = Page(self, self.url)
        page.log_in("alice")
        for _ in range(3):
            page.type("/help")
        page.wait_text("#users", "bob")
        page.until(lambda _: page.at_bottom(), "the list at its end")

        page.viewport(390, 844)  # the list gets shorter and its lines wrap
        bob.send("after the shrink")
        page.wait_line("bob: after the shrink")
        page.until(lambda _: page.at_bottom(), "the list still following on a phone")
        page.viewport()
        bob.send("after growing back")
        page.wait_line("bob: after growing back")
        page.until(lambda _: page.at_bottom(), "the list still following after growing back")
        self.assertFalse(page.find("#jump").is_displayed())

        # A scroll the user did not make (the layout's) is undone.
        page.js("document.getElementById('messages-region').scrollTop = 0;")
        page.until(lambda _: page.at_bottom(), "the list pinned again")

        # Scrolled up on purpose (the mouse wheel): new messages wait behind a button.
        page.viewport(390, 844)
        page.wheel("#messages-region", -20000)  # past the three /help lists (35 lines each)
        page.until(lambda _: page.js(
            "return document.getElementById('messages-region').scrollTop") == 0, "scrolled up")
        bob.send("while you read")
        page.wait_line("bob: while you read")
        page.until(lambda _: page.find("#jump").is_displayed(), "the new messages button")
        self.assertFalse(page.at_bottom())
        self.assertIn("1 new message", page.find("#jump").text)
        page.find("#jump").click()
        page.until(lambda _: page.at_bottom(), "the list at its end after the button")
        self.assertFalse(page.find("#jump").is_displayed())
        bob.send("and following again")
        page.wait_line("bob: and following again")
        page.until(lambda _: page.at_bottom(), "the list following after the button")

    def test_refused_lines_never_look_sent(self) -> None:
        """A line the server takes is marked sent; one over --max-line is marked not sent."""
        self.server.kill()
        self.server = ServerProcess(self, "--web", "tcp:0:interface=127.0.0.1", "--max-line", "100")
        bob = self.telnet("bob")
        page = Page(self, "http://127.0.0.1:%d/" % self.server.web_port)
        page.log_in("alice")
        page.type("a short line")
        bob.read_until("alice: a short line")
        page.until(lambda _: "sent" in self.last_line(page, ".mine")[0].split(), "an ack")
        self.assertEqual(self.last_line(page, ".mine")[1][11:], "alice: a short line")

        page.type("y" * 150)  # the page knows --max-line from the welcome: never sent
        page.until(lambda _: "failed" in self.last_line(page, ".mine")[0].split(),
                   "the long line marked failed")
        classes, text = self.last_line(page, ".mine")
        self.assertNotIn("sent", classes.split())
        self.assertIn("not sent: line too long (max 100 bytes)", text)

        # Far past the limit (the server would close the socket): refused the same way.
        page.js("document.getElementById('message').value = arguments[0];", "z" * 600)
        page.find("#message").send_keys(Keys.ENTER)
        page.until(lambda _: "failed" in self.last_line(page, ".mine")[0].split()
                   and "zzz" in self.last_line(page, ".mine")[1], "the huge line marked failed")
        # A line refused by the page stays in the field, to be shortened.
        self.assertEqual(page.find("#message").get_attribute("value"), "z" * 600)
        page.find("#message").clear()
        page.type("/dance")
        page.until(lambda _: "failed" in self.last_line(page, ".echo")[0].split(),
                   "the bad command marked failed")
        self.assertIn("unknown command /dance", self.last_line(page, ".echo")[1])
        page.type("and another")
        bob.read_until("alice: and another")
        page.until(lambda _: "sent" in self.last_line(page, ".mine")[0].split(), "a second ack")
        self.assertFalse(any("yyy" in line or "zzz" in line for line in bob.seen))
        self.assertEqual(page.js("return document.querySelectorAll('#messages .pending').length"),
                         0)

    def test_reconnects_into_the_same_room(self) -> None:
        """After a restart the page goes back to its room and keeps its private messages."""
        page = Page(self, self.url)
        page.log_in("alice")
        bob = self.telnet("bob")
        bob.send("/msg alice keep this")
        page.wait_line("keep this", "private")
        page.type("/join #dev")
        page.wait_text("#room-title", "#dev")
        port = self.server.web_port
        self.server.stop()
        page.wait_text("#status", "reconnecting")
        self.server = ServerProcess(
            self, "--web", "tcp:%d:interface=127.0.0.1" % port, "--db", "chat.db",
            cwd=self.server.cwd,
        )
        page.wait_line("going back to #dev")
        page.wait_text("#room-title", "#dev")
        page.wait_line("You are now in #dev.")
        page.wait_line("keep this", "private")
        carol = self.telnet("carol")
        carol.send("/join #dev")
        carol.read_until("Users in #dev (2): alice, carol")

    def test_reload_keeps_the_login(self) -> None:
        """A reload logs in again without asking, in the same room, with the private messages."""
        page = Page(self, self.url)
        page.log_in("alice")
        bob = self.telnet("bob")
        bob.send("/msg alice still here?")
        page.wait_line("still here?", "private")
        page.type("/join #dev")
        page.wait_text("#room-title", "#dev")
        page.driver.refresh()
        page.wait_line("Welcome, alice!")
        page.wait_text("#room-title", "#dev")
        page.wait_line("still here?", "private")
        self.assertFalse(page.find("#login").is_displayed())

        # Unticked, the tab forgets: a reload asks again.
        page.type("/quit")
        page.until(lambda d: d.find_element(By.ID, "login").is_displayed(), "the login form")
        page.find("#remember").click()
        self.assertFalse(page.find("#remember").is_selected())
        page.log_in("alice")
        page.driver.refresh()
        page.until(lambda d: d.find_element(By.ID, "passcode").is_displayed(), "the login form")
        self.assertEqual(page.find("#passcode").get_attribute("value"), "")
        self.assertFalse(page.find("#remember").is_selected())

    def test_header_after_login_error_and_quit(self) -> None:
        """The header and the login form say what is true, neutrally after /quit."""
        page = Page(self, self.url)
        page.until(lambda d: d.find_element(By.ID, "passcode").is_displayed(), "the login form")
        self.assertEqual(page.js("return document.activeElement.id"), "passcode")
        page.find("#name").send_keys("alice")
        page.find("#passcode").send_keys("wrong", Keys.ENTER)
        page.wait_text("#login-error", "wrong passcode")
        self.assertNotIn("Connecting", page.find("#status").text)
        self.assertEqual(page.js("return document.activeElement.id"), "passcode")
        self.assertEqual(page.find("#passcode").get_attribute("value"), "")
        page.find("#passcode").send_keys("x", Keys.ENTER)
        page.wait_line("Welcome, alice!")
        page.wait_text("#room-title", "#lobby")
        page.type("/quit")
        page.until(lambda d: d.find_element(By.ID, "login").is_displayed(), "the login form")
        self.assertEqual(self.last_line(page, ".echo"), ("echo sent", "> /quit"))
        self.assertEqual(self.last_line(page, ".info")[1], "Goodbye!")
        self.assertEqual(page.find("#room-title").text, "")
        self.assertEqual(page.driver.title, "twisted-chat")
        self.assertEqual(page.find("#status").text, "Logged out")
        error_colour = page.js(
            "return getComputedStyle(document.getElementById('status'))"
            ".getPropertyValue('--error').trim()")
        note = page.find("#login-error")
        self.assertIn("You left the chat", note.text)
        self.assertNotEqual(note.value_of_css_property("color"),
                            page.js("const p = document.createElement('p');"
                                    "p.style.color = arguments[0]; document.body.append(p);"
                                    "const c = getComputedStyle(p).color; p.remove(); return c;",
                                    error_colour))

    def test_phone_with_a_dozen_rooms(self) -> None:
        """At 390 x 844 a dozen rooms stay in a short strip; the lists fold away."""
        others = [self.telnet("user%d" % i) for i in range(12)]
        for i, client in enumerate(others):
            client.send("/join #room-number-%d" % i)
        page = Page(self, self.url)
        page.viewport(390, 844)
        page.log_in("alice")
        page.wait_text("#rooms", "room-number-11")
        side, messages = page.js(
            "return [document.getElementById('side').getBoundingClientRect().height,"
            " document.getElementById('messages-region').getBoundingClientRect().height]")
        self.assertLess(side, 844 * 0.25)
        self.assertGreater(messages, 844 * 0.55)
        if os.environ.get("TWISTED_CHAT_SCREENSHOT_PHONE"):
            page.driver.save_screenshot(os.environ["TWISTED_CHAT_SCREENSHOT_PHONE"])
        toggle = page.find("#side-toggle")
        self.assertEqual(toggle.get_attribute("aria-expanded"), "true")
        toggle.click()
        self.assertEqual(toggle.get_attribute("aria-expanded"), "false")
        self.assertFalse(page.find("#rooms").is_displayed())
        self.assertGreater(page.js(
            "return document.getElementById('messages-region').getBoundingClientRect().height"),
            messages)
