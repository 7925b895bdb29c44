"""
A small in-process Redis for unit tests (in the spirit of Synapse's
FakeRedisPubSubServer): it speaks RESP to real txredisapi protocols over
L{StringTransport}s and implements, truthfully, only the commands the
backplane uses: GET, SET (NX, PX), DEL, PEXPIRE, XADD (MAXLEN ~), XREAD
(COUNT, BLOCK, STREAMS), XREVRANGE (+ - COUNT) and EVAL of the backplane's
own two scripts (run here as Python with the scripts' semantics).  Time is
a L{Clock}: key expiry and XREAD's BLOCK follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from twisted_chat.cluster.node import ASSERT_SCRIPT, RELEASE_SCRIPT, stream_id

Reply = Any


class RespError(Exception):
    """An error reply (C{-ERR ...})."""


def encode(value: Reply) -> bytes:
    """One RESP reply."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, RespError):
        return b"-ERR %s\r\n" % str(value).encode()
    if isinstance(value, bool):
        return b":%d\r\n" % int(value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, Status):
        return b"+%s\r\n" % value.text.encode()
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, NullArray):
        return b"*-1\r\n"
    return b"*%d\r\n" % len(value) + b"".join(encode(v) for v in value)


class Status:
    def __init__(self, text: str) -> None:
        self.text = text


class NullArray:
    """C{*-1}: XREAD's answer when BLOCK times out."""


OK = Status("OK")


class FakeRedis:
    """The server: its keys, its streams, and every connection to it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.strings: dict[str, tuple[str, float | None]] = {}
        self.streams: dict[str, list[tuple[str, list[str]]]] = {}
        self.connections: list[ServerConnection] = []
        self.links: list[FakeLink] = []
        self.up = True
        self.commands: list[list[str]] = []  # every command, for a test to count
        self._last_ms = 0
        self._last_seq = 0

    # -- what tests do ----------------------------------------------------

    def link(self, on_ready: Callable[[Any], object], on_lost: Callable[[], object]) -> FakeLink:
        """A L{twisted_chat.cluster.node.LinkFactory} reaching this server."""
        link = FakeLink(self, on_ready, on_lost)
        self.links.append(link)
        return link

    def pump(self) -> None:
        """Move bytes both ways (and run what is due now) until nothing moves."""
        for _ in range(1000):
            moved = False
            self.clock.advance(0)
            for conn in list(self.connections):
                moved |= conn.pump()
            if not moved:
                return
        raise AssertionError("the fake Redis never settled")

    def advance(self, seconds: float, step: float = 0.1) -> None:
        """Let C{seconds} pass, pumping as it goes."""
        while seconds > 1e-9:
            this = min(step, seconds)
            self.clock.advance(this)
            seconds -= this
            self.pump()

    def stop(self, flush: bool = False) -> None:
        """Redis goes away (C{flush}: and comes back without its data, as with no persistence)."""
        self.up = False
        for conn in list(self.connections):
            conn.drop()
        if flush:
            self.strings.clear()
            self.streams.clear()
        self.pump()

    def start(self) -> None:
        """Redis is back: every link that wants to reconnects."""
        self.up = True
        for link in self.links:
            if link.wanted and link.conn is None:
                link.connect()
        self.pump()

    # -- keys -------------------------------------------------------------

    def get(self, key: str) -> str | None:
        item = self.strings.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and self.clock.seconds() >= expires:
            del self.strings[key]
            return None
        return value

    def set(self, key: str, value: str, px: int | None = None) -> None:
        expires = None if px is None else self.clock.seconds() + px / 1000
        self.strings[key] = (value, expires)

    def execute(self, conn: ServerConnection, args: list[str]) -> Reply:
        self.commands.append(args)
        name = args[0].upper()
        handler = getattr(self, "cmd_" + name.lower(), None)
        if handler is None:
            return RespError("unknown command '%s'" % args[0])
        try:
            return handler(conn, *args[1:])
        except (TypeError, ValueError, IndexError) as e:
            return RespError("syntax error (%s)" % e)

    def cmd_get(self, conn: ServerConnection, key: str) -> Reply:
        return self.get(key)

    def cmd_set(self, conn: ServerConnection, key: str, value: str, *options: str) -> Reply:
        opts = [o.upper() for o in options]
        px = int(options[opts.index("PX") + 1]) if "PX" in opts else None
        if "NX" in opts and self.get(key) is not None:
            return None
        self.set(key, value, px)
        return OK

    def cmd_del(self, conn: ServerConnection, *keys: str) -> Reply:
        count = 0
        for key in keys:
            if self.get(key) is not None:
                del self.strings[key]
                count += 1
        return count

    def cmd_pexpire(self, conn: ServerConnection, key: str, ms: str) -> Reply:
        value = self.get(key)
        if value is None:
            return 0
        self.set(key, value, int(ms))
        return 1

    def cmd_eval(self, conn: ServerConnection, script: str, count: str, *rest: str) -> Reply:
        keys, argv = list(rest[:int(count)]), list(rest[int(count):])
        if script == ASSERT_SCRIPT:
            taken = []
            for index, key in enumerate(keys, 1):
                owner = self.get(key)
                if owner is None:
                    self.set(key, argv[0], int(argv[1]))
                elif owner == argv[0]:
                    self.set(key, owner, int(argv[1]))
                else:
                    taken.append(index)
            return taken
        if script == RELEASE_SCRIPT:
            if self.get(keys[0]) == argv[0]:
                return self.cmd_del(conn, keys[0])
            return 0
        return RespError("this fake runs only the backplane's scripts")

    def _next_id(self) -> str:
        ms = int(self.clock.seconds() * 1000)
        if ms > self._last_ms:
            self._last_ms, self._last_seq = ms, 0
        else:
            self._last_seq += 1
        return "%d-%d" % (self._last_ms, self._last_seq)

    def cmd_xadd(self, conn: ServerConnection, key: str, *rest: str) -> Reply:
        args = list(rest)
        maxlen = None
        if args[0].upper() == "MAXLEN":
            args.pop(0)
            if args[0] in ("~", "="):
                args.pop(0)
            maxlen = int(args.pop(0))
        if args.pop(0) != "*":
            return RespError("this fake takes only * ids")
        if not args or len(args) % 2:
            return RespError("wrong number of arguments for 'xadd' command")
        entry_id = self._next_id()
        stream = self.streams.setdefault(key, [])
        stream.append((entry_id, args))
        if maxlen is not None and len(stream) > maxlen:
            del stream[:len(stream) - maxlen]
        for waiting in list(self.connections):
            waiting.wake()
        return entry_id

    def _after(self, key: str, last: str, count: int) -> list[Any]:
        after = stream_id(last)
        return [[entry_id, fields] for entry_id, fields in self.streams.get(key, [])
                if stream_id(entry_id) > after][:count]

    def cmd_xread(self, conn: ServerConnection, *rest: str) -> Reply:
        args = list(rest)
        count, block = 1 << 30, None
        while args[0].upper() != "STREAMS":
            option = args.pop(0).upper()
            if option == "COUNT":
                count = int(args.pop(0))
            elif option == "BLOCK":
                block = int(args.pop(0))
            else:
                return RespError("syntax error")
        args.pop(0)
        if len(args) != 2:
            return RespError("this fake reads one stream")
        key, last = args
        if last == "$":
            stream = self.streams.get(key, [])
            last = stream[-1][0] if stream else "0-0"
        found = self._after(key, last, count)
        if found or block is None:
            return [[key, found]] if found else NullArray()
        conn.block(key, last, count, block)
        return conn.BLOCKED

    def cmd_xrevrange(self, conn: ServerConnection, key: str, end: str, start: str,
                      *rest: str) -> Reply:
        if (end, start) != ("+", "-"):
            return RespError("this fake reads + - only")
        count = int(rest[1]) if rest and rest[0].upper() == "COUNT" else 1 << 30
        return [[entry_id, fields] for entry_id, fields
                in reversed(self.streams.get(key, []))][:count]


class ServerConnection:
    """The server's end of one connection: parses commands, writes replies."""

    BLOCKED = object()

    def __init__(self, server: FakeRedis, client: txredisapi.RedisProtocol) -> None:
        self.server = server
        self.client = client
        self.to_server = StringTransport()  # what the client wrote
        self.buffer = b""
        self.out: list[bytes] = []
        self.blocked: tuple[str, str, int, Any] | None = None
        self.queued: list[list[str]] = []  # commands behind a blocked XREAD
        self.open = True

    def pump(self) -> bool:
        """Deliver what each side wrote to the other; whether anything moved."""
        moved = False
        data = self.to_server.value()
        if data:
            self.to_server.clear()
            self.buffer += data
            self._parse()
            moved = True
        if self.out and self.open:
            out, self.out = b"".join(self.out), []
            self.client.dataReceived(out)
            moved = True
        return moved

    def _parse(self) -> None:
        while self.buffer.startswith(b"*"):
            parsed = _parse_command(self.buffer)
            if parsed is None:
                return
            args, self.buffer = parsed
            if self.blocked is not None:
                self.queued.append(args)
            else:
                self._run(args)

    def _run(self, args: list[str]) -> None:
        reply = self.server.execute(self, args)
        if reply is not self.BLOCKED:
            self.out.append(encode(reply))

    def block(self, key: str, last: str, count: int, ms: int) -> None:
        timer = self.server.clock.callLater(ms / 1000, self._timed_out) if ms else None
        self.blocked = (key, last, count, timer)

    def wake(self) -> None:
        if self.blocked is None:
            return
        key, last, count, timer = self.blocked
        found = self.server._after(key, last, count)
        if found:
            if timer is not None and timer.active():
                timer.cancel()
            self._unblock([[key, found]])

    def _timed_out(self) -> None:
        self._unblock(NullArray())

    def _unblock(self, reply: Reply) -> None:
        self.blocked = None
        self.out.append(encode(reply))
        queued, self.queued = self.queued, []
        for args in queued:
            if self.blocked is None:
                self._run(args)
            else:
                self.queued.append(args)

    def drop(self) -> None:
        """The connection breaks."""
        if not self.open:
            return
        self.open = False
        if self.blocked is not None:
            timer = self.blocked[3]
            if timer is not None and timer.active():
                timer.cancel()
            self.blocked = None
        self.server.connections.remove(self)
        from twisted.internet.error import ConnectionLost

        self.client.connectionLost(Failure(ConnectionLost()))


def _parse_command(data: bytes) -> tuple[list[str], bytes] | None:
    """One RESP array of bulk strings from the front of C{data}, and the rest."""
    end = data.find(b"\r\n")
    if end < 0:
        return None
    count = int(data[1:end])
    pos = end + 2
    args = []
    for _ in range(count):
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        assert data[pos:pos + 1] == b"$"
        size = int(data[pos + 1:end])
        start = end + 2
        if len(data) < start + size + 2:
            return None
        args.append(data[start:start + size].decode("utf-8"))
        pos = start + size + 2
    return args, data[pos:]


class FakeLink:
    """A connection to a L{FakeRedis} through a real txredisapi protocol."""

    def __init__(self, server: FakeRedis, on_ready: Callable[[Any], object],
                 on_lost: Callable[[], object]) -> None:
        self.server = server
        self.on_ready = on_ready
        self.on_lost = on_lost
        self.conn: txredisapi.RedisProtocol | None = None
        self.side: ServerConnection | None = None
        self.wanted = False

    def start(self) -> None:
        self.wanted = True
        if self.server.up:
            self.connect()

    def connect(self) -> None:
        client = txredisapi.RedisProtocol(convertNumbers=False)
        # txredisapi goes on parsing after a bulk string a reactor turn later,
        # on the global reactor unless told otherwise: on our clock here
        client.callLater = self.server.clock.callLater
        side = ServerConnection(self.server, client)
        lost = client.connectionLost

        def connection_lost(reason: Failure) -> None:
            lost(reason)
            if self.conn is client:
                self.conn = None
                self.on_lost()

        client.connectionLost = connection_lost
        self.server.connections.append(side)
        client.makeConnection(side.to_server)
        self.conn, self.side = client, side
        self.on_ready(client)

    def stop(self) -> None:
        self.wanted = False
        if self.side is not None:
            self.side.drop()
