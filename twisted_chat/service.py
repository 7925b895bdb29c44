"""
The running server as a twistd service: it owns the listeners, the chat
domain and the history store, and stops them in order.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure
from typing_extensions import override

from twisted_chat.frontends.base import (
    AdmittingFactory,
    cap_accepts,
    lean_transports,
    preset_listener,
)
from twisted_chat.interfaces import History
from twisted_chat.session.session import SessionContext


class CannotListen(SystemExit, Exception):
    """
    Start-up failed because a port cannot be listened on: one line for the
    operator, never a traceback.  A SystemExit, so that C{twistd -n} prints
    just the line and exits 1; an Exception too, so that a daemonizing
    twistd sends it (the first 100 bytes) to the waiting parent.
    """

    __module__ = "builtins"  # "CannotListen: ...", short enough for twistd's 100 bytes


def describe_listen_error(where: str, error: BaseException | None) -> str:
    """
    C{twistd chat: cannot listen on 8080: address already in use}.

    C{error} is a Failure's value, which Twisted types as optional.
    """
    reason: Any = error
    if isinstance(error, CannotListenError) and error.socketError is not None:
        reason = error.socketError
    if isinstance(reason, OSError) and reason.errno is not None:
        why = os.strerror(reason.errno)
        if reason.errno == errno.EACCES:
            why += " (ports below 1024 need root)"
    else:
        why = str(reason)
    return "twistd chat: cannot listen on %s: %s" % (where, why[:1].lower() + why[1:])


class Listener(Service):
    """
    Listens on one endpoint while running and logs where.

    @param where: how the operator named the place (C{8080}, C{ssl:6697}),
        for a listening error.
    @param listened: called with the address once listening.
    """

    log = Logger()

    def __init__(self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory, what: str,
                 where: str = "", listened: Callable[[IAddress], object] | None = None) -> None:
        self._endpoint = endpoint
        self._factory = factory
        self._what = what
        self._where = where or what
        self._on_listened = listened
        self._port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None

    @override
    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        outcome: list[Any] = []
        self._listening = self._endpoint.listen(self._factory)
        self._listening.addBoth(outcome.append)
        if outcome and isinstance(outcome[0], Failure):
            # Nothing to serve without a port: one line, and twistd exits 1.
            self._listening = None
            raise CannotListen(describe_listen_error(self._where, outcome[0].value))
        if outcome:
            self._listened(outcome[0])
        else:  # an endpoint that listens later (rare)
            self._listening.addCallback(self._listened)
            self._listening.addErrback(lambda f: self.log.failure("listening failed", f))

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self._port = port
        if isinstance(self._factory, AdmittingFactory):
            self._factory.sockets_preset = preset_listener(port)
            cap_accepts(port)  # a login storm must not starve the rooms
            lean_transports(port)  # no repr string kept per connection
        host = port.getHost()
        if isinstance(host, IPv4Address | IPv6Address):
            where = "%s:%s" % (host.host, host.port)
        else:  # a UNIX socket
            where = str(host)
        self.log.info("twisted-chat {what} listening on {where}", what=self._what, where=where)
        if self._on_listened is not None:
            self._on_listened(host)
        return port

    @override
    def startService(self) -> None:
        if self._listening is None:
            self.privilegedStartService()
        super().startService()

    @override
    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self._port = self._port, None
        self._listening = None
        if port is None:
            return None
        # maybeDeferred's overloads have none for a Deferred-or-None function
        return maybeDeferred(port.stopListening)  # type: ignore[call-overload,no-any-return]


class HistoryService(Service):
    """
    Owns the history store: opens it when the server starts (after twistd
    has forked to daemonize: an SQLite connection must not cross a fork)
    and writes it out and closes it when the server stops.  A store
    without C{open} (memory) has nothing to open.
    """

    log = Logger()

    def __init__(self, history: History) -> None:
        self.history = history

    @override
    def startService(self) -> None:
        """
        @raise twisted_chat.storage.history.HistoryError: if the store
            cannot be opened (twistd reports it and exits).
        """
        open_store = getattr(self.history, "open", None)
        if open_store is not None:
            open_store()
        super().startService()

    @override
    def stopService(self) -> None:
        super().stopService()
        try:
            self.history.close()
        except Exception:
            self.log.failure("closing the history store failed")


class ChatService(MultiService):
    """
    The whole server.  Starting it opens the history store, then listens;
    its children are the listeners.  Stopping it stops listening, tells
    every client the server is going, waits (briefly) for them to go, and
    then writes out and closes the history store (L{HistoryService}, not a
    child: it must start first and stop last).
    """

    log = Logger()

    def __init__(self, context: SessionContext, history: History, grace: float = 3.0) -> None:
        super().__init__()
        self.context = context
        self.server = context.server
        self.history = history
        self.store = HistoryService(history)
        self._grace = grace
        self.registry: Any = None  # the Prometheus registry, with --metrics
        # twistd's text log observer for the application (logs.TurnTextObserver)
        self.log_observer: Any = None

    @override
    def setServiceParent(self, parent: Any) -> None:
        # twistd asks the application for its log observer after makeService
        # (app.AppLogger.start), so one given here replaces its default.
        if self.log_observer is not None and hasattr(parent, "setComponent") \
                and parent.getComponent(ILogObserver, None) is None:
            parent.setComponent(ILogObserver, self.log_observer)
        super().setServiceParent(parent)

    @override
    def startService(self) -> None:
        self.store.startService()
        # bans, mutes, claims and topics, read once (after twistd forked)
        self.server.moderation.load()
        super().startService()

    @override
    def stopService(self) -> Deferred[None]:
        d: Deferred[Any] = super().stopService()  # MultiService's DeferredList (untyped)
        d.addCallback(lambda _: self._close_clients())
        d.addErrback(lambda f: self.log.failure("stopping listeners failed", f))
        d.addBoth(lambda _: self._close_history())
        return d

    def _close_clients(self) -> Deferred[None]:
        # what was refused since the last summary is logged now, not lost
        self.context.limits.refusals.stop()
        self.context.lockout.lockouts.stop()
        count = self.server.shutdown()
        for session in self.context.deadlines.clear():  # still logging in
            session.close()
        self.log.info("server shutting down; closing {count} sessions", count=count)
        gone = self.server.wait_empty()
        # A client that does not read may never let its connection close.
        gone.addTimeout(self._grace, self.context.clock)
        gone.addErrback(lambda _: self.log.warn(
            "{count} sessions still open after {grace}s; stopping anyway",
            count=len(self.server.members), grace=self._grace))
        return gone

    def _close_history(self) -> None:
        try:
            self.server.moderation.stop()
        except Exception:
            self.log.failure("closing the moderation store failed")
        self.store.stopService()
