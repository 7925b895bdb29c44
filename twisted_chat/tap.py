"""
C{twistd chat}: the command-line options and L{makeService}, the one place
that reads options and wires the object graph together.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from twisted.application.service import IService
from twisted.cred.checkers import AllowAnonymousAccess
from twisted.cred.portal import Portal
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from twisted_chat.auth.cred import ChatRealm, PasscodeChecker
from twisted_chat.domain.server import ChatServer
from twisted_chat.commands import MAX_HISTORY
from twisted_chat.config import DEFAULT_PORT, ChatConfig
from twisted_chat.storage.history import HistoryError, MemoryHistory, SQLiteHistory
from twisted_chat.interfaces import History
from twisted_chat.frontends.line.protocol import ChatLineFactory
from twisted_chat.service import ChatService, Listener
from twisted_chat.session.session import SessionContext
from twisted_chat.frontends.web.site import build_site, normalize_origin

log = Logger(namespace="twisted_chat.tap")


def endpoint_description(text: str) -> str:
    """A bare port number means TCP on every interface."""
    return "tcp:%s" % text if text.isdigit() else text


def _bounded(kind: Callable[[str], Any], low: float, high: float | None = None):
    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError("%r is not a number" % text) from None
        if value < low or (high is not None and value > high):
            raise ValueError(
                "%s is out of range (%s%s)" % (text, low, " to %s" % high if high else " or more")
            )
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


class Options(usage.Options):
    """Options for C{twistd chat}."""

    synopsis = "[options]"
    longdesc = (
        "Multi-room chat for telnet, the bundled chat-client and browsers. "
        "Example: twistd -n chat --port 8080 --passcode x"
    )

    optParameters = [
        ["passcode", None, None,
         "The shared secret every session must give (visible in ps: prefer --passcode-file)."],
        ["passcode-file", None, None,
         "Read the passcode from this file (one trailing newline is stripped)."],
        ["db", None, "chat.db", "SQLite file for room history; :memory: keeps nothing."],
        ["web", None, None,
         "Serve the browser client (page at /, WebSocket at /ws) here: a port number or "
         "a Twisted endpoint description (tcp:8081, ssl:8443:privateKey=key.pem). [default: off]",
         endpoint_description],
        ["max-line", None, 1024, "Longest accepted line, in bytes.", _bounded(int, 16, 1 << 20)],
        ["rate", None, 5.0,
         "Lines a second allowed per connection after login (token bucket); 0 turns it off.",
         _bounded(float, 0)],
        ["burst", None, 10, "Lines a connection may send at once before --rate applies.",
         _bounded(int, 1)],
        ["history", None, 20,
         "Messages replayed on joining a room, and the default of /history.",
         _bounded(int, 0, MAX_HISTORY)],
        ["sendq", None, 1 << 20,
         "Bytes of unsent output after which a client that stopped reading is disconnected.",
         _bounded(int, 4096)],
        ["max-clients", None, 10_000, "Most connections open at once.", _bounded(int, 1)],
        ["max-per-ip", None, 16, "Most connections open at once from one address.",
         _bounded(int, 1)],
        ["idle-timeout", None, 0.0,
         "Seconds without a line after which a logged-in session is closed; 0: never.",
         _bounded(float, 0)],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []
        self["limit-exempt"] = []
        self["web-origins"] = []

    def opt_port(self, description: str) -> None:
        self["ports"].append(endpoint_description(description))

    opt_port.__doc__ = (
        "Where the line (telnet) protocol listens: a port number or a Twisted endpoint "
        "description (tcp:8080:interface=127.0.0.1, ssl:6697:privateKey=key.pem:certKey=cert.pem); "
        "may be given more than once. [default: tcp:8080]"
    )

    opt_p = opt_port

    def opt_limit_exempt(self, address: str) -> None:
        self["limit-exempt"].append(address)

    opt_limit_exempt.__doc__ = (
        "An address not held to --max-per-ip (e.g. 127.0.0.1 behind a proxy); "
        "may be given more than once. [default: none, loopback included]"
    )

    def opt_web_origin(self, origin: str) -> None:
        normal = normalize_origin(origin)
        if normal is None:
            raise usage.UsageError(
                "--web-origin %r is not an origin like https://chat.example.com" % origin
            )
        self["web-origins"].append(normal)

    opt_web_origin.__doc__ = (
        "A page origin (scheme://host[:port], e.g. https://chat.example.com behind a TLS "
        "proxy) allowed to open the WebSocket besides the --web address itself; "
        "may be given more than once. [default: none]"
    )

    def postOptions(self) -> None:
        if self["passcode"] is not None and self["passcode-file"] is not None:
            raise usage.UsageError("use --passcode or --passcode-file, not both")
        if self["passcode"] == "":
            raise usage.UsageError("the passcode cannot be empty")
        if self["passcode-file"] is not None:
            try:
                with open(self["passcode-file"], "rb") as f:
                    secret = f.read()
            except OSError as e:
                raise usage.UsageError("cannot read --passcode-file: %s" % e.strerror) from None
            if secret.endswith(b"\r\n"):
                secret = secret[:-2]
            elif secret.endswith(b"\n"):
                secret = secret[:-1]
            if not secret:
                raise usage.UsageError("the passcode file %s is empty" % self["passcode-file"])
            self["passcode-bytes"] = secret
        elif self["passcode"] is not None:
            self["passcode-bytes"] = self["passcode"].encode("utf-8")
        else:
            self["passcode-bytes"] = None
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]


def config_from_options(options: Options) -> ChatConfig:
    """The frozen settings; no string keys are used past this point."""
    return ChatConfig(
        ports=tuple(options["ports"]),
        passcode=options["passcode-bytes"],
        db=options["db"],
        max_line=options["max-line"],
        rate=options["rate"],
        burst=options["burst"],
        history=options["history"],
        sendq=options["sendq"],
        max_clients=options["max-clients"],
        max_per_ip=options["max-per-ip"],
        limit_exempt=tuple(options["limit-exempt"]),
        idle_timeout=options["idle-timeout"],
        web=options["web"],
        web_origins=tuple(options["web-origins"]),
    )


def build(config: ChatConfig, reactor: Any) -> ChatService:
    """
    Wire a whole server from C{config}.

    @raise HistoryError: if the history database cannot be used.
    """
    # :memory: keeps nothing, so the bounded, cheaper in-memory store (docs/HISTORY.md)
    if config.db == ":memory:":
        history: History = MemoryHistory()
    else:  # indexing for search waits for spare CPU time
        store = SQLiteHistory(config.db, reactor, cpu=time.process_time, connect=False)
        # Refused here, before twistd forks, with one line; the service
        # opens it for good when it starts (in the daemon).
        store.check()
        history = store
    server = ChatServer(history, reactor, config.history)
    realm = ChatRealm(server)
    if config.passcode is None:
        portal = Portal(realm, [AllowAnonymousAccess()])
        log.warn("no --passcode given: anyone who can connect can chat")
    else:
        portal = Portal(realm, [PasscodeChecker(config.passcode)])
    context = SessionContext.create(server, portal, config, reactor)
    service = ChatService(context, history)
    factory = ChatLineFactory(context)
    for description in config.ports:
        endpoint = serverFromString(reactor, description)
        Listener(endpoint, factory, "line protocol").setServiceParent(service)
    if config.web is not None:
        site = build_site(context, config.web_origins)
        Listener(serverFromString(reactor, config.web), site, "web").setServiceParent(service)
    return service


def makeService(options: Options) -> IService:
    """Build the service twistd runs; a database it cannot use stops start-up."""
    from twisted.internet import reactor

    try:
        return build(config_from_options(options), reactor)
    except HistoryError as e:
        log.critical("{error}", error=str(e))
        sys.stderr.write("twistd chat: %s\n" % e)
        raise SystemExit(1) from None
    except ValueError as e:  # a malformed endpoint description
        sys.stderr.write("twistd chat: %s\n" % e)
        raise SystemExit(1) from None
