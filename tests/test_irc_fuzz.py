"""
Fuzzing the IRC front end as tests/test_fuzz.py does the line protocol:
random IRC-ish lines, split at random points, from IRC users beside a
telnet user.  No input ends a session but QUIT (and the limits, set out of
reach here); no exception escapes and nothing is logged as an error; every
line sent is UTF-8 ending in CRLF and at most 512 bytes plus tags.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.config import ChatConfig

from .test_fuzz import FUZZ, NASTY, ErrorLog, split
from .test_irc import IRCWorld

VERBS = [b"JOIN", b"PART", b"PRIVMSG", b"NOTICE", b"NAMES", b"LIST", b"TOPIC", b"WHO", b"WHOIS",
         b"MODE", b"KICK", b"AWAY", b"ISON", b"USERHOST", b"MOTD", b"LUSERS", b"PING", b"PONG",
         b"OPER", b"CAP", b"NICK", b"USER", b"PASS", b"TIME", b"VERSION", b"join", b"FOO", b"",
         b"001", b"@", b":"]
WORDS = [b"#a", b"#b", b"#a,#b", b"#lobby", b"alice", b"bob", b"carol", b"nobody", b"*", b"0",
         b":", b":hi there", b":\x01ACTION waves\x01", b"\x01VERSION\x01", b"LS", b"302", b"REQ",
         b":server-time echo-message", b"END", b"LIST", b"+o", b"-n", b"#", b"#" * 40,
         b"x" * 600, b"@time=1", b"@a=b;c", b":nick!u@h", b"inv@lid", b",,,", b""] + NASTY

word = st.sampled_from(WORDS)
line = st.builds(lambda verb, args, end: b" ".join([verb, *args]) + end,
                 st.sampled_from(VERBS), st.lists(word, max_size=4),
                 st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]))
script = st.lists(st.tuples(st.integers(0, 1), st.lists(line, min_size=1, max_size=5),
                            st.lists(st.integers(0, 1 << 16), max_size=4)),
                  min_size=1, max_size=12)


class IRCFuzzTests(SynchronousTestCase):
    """Random IRC input never ends a session (but QUIT) nor breaks the output."""

    @FUZZ
    @given(script)
    def test_random_lines(self, steps: list[tuple[int, list[bytes], list[int]]]) -> None:
        with ErrorLog() as errors:
            world = IRCWorld(config=ChatConfig(passcode=None, db=":memory:", rate=0))
            telnet, tout = world.login("alice")
            clients = [world.irc_login("bob"), world.irc_login("carol", "server-time", "batch",
                                                               "echo-message")]
            for who, lines_, cuts in steps:
                protocol, transport = clients[who]
                data = b"".join(lines_)
                for chunk in split(data, cuts):
                    protocol.dataReceived(chunk)
                telnet.dataReceived(b"hello from telnet\r\n")
                quit_sent = any(part.upper().startswith(b"QUIT") for part in lines_)
                if not quit_sent:
                    self.assertFalse(transport.disconnecting, data)
            for _protocol, transport in clients:
                out = transport.value()
                if out:
                    self.assertTrue(out.endswith(b"\r\n"), out[-200:])
                for sent in out.split(b"\r\n")[:-1]:
                    sent.decode("utf-8")
                    body = sent.partition(b" ")[2] if sent.startswith(b"@") else sent
                    self.assertLessEqual(len(body) + 2, 512, sent)
        self.assertEqual([e for e in errors.events if e["log_level"] >= LogLevel.error], [])
