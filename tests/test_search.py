"""
C{/search} through the line protocol (a whole server without sockets), and
the query building that keeps user words out of FTS5 syntax.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.commands import (
    HELP,
    MAX_HISTORY,
    MAX_SEARCH_WORD,
    MAX_SEARCH_WORDS,
    SEARCH_LIMIT,
    parse,
)
from twisted_chat.domain.events import Entry, Search
from twisted_chat.domain.server import (
    SEARCH_BURST,
    SEARCH_RATE,
    SEARCH_SHARE,
    SEARCH_SHARE_BURST,
    SearchGate,
)
from twisted_chat.errors import BadUsage
from twisted_chat.frontends.line.render import lines as line_lines
from twisted_chat.frontends.web.render import json_text
from twisted_chat.storage import history
from twisted_chat.storage.history import MemoryHistory, SQLiteHistory, fts_query, search_words

from .helpers import World, fired, lines

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
            found = fired(store.search("lobby", words, 20))
            self.assertTrue(all(e.text.startswith("NOT") for e in found), (words, found))
        self.assertEqual(len(fired(store.search("lobby", "NOT this", 20))), 1)
        self.assertEqual(fired(store.search("lobby", "-unrelated", 20))[0].text, "unrelated")


class SearchEventTests(SynchronousTestCase):
    """How L{Search} renders."""

    def test_lines(self) -> None:
        entries = [Entry("dev", "alice", "deploy at 5", 0.0), Entry("dev", "bob", "ok", 60.0, True)]
        self.assertEqual(line_lines(Search("dev", "deploy", entries)), [
            '--- 2 matches for "deploy" in #dev ---',
            "[1970-01-01 00:00:00] alice: deploy at 5",
            "[1970-01-01 00:01:00] * bob ok",
            "--- end of search ---",
        ])
        self.assertEqual(line_lines(Search("dev", "x", entries[:1]))[0],
                         '--- 1 match for "x" in #dev ---')

    def test_none(self) -> None:
        self.assertEqual(line_lines(Search("dev", "nothing", [])),
                         ['No messages in #dev match "nothing".'])

    def test_json(self) -> None:
        event = Search("dev", "deploy", [Entry("dev", "alice", "deploy", 5.0)])
        self.assertEqual(json.loads(json_text(event)), {
            "type": "search", "room": "dev", "words": "deploy",
            "messages": [{"room": "dev", "from": "alice", "text": "deploy",
                          "time": 5.0, "action": False}],
            "complete": True,
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
        self.world.clock.advance(2)  # within the per-user allowance
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


class SearchWordCapTests(SynchronousTestCase):
    """A search's words are capped and de-duplicated (issue 11 item 2)."""

    def test_505_distinct_words_refused(self) -> None:
        """The attack of issue 11: hundreds of words get one ERROR and no search."""
        words = " ".join("w%d" % i for i in range(505))
        error = self.assertRaises(BadUsage, parse, "/search " + words)
        self.assertEqual(str(error), "a search takes at most %d different words (that had 505)"
                         % MAX_SEARCH_WORDS)

    def test_repeated_words_count_once(self) -> None:
        """505 copies of a word, in any case, are one word."""
        command = parse("/search " + " ".join(["deploy", "Deploy"] * 252 + ["x"]))
        self.assertEqual(command.arg, "deploy x")
        words = ["w%d" % i for i in range(MAX_SEARCH_WORDS)]
        self.assertEqual(parse("/search " + " ".join(words * 3)).arg, " ".join(words))

    def test_long_word_refused(self) -> None:
        self.assertEqual(parse("/search " + "a" * MAX_SEARCH_WORD).arg, "a" * MAX_SEARCH_WORD)
        error = self.assertRaises(BadUsage, parse, "/search " + "a" * (MAX_SEARCH_WORD + 1))
        self.assertEqual(str(error), "a search word is at most %d characters long"
                         % MAX_SEARCH_WORD)

    def test_through_the_protocol(self) -> None:
        """Nine different words: one ERROR line, the session goes on."""
        world = World()
        alice, alice_out = world.login("alice")
        alice.dataReceived(b"/search a b c d e f g h i\r\n/search a\r\n")
        out = lines(alice_out)
        self.assertEqual(out[0], "ERROR a search takes at most 8 different words (that had 9)")
        self.assertEqual(out[1], 'No messages in #lobby match "a".')


class FakeTimer:
    """A wall clock that moves C{step} seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.reads = 0

    def __call__(self) -> float:
        self.now += self.step
        self.reads += 1
        return self.now


class MemoryBudgetTests(SynchronousTestCase):
    """The memory store stops a search at L{history.SEARCH_BUDGET}, with what it found."""

    def fill(self, store: MemoryHistory, texts: list[str]) -> None:
        for i, text in enumerate(texts):
            store.append(Entry("lobby", "bob", text, float(i)))

    def test_stops_at_budget(self) -> None:
        """Each entry checked costs 0.01 s of the 0.25 s: the scan stops after about 25."""
        timer = FakeTimer(0.01)
        store = MemoryHistory(timer)
        self.fill(store, ["nothing here %d" % i for i in range(MAX_HISTORY)])
        found = fired(store.search("lobby", "deploy", SEARCH_LIMIT))
        self.assertEqual(list(found), [])
        self.assertFalse(found.complete)
        self.assertEqual(found.scanned, 24)  # read at the start, then once per entry
        self.assertLess(found.scanned, MAX_HISTORY)

    def test_partial_result_is_newest_matches(self) -> None:
        """Entries are checked newest first; what was found before the deadline is kept."""
        store = MemoryHistory(FakeTimer(0.01))
        self.fill(store, ["deploy %d" % i if i % 2 else "other" for i in range(MAX_HISTORY)])
        found = fired(store.search("lobby", "deploy", 1000))
        self.assertFalse(found.complete)
        self.assertEqual([e.text for e in found], ["deploy %d" % i for i in range(177, 200, 2)])

    def test_complete_within_budget(self) -> None:
        """A search that ends in time says so, and stops once it has the newest matches."""
        store = MemoryHistory(FakeTimer(0.0))
        self.fill(store, ["deploy %d" % i for i in range(MAX_HISTORY)])
        found = fired(store.search("lobby", "deploy", SEARCH_LIMIT))
        self.assertTrue(found.complete)
        self.assertEqual(found.scanned, SEARCH_LIMIT)
        self.assertEqual(found[0].text, "deploy 180")

    def test_user_told_result_is_partial(self) -> None:
        """The telnet user sees that older messages were not searched."""
        world = World(history=MemoryHistory(FakeTimer(0.01)))
        alice, alice_out = world.login("alice")
        self.fill(world.history, ["deploy %d" % i if i % 2 else "other" for i in range(50)])
        self.fill(world.history, ["other"] * 150)
        alice.dataReceived(b"/search deploy\r\n")
        self.assertEqual(lines(alice_out), [
            'No messages in #lobby match "deploy" among the newest (the search ran out of time).'
        ])
        event = Search("lobby", "deploy", [Entry("lobby", "b", "deploy", 0.0)], complete=False)
        self.assertEqual(line_lines(event)[0], '--- 1 match for "deploy" in #lobby among the newest'
                         ' (the search ran out of time) ---')
        self.assertEqual(line_lines(event)[-1],
                         "--- end of search: older messages were not searched ---")
        self.assertFalse(json.loads(json_text(event))["complete"])


class SlowHistory(MemoryHistory):
    """A store whose every search takes C{cost} seconds of the clock."""

    def __init__(self, clock: Clock, cost: float) -> None:
        super().__init__(clock.seconds)
        self.clock = clock
        self.cost = cost
        self.searches = 0

    def search(self, room: str, words: str, limit: int):  # -> Matches
        self.searches += 1
        self.clock.advance(self.cost)
        return super().search(room, words, limit)


class SearchAllowanceTests(SynchronousTestCase):
    """Searches have their own allowance per user and a budget for the whole server."""

    def setUp(self) -> None:
        self.world = World()
        self.store = SlowHistory(self.world.clock, 0.0)
        self.world.server.history = self.store
        # the server measures searches on the test's clock
        self.world.server.searches = SearchGate(self.world.clock, self.world.clock.seconds)

    def test_per_user_allowance(self) -> None:
        """Three searches in a row, then one every two seconds; others are not affected."""
        alice, alice_out = self.world.login("alice")
        bob, bob_out = self.world.login("bob")
        lines(alice_out)
        alice.dataReceived(b"/search a\r\n" * (SEARCH_BURST + 1))
        out = lines(alice_out)
        self.assertEqual(out[:SEARCH_BURST], ['No messages in #lobby match "a".'] * SEARCH_BURST)
        self.assertEqual(out[SEARCH_BURST:],
                         ["ERROR too many searches: at most 3 in a row, then one every 2 s"])
        self.assertEqual(self.store.searches, SEARCH_BURST)
        bob.dataReceived(b"/search a\r\n")
        self.assertEqual(lines(bob_out), ['No messages in #lobby match "a".'])
        self.world.clock.advance(1 / SEARCH_RATE)
        alice.dataReceived(b"/search a\r\n/search a\r\n")
        self.assertEqual(lines(alice_out)[1][:6], "ERROR ")
        self.assertEqual(self.store.searches, SEARCH_BURST + 2)

    def test_server_wide_budget(self) -> None:
        """
        Searches that take their whole 0.25 s each: three run, the fourth
        user is refused, and after a few seconds searching works again.
        """
        self.store.cost = history.SEARCH_BUDGET
        users = [self.world.login(name) for name in ("u1", "u2", "u3", "u4", "u5")]
        for _, out in users:
            lines(out)
        answers = []
        for protocol, out in users[:4]:
            protocol.dataReceived(b"/search a\r\n")
            answers.append(lines(out))
        self.assertEqual(answers[:3], [['No messages in #lobby match "a".']] * 3)
        self.assertEqual(answers[3],
                         ["ERROR the server is busy searching; try again in a few seconds"])
        self.assertEqual(self.store.searches, 3)
        self.world.clock.advance(3)
        protocol, out = users[4]
        protocol.dataReceived(b"/search a\r\n")
        self.assertEqual(lines(out), ['No messages in #lobby match "a".'])

    def test_share_bounded_under_attack(self) -> None:
        """
        Five users searching as fast as they may for a minute: searching takes
        at most SEARCH_SHARE of the time, plus the burst.
        """
        self.store.cost = history.SEARCH_BUDGET
        users = [self.world.login("u%d" % i)[0] for i in range(5)]
        start = self.world.clock.seconds()
        for _ in range(300):
            for protocol in users:
                protocol.dataReceived(b"/search a\r\n")
            self.world.clock.advance(0.2)
        spent = self.store.searches * history.SEARCH_BUDGET
        elapsed = self.world.clock.seconds() - start
        self.assertLessEqual(spent, elapsed * SEARCH_SHARE + SEARCH_SHARE_BURST + 0.25)
        self.assertGreater(self.store.searches, 0)

    def test_allowance_forgotten_at_logout(self) -> None:
        alice, _ = self.world.login("alice")
        alice.dataReceived(b"/search a\r\n")
        self.assertEqual(len(self.world.server.searches._buckets), 1)
        alice.dataReceived(b"/quit\r\n")
        self.assertEqual(self.world.server.searches._buckets, {})
