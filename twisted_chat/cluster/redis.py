"""
Connections to Redis through txredisapi 1.6 (imported only with C{--redis}).

txredisapi 1.6 connects a L{txredisapi.RedisFactory} with
C{factory.startConnecting(endpoint)}: one L{ClientService} per pool slot
does the connecting, reconnecting and backing off (1 s, growing to
L{MAX_DELAY}, with jitter).  (The older pattern, a reconnecting client
factory handed to C{reactor.connectTCP}, no longer reconnects in 1.6.)  A
L{Link} is one such factory with a pool of one connection, and tells its
owner when the connection is ready (after C{AUTH} and C{SELECT}) and when
it is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.application.internet import ClientService
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    LogEvent,
    Logger,
    PredicateResult,
    globalLogPublisher,
)
from zope.interface import implementer

from twisted_chat.cluster.address import RedisAddress

log = Logger(namespace="twisted_chat.cluster.redis")

# Addresses whose refusal was logged (once a process).
_refused: set[str] = set()

# The longest wait between two connection attempts while Redis is away.
MAX_DELAY = 5.0


@implementer(ILogFilterPredicate)
class _NotARetry:
    """A connecting service's events, but not its line per attempt."""

    def __call__(self, event: LogEvent) -> object:  # a PredicateResult
        if str(event.get("log_format", "")).startswith("Scheduling retry"):
            return PredicateResult.no
        return PredicateResult.maybe


class _QuietService(ClientService):
    """
    txredisapi's reconnecting service, without a log line per attempt: the
    node logs an outage once (SPEC 10), not every 1-5 s while it lasts.
    """

    _log = Logger(namespace="twisted.application.internet.ClientService",
                  observer=FilteringLogObserver(globalLogPublisher, [_NotARetry()]))


Connection = Any  # a connected txredisapi.RedisProtocol: execute_command(*args) -> Deferred


class _Protocol(txredisapi.RedisProtocol):  # type: ignore[misc]
    """
    txredisapi's protocol, parsing all it has received in one go.

    After each bulk string txredisapi pauses and parses the rest of what
    it read a reactor turn later (C{setLineMode}'s C{callLater(0, ...)}):
    an C{XREAD} reply of a few hundred entries then took a thousand turns,
    and a cluster carried 3% of what one process does (issue 18's
    benchmark).  Here the rest goes back in front of the buffer and the
    same C{dataReceived} call goes on with it, in a loop, not a recursion.
    """

    _more = False
    _parsing = False
    _LineReceiver__buffer: bytes  # txredisapi's LineReceiver's private buffer

    def setLineMode(self, extra: bytes = b"") -> None:  # noqa: N802 (Twisted's name)
        self.line_mode = 1
        if extra:
            self._LineReceiver__buffer = extra + self._LineReceiver__buffer
            self._more = True

    def dataReceived(self, data: bytes, unpause: bool = False) -> Any:  # noqa: N802
        if self._parsing:  # (not expected: the loop below drains the buffer)
            self._LineReceiver__buffer += data
            self._more = True
            return None
        self._parsing = True
        try:
            why = super().dataReceived(data, unpause)
            while why is None and self._more and not self.paused:
                self._more = False
                why = super().dataReceived(b"")
            return why
        finally:
            self._parsing = False


class _Factory(txredisapi.RedisFactory):  # type: ignore[misc]
    """A pool of one that reports its connection coming and going."""

    maxDelay = MAX_DELAY  # noqa: N815 (txredisapi's name)
    protocol = _Protocol

    def __init__(self, link: Link, address: RedisAddress) -> None:
        # not "lazy": txredisapi then leaves a refused AUTH for us to report
        super().__init__(None, address.db or None, 1, isLazy=False, password=address.password,
                         username=address.username, convertNumbers=False)
        self._link = link

    def addConnection(self, conn: Connection) -> None:  # noqa: N802
        super().addConnection(conn)
        if conn in self.pool:
            self._link.ready(conn)

    def delConnection(self, conn: Connection) -> None:  # noqa: N802
        super().delConnection(conn)
        self._link.lost(conn)

    def connectionError(self, why: str) -> None:  # noqa: N802
        # AUTH or SELECT refused: txredisapi stops reconnecting; say why, once
        # (its own report is an errback nobody waits for)
        self._link.refused(why)


class Link:
    """
    One connection to Redis, kept open: C{on_ready(conn)} is called each
    time it is (re)established, C{on_lost()} each time it goes.
    """

    def __init__(self, address: RedisAddress, reactor: Any,
                 on_ready: Callable[[Connection], object], on_lost: Callable[[], object]) -> None:
        self._address = address
        self._reactor = reactor
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._factory: _Factory | None = None
        self.conn: Connection | None = None

    def start(self) -> None:
        self._factory = _Factory(self, self._address)
        # txredisapi makes its ClientServices here; have it make quiet ones
        original, txredisapi.ClientService = txredisapi.ClientService, _QuietService
        try:
            self._factory.startConnecting(self._address.endpoint(self._reactor))
        finally:
            txredisapi.ClientService = original

    def refused(self, why: str) -> None:
        if str(self._address) not in _refused:  # both links of a node are refused alike
            _refused.add(str(self._address))
            log.error("Redis at {where} refused this server: {why}; not retrying (fix the"
                      " --redis URL and restart)", where=str(self._address), why=why)

    def ready(self, conn: Connection) -> None:
        self.conn = conn
        self._on_ready(conn)

    def lost(self, conn: Connection) -> None:
        if self.conn is conn:
            self.conn = None
            self._on_lost()

    def stop(self) -> Any:
        """Stop (re)connecting and close; a Deferred that fires when closed."""
        factory, self._factory = self._factory, None
        if factory is None:
            return None
        return factory.disconnect()
