"""
C{/search} through the line protocol (a whole server without sockets), and
the query building that keeps user words out of FTS5 syntax.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.storage import history
from twisted_chat.commands import HELP, SEARCH_LIMIT, parse
from twisted_chat.errors import BadUsage
from twisted_chat.domain.events import Entry, Search
from twisted_chat.storage.history import MemoryHistory, SQLiteHistory, fts_query, search_words

from .helpers import World, lines

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]"


class SearchCommandTests(SynchronousTestCase):
    """Parsing C{/search}."""

    def test_words(self) -> None:
        """The words, with runs of whitespace made single spaces."""
        command = parse("/search   deploy \t tonight ")
        self.assertEqual((command.name, command.arg), ("search", "deploy tonight"))

    def test_needs_words(self) -> None:
        """No words, or only punctuation, is a usage error."""
        for line in ("/search", "/search   ", '/search "*" -- ::'):
            error = self.assertRaises(BadUsage, parse, line)
            self.assertIn("usage: /search <words>", str(error))

    def test_in_help(self) -> None:
        self.assertIn("/search <words>", [usage for usage, _ in HELP])


class QueryTests(SynchronousTestCase):
    """User words become FTS5 strings, never FTS5 syntax."""

    def test_quoted_prefix_strings(self) -> None:
        self.assertEqual(fts_query(["deploy", 'say"hi']), '"deploy" * "say""hi" *')

    def test_words_without_letters_dropped(self) -> None:
        self.assertEqual(search_words('NOT "* foo:bar -x ()'), ["NOT", "foo:bar", "-x"])

    def test_hostile_words_are_plain_text(self) -> None:
        """FTS5 operators and punctuation in words cause no error and match as text."""
        store = SQLiteHistory(":memory:", Clock())
        self.addCleanup(store.close)
        store.append(Entry("lobby", "a", "NOT this AND that OR the-other: col:x", 1.0))
        store.append(Entry("lobby", "a", "unrelated", 2.0))
        for words in ('AND', 'NOT this', 'OR', '"that', 'the-other', 'col:x', 'x*', '(this)',
                      'NEAR(this that)', '^this', '{text}: that', '+that', '"""'):
            found = store.search("lobby", words, 20)
            self.assertTrue(all(e.text.startswith("NOT") for e in found), (words, found))
        self.assertEqual(len(store.search("lobby", "NOT this", 20)), 1)
        self.assertEqual(store.search("lobby", "-unrelated", 20)[0].text, "unrelated")


class SearchEventTests(SynchronousTestCase):
    """How L{Search} renders."""

    def test_lines(self) -> None:
        entries = [Entry("dev", "alice", "deploy at 5", 0.0), Entry("dev", "bob", "ok", 60.0, True)]
        self.assertEqual(Search("dev", "deploy", entries).lines(), [
            '--- 2 matches for "deploy" in #dev ---',
            "[1970-01-01 00:00:00] alice: deploy at 5",
            "[1970-01-01 00:01:00] * bob ok",
            "--- end of search ---",
        ])
        self.assertEqual(Search("dev", "x", entries[:1]).lines()[0],
                         '--- 1 match for "x" in #dev ---')

    def test_none(self) -> None:
        self.assertEqual(Search("dev", "nothing", []).lines(),
                         ['No messages in #dev match "nothing".'])

    def test_json(self) -> None:
        event = Search("dev", "deploy", [Entry("dev", "alice", "deploy", 5.0)])
        self.assertEqual(json.loads(event.json_text), {
            "type": "search", "room": "dev", "words": "deploy",
            "messages": [{"room": "dev", "from": "alice", "text": "deploy",
                          "time": 5.0, "action": False}],
        })


class SearchProtocolMixin:
    """C{/search} as a telnet user sees it, for one history store."""

    def make_history(self):  # -> History
        raise NotImplementedError

    def setUp(self) -> None:
        self.world = World(history=self.make_history())
        self.alice, self.alice_out = self.world.login("alice")
        self.bob, self.bob_out = self.world.login("bob")

    def say(self, protocol, *texts: str) -> None:
        for text in texts:
            protocol.dataReceived(text.encode() + b"\r\n")
            self.world.clock.advance(1)  # the store writes at the end of the turn

    def search(self, words: str) -> list[str]:
        lines(self.alice_out)
        self.alice.dataReceived(b"/search " + words.encode() + b"\r\n")
        return lines(self.alice_out)

    def test_newest_matches_oldest_first(self) -> None:
        """Matches of the current room only, the newest twenty, oldest first."""
        self.say(self.bob, *("deploy number %d" % i for i in range(25)))
        self.say(self.bob, "nothing to see", "/me deploys again")
        self.bob.dataReceived(b"/join dev\r\n")
        self.say(self.bob, "deploy in dev")
        out = self.search("Deploy")
        self.assertEqual(out[0], '--- %d matches for "Deploy" in #lobby ---' % SEARCH_LIMIT)
        self.assertEqual(out[-1], "--- end of search ---")
        self.assertEqual(len(out), SEARCH_LIMIT + 2)
        self.assertRegex(out[1], "^%s bob: deploy number 6$" % STAMP)
        self.assertRegex(out[-2], r"^%s \* bob deploys again$" % STAMP)
        self.assertNotIn("dev", " ".join(out[1:-1]))

    def test_every_word_as_prefix(self) -> None:
        self.say(self.bob, "the build is green", "the build is red", "green tea")
        out = self.search("gre BUILD")
        self.assertEqual(len(out), 3)
        self.assertTrue(out[1].endswith("bob: the build is green"), out)

    def test_no_match(self) -> None:
        self.say(self.bob, "hello")
        self.assertEqual(self.search("goodbye"), ['No messages in #lobby match "goodbye".'])

    def test_private_messages_not_found(self) -> None:
        self.bob.dataReceived(b"/msg alice secret plans\r\n")
        self.world.clock.advance(1)
        self.assertEqual(self.search("secret"), ['No messages in #lobby match "secret".'])

    def test_hostile_input(self) -> None:
        """FTS5 syntax in the words is one more word, never an error."""
        self.say(self.bob, 'he said "AND" -x OR *')
        for words in ('"AND"', "-x", "OR *", 'said" OR "', "col:umn", "NEAR(a b)"):
            out = self.search(words)
            self.assertFalse(any(line.startswith("ERROR") for line in out), (words, out))
        self.assertEqual(len(self.search('"AND" -x')), 3)

    def test_usage_error(self) -> None:
        self.assertEqual(self.search("**"),
                         ["ERROR usage: /search <words> (words of letters or digits)"])


class MemorySearchProtocolTests(SearchProtocolMixin, SynchronousTestCase):
    """C{/search} with L{MemoryHistory}."""

    def make_history(self) -> MemoryHistory:
        return MemoryHistory()


class SQLiteSearchProtocolTests(SearchProtocolMixin, SynchronousTestCase):
    """C{/search} with L{SQLiteHistory}."""

    def make_history(self) -> SQLiteHistory:
        # the World's clock is made later; a Clock of its own is enough to batch
        self.store_clock = Clock()
        store = SQLiteHistory(":memory:", self.store_clock)
        self.addCleanup(store.close)
        return store

    def say(self, protocol, *texts: str) -> None:
        super().say(protocol, *texts)
        self.store_clock.advance(history.FLUSH_DELAY)

    def test_without_fts5(self) -> None:
        """Without FTS5: one clear ERROR, and the rest of history works."""
        self.patch(history, "_fts5_available", lambda: False)
        world = World(history=SQLiteHistory(":memory:", self.store_clock))
        self.addCleanup(world.history.close)
        alice, alice_out = world.login("alice")
        alice.dataReceived(b"hello\r\n/search hello\r\n/history\r\n")
        out = lines(alice_out)
        self.assertEqual(out[0], "ERROR search is not available: this server's SQLite has no FTS5")
        self.assertEqual(out[1], "--- last message in #lobby ---")

    def test_too_slow(self) -> None:
        """A search that would hold the reactor too long is stopped with an ERROR."""
        self.patch(history, "SEARCH_BUDGET", -1.0)
        self.patch(history, "SEARCH_CHECK_STEPS", 1)
        self.say(self.bob, *("word%d and more" % i for i in range(3000)))
        self.store_clock.pump([history.INDEX_DELAY] * 3)  # indexed, a chunk at a time
        out = self.search("word")
        self.assertEqual(out, ["ERROR that search took too long; use longer or more words"])
        self.patch(history, "SEARCH_BUDGET", 10.0)
        self.assertEqual(len(self.search("word2999")), 3)  # the store still works
