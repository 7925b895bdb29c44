# ruff: noqa: N802 (irc_COMMAND handlers are named after the IRC commands)
"""
The IRC front end (SPEC section 6): IRC client connections on the same
rooms, names and rules as telnet and the browser.

Framing follows the line front end: split on C{\\n}, strip one C{\\r},
bound each line (8191 bytes of tags plus 512), decode per line (in
L{parser.parse_message}).  Registration (C{PASS}, C{NICK}, C{USER}, C{CAP})
ends in L{ChatSession.log_in}; then each command is either a typed session
call (JOIN, PART, PRIVMSG, NOTICE, QUIT) or answered here from the
directory (NAMES, WHO, WHOIS, LIST, ...).  Events come back through
L{IRCProtocol.send} and are rendered by L{render}.  No input ends a
session except QUIT and the limits (flood, sendq, login timeout).
"""

from __future__ import annotations

import binascii
import dataclasses
import fnmatch
import re
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat import __version__
from twisted_chat.commands import Command
from twisted_chat.domain.events import (
    Away,
    Entry,
    Error,
    Event,
    History,
    Info,
    Joined,
    Message,
    Notice,
    Private,
    Shutdown,
    Topic,
    Users,
    Whois,
)
from twisted_chat.domain.moderation import is_operator, parse_target, target_kind
from twisted_chat.domain.server import Member
from twisted_chat.errors import (
    BadUsage,
    ChatError,
    NoSuchTarget,
    NotInRoom,
    NotPermitted,
    PasswordRequired,
    TooManyConnections,
    numeric,
)
from twisted_chat.frontends.base import (
    AdmittingFactory,
    IConnectionTransport,
    SendQueue,
    describe_peer,
    open_connection,
)
from twisted_chat.frontends.irc import render
from twisted_chat.frontends.irc.parser import (
    MAX_BODY,
    MAX_TAGS,
    EmptyLine,
    ForbiddenCharacter,
    InvalidUTF8,
    LineTooLong,
    NoCommand,
    ParseError,
    format_message,
    parse_message,
)
from twisted_chat.frontends.line.fastwrite import TurnFlusher, can_send_directly, send_now
from twisted_chat.session.session import ChatSession, SessionContext
from twisted_chat.text import MAX_NAME, check_name, clean, date_stamp, room_key, visible

_FORBIDDEN = re.compile(r"[\x00\r\n]")

# What a framed line may hold: the tags part, the message, and a CR.
MAX_FRAME = MAX_TAGS + MAX_BODY + 1

CAPABILITIES = ("away-notify", "batch", "echo-message", "extended-monitor", "labeled-response",
                "message-tags", "multi-prefix", "sasl", "server-time", "userhost-in-names")

# SASL (IRCv3 sasl-3.1/3.2): the mechanisms, a chunk's size, the most chunks.
SASL_MECHANISMS = "PLAIN"
SASL_CHUNK = 400
SASL_MAX = 4 * SASL_CHUNK

# Channel modes: b (bans; the m: extban mutes), n (always on), t (claimed
# rooms always; unclaimed ones when an op locks the topic); prefixes o and v
# (a voice: heard in spite of a room mute).
ISUPPORT = (
    "AWAYLEN=390", "CASEMAPPING=ascii", "CHANLIMIT=#:", "CHANMODES=b,,,nt", "CHANNELLEN=33",
    "CHANTYPES=#", "CLIENTTAGDENY=*", "EXTBAN=,m", "KICKLEN=390",
    "MODES=4", "MONITOR=100", "NETWORK=twisted-chat", "NICKLEN=%d" % MAX_NAME, "PREFIX=(ov)@+",
    "TARGMAX=JOIN:,PART:,PRIVMSG:4,NOTICE:4,NAMES:1,WHOIS:1,KICK:4", "TOPICLEN=390", "UTF8ONLY",
    "WHOX",
)

# The most mode changes (with a parameter) one MODE applies: MODES above.
MODES_MAX = 4
# The most users one KICK kicks: TARGMAX above.
KICK_MAX = 4
# Errors that IRC names with the channel a command was about.
CHANNEL_NUMERICS = frozenset({"404", "442", "474", "477", "482"})

# The most nicks one client may MONITOR.
MONITOR_LIMIT = 100

# WHOX's fields, in the order its replies give them.
WHOX_FIELDS = "tcuihsnfdlaor"

# WHOWAS remembers this many users a nick, and this many nicks.
WHOWAS_PER_NICK = 5
WHOWAS_NICKS = 1000

# Commands a client may send before it is registered.
BEFORE_REGISTRATION = frozenset({"PASS", "NICK", "USER", "CAP", "AUTHENTICATE", "PING",
                                 "PONG", "QUIT"})
# Commands that do not count towards the flood limit (or go through the
# session, which counts them itself).
UNCOUNTED = frozenset({"PONG", "QUIT", "PRIVMSG", "NOTICE", "JOIN", "PART"})


class IRCHub:
    """
    What every IRC connection of a server shares: the server's name, when it
    started, the prefixes and away messages of IRC users.  (Channel topics
    are the domain's: C{server.moderation.topic(key)}.)
    """

    def __init__(self, server_name: str, clock: Any) -> None:
        self.server_name = server_name
        self.created = clock.seconds()
        self.prefixes: dict[str, str] = {}  # member key -> nick!user@host
        self.clients: dict[str, IRCProtocol] = {}  # member key -> its connection
        self.unregistered = 0
        self.max_users = 0
        # nick key -> the IRC clients that MONITOR it
        self.watchers: dict[str, set[IRCProtocol]] = {}
        # nick key -> (nick, user, host, real name), newest first: WHOWAS
        self.whowas: dict[str, list[tuple[str, str, str, str]]] = {}

    def departed(self, nick: str, user: str, host: str, realname: str) -> None:
        """Remember who was C{nick}, for WHOWAS (a few per nick, a bounded table)."""
        entries = self.whowas.pop(nick.lower(), [])
        entries.insert(0, (nick, user, host, realname))
        del entries[WHOWAS_PER_NICK:]
        self.whowas[nick.lower()] = entries  # re-inserted: the oldest nicks go first
        while len(self.whowas) > WHOWAS_NICKS:
            del self.whowas[next(iter(self.whowas))]

    def signed_on(self, nick: str, prefix: str) -> None:
        """Tell the clients that MONITOR C{nick} it is online (730)."""
        for client in self.watchers.get(nick.lower(), ()):
            client.reply("730", prefix)

    def signed_off(self, nick: str) -> None:
        """Tell the clients that MONITOR C{nick} it is offline (731)."""
        for client in self.watchers.get(nick.lower(), ()):
            client.reply("731", nick)

    def prefix(self, name: str) -> str:
        """C{name}'s C{nick!user@host}."""
        found = self.prefixes.get(name.lower())
        return found if found is not None else render.prefix_of(name)


def _safe(params: Sequence[str]) -> tuple[str, ...]:
    """C{params} with every middle one made a word (echoing what a client sent)."""
    middle = [_word(param) for param in params[:-1]]
    last = _FORBIDDEN.sub("", params[-1]) if params else None
    return (*middle, last) if last is not None else ()


def _word(text: str) -> str:
    return _FORBIDDEN.sub("", text).replace(" ", "_").lstrip(":") or "*"


def _mask_target(mask: str) -> str:
    """
    The domain's ban target for an IRC ban mask: C{nick!*@*} (or a bare
    nick) is the name, C{*!*@address} and C{*!*@cidr} the address or
    network.

    @raise BadUsage: for any other mask (wildcards in a nick, a user or a host name).
    """
    nick, bang, rest = mask.partition("!")
    user, at, host = rest.partition("@")
    if not bang and "@" not in mask:
        return parse_target(nick)
    if bang and at and nick and nick != "*" and user == "*" and host == "*":
        if "*" in nick or "?" in nick:
            raise BadUsage("a mask is nick!*@* (no wildcards) or *!*@address or *!*@cidr")
        return parse_target(nick)
    if bang and at and nick == "*" and user == "*" and host and "*" not in host \
            and "?" not in host:
        target = parse_target(host)
        if target_kind(target) != "name":  # an address or a network, not a host name
            return target
    raise BadUsage("a mask is nick!*@* (no wildcards) or *!*@address or *!*@cidr")


def _add_tag(line: bytes, tag: bytes) -> bytes:
    """C{line} with one more tag (C{key=value}, escaped)."""
    if line[:1] == b"@":
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line


def _tag_time(when: float) -> dict[str, str]:
    return {"time": render.server_time(when)}


class IRCProtocol(Protocol):
    """One IRC client connection; the session's participant."""

    log = Logger()
    transport: IConnectionTransport
    factory: IRCFactory
    session: ChatSession
    host = ""
    _buffer = b""
    _discarding = False
    _paused = False
    _registered = False
    _closing = False
    _quiet = False  # a NOTICE: errors are not answered
    _gone = False  # whether WHOWAS has heard of the departure
    invisible = False  # user mode +i: hidden from WHO masks
    multi_room = True  # the domain: a kicked IRC user just leaves the channel
    _labeled: list[bytes] | None = None  # a labelled command's answers, held
    _errors = 0  # Error events sent (a command failed when it grew)
    _sasl: bytes | None = None  # AUTHENTICATE PLAIN: the payload so far (None: none begun)
    _sasl_busy = False  # the session checks a SASL password: its refusals become 904
    account_name: str | None = None  # who SASL logged in as
    _target: str | None = None  # the channel a JOIN or PRIVMSG is for (its errors name it)
    _muffled = False  # the domain's Info answers are replaced by numerics (AWAY)
    _close_reason: str | None = None  # why the server closes it (KILL, a server ban)
    send_queue: SendQueue
    _flusher: TurnFlusher | None = None  # the factory's, when output is sent directly
    _pending: list[bytes] | None = None  # this turn's output, when _flusher is set

    def __init__(self) -> None:
        self.nick = "*"
        self.user: str | None = None
        self.realname = ""
        self.passcode: bytes | None = None
        self.wanted: str | None = None  # the NICK asked for, before registration
        self.caps: set[str] = set()
        self.negotiating = False  # CAP LS/REQ hold registration until CAP END
        self.signon = 0.0
        self.last_active = 0.0
        self._batch = 0
        self.monitoring: dict[str, str] = {}  # nick key -> nick, as given to MONITOR

    # -- the connection ------------------------------------------------------

    @override
    def connectionMade(self) -> None:
        self.send_queue = open_connection(self.transport, self.factory.sendq,
                                          self.factory.sockets_preset)
        if can_send_directly(self.transport):
            self._flusher = self.factory.flusher  # None when direct_send is off
        self.hub.unregistered += 1
        self.session = ChatSession(self.factory.context, self)
        self.session.start()

    @property
    def hub(self) -> IRCHub:
        return self.factory.hub

    @property
    def away(self) -> str | None:
        """The away text (the domain's, C{/away} and C{AWAY}), or C{None}."""
        session = self.__dict__.get("session")
        member = session.member if session is not None else None
        if member is None:
            return None
        away = self.factory.context.server.moderation.away
        return away.get(member.key) if away else None

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if self._paused:
            self._buffer = data
            return
        start = 0
        if self._discarding:
            start = data.find(b"\n") + 1
            if not start:
                return
            self._discarding = False
        find = data.find
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            stop = end - 1 if end > start and data[end - 1] == 13 else end
            if stop - start > MAX_FRAME:
                self._too_long()
            else:
                self._line(data[start:stop])
            start = end + 1
            if self._paused or self._closing:
                self._buffer = b"" if self._closing else data[start:]
                return
        if start:
            data = data[start:]
        if len(data) > MAX_FRAME + 1:
            self._too_long()
            self._discarding = True
            data = b""
        self._buffer = data

    def _too_long(self) -> None:
        self.reply("417", "Input line was too long")

    def _line(self, line: bytes) -> None:
        try:
            message = parse_message(line)
        except (EmptyLine, NoCommand):
            return
        except LineTooLong:
            self._too_long()
            return
        except InvalidUTF8 as e:
            self.message("FAIL", e.command, "INVALID_UTF8",
                         "Message rejected: it was not valid UTF-8")
            return
        except ForbiddenCharacter as e:
            self.message("FAIL", e.command, "INVALID_MESSAGE",
                         "Message rejected: it held a NUL or a CR")
            return
        except ParseError:
            return
        label = message.tags.get("label") if "labeled-response" in self.caps else None
        if label:
            self._labeled = []
            try:
                self._handle(message.command, message.params)
            finally:
                self._answer_labeled(label)
            return
        self._handle(message.command, message.params)

    def _handle(self, command: str, params: Sequence[str]) -> None:
        handler = getattr(self, "irc_" + command, None)
        if not self._registered:
            if command not in BEFORE_REGISTRATION:
                if handler is None:
                    self.reply("421", command, "Unknown command")
                else:
                    self.reply("451", "You have not registered")
                return
        elif command not in UNCOUNTED and self.session.flooding():
            return
        if handler is None:
            self.reply("421", command, "Unknown command")
            return
        self.last_active = self.factory.context.clock.seconds()
        try:
            handler(params)
        except ChatError as e:
            self.reply(e.numeric, command, str(e))
        except Exception:
            self.log.failure("IRC {command} from {peer} failed", command=command,
                             peer=self.describe_peer())
            self.reply("400", command, "The server failed to handle that; it was dropped")

    @override
    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.limits.release(self.host)
        self.factory.context.server.observer.connection_closed("irc")
        if not self._registered:
            self.hub.unregistered -= 1
        session = self.__dict__.get("session")
        if session is not None:
            session.connection_lost()
        self._forget()

    def _departed(self) -> None:
        """Leave a WHOWAS entry (once)."""
        if self._registered and not self._gone:
            self._gone = True
            self.hub.departed(self.nick, self.user or self.nick, render.OTHER_HOST,
                              self.realname)
            self.hub.signed_off(self.nick)

    def _forget(self) -> None:
        """Leave the hub's tables (after the quit notice was rendered)."""
        self._departed()
        self._unmonitor(list(self.monitoring))
        key = self.nick.lower()
        if self._registered and self.hub.clients.get(key) is self:
            del self.hub.clients[key]
            self.hub.prefixes.pop(key, None)

    # -- output ---------------------------------------------------------------

    def _answer_labeled(self, label: str) -> None:
        """
        Send what a labelled command answered (labeled-response): C{ACK}
        for nothing, the one line with the label, or a batch of them.
        """
        data, self._labeled = b"".join(self._labeled or ()), None
        tag = format_message({"label": label}, None, "X")[:-2]  # b"@label=..."
        answers = data.split(b"\r\n")[:-1]
        if not answers:
            self.write(b"%s :%s ACK\r\n" % (tag, self.hub.server_name.encode()))
        elif len(answers) == 1:
            self.write(_add_tag(answers[0], tag[1:]) + b"\r\n")
        else:
            self._batch += 1
            batch = b"l%d" % self._batch
            server = self.hub.server_name.encode()
            lines = [b"%s :%s BATCH +%s labeled-response" % (tag, server, batch)]
            lines += [_add_tag(line, b"batch=" + batch) for line in answers]
            lines.append(b":%s BATCH -%s" % (server, batch))
            self.write(b"\r\n".join(lines) + b"\r\n")

    def write(self, data: bytes) -> None:
        """Send C{data} (held while a labelled command runs: L{_answer_labeled})."""
        labeled = self._labeled
        if labeled is not None:
            labeled.append(data)
            return
        self.deliver(data)

    def deliver(self, data: bytes) -> None:
        """
        Send C{data}, within the sendq: at the end of the reactor turn with
        the turn's other output (one C{send}, as the line protocol does:
        L{twisted_chat.frontends.line.fastwrite}), or through the transport.
        """
        pending = self._pending
        if pending is not None:
            pending.append(data)
        elif self.send_queue.stalled:
            if self.send_queue.add(len(data), self._overflowed):
                self.transport.write(data)
        elif self._flusher is not None:
            self._pending = [data]
            self._flusher.mark(self)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Send this turn's output: directly if Twisted holds nothing unsent."""
        pending, self._pending = self._pending, None
        if pending:
            send_now(self.transport, pending[0] if len(pending) == 1 else b"".join(pending))

    def _overflowed(self, queued: int) -> None:
        self.factory.context.server.observer.send_queue_overflowed("irc")
        self.log.warn("{peer} stopped reading ({queued} bytes waiting); disconnecting",
                      peer=self.describe_peer(), queued=queued)
        self.transport.abortConnection()

    def message(self, command: str, *params: str, source: str | None = None,
                tags: dict[str, str] | None = None) -> None:
        """Send one message from C{source} (the server by default)."""
        if source is None:
            source = self.hub.server_name
        try:
            data = format_message(tags, source, command, params)
        except ValueError:  # a client's word echoed as a middle parameter (WHO "a b")
            data = format_message(tags, source, command, _safe(params))
        self.write(data + b"\r\n")

    def _line_from(self, command: str, target: str, text: str,
                   source: str | None = None) -> bytes:
        """A message from C{source} (this user) as this client gets it, with CRLF."""
        tags = _tag_time(self.factory.context.clock.seconds()) \
            if "server-time" in self.caps else None
        return format_message(tags, source or self.prefix, command, (target, text)) + b"\r\n"

    def reply(self, number: str, *params: str) -> None:
        """A numeric reply to this client (its nick first)."""
        self.message(number, self.nick, *params)

    @property
    def prefix(self) -> str:
        # The displayed host is the cloak, never the address (SPEC 8: only
        # operators see addresses, in WHOIS's 338); bans still match self.host.
        return "%s!%s@%s" % (self.nick, self.user or self.nick, render.OTHER_HOST)

    # -- the session's participant -------------------------------------------

    def send(self, event: Event) -> None:
        """Render C{event} for this client."""
        kind = type(event)
        if kind is Message or kind is Notice:
            room_event = cast("Message | Notice", event)
            if kind is Notice and cast(Notice, event).room is None:  # /wall: from the server
                self.message("NOTICE", self.nick, cast(Notice, event).text)
                return
            memo = room_event._irc
            if memo is None:
                memo = room_event._irc = render.room_event(
                    room_event, self.hub.prefix, self.hub.server_name)
            data = memo[1] if "server-time" in self.caps else memo[0]
            pending = self._pending
            if pending is not None and self._labeled is None:  # the fan-out path: no calls
                pending.append(data)
            else:
                self.write(data)
            return
        handler = _EVENTS.get(kind)
        if handler is not None:
            handler(self, event)

    def _private(self, event: Private) -> None:
        if event.outgoing:  # the confirmation: echo-message's echo is sent by _privmsg
            return
        self._say_to(self.hub.prefix(event.sender), self.nick, event.text, event.when)

    def _say_to(self, source: str, target: str, text: str, when: float) -> None:
        action = False
        name = source.partition("!")[0]
        if text.startswith("* %s " % name):  # an action sent privately (see irc_PRIVMSG)
            text, action = text[len(name) + 3:], True
        tags = _tag_time(when) if "server-time" in self.caps else None
        self.write(render.lines(tags, source, "PRIVMSG",
                                render.privmsgs(source, target, text, action)))

    def _error(self, event: Error) -> None:
        self._errors += 1
        if self._quiet:
            return
        number = numeric(event.code)
        if event.code in ("killed", "banned_from_server"):  # closed next: said in ERROR
            self._close_reason = event.text
            return
        if self._target is not None and number in CHANNEL_NUMERICS:
            self.reply(number, self._target, event.text)
            return
        if self._sasl_busy and number == "464":
            self.reply("904", "SASL authentication failed: " + event.text)
            return
        if not self._registered:
            if number in ("432", "433"):
                self.reply(number, self.wanted or "*", event.text)
            elif number == "464":
                self.reply(number, event.text)
            else:
                self.message("NOTICE", self.nick, "ERROR " + event.text)
            return
        self.message("NOTICE", self.nick, "ERROR " + event.text)

    def _info(self, event: Info) -> None:
        if not self._muffled:
            self.message("NOTICE", self.nick, event.text)

    def _away_reply(self, event: Away) -> None:
        if not self._quiet:
            self.reply("301", event.name, event.text)

    def _whois(self, event: Whois) -> None:
        """WHOIS's numerics, from the domain's answer."""
        name = event.name
        target = self._directory.find(name)
        if target is not None:
            user, host, realname, _ = self._ident(target)
        else:
            user, host, realname = name, render.OTHER_HOST, name
        self.reply("311", name, user, host, "*", realname)
        if target is not None and target.rooms:
            moderation = self.factory.context.server.moderation
            self.reply("319", name, " ".join(
                ("@#" if moderation.is_op(target, room.name) else
                 "+#" if moderation.is_voiced(target, room.name) else "#") + room.name
                for room in target.rooms))
        self.reply("312", name, self.hub.server_name, "twisted-chat")
        if event.operator:
            self.reply("313", name, "is an IRC operator")
        if event.account:
            self.reply("330", name, name, "is logged in as")
        if event.address is not None:
            self.reply("338", name, "%s@%s" % (user, event.address), event.address,
                       "Actual user@host, Actual IP")
        if event.away:
            self.reply("301", name, event.away)
        self.reply("317", name, str(int(event.idle)), str(int(event.since)),
                   "seconds idle, signon time")

    def _users(self, event: Users) -> None:
        room = event.room
        if room is None:
            return
        channel = "#" + room
        if "server-time" in self.caps:
            self.message("JOIN", channel, source=self.prefix,
                         tags=_tag_time(self.factory.context.clock.seconds()))
        else:
            self.message("JOIN", channel, source=self.prefix)
        if self.away:
            joined = self._room(room)
            if joined is not None:
                self._tell_away(self._away_audience([joined]))
        topic = self._topic(room)
        if topic is not None:
            self.reply("332", channel, topic.text)
            self.reply("333", channel, self.hub.prefix(topic.by), str(int(topic.when)))
        self._names(room, channel)

    def _history(self, event: History) -> None:
        if not event.replay or not event.entries:
            return
        prefix = self.hub.prefix
        batch = None
        if "batch" in self.caps:
            self._batch += 1
            batch = "h%d" % self._batch
            self.message("BATCH", "+" + batch, "chathistory", "#" + event.room)
        # Tags only for a client that enabled them (IRCv3): without
        # server-time a replayed line says its time in its text instead, as
        # bouncers do ("[2026-12-01 10:30:15] earlier").
        timed = "server-time" in self.caps or "message-tags" in self.caps
        for entry in event.entries:
            tags: dict[str, str] | None = None
            if timed:
                tags = {"time": render.server_time(entry.when)}
            else:
                entry = dataclasses.replace(
                    entry, text="[%s] %s" % (date_stamp(entry.when), entry.text))
            if batch is not None:
                tags = tags or {}
                tags["batch"] = batch
            self.write(render.entry_lines(entry, prefix, tags or None))
        if batch is not None:
            self.message("BATCH", "-" + batch)

    def _shutdown(self, event: Shutdown) -> None:
        self.message("NOTICE", self.nick, "*** Server shutting down ***")

    def _joined(self, event: Joined) -> None:
        pass

    def close(self) -> None:
        """Close after what was sent is written (an C{ERROR} line first)."""
        if self._closing:
            return
        self._closing = True
        why = " (%s)" % self._close_reason if self._close_reason else ""
        self.write(format_message(None, None, "ERROR", (
            "Closing link: %s%s" % (self.host or "unknown", why),)) + b"\r\n")
        if self._pending:
            self.flush()
        transport = self.transport
        if not transport.disconnecting:
            transport.unregisterProducer()
            transport.loseConnection()

    def pause_input(self) -> None:
        self._paused = True

    def resume_input(self) -> None:
        if self._paused:
            self._paused = False
            if self._buffer and not self.transport.disconnecting:
                data, self._buffer = self._buffer, b""
                self.dataReceived(data)

    def peer_host(self) -> str:
        return self.host

    def describe_peer(self) -> str:
        return describe_peer(self.transport)

    # -- registration ----------------------------------------------------------

    def irc_PASS(self, params: Sequence[str]) -> None:
        if self._registered:
            self.reply("462", "You may not reregister")
            return
        if not params:
            self.reply("461", "PASS", "Not enough parameters")
            return
        self.passcode = params[0].encode("utf-8")

    def irc_NICK(self, params: Sequence[str]) -> None:
        if not params or not params[0]:
            self.reply("431", "No nickname given")
            return
        nick = params[0]
        if self._registered:
            if nick != self.nick:
                self._rename(nick)
            return
        self.wanted = nick
        self._try_register()

    def _rename(self, nick: str) -> None:
        """
        NICK after registration: the directory's name changes (the member
        and its rooms stay); IRC users sharing a room see C{NICK}, telnet
        and browser users a notice.
        """
        member = self.session.member
        if member is None:
            return
        moderation = self.factory.context.server.moderation
        if moderation.mute_count:
            # a muted user's renames would reach everyone it may not speak to
            # (InspIRCd's 447 ERR_CANTCHANGENICK for a banned/muted user)
            for key in [None, *(room.name for room in member.rooms)]:
                mute = moderation.muted(member, key)
                if mute is not None:
                    self.reply("447", "Can't change nickname while muted %s" % (
                        "on this server" if mute.room is None else "in #" + mute.room))
                    return
        try:
            check_name(nick)
        except ChatError as e:
            self.reply("432", nick, str(e))
            return
        directory = self._directory
        other = directory.find(nick)
        if other is not None and other is not member:
            self.reply("433", nick, "the name %s is taken; pick another" % nick)
            return
        reserve = getattr(directory, "reserve", None)
        if reserve is not None and nick.lower() != member.key:
            # a cluster's directory asks Redis first: later lines wait for the answer
            self.pause_input()
            reserve(nick, member).addCallback(self._reserved, nick, member)
            return
        self._renamed(nick, member)

    def _reserved(self, free: bool, nick: str, member: Member) -> None:
        directory = self._directory
        if self.session.member is not member or self.transport.disconnecting:
            directory.unreserve(nick, member)
        elif not free:
            self.reply("433", nick, "the name %s is taken; pick another" % nick)
        else:
            self._renamed(nick, member)
        self.resume_input()

    def _renamed(self, nick: str, member: Member) -> None:
        directory = self._directory
        old, old_prefix = member.name, self.prefix
        directory.release(member)
        outcome: list[Any] = []
        directory.claim(nick, member).addBoth(outcome.append)
        if not outcome or isinstance(outcome[0], Failure):  # lost a race (a cluster)
            if outcome:
                outcome[0].trap(ChatError)
            directory.claim(old, member).addErrback(lambda f: None)
            self.reply("433", nick, "the name %s is taken; pick another" % nick)
            return
        hub = self.hub
        renamed = old.lower() != member.name.lower()  # not a case change
        if renamed:
            self._departed()
            self._gone = False
        hub.clients.pop(old.lower(), None)
        hub.prefixes.pop(old.lower(), None)
        away = self.factory.context.server.moderation.away
        if away and old.lower() in away:  # the domain keeps it by the member's key
            away[member.key] = away.pop(old.lower())
        self.nick = member.name
        hub.clients[member.key] = self
        hub.prefixes[member.key] = self.prefix
        if renamed:
            hub.signed_on(member.name, self.prefix)
        line = format_message(None, old_prefix, "NICK", (member.name,)) + b"\r\n"
        self.write(line)
        server = self.factory.context.server
        pairs = []
        for room in member.rooms:
            notice = server.notice(room, "%s is now known as %s" % (old, member.name))
            when = render.server_time(notice.when)
            tagged = format_message({"time": when}, old_prefix, "NICK", (member.name,))
            notice._irc = (line, tagged + b"\r\n")
            pairs.append((room.name, notice))
        if pairs:
            server.bus.publish_once(pairs, exclude=member)

    def irc_USER(self, params: Sequence[str]) -> None:
        if self._registered:
            self.reply("462", "You may not reregister")
            return
        if len(params) < 4 or not params[0] or not params[3]:
            self.reply("461", "USER", "Not enough parameters")
            return
        self.user = params[0][:20].replace("@", "").replace("!", "") or "user"
        self.realname = params[3]
        self._try_register()

    def irc_CAP(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "CAP", "Not enough parameters")
            return
        sub = params[0].upper()
        if sub == "LS":
            if not self._registered:
                self.negotiating = True
            version = params[1] if len(params) > 1 else ""
            offered = " ".join(CAPABILITIES)
            if version.isdigit() and int(version) >= 302:
                offered = offered.replace("sasl", "sasl=" + SASL_MECHANISMS)
            self.message("CAP", self.nick, "LS", offered)
        elif sub == "REQ":
            if not self._registered:
                self.negotiating = True
            asked = params[1] if len(params) > 1 else ""
            wanted = asked.split()
            names = [name.lstrip("-") for name in wanted]
            if not wanted or any(name not in CAPABILITIES for name in names):
                self.message("CAP", self.nick, "NAK", asked)
                return
            for item in wanted:
                if item.startswith("-"):
                    self.caps.discard(item[1:])
                else:
                    self.caps.add(item)
            self.message("CAP", self.nick, "ACK", asked)
        elif sub == "LIST":
            self.message("CAP", self.nick, "LIST", " ".join(sorted(self.caps)))
        elif sub == "END":
            if self.negotiating:
                self.negotiating = False
                self._try_register()
        else:
            self.reply("410", params[0], "Invalid CAP command")

    def _try_register(self) -> None:
        if self._registered or self.negotiating or self.wanted is None or self.user is None:
            return
        if self.session.needs_passcode and self.passcode is None:
            self.reply("464", "Password required: send PASS <passcode> before NICK and USER")
            return
        nick = self.wanted
        d = self.session.log_in(self.passcode, nick, room=None)
        d.addCallbacks(self._welcome, self._refused)

    def _refused(self, failure: Failure) -> None:
        failure.trap(ChatError)
        if failure.check(PasswordRequired):  # not told by the session: the front end asks
            self.reply("433", self.wanted or "*",
                       "%s (log in with SASL first)" % failure.getErrorMessage())
        self.wanted = None  # the client sends another NICK

    # -- SASL ------------------------------------------------------------------

    def irc_AUTHENTICATE(self, params: Sequence[str]) -> None:
        """
        SASL PLAIN (IRCv3 sasl-3.1): C{AUTHENTICATE PLAIN}, C{+}, then the
        base64 of C{authzid NUL authcid NUL password} in chunks of 400
        (C{+}: an empty one), checked by L{ChatSession.sign_in}; the nick
        then given needs no password if it is the account's.
        """
        if not params or not params[0]:
            self.reply("461", "AUTHENTICATE", "Not enough parameters")
            return
        if self.account_name is not None:
            self.reply("907", "You have already authenticated using SASL")
            return
        if self._registered:  # SASL comes before registration here (no sasl-3.2 reauth)
            self.reply("462", "You may not reregister (SASL is before NICK and USER)")
            return
        if self._sasl_busy:
            self.reply("904", "SASL authentication failed: wait for the answer first")
            return
        arg = params[0]
        if arg == "*":
            if self._sasl is not None:
                self._sasl = None
                self.reply("906", "SASL authentication aborted")
            else:
                self.reply("906", "SASL authentication aborted (none was in progress)")
            return
        if self._sasl is None:
            if arg.upper() != "PLAIN":
                self.reply("908", SASL_MECHANISMS, "are available SASL mechanisms")
                self.reply("904", "SASL authentication failed: unknown mechanism")
                return
            self._sasl = b""
            self.write(b"AUTHENTICATE +\r\n")
            return
        if len(arg) > SASL_CHUNK:
            self._sasl = None
            self.reply("905", "SASL message too long")
            return
        if len(self._sasl) + len(arg) > SASL_MAX:
            self._sasl = None
            self.reply("904", "SASL authentication failed: the message is too long")
            return
        if arg != "+":
            self._sasl += arg.encode("ascii", "replace")
        if len(arg) == SASL_CHUNK:
            return  # more to come (a last "+" if the payload is a multiple of 400)
        payload, self._sasl = self._sasl, None
        self._sign_in(payload)

    def _sign_in(self, payload: bytes) -> None:
        try:
            authzid, authcid, password = binascii.a2b_base64(payload).decode("utf-8").split(
                "\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.reply("904", "SASL authentication failed: a malformed PLAIN message")
            return
        if authzid and authzid.casefold() != authcid.casefold():
            self.reply("904", "SASL authentication failed: authzid must be the account")
            return
        errors = self._errors
        self._sasl_busy = True
        d = self.session.authenticate(self.passcode)
        d.addCallback(lambda _: self.session.sign_in(authcid, password))
        d.addBoth(self._sasl_answered, errors)

    def _sasl_answered(self, result: Any, errors: int) -> None:
        self._sasl_busy = False
        if isinstance(result, Failure):
            if not isinstance(result.value, ChatError):
                self.log.failure("SASL for {peer} failed", result, peer=self.describe_peer())
            if self._errors == errors and not self._closing:  # not told by the session
                self.reply("904", "SASL authentication failed")
            return
        name = result.name
        self.account_name = name
        self.reply("900", self.prefix, name, "You are now logged in as %s" % name)
        self.reply("903", "SASL authentication successful")

    def _welcome(self, member: Member) -> None:
        hub = self.hub
        self._registered = True
        hub.unregistered -= 1
        self.nick = member.name
        self.signon = self.last_active = self.factory.context.clock.seconds()
        hub.clients[member.key] = self
        hub.prefixes[member.key] = self.prefix
        hub.max_users = max(hub.max_users, len(self.factory.context.server.members))
        name = hub.server_name
        self.reply("001", "Welcome to twisted-chat, %s" % self.prefix)
        self.reply("002", "Your host is %s, running twisted-chat %s" % (name, __version__))
        self.reply("003", "This server was created %s" % time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(hub.created)))
        self.reply("004", name, "twisted-chat-" + __version__, "i", "bnotv", "bov")
        tokens = list(ISUPPORT)
        for start in range(0, len(tokens), 12):
            self.reply("005", *tokens[start:start + 12], "are supported by this server")
        self.irc_LUSERS(())
        self.irc_MOTD(())
        hub.signed_on(member.name, self.prefix)

    # -- commands ---------------------------------------------------------------

    def irc_PING(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("409", "No origin specified")
            return
        self.message("PONG", self.hub.server_name, params[0])

    def irc_PONG(self, params: Sequence[str]) -> None:
        pass

    def irc_QUIT(self, params: Sequence[str]) -> None:
        reason = params[0] if params else ""
        if self._registered:
            self._departed()
            self.session.command(Command("quit", reason))
        self.session.close()

    def irc_MOTD(self, params: Sequence[str]) -> None:
        self.reply("422", "MOTD File is missing")

    def irc_LUSERS(self, params: Sequence[str]) -> None:
        hub = self.hub
        members = self.factory.context.server.members
        users = len(members)
        hub.max_users = max(hub.max_users, users)
        self.reply("251", "There are %d users and 0 invisible on 1 servers" % users)
        # every operator online here, whatever its front end (not a hot path)
        operators = sum(1 for member in members.values() if is_operator(member))
        self.reply("252", str(operators), "operator(s) online")
        if hub.unregistered:
            self.reply("253", str(hub.unregistered), "unknown connection(s)")
        channels = sum(1 for _, count in self._directory.rooms() if count)
        self.reply("254", str(channels), "channels formed")
        self.reply("255", "I have %d clients and 1 servers" % users)
        self.reply("265", str(users), str(hub.max_users),
                   "Current local users %d, max %d" % (users, hub.max_users))
        self.reply("266", str(users), str(hub.max_users),
                   "Current global users %d, max %d" % (users, hub.max_users))

    def irc_INFO(self, params: Sequence[str]) -> None:
        if params and params[0] and not fnmatch.fnmatchcase(
                self.hub.server_name.lower(), params[0].lower()):
            self.reply("402", params[0], "No such server")
            return
        self.reply("371", "twisted-chat %s: multi-room chat for telnet, IRC and browsers"
                   % __version__)
        self.reply("371", "Built on Twisted; running since %s" % time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.hub.created)))
        self.reply("374", "End of INFO list")

    def irc_TIME(self, params: Sequence[str]) -> None:
        self.reply("391", self.hub.server_name, time.strftime(
            "%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(self.factory.context.clock.seconds())))

    def irc_VERSION(self, params: Sequence[str]) -> None:
        self.reply("351", "twisted-chat-" + __version__, self.hub.server_name, "")
        tokens = list(ISUPPORT)
        for start in range(0, len(tokens), 12):
            self.reply("005", *tokens[start:start + 12], "are supported by this server")

    @property
    def _directory(self) -> Any:
        return self.factory.context.server.directory

    def _channel(self, name: str) -> str | None:
        """The room key of the channel C{name} (with its C{#}), or C{None} if not one."""
        if not name.startswith("#"):
            return None
        try:
            return room_key(name)
        except ChatError:
            return None

    def _room(self, key: str) -> Any:
        return self.factory.context.server.rooms.get(key)

    def _in(self, key: str) -> bool:
        room = self._room(key)
        member = self.session.member
        return room is not None and member is not None and member in room.members

    def irc_JOIN(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "JOIN", "Not enough parameters")
            return
        if params[0] == "0":
            member = self.session.member
            for room in list(member.rooms) if member is not None else ():
                self._part(room.name, "")
            return
        for name in params[0].split(","):
            if not name:
                continue
            key = self._channel(name)
            if key is None:
                self.reply("403", name, "No such channel (a channel is # and 1-32 letters, "
                           "digits, _ or -)")
                continue
            if self._in(key):
                continue
            self._target = "#" + key  # a ban is 474 for this channel
            try:
                self.session.command(Command("join", "#" + key, number=1))
            finally:
                self._target = None

    def irc_PART(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "PART", "Not enough parameters")
            return
        reason = params[1] if len(params) > 1 else ""
        for name in params[0].split(","):
            if not name:
                continue
            key = self._channel(name)
            if key is None or self._room(key) is None:
                self.reply("403", name, "No such channel")
            elif not self._in(key):
                self.reply("442", name, "You're not on that channel")
            else:
                self._part(key, reason)

    def _part(self, key: str, reason: str) -> None:
        self.session.command(Command("part", "#" + key, reason))
        if not self._in(key):
            params = ("#" + key, reason) if reason else ("#" + key,)
            self.message("PART", *params, source=self.prefix)

    def irc_PRIVMSG(self, params: Sequence[str], notice: bool = False) -> None:
        command = "NOTICE" if notice else "PRIVMSG"
        if not params:
            if not notice:
                self.reply("411", "No recipient given (%s)" % command)
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                self.reply("412", "No text to send")
            return
        text = params[1]
        action = False
        if text.startswith("\x01"):
            body = text.strip("\x01")
            verb, _, rest = body.partition(" ")
            if verb.upper() != "ACTION":
                return  # other CTCPs (VERSION, PING...) are not offered
            text, action = rest, True
        for target in params[0].split(",")[:4]:
            if target:
                self._quiet = notice
                try:
                    self._privmsg(command, target, text, action, params[1])
                finally:
                    self._quiet = False

    def irc_NOTICE(self, params: Sequence[str]) -> None:
        self.irc_PRIVMSG(params, notice=True)

    def _privmsg(self, command: str, target: str, text: str, action: bool, raw: str) -> None:
        errors = self._errors
        quiet = command == "NOTICE"
        if target.startswith("#"):
            key = self._channel(target)
            if key is None or self._room(key) is None:
                if not quiet:
                    self.reply("403", target, "No such channel")
                return
            if not self._in(key):
                if not quiet:
                    self.reply("404", target, "Cannot send to channel (join it first)")
                return
            if quiet and not action:
                self._notice(key, text)
            else:
                self._target = target  # a mute is 404 for this channel
                try:
                    self.session.command(Command("me" if action else "say", text, "#" + key))
                finally:
                    self._target = None
        else:
            other = self._directory.find(target)
            if other is None:
                if not quiet:
                    self.reply("401", target, "No such nick")
                return
            if other is self.session.member:  # to yourself: it comes back (not labelled)
                self.deliver(self._line_from(command, self.nick, raw))
                if "echo-message" in self.caps:
                    self.write(self._line_from(command, self.nick, raw))
                return
            client = other.participant
            if quiet and isinstance(client, IRCProtocol):
                # A NOTICE between IRC users stays a NOTICE (the domain's
                # private messages are PRIVMSGs). Server-muted: dropped (a
                # NOTICE gets no error back).
                server = self.factory.context.server
                if server.moderation.mute_count and self.session.member is not None \
                        and server.moderation.muted(self.session.member, None) is not None:
                    return
                server.observer.message("private")
                client.deliver(client._line_from(command, client.nick, clean(raw), self.prefix))
                if "echo-message" in self.caps:
                    self.write(self._line_from(command, other.name, raw))
                return
            if action:
                text = "* %s %s" % (self.nick, text)
            self.session.command(Command("msg", other.name, text))  # away: 301 (Away)
            target = other.name
        if self._errors == errors and "echo-message" in self.caps:
            tags = _tag_time(self.factory.context.clock.seconds()) \
                if "server-time" in self.caps else None
            self.message(command, target, raw, source=self.prefix, tags=tags)

    def _notice(self, key: str, text: str) -> None:
        """
        A NOTICE to a channel: a message of the room (telnet and browser
        users see a message, history keeps it) that IRC users see as a
        NOTICE: the event's IRC memo is filled here, before the fan-out.
        """
        member = self.session.member
        if member is None or self.session.flooding():
            return
        text = clean(text)
        if not visible(text):
            return
        server = self.factory.context.server
        mute = server.moderation.muted(member, key) if server.moderation.mute_count else None
        if mute is not None:
            where = "on this server" if mute.room is None else "in #" + key
            self.reply("404", "#" + key, "Cannot send to channel (you are muted %s)" % where)
            return
        when, stamp = server.now()
        entry = Entry(key, member.name, text, when)
        event = Message(entry, stamp)
        source = self.prefix
        params = render.privmsgs(source, "#" + key, text, command="NOTICE")
        event._irc = (render.lines(None, source, "NOTICE", params),
                      render.lines(_tag_time(when), source, "NOTICE", params))
        server.observer.message("message")
        server.bus.publish(key, event, member)
        server.history.append(entry)

    def irc_NAMES(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("366", "*", "End of /NAMES list")
            return
        for name in params[0].split(",")[:1]:
            key = self._channel(name)
            if key is None or not self._directory.members(key):  # (every process's)
                self.reply("366", name, "End of /NAMES list")
            else:
                self._names(key, name)

    def _prefixes(self, key: str) -> dict[str, str]:
        """
        The C{@} (op: owner, ops, operators) and C{+} (voice) of the room's
        members here, by name: both with multi-prefix, else the higher.
        """
        room = self._room(key)
        if room is None:
            return {}
        moderation = self.factory.context.server.moderation
        is_op = moderation.is_op
        found = {member.name: "@" for member in room.members if is_op(member, key)}
        transient = moderation.transient.get(key) if moderation.transient else None
        if transient is not None and transient.voiced:
            both = "multi-prefix" in self.caps
            for member in transient.voiced:
                mark = found.get(member.name)
                if mark is None:
                    found[member.name] = "+"
                elif both:
                    found[member.name] = "@+"
        return found

    def _names(self, key: str, channel: str) -> None:
        names = self._directory.members(key)
        marks = self._prefixes(key)
        if "userhost-in-names" in self.caps:
            prefix = self.hub.prefix
            names = [marks.get(name, "") + prefix(name) for name in names]
        elif marks:
            names = [marks.get(name, "") + name for name in names]
        line: list[str] = []
        size = 0
        for name in names:
            if size + len(name) > 400:
                self.reply("353", "=", "#" + key, " ".join(line))
                line, size = [], 0
            line.append(name)
            size += len(name) + 1
        if line:
            self.reply("353", "=", "#" + key, " ".join(line))
        self.reply("366", channel, "End of /NAMES list")

    def irc_LIST(self, params: Sequence[str]) -> None:
        wanted = None
        if params and params[0]:
            wanted = {self._channel(name) for name in params[0].split(",")}
        self.reply("321", "Channel", "Users  Name")
        server = self.factory.context.server
        for name, count in server.listed_rooms():
            if wanted is not None and name not in wanted:
                continue
            if not count and not server.moderation.claimed(name):
                continue
            topic = self._topic(name)
            self.reply("322", "#" + name, str(count), topic.text if topic else "")
        self.reply("323", "End of /LIST")

    def _topic(self, key: str) -> Topic | None:
        return self.factory.context.server.moderation.topic(key)

    def irc_TOPIC(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "TOPIC", "Not enough parameters")
            return
        key = self._channel(params[0])
        if key is None or self._room(key) is None:
            self.reply("403", params[0], "No such channel")
            return
        channel = "#" + key
        if len(params) == 1:
            topic = self._topic(key)
            if topic is None:
                self.reply("331", channel, "No topic is set")
            else:
                self.reply("332", channel, topic.text)
                self.reply("333", channel, self.hub.prefix(topic.by), str(int(topic.when)))
            return
        member = self.session.member
        if member is None:
            return
        try:
            # the room hears of it as a Notice (change "topic"), rendered as TOPIC
            self.factory.context.server.topic(member, key, params[1])
        except NotInRoom:
            self.reply("442", channel, "You're not on that channel")
        except ChatError as e:
            self.reply(e.numeric, channel, str(e))

    def irc_MODE(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "MODE", "Not enough parameters")
            return
        target = params[0]
        if target.startswith("#"):
            key = self._channel(target)
            if key is None or self._room(key) is None:
                self.reply("403", target, "No such channel")
                return
            self._channel_mode(key, params[1:])
            return
        if target.lower() != self.nick.lower():
            if self._directory.find(target) is None:
                self.reply("401", target, "No such nick")
            else:
                self.reply("502", "Can't change mode for other users")
            return
        if len(params) == 1:
            self.reply("221", "+i" if self.invisible else "+")
            return
        change = params[1]
        adding, applied, unknown = True, "", False
        for char in change:
            if char in "+-":
                adding = char == "+"
            elif char == "i":
                if self.invisible != adding:
                    self.invisible = adding
                    applied += ("+" if adding else "-") + "i"
            else:
                unknown = True
        if applied:
            self.message("MODE", self.nick, applied, source=self.prefix)
        if unknown:
            self.reply("501", "Unknown MODE flag")

    def _channel_mode(self, key: str, params: Sequence[str]) -> None:
        """
        A channel's MODE: the query (C{+nt} when only ops set the topic),
        the ban list (C{+b} or C{b} alone: bans, and mutes as C{m:} masks),
        and the changes C{+o}/C{-o nick}, C{+b}/C{-b mask} (C{nick!*@*},
        C{*!*@address}, C{*!*@cidr}; C{m:mask} mutes) and C{+t}/C{-t},
        each through the domain, which announces it (as a MODE here).
        """
        channel = "#" + key
        moderation = self.factory.context.server.moderation
        if not params:
            self.reply("324", channel, "+nt" if moderation.topic_locked(key) else "+n")
            return
        args = list(params[1:])
        adding, listed, changes = True, False, 0
        for char in params[0]:
            if char in "+-":
                adding = char == "+"
            elif char == "b" and not args:
                if not listed:
                    listed = True
                    self._ban_list(key)
            elif char in "obv":
                if not args:
                    self.reply("461", "MODE", "Not enough parameters (+%s needs a nick)" % char)
                    continue
                arg = args.pop(0)
                changes += 1
                if changes > MODES_MAX:
                    continue
                if char != "b":
                    self._mode_op(key, adding, arg, voice=char == "v")
                else:
                    self._mode_ban(key, adding, arg)
            elif char == "t":
                if self._may_moderate(key):
                    self._domain(channel, self.factory.context.server.lock_topic, key, adding)
            elif char == "n":
                pass  # always on: only members speak in a room
            else:
                self.reply("472", char, "is unknown mode char to me for %s" % channel)

    def _domain(self, channel: str, method: Callable[..., None], *args: Any) -> None:
        """Call a moderation method of the server; its refusal named with C{channel}."""
        member = self.session.member
        if member is None:
            return
        try:
            method(member, *args)
        except ChatError as e:
            self.reply(e.numeric, channel, str(e))

    def _ban_list(self, key: str) -> None:
        channel = "#" + key
        moderation = self.factory.context.server.moderation
        prefix = self.hub.prefix
        for ban in moderation.bans(key):
            self.reply("367", channel, render.mask_of(ban.target), prefix(ban.by),
                       str(int(ban.when)))
        for mute in moderation.mutes(key):
            self.reply("367", channel, "m:" + render.mask_of(mute.target), prefix(mute.by),
                       str(int(mute.when)))
        self.reply("368", channel, "End of channel ban list")

    def _mode_op(self, key: str, adding: bool, nick: str, voice: bool = False) -> None:
        if not self._may_moderate(key):
            return
        channel = "#" + key
        target = self._directory.find(nick)
        room = self._room(key)
        if target is None:
            self.reply("401", nick, "No such nick")
            return
        if room is None or target not in room.members:
            self.reply("441", target.name, channel, "They aren't on that channel")
            return
        server = self.factory.context.server
        if voice:
            if server.moderation.is_voiced(target, key) != adding:
                self._domain(channel, server.voice, key, target.name, adding)
            return
        if server.moderation.is_op(target, key) == adding:
            return  # nothing changes: nothing said, as IRC servers do
        self._domain(channel, server.op if adding else server.deop, key, target.name)

    def _mode_ban(self, key: str, adding: bool, mask: str) -> None:
        if not self._may_moderate(key):
            return
        channel = "#" + key
        mute = mask[:2].lower() == "m:"
        try:
            target = _mask_target(mask[2:] if mute else mask)
        except BadUsage as e:
            self.reply("696", channel, "b", _word(mask), str(e))
            return
        server = self.factory.context.server
        if adding:
            self._domain(channel, server.mute if mute else server.ban, key, target, None)
            return
        state = server.moderation.state(key)
        table = None if state is None else state.mutes if mute else state.bans
        if table is not None and table.get(target) is not None:  # else nothing to lift
            self._domain(channel, server.unmute if mute else server.unban, key, target)

    def irc_KICK(self, params: Sequence[str]) -> None:
        """KICK #chan nick[,nick...] [reason] (or as many channels as nicks, paired)."""
        if len(params) < 2:
            self.reply("461", "KICK", "Not enough parameters")
            return
        channels = [name for name in params[0].split(",") if name]
        nicks = [nick for nick in params[1].split(",") if nick][:KICK_MAX]
        reason = params[2] if len(params) > 2 else ""
        if not channels or not nicks:
            self.reply("461", "KICK", "Not enough parameters")
            return
        if len(channels) == 1:
            pairs = [(channels[0], nick) for nick in nicks]
        elif len(channels) == len(nicks):
            pairs = list(zip(channels, nicks, strict=True))
        else:
            self.reply("461", "KICK", "Give one channel, or as many channels as nicks")
            return
        for channel, nick in pairs:
            self._kick(channel, nick, reason)

    def _kick(self, name: str, nick: str, reason: str) -> None:
        key = self._channel(name)
        room = self._room(key) if key is not None else None
        member = self.session.member
        if key is None or room is None:
            self.reply("403", name, "No such channel")
            return
        if member is None:
            return
        channel = "#" + key
        if not self._may_moderate(key):
            return
        target = self._directory.find(nick)
        if target is None:
            self.reply("401", nick, "No such nick")
        elif target not in room.members:
            self.reply("441", target.name, channel, "They aren't on that channel")
        else:
            try:
                self.factory.context.server.kick(member, key, target.name, reason)
            except ChatError as e:
                self.reply(e.numeric, channel, str(e))

    def _may_moderate(self, key: str) -> bool:
        """Whether we are an op of the room (else told: 442 out of it, 482 in it)."""
        member = self.session.member
        if member is not None and self.factory.context.server.moderation.is_op(member, key):
            return True
        if not self._in(key):
            self.reply("442", "#" + key, "You're not on that channel")
        else:
            self.reply("482", "#" + key, "You're not channel operator (you are not an op in "
                       "#%s)" % key)
        return False

    def irc_KILL(self, params: Sequence[str]) -> None:
        if not params or not params[0]:
            self.reply("461", "KILL", "Not enough parameters")
            return
        member = self.session.member
        if member is None:
            return
        nick = params[0]
        reason = params[1] if len(params) > 1 else ""
        try:
            self.factory.context.server.kill(member, nick, reason)
        except NotPermitted:
            self.reply("481", "Permission Denied- You're not an IRC operator")
        except NoSuchTarget:
            self.reply("401", nick, "No such nick")

    def irc_AWAY(self, params: Sequence[str]) -> None:
        member = self.session.member
        if member is None:
            return
        text = params[0] if params and params[0] else None
        self._muffled = True  # the domain's Info becomes 305/306
        try:
            self.factory.context.server.away(member, text)
        finally:
            self._muffled = False
        if self.away:
            self.reply("306", "You have been marked as being away")
        else:
            self.reply("305", "You are no longer marked as being away")
        self._tell_away(self._away_audience())

    def _away_line(self) -> bytes:
        params = (self.away,) if self.away else ()
        return format_message(None, self.prefix, "AWAY", params) + b"\r\n"

    def _away_audience(self, rooms: Any = None) -> set[IRCProtocol]:
        """
        The IRC clients with away-notify sharing C{rooms} (default: all of
        ours) with us, and those with extended-monitor that MONITOR us.
        """
        member = self.session.member
        audience: set[IRCProtocol] = set()
        if member is None:
            return audience
        for room in member.rooms if rooms is None else rooms:
            for other in room.members:
                client = other.participant
                if isinstance(client, IRCProtocol) and "away-notify" in client.caps:
                    audience.add(client)
        if rooms is None:
            for client in self.hub.watchers.get(member.key, ()):
                if "extended-monitor" in client.caps and "away-notify" in client.caps:
                    audience.add(client)
        audience.discard(self)
        return audience

    def _tell_away(self, audience: set[IRCProtocol]) -> None:
        if audience:
            line = self._away_line()
            for client in audience:
                client.write(line)

    def irc_ISON(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "ISON", "Not enough parameters")
            return
        found = []
        for word in " ".join(params).split():
            member = self._directory.find(word)
            if member is not None:
                found.append(member.name)
        self.reply("303", " ".join(found))

    def _ident(self, member: Member) -> tuple[str, str, str, str | None]:
        """A member's user, host, real name and away message."""
        client = member.participant
        away = self.factory.context.server.moderation.away
        text = away.get(member.key) if away else None
        if isinstance(client, IRCProtocol) and client._registered:
            # the cloak, not client.host: addresses are for operators (338)
            return client.user or member.name, render.OTHER_HOST, client.realname, text
        return member.name, render.OTHER_HOST, member.name, text

    def irc_USERHOST(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("461", "USERHOST", "Not enough parameters")
            return
        found = []
        for word in params[:5]:
            member = self._directory.find(word)
            if member is not None:
                user, host, _, away = self._ident(member)
                found.append("%s=%s%s@%s" % (member.name, "-" if away else "+", user, host))
        self.reply("302", " ".join(found))

    def irc_WHO(self, params: Sequence[str]) -> None:
        mask = params[0] if params else "*"
        whox: str | None = None
        token = ""
        if len(params) > 1 and params[1].startswith("%"):  # WHOX: %fields[,token]
            whox, _, token = params[1][1:].partition(",")
            token = token[:3] if token.isdigit() else ""
        members: list[Member] = []
        channel = "*"
        key = self._channel(mask)
        server = self.factory.context.server
        if key is not None:
            # the directory's names: in a cluster, other processes' members too
            directory = self._directory
            members = [m for m in map(directory.find, directory.members(key)) if m is not None]
            if members:
                channel = "#" + key
        elif not mask.startswith("#"):
            pattern = mask.lower()
            if pattern in ("0", ""):
                pattern = "*"
            me = self.session.member
            mine = set(me.rooms) if me is not None else set()
            exact = self._directory.find(mask)
            for member in server.members.values():
                if member is exact:
                    members.append(member)
                    continue
                client = member.participant
                if (isinstance(client, IRCProtocol) and client.invisible and member is not me
                        and mine.isdisjoint(member.rooms)):
                    continue  # +i: not found by a mask unless sharing a channel
                user, host, realname, _ = self._ident(member)
                if any(fnmatch.fnmatchcase(value.lower(), pattern)
                       for value in (member.name, user, host, realname)):
                    members.append(member)
            members.sort(key=lambda m: m.name.lower())
        marks = self._prefixes(key) if key is not None and channel != "*" else {}
        moderation = server.moderation
        for member in members:
            user, host, realname, away = self._ident(member)
            where = channel
            mark = marks.get(member.name, "") if marks else ""
            if where == "*" and member.rooms:
                first = next(iter(member.rooms)).name
                where = "#" + first
                mark = "@" if moderation.is_op(member, first) else \
                    "+" if moderation.is_voiced(member, first) else ""
            flags = "G" if away else "H"
            if getattr(member, "operator", False):  # a Visitor: a server operator
                flags += "*"
            flags += mark
            if whox is not None:
                self._whox(whox, token, member, where, user, host, flags, realname)
                continue
            self.reply("352", where, user, host, self.hub.server_name, member.name,
                       flags, "0 " + realname)
        self.reply("315", mask, "End of WHO list")

    def _whox(self, fields: str, token: str, member: Member, channel: str, user: str,
              host: str, flags: str, realname: str) -> None:
        """One WHOX reply (354): the C{fields} asked for, in WHOX's fixed order."""
        client = member.participant
        idle = "0"
        if isinstance(client, IRCProtocol) and client._registered:
            now = self.factory.context.clock.seconds()
            idle = str(int(now - client.last_active))
        values = {"t": token or "0", "c": channel, "u": user,
                  "i": host if host.replace(".", "").isdigit() else "255.255.255.255",
                  "h": host, "s": self.hub.server_name, "n": member.name, "f": flags,
                  "d": "0", "l": idle, "a": "0", "o": "n/a", "r": realname}
        self.reply("354", *[values[char] for char in WHOX_FIELDS if char in fields])

    def irc_WHOIS(self, params: Sequence[str]) -> None:
        if not params:
            self.reply("431", "No nickname given")
            return
        name = params[-1].split(",")[0]
        member = self.session.member
        if member is None:
            return
        try:
            self.factory.context.server.whois(member, name)  # a Whois event: _whois
        except NoSuchTarget:
            self.reply("401", name, "No such nick")
            self.reply("318", name, "End of /WHOIS list")
            return
        found = self._directory.find(name)
        self.reply("318", found.name if found is not None else name, "End of /WHOIS list")

    def irc_WHOWAS(self, params: Sequence[str]) -> None:
        if not params or not params[0]:
            self.reply("461", "WHOWAS", "Not enough parameters")
            return
        nick = params[0].split(",")[0]
        count = 0
        if len(params) > 1:
            try:
                count = int(params[1])
            except ValueError:
                count = 0
        entries = self.hub.whowas.get(nick.lower(), [])
        if count > 0:
            entries = entries[:count]
        if not entries:
            self.reply("406", nick, "There was no such nickname")
        for was, user, host, realname in entries:
            self.reply("314", was, user, host, "*", realname)
            self.reply("312", was, self.hub.server_name, "twisted-chat")
        self.reply("369", nick, "End of WHOWAS")

    def irc_MONITOR(self, params: Sequence[str]) -> None:
        """MONITOR + - C L S: online and offline notices for nicks (IRC users come and go)."""
        if not params:
            self.reply("461", "MONITOR", "Not enough parameters")
            return
        sub = params[0].upper()
        targets = [word for word in (params[1] if len(params) > 1 else "").split(",") if word]
        if sub == "+":
            room = MONITOR_LIMIT - len(self.monitoring)
            if len(targets) > room:
                self.reply("734", str(MONITOR_LIMIT), ",".join(targets), "Monitor list is full")
                targets = targets[:max(room, 0)]
            for nick in targets:
                if "!" in nick or "@" in nick or "*" in nick:
                    continue
                key = nick.lower()
                self.monitoring[key] = nick
                self.hub.watchers.setdefault(key, set()).add(self)
            self._monitor_status(targets)
        elif sub == "-":
            self._unmonitor([nick.lower() for nick in targets])
        elif sub == "C":
            self._unmonitor(list(self.monitoring))
        elif sub == "L":
            if self.monitoring:
                self.reply("732", ",".join(self.monitoring.values()))
            self.reply("733", "End of MONITOR list")
        elif sub == "S":
            self._monitor_status(list(self.monitoring.values()))
        else:
            self.reply("400", "MONITOR", "Unknown MONITOR subcommand")

    def _monitor_status(self, nicks: Sequence[str]) -> None:
        online, offline = [], []
        for nick in nicks:
            if "!" in nick or "@" in nick or "*" in nick:
                continue
            member = self._directory.find(nick)
            if member is None:
                offline.append(nick)
            else:
                user, host, _, _ = self._ident(member)
                online.append("%s!%s@%s" % (member.name, user, host))
        if online:
            self.reply("730", ",".join(online))
        if offline:
            self.reply("731", ",".join(offline))

    def _unmonitor(self, keys: Sequence[str]) -> None:
        watchers = self.hub.watchers
        for key in keys:
            self.monitoring.pop(key, None)
            clients = watchers.get(key)
            if clients is not None:
                clients.discard(self)
                if not clients:
                    del watchers[key]

    def irc_OPER(self, params: Sequence[str]) -> None:
        if len(params) < 2:
            self.reply("461", "OPER", "Not enough parameters")
            return
        # Hold later lines until the (threaded) hash check answers: replies in order.
        self.pause_input()
        d = self.session.verify_operator(params[0], params[1])
        d.addCallbacks(self._opered, self._oper_refused)
        d.addBoth(lambda _: None if self._closing else self.resume_input())

    def _opered(self, operator: bool) -> None:
        if operator:
            self.reply("381", "You are now an IRC operator")
            self.message("MODE", self.nick, "+o", source=self.prefix)
        else:
            self.reply("491", "No O-lines for your host (that account is not an operator)")

    def _oper_refused(self, failure: Failure) -> None:
        if failure.check(ChatError):
            self.reply("464", "Password incorrect (%s)" % failure.getErrorMessage())
            return
        self.log.failure("OPER from {peer} failed", failure, peer=self.describe_peer())
        self.reply("400", "OPER", "The server failed to handle that; it was dropped")


_EVENTS: dict[type, Callable[[IRCProtocol, Any], None]] = {
    Private: IRCProtocol._private,
    Error: IRCProtocol._error,
    Info: IRCProtocol._info,
    Users: IRCProtocol._users,
    History: IRCProtocol._history,
    Shutdown: IRCProtocol._shutdown,
    Joined: IRCProtocol._joined,
    Whois: IRCProtocol._whois,
    Away: IRCProtocol._away_reply,
}


class IRCFactory(AdmittingFactory):
    """Builds L{IRCProtocol}s for one listener; the hub is shared by all."""

    protocol = IRCProtocol
    kind = "irc"

    def __init__(self, context: SessionContext, hub: IRCHub) -> None:
        self.context = context
        self.hub = hub
        self.sendq = context.config.sendq
        self.limits = context.limits
        # the per-turn direct send (line.fastwrite), unless configured off
        self.flusher = TurnFlusher(context.clock) if context.config.direct_send else None

    def refusal(self, reason: str) -> bytes:
        return b"ERROR :%s\r\n" % str(TooManyConnections(reason)).encode()


def default_server_name() -> str:
    """The host name, as C{--server-name}'s default."""
    name = socket.gethostname() or "twisted-chat"
    return name if "." in name or name.isalnum() else "twisted-chat"
