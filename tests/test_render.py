"""
Tests for the renderers of each front end: the line protocol's bytes and
the browser's JSON, and that a room event is rendered once per format
however many members hear it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.config import ChatConfig
from twisted_chat.domain import events
from twisted_chat.domain.events import (
    Entry,
    Error,
    Event,
    Help,
    History,
    Message,
    Notice,
    Private,
    TimeZone,
    Users,
)
from twisted_chat.frontends.line import render as line
from twisted_chat.frontends.web import render as web
from twisted_chat.frontends.web.site import ChatWebFactory

from . import test_web as web_tests
from .helpers import World, lines

ENTRY = Entry("dev", "alice", "hi ünïcode", 5.0)
ACTION = Entry("dev", "bob", "waves", 60.5, True)


class LineRenderTests(SynchronousTestCase):
    """L{line.wire} and L{line.lines}: the line protocol's text."""

    def test_room_events(self) -> None:
        self.assertEqual(line.wire(Message(ENTRY, "12:00:00")),
                         "[12:00:00] alice: hi ünïcode\r\n".encode())
        self.assertEqual(line.wire(Message(ACTION, "12:00:01")), b"[12:00:01] * bob waves\r\n")
        notice = Notice("lobby", "alice joined #lobby", 7.0, "00:00:01", "alice", "joined")
        self.assertEqual(line.wire(notice), b"[00:00:01] *** alice joined #lobby ***\r\n")
        self.assertEqual(line.lines(notice), ["[00:00:01] *** alice joined #lobby ***"])

    def test_one_participant_events(self) -> None:
        self.assertEqual(line.wire(Private("a", "b", "psst", 3.0, "s", outgoing=True)),
                         b"[s] [PRIVATE to b] psst\r\n")
        self.assertEqual(line.wire(Error("bad")), b"ERROR bad\r\n")
        self.assertEqual(line.wire(events.Prompt("passcode")), b"Passcode:\r\n")
        self.assertEqual(line.wire(History("dev", [], replay=True)), b"")  # nothing to say
        self.assertEqual(line.lines(History("dev", [ENTRY, ACTION], replay=False)), [
            "--- last 2 messages in #dev ---",
            "[1970-01-01 00:00:05] alice: hi ünïcode",
            "[1970-01-01 00:01:00] * bob waves",
            "--- end of history ---",
        ])
        self.assertEqual(line.wire(Help([("/a x", "does a"), ("/bb", "b")])),
                         b"Commands:\r\n  /a x  does a\r\n  /bb   b\r\n")
        everyone = Users(None, [("a", "dev"), ("b", "")], 3, [["dev", "x"], []])
        self.assertEqual(line.lines(everyone), [
            "Users online (3): a (#dev, #x), b, and 1 more (/users all lists everyone)"])

    def test_front_end_events(self) -> None:
        """The greeting and telnet commands are the line protocol's own events."""
        self.assertEqual(line.wire(line.GREETING), b"Welcome to twisted-chat.\xff\xfd\x00\r\n")
        self.assertEqual(line.lines(line.GREETING), ["Welcome to twisted-chat."])
        self.assertEqual(line.wire(line.Telnet(b"\xff\xfb\x01")), b"\xff\xfb\x01")
        self.assertEqual(line.lines(line.Telnet(b"\xff\xfb\x01")), [])

    def test_subclass_and_unknown(self) -> None:
        """A subclass renders as its base; an event with no line form is a TypeError."""

        @dataclass(frozen=True)
        class Loud(events.Info):
            pass

        self.assertEqual(line.wire(Loud("hey")), b"hey\r\n")
        self.assertRaises(TypeError, line.wire, Event())
        self.assertRaises(TypeError, line.lines, Event())


class JSONRenderTests(SynchronousTestCase):
    """L{web.to_json} and L{web.json_text}: the browser's messages."""

    def test_room_events(self) -> None:
        self.assertEqual(
            web.json_text(Message(ACTION, "12:00:01")),
            '{"type": "message", "room": "dev", "from": "bob", "text": "waves", "time": 60.5,'
            ' "action": true}')
        self.assertEqual(
            web.json_text(Message(ENTRY, "12:00:00")),
            '{"type": "message", "room": "dev", "from": "alice", "text": "hi ünïcode",'
            ' "time": 5.0, "action": false}')  # not escaped: ensure_ascii is off
        self.assertEqual(web.to_json(Notice(None, "x", 7.0, "s")),
                         {"type": "notice", "room": None, "text": "x", "time": 7.0})

    def test_one_participant_events(self) -> None:
        self.assertEqual(web.json_text(TimeZone(19800)),
                         '{"type": "info", "text": "Times are UTC+05:30 (the server\'s time'
                         ' zone).", "utc_offset": 19800}')
        self.assertEqual(web.to_json(Users("dev", [("a", "dev")], 1)),
                         {"type": "users", "room": "dev", "users": [{"name": "a", "room": "dev"}],
                          "total": 1})
        self.assertEqual(web.to_json(events.Shutdown()),
                         {"type": "shutdown", "text": "Server shutting down"})
        self.assertEqual(web.json_text(web.Ack(7)), '{"type": "ack", "id": 7}')

    def test_error_code(self) -> None:
        """An error with a stable code carries it as C{code}; one without has none."""
        self.assertEqual(web.to_json(Error("bad")), {"type": "error", "text": "bad"})

        @dataclass(frozen=True)
        class Coded(Error):
            code: str = ""

        self.assertEqual(web.to_json(Coded("bad", "bad_name")),
                         {"type": "error", "text": "bad", "code": "bad_name"})
        self.assertEqual(web.to_json(Coded("bad")), {"type": "error", "text": "bad"})

    def test_unknown(self) -> None:
        self.assertRaises(TypeError, web.json_text, Event())

    def test_one_participant_events_not_memoised(self) -> None:
        """Only room events keep their text (the others are frozen values)."""
        event = Private("a", "b", "psst", 3.0, "s")
        self.assertEqual(web.json_text(event), web.json_text(event))
        self.assertIsNone(event._json)


class EncodeOnceTests(SynchronousTestCase):
    """A room event is rendered once per format, not once per recipient."""

    def setUp(self) -> None:
        self.world = World(config=ChatConfig(passcode=b"x", db=":memory:", rate=0,
                                             max_per_ip=1000))
        self.calls: list[str] = []
        self.patch(line, "_WIRE", {**line._WIRE, Message: self.counted("line", line._message)})
        self.patch(web, "_JSON", {**web._JSON, Message: self.counted("json", web._message)})

    def counted(self, name: str, render: object) -> object:
        def counting(event: Event) -> object:
            self.calls.append(name)
            return render(event)  # type: ignore[operator]
        return counting

    def test_hundred_members(self) -> None:
        """A message to 60 telnet and 40 browser members: one line render, one JSON render."""
        sender, _ = self.world.login("sender")
        outs = [self.world.login("t%d" % i)[1] for i in range(59)]
        factory = ChatWebFactory(self.world.context)
        browsers = [web_tests.Browser(factory) for _ in range(40)]
        for n, browser in enumerate(browsers):
            browser.login("w%d" % n)
        for browser in browsers:
            browser.transport.take()
        for out in outs:
            out.clear()
        sender.dataReceived(b"hello, everyone\r\n")
        self.assertEqual(sorted(self.calls), ["json", "line"])
        for out in outs:
            self.assertEqual([text[11:] for text in lines(out)], ["sender: hello, everyone"])
        for browser in browsers:
            [sent] = browser.transport.take()
            self.assertEqual((sent["type"], sent["from"], sent["text"]),
                             ("message", "sender", "hello, everyone"))

    def test_same_bytes_for_everyone(self) -> None:
        """Every recipient's front end writes the one memoised object."""
        event = Message(ENTRY, "12:00:00")
        first = line.wire(event)
        self.assertIs(line.wire(event), first)
        self.assertIs(event._line, first)
        text = web.json_text(event)
        self.assertIs(web.json_text(event), text)
        self.assertEqual(json.loads(text)["text"], "hi ünïcode")
