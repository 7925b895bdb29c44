"""
C{twistd chat}: the command-line options and L{makeService}, the one place
that reads options and wires the object graph together.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import os
import re
import sys
import time
import tomllib
from collections.abc import Callable
from typing import Any, NoReturn, cast

from twisted.application.service import IService
from twisted.cred.checkers import AllowAnonymousAccess, ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet.endpoints import _parse as parse_endpoint
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from twisted_chat import __version__
from twisted_chat.auth.cred import AccountChecker, ChatRealm, PasscodeChecker
from twisted_chat.auth.hashing import Argon2Hasher
from twisted_chat.commands import MAX_HISTORY
from twisted_chat.config import DEFAULT_PORT, ChatConfig
from twisted_chat.domain.moderation import Moderation
from twisted_chat.domain.server import ChatServer
from twisted_chat.frontends.line.protocol import ChatLineFactory
from twisted_chat.frontends.web.site import build_site, normalize_origin
from twisted_chat.interfaces import History
from twisted_chat.limits import RecentCount
from twisted_chat.logs import TURN_LOG_ENV, TurnTextObserver, twistd_logs_to_stdout
from twisted_chat.metrics.observer import NULL_OBSERVER
from twisted_chat.service import ChatService, Listener
from twisted_chat.session.session import SessionContext
from twisted_chat.storage.accounts import (
    AccountError,
    AccountStore,
    SQLiteAccounts,
    open_accounts,
)
from twisted_chat.storage.history import HistoryError, MemoryHistory, SQLiteHistory
from twisted_chat.storage.moderation import ModerationError, SQLiteModeration, open_moderation

log = Logger(namespace="twisted_chat.tap")

# Wrong passwords an account takes a minute, from anywhere (SPEC 7).
ACCOUNT_ATTEMPTS = 3
# twistd path only: 0 keeps the start-up heap in the collected generations
GC_FREEZE_ENV = "TWISTED_CHAT_GC_FREEZE"


def endpoint_description(text: str) -> str:
    """A bare port number means TCP on every interface."""
    return "tcp:%s" % text if text.isdigit() else text


# Descriptors the server needs besides its clients: standard streams, the
# listeners, the poller and its waker, the database and its WAL, the log and
# Twisted's reserved EMFILE descriptor...
DESCRIPTOR_RESERVE = 32
# ...and connections refused while full, each open until it is told why
# (Twisted accepts up to 100 or so at a time): up to this many more, but
# not more than a quarter of what is left.
REFUSAL_HEADROOM = 128


def descriptors_spare(limit: int) -> int:
    """How many of C{limit} descriptors are not for clients."""
    return DESCRIPTOR_RESERVE + max(0, min(REFUSAL_HEADROOM, (limit - DESCRIPTOR_RESERVE) // 4))
_WILDCARDS = ("", "0.0.0.0", "::")


def tcp_address(description: str) -> tuple[int, str] | None:
    """
    The port and interface of a TCP or TLS endpoint description, or
    C{None} for another kind (unix:, ...).

    @raise ValueError: with a message for people if the port is not a
        port number.
    """
    try:
        args, kwargs = parse_endpoint(description)
    except Exception:  # a private parser: whatever it raises, say this
        raise ValueError("%r is not an endpoint description" % description) from None
    if not args or args[0] not in ("tcp", "ssl", "tcp6"):
        return None
    port = args[1] if len(args) > 1 else kwargs.get("port")
    if port is None:
        raise ValueError("%s has no port number" % description)
    if not port.isdigit() or int(port) > 65535:
        raise ValueError("%r is not a port number (0 to 65535)" % port)
    interface = args[2] if len(args) > 2 else kwargs.get("interface", "")
    return int(port), interface


def overlapping(places: list[tuple[str, str]]) -> str | None:
    """
    Why two of C{places} (C{(option, description)} pairs) would listen on
    the same port, or C{None}; port 0 (any free port) never overlaps.
    """
    seen: list[tuple[str, str, int, str]] = []
    for option, description in places:
        address = tcp_address(description)
        if address is None or address[0] == 0:
            continue
        port, interface = address
        for other_option, other, other_port, other_interface in seen:
            if port == other_port and (
                    interface == other_interface or interface in _WILDCARDS
                    or other_interface in _WILDCARDS):
                if option == other_option == "--port":
                    return "--port %d is given twice" % port
                return "%s %s and %s %s would both listen on port %d" % (
                    other_option, other, option, description, port)
        seen.append((option, description, port, interface))
    return None


def fit_descriptors(
    max_clients: int | None,
    getrlimit: Callable[[int], tuple[int, int]] | None = None,
    setrlimit: Callable[[int, tuple[int, int]], None] | None = None,
) -> tuple[int, str | None]:
    """
    Raise the soft descriptor limit to the hard one and fit the connection
    limit in it.

    @param max_clients: C{--max-clients} as given, or C{None} for the
        default (10,000, lowered to what the descriptors allow).
    @return: the connection limit to use and a line for the log (or
        C{None} when there is nothing to say).
    @raise ValueError: if the limit is too low to serve anyone.
    """
    default = ChatConfig.max_clients
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return (default if max_clients is None else max_clients), None
    getrlimit = getrlimit or resource.getrlimit
    setrlimit = setrlimit or resource.setrlimit
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # e.g. a hard limit of "unlimited" macOS refuses
            pass
    if soft == resource.RLIM_INFINITY:
        return (default if max_clients is None else max_clients), None
    room = soft - descriptors_spare(soft)
    wanted = default if max_clients is None else max_clients
    if wanted <= room:
        return wanted, None
    if room < 1:
        raise ValueError("the file descriptor limit (ulimit -n) is %d: too low to serve"
                         " anyone; raise it above %d" % (soft, DESCRIPTOR_RESERVE))
    if max_clients is not None:
        # Refused, but not fatal: the shared benchmark harness (and many a
        # script) passes --max-clients 100000 on machines whose hard limit is
        # 20,000; serving what fits, and saying so, beats not starting.
        return room, (
            "--max-clients %d refused: it needs about %d file descriptors but the limit"
            " is %d (ulimit -n); at most %d connections are served, more get 'the server"
            " is full' (raise the limit to serve more)"
            % (max_clients, max_clients + descriptors_spare(max_clients + 160), soft, room))
    return room, (
        "the file descriptor limit (ulimit -n) is %d, so at most %d connections"
        " (--max-clients) are served; more get 'the server is full'" % (soft, room))


def _bounded(
    kind: Callable[[str], Any], low: float, high: float | None = None
) -> Callable[[str], Any]:
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


def _choice(option: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def coerce(text: str) -> str:
        if text not in choices:
            raise ValueError("--%s takes %s, not %r" % (option, " or ".join(choices), text))
        return text

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


class Options(usage.Options):
    """Options for C{twistd chat}."""

    synopsis = "[options]"
    longdesc = (
        "twisted-chat %s: multi-room chat for telnet, the bundled chat-client and browsers. "
        % __version__ +
        "Example: twistd -n chat --port 8080 --passcode x"
    )

    optFlags = [
        ["founder-ops", None,
         ("The first member to join an empty unclaimed room is its op until the room "
          "empties, as on most IRC servers (IRC clients and irctest expect it). "
          "[default: off: unclaimed rooms have no ops]")],
    ]

    optParameters = [
        ["passcode", None, None,
         "The shared secret every session must give (visible in ps: prefer --passcode-file)."],
        ["passcode-file", None, None,
         "Read the passcode from this file (one trailing newline is stripped)."],
        ["db", None, "chat.db",
         "SQLite file for room history and accounts; :memory: keeps nothing."],
        ["registration", None, "open",
         ("Who creates accounts: open (anyone, with /register) or closed (an operator or "
          "chat-admin only)."), _choice("registration", ("open", "closed"))],
        ["guests", None, "yes",
         "Whether names without an account may log in: yes, or no (registered accounts only).",
         _choice("guests", ("yes", "no"))],
        ["web", None, None,
         ("Serve the browser client (page at /, WebSocket at /ws) here: a port number or "
          "a Twisted endpoint description (tcp:8081, ssl:8443:privateKey=key.pem). [default: off]"),
         endpoint_description],
        ["server-name", None, None,
         "The IRC server's name (in every reply's prefix). [default: the host name]"],
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
        ["max-clients", None, None,
         ("Most connections open at once. [default: 10000, or fewer if the file descriptor "
          "limit (ulimit -n) cannot hold that many]"), _bounded(int, 1)],
        ["max-per-ip", None, 16, "Most connections open at once from one address.",
         _bounded(int, 1)],
        ["idle-timeout", None, 0.0,
         "Seconds without a line after which a logged-in session is closed; 0: never.",
         _bounded(float, 0)],
        ["metrics", None, None,
         ("Serve Prometheus metrics at /metrics and 'ok' at /health here: a port number or "
          "an endpoint description (tcp:9100:interface=127.0.0.1). [default: off]"),
         endpoint_description],
        ["redis", None, None,
         ("Join a cluster of processes sharing this Redis (redis://host:6379/0, rediss:// "
          "for TLS (?ca=ca.pem: a private CA), unix:///path/redis.sock?db=0): several "
          "processes, one chat "
          "(docs/CLUSTER.md). [default: off, one process]")],
        ["node-name", None, None,
         "This process's name in a --redis cluster, for logs. [default: host:pid]"],
        ["redis-heartbeat", None, 5.0,
         ("Seconds between a --redis process's heartbeats; a process silent for four is "
          "taken for dead (its users leave every list). Lower it only for tests."),
         _bounded(float, 0.05, 60)],
        ["config", None, None,
         ("Read options from this TOML file: keys are the long option names "
          "(port = [\"tcp:8080\"], max-line = 2048), lists for options given more than once; "
          "the command line overrides it.")],
    ]

    # Options given more than once; in a config file, lists.  A command line
    # that gives one replaces the file's whole list.
    REPEATABLE = frozenset({"port", "irc", "limit-exempt", "web-origin", "operator"})
    # What the command line's option of each repeatable one fills.
    _LISTS = {"port": "ports", "irc": "ircs", "limit-exempt": "limit-exempt",
              "web-origin": "web-origins", "operator": "operators"}
    # A command line giving either replaces both of the file's.
    _EXCLUSIVE = frozenset({"passcode", "passcode-file"})
    _probing = False  # a parse only to see what the command line gives

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []
        self["ircs"] = []
        self["limit-exempt"] = []
        self["web-origins"] = []
        self["operators"] = []

    def opt_port(self, description: str) -> None:
        self["ports"].append(endpoint_description(description))

    opt_port.__doc__ = (
        "Where the line (telnet) protocol listens: a port number or a Twisted endpoint "
        "description (tcp:8080:interface=127.0.0.1, ssl:6697:privateKey=key.pem:certKey=cert.pem); "
        "may be given more than once. [default: tcp:8080]"
    )

    opt_p = opt_port

    def opt_irc(self, description: str) -> None:
        self["ircs"].append(endpoint_description(description))

    opt_irc.__doc__ = (
        "Serve the IRC client protocol here (irssi, WeeChat, HexChat...): a port number or a "
        "Twisted endpoint description (tcp:6667, ssl:6697:privateKey=key.pem); repeatable. "
        "[default: off]"
    )

    def opt_limit_exempt(self, address: str) -> None:
        self["limit-exempt"].append(address)

    opt_limit_exempt.__doc__ = (
        "An address not held to --max-per-ip (e.g. 127.0.0.1 behind a proxy); "
        "may be given more than once. [default: none; loopback is held to the limit "
        "like any address unless given here]"
    )

    def opt_operator(self, name: str) -> None:
        self["operators"].append(name)

    opt_operator.__doc__ = (
        "An account name made a server operator (as chat-admin op NAME does); "
        "may be given more than once. [default: none]"
    )

    def opt_version(self) -> NoReturn:
        """Show the version of twisted-chat (and of Twisted) and exit."""
        from twisted import __version__ as twisted_version

        print("twisted-chat %s (Twisted %s)" % (__version__, twisted_version))
        sys.exit(0)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Read the C{--config} file, if any, then the command line, which
        overrides it.  Under twistd, a usage error is one line and a hint,
        not all of C{--help} (twistd prints the whole usage before the
        message).
        """
        argv = sys.argv[1:] if options is None else list(options)
        try:
            if self._probing:
                super().parseOptions(argv)
                return
            super().parseOptions(self._from_config_file(argv) + argv)
        except usage.UsageError as e:
            if self.parent is None:  # not under twistd: the caller reports it
                raise
            sys.stderr.write("twistd chat: %s\n(see twistd chat --help)\n" % e)
            sys.exit(1)

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

    def _probe(self, argv: list[str]) -> Options:
        """C{argv} parsed without the checks of L{postOptions}."""
        probe = type(self)()
        probe._probing = True
        probe.parseOptions(argv)
        return probe

    def _from_config_file(self, argv: list[str]) -> list[str]:
        """
        The options of the C{--config} file named in C{argv} (none without
        one), as arguments to put before C{argv}: the file's repeatable
        options that C{argv} also gives are left out.

        @raise usage.UsageError: naming the file and the bad key or value.
        """
        given = self._probe(argv)
        path = given["config"]
        if path is None:
            return []
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except OSError as e:
            raise usage.UsageError("config file %s: %s" % (path, e.strerror)) from None
        except tomllib.TOMLDecodeError as e:
            raise usage.UsageError("config file %s: %s" % (path, e)) from None
        skip = {key for key, field in self._LISTS.items() if given[field]}
        if given["passcode"] is not None or given["passcode-file"] is not None:
            skip |= self._EXCLUSIVE
        args = [arg for key, arg in config_arguments(self, table, path) if key not in skip]
        try:  # the file alone, checked in full: its mistakes named as the file's
            type(self)().parseOptions(args)
        except usage.UsageError as e:
            raise usage.UsageError("config file %s: %s" % (path, e)) from None
        return args

    def postOptions(self) -> None:
        if self._probing:
            return
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
        places = [("--port", port) for port in self["ports"]]
        places += [("--irc", irc) for irc in self["ircs"]]
        if self["web"] is not None:
            places.append(("--web", self["web"]))
        if self["server-name"] is not None and not _SERVER_NAME.match(self["server-name"]):
            raise usage.UsageError(
                "--server-name %r is not a host name like irc.example.com" % self["server-name"])
        if self["metrics"] is not None:
            places.append(("--metrics", self["metrics"]))
        for option, description in places:
            try:
                tcp_address(description)  # the rest is checked when the server is built
            except ValueError as e:
                raise usage.UsageError("%s %s: %s" % (option, description, e)) from None
        if self["redis"] is not None:
            from twisted_chat.cluster.address import parse_url

            try:
                parse_url(self["redis"])
            except ValueError as e:
                raise usage.UsageError("--redis: %s" % e) from None
        if self["node-name"] is not None and not _NODE_NAME.match(self["node-name"]):
            raise usage.UsageError(
                "--node-name %r: use 1 to 64 letters, digits and . _ : -" % self["node-name"])
        clash = overlapping(places)
        if clash is not None:
            raise usage.UsageError(clash)
        self["max-clients-given"] = self["max-clients"] is not None
        if self["max-clients"] is None:
            self["max-clients"] = ChatConfig.max_clients


# An IRC server name: a host name's letters, digits, dots and dashes.
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,62}\Z")

# A cluster node's name: printable, no spaces (it is in logs and stream entries).
_NODE_NAME = re.compile(r"[A-Za-z0-9._:\-]{1,64}\Z")

# Options that are not settings: no config file key.
_NOT_KEYS = frozenset({"help", "version", "config"})


def config_keys(options: usage.Options) -> dict[str, bool]:
    """Every key a config file may hold, and whether it takes a value (else a flag)."""
    keys = {}
    for name in options.longOpt:
        key = name.rstrip("=")
        if key not in _NOT_KEYS:
            keys[key] = name.endswith("=")
    return keys


def config_arguments(
    options: Options, table: dict[str, Any], path: str
) -> list[tuple[str, str]]:
    """
    The command-line arguments a config file's C{table} stands for, each
    with its key.

    @raise usage.UsageError: one line naming C{path} and the first bad key
        or value.
    """
    keys = config_keys(options)
    rows: list[Any] = options.optParameters
    coerce = {row[0]: row[4] for row in rows if len(row) > 4}
    out = []
    for key, value in table.items():
        where = "config file %s" % path
        if key not in keys:
            close = difflib.get_close_matches(key, list(keys), n=1)
            hint = " (did you mean %r?)" % close[0] if close else ""
            raise usage.UsageError("%s: unknown key %r%s" % (where, key, hint))
        if not keys[key]:  # a flag
            if not isinstance(value, bool):
                raise usage.UsageError("%s: %r must be true or false" % (where, key))
            if value:
                out.append((key, "--" + key))
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and key not in options.REPEATABLE:
            raise usage.UsageError("%s: %r takes one value, not a list" % (where, key))
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise usage.UsageError(
                    "%s: %r must be %s" % (where, key, "a list of strings"
                                           if key in options.REPEATABLE
                                           else "a string or a number"))
            text = str(item)
            if key in coerce:
                try:
                    coerce[key](text)
                except ValueError as e:
                    raise usage.UsageError("%s: %s = %s: %s" % (where, key, text, e)) from None
            out.append((key, "--%s=%s" % (key, text)))
    return out


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
        ircs=tuple(options["ircs"]),
        server_name=options["server-name"],
        web_origins=tuple(options["web-origins"]),
        metrics=options["metrics"],
        direct_send=os.environ.get("TWISTED_CHAT_DIRECT_SEND", "1") != "0",
        registration=options["registration"],
        guests=options["guests"] == "yes",
        operators=tuple(options["operators"]),
        redis=options["redis"],
        node_name=options["node-name"],
        redis_heartbeat=options["redis-heartbeat"],
        founder_ops=bool(options["founder-ops"]),
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
    counts = None
    if config.metrics is not None:
        from twisted_chat.metrics.observer import Counts

        counts = Counts()
        if isinstance(history, SQLiteHistory):
            history.observer = counts
    moderation_store = open_moderation(config.db)
    if isinstance(moderation_store, SQLiteModeration):
        moderation_store.check()  # refused now, with one line; read when the service starts
    node = None
    extra: dict[str, Any] = {}
    if config.redis is not None:
        node = _cluster_node(config, reactor)
        from twisted_chat.cluster.wire import factories

        extra["bus"], extra["directory"] = factories(node)
    server = ChatServer(history, reactor, config.history,
                        observer=counts if counts is not None else NULL_OBSERVER,
                        moderation=Moderation(reactor, moderation_store),
                        founder_ops=config.founder_ops, **extra)
    accounts: AccountStore = open_accounts(config.db)
    if isinstance(accounts, SQLiteAccounts):
        accounts.check()  # refused now, with one line; reopened on first use (in the daemon)
        reactor.addSystemEventTrigger("after", "shutdown", accounts.close)
    if node is not None:  # an account made on one process is one on every process
        from twisted_chat.cluster.accounts import ReplicatedAccounts

        accounts = ReplicatedAccounts(accounts, node)
    hasher = Argon2Hasher()
    realm = ChatRealm(server, config.operators)
    gate: ICredentialsChecker
    if config.passcode is None:
        gate = AllowAnonymousAccess()
        log.warn("no --passcode given: anyone who can connect can chat")
    else:
        gate = PasscodeChecker(config.passcode)
    throttle = RecentCount(reactor, ACCOUNT_ATTEMPTS, 60.0)
    portal = Portal(realm, [gate, AccountChecker(accounts, hasher, throttle)])
    context = SessionContext.create(server, portal, config, reactor, accounts, hasher)
    service = ChatService(context, history)
    if node is not None:
        from twisted_chat.cluster.wire import attach

        attach(node, server)
        node.setServiceParent(service)
    factory = ChatLineFactory(context)
    for description in config.ports:
        endpoint = _endpoint(reactor, "--port", description)
        Listener(endpoint, factory, "line protocol", where=_place(description)
                 ).setServiceParent(service)
    if config.web is not None:
        site = build_site(context, config.web_origins)
        scheme = "https" if config.web.startswith("ssl:") else "http"

        def web_listened(address: Any) -> None:
            host = getattr(address, "host", "")
            if ":" in host:
                host = "[%s]" % host
            context.listening["web"] = "%s://%s:%s/" % (scheme, host, address.port)

        Listener(_endpoint(reactor, "--web", config.web), site, "web",
                 where="--web " + _place(config.web), listened=web_listened
                 ).setServiceParent(service)
    if config.ircs:
        from twisted_chat.frontends.irc.protocol import IRCFactory, IRCHub, default_server_name

        hub = IRCHub(config.server_name or default_server_name(), reactor)
        irc_factory = IRCFactory(context, hub)
        for description in config.ircs:
            Listener(_endpoint(reactor, "--irc", description), irc_factory, "IRC",
                     where="--irc " + _place(description)).setServiceParent(service)
    if counts is not None and config.metrics is not None:
        _serve_metrics(service, counts, context, history, config.metrics, reactor)
    return service


def _cluster_node(config: ChatConfig, reactor: Any) -> Any:
    """
    The cluster node for C{--redis} (txredisapi is imported only now).

    @raise ValueError: if txredisapi is missing.
    """
    from twisted_chat.cluster.address import parse_url

    assert config.redis is not None
    address = parse_url(config.redis)
    try:
        import txredisapi  # noqa: F401
    except ImportError as e:
        raise ValueError("--redis needs txredisapi (pip install 'twisted-chat[redis]'): %s"
                         % e) from None
    from twisted_chat.cluster.node import default_node_name
    from twisted_chat.cluster.wire import make_node

    return make_node(address, reactor, config.node_name or default_node_name(),
                     config.redis_heartbeat, config.db)


def _serve_metrics(service: ChatService, counts: Any, context: SessionContext,
                   history: History, description: str, reactor: Any) -> None:
    """Listen on C{--metrics} and time the reactor's ticks while running."""
    from twisted_chat.metrics.prometheus import TickTimer, build_metrics_site, build_registry

    ticks = TickTimer(reactor)
    ticks.setServiceParent(service)
    registry = build_registry(counts, context.server, history, context.limits,
                              context.deadlines, ticks.ticks)
    service.registry = registry
    site: Any = build_metrics_site(registry)  # a Site is a Factory; mypy's stubs disagree
    Listener(_endpoint(reactor, "--metrics", description), site,
             "metrics", where="--metrics " + _place(description)).setServiceParent(service)


# Connections the kernel completes and queues for accept (Twisted's default
# is 50): in a reconnect storm a full queue leaves clients retrying their
# handshake for up to a minute.  The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


def with_backlog(description: str) -> str:
    """C{description} with C{backlog=}L{LISTEN_BACKLOG} if it is TCP or TLS and names none."""
    try:
        args, kwargs = parse_endpoint(description)
    except Exception:  # serverFromString says what is wrong
        return description
    if args and args[0] in ("tcp", "ssl", "tcp6") and "backlog" not in kwargs:
        return "%s:backlog=%d" % (description, LISTEN_BACKLOG)
    return description


def _endpoint(reactor: Any, option: str, description: str) -> Any:
    """
    The endpoint C{description} names (a TCP or TLS one with a deep accept
    queue unless it says otherwise: L{with_backlog}).

    @raise ValueError: for any mistake in it (an unknown kind, a missing
        key file), naming the option.
    """
    try:
        return serverFromString(reactor, with_backlog(description))
    except Exception as e:  # whatever the parser raises is the operator's mistake
        raise ValueError("%s %s: %s" % (option, description, e)) from None


def _place(description: str) -> str:
    """
    How a listening error names an endpoint, briefly (a daemon's error must
    fit in 100 bytes): C{8080}, C{127.0.0.1:8080}, C{ssl:6697}.
    """
    try:
        address = tcp_address(description)
    except ValueError:
        address = None
    if address is None:
        return description[:40]
    port, interface = address
    where = "%s:%d" % ("[%s]" % interface if ":" in interface else interface, port) \
        if interface else str(port)
    return where if description.startswith("tcp") else "ssl:" + where


def _fail(message: str) -> NoReturn:
    """Stop start-up with one line (twistd's log is not running yet)."""
    sys.stderr.write("twistd chat: %s\n" % message)
    raise SystemExit(1)


def settle_heap_when_running() -> None:
    """
    Once the reactor runs, move everything start-up made (modules, the
    service, its tables) to the collector's permanent generation
    (C{gc.freeze}): the full collections that thousands of connections
    bring on then no longer walk the start-up heap.  Only twistd's path
    (the C{chat} plugin) does this; C{TWISTED_CHAT_GC_FREEZE=0} turns it off.
    """
    if os.environ.get(GC_FREEZE_ENV, "1") == "0":
        return
    from twisted.internet import reactor

    cast(Any, reactor).callWhenRunning(gc.freeze)


def makeService(options: Options) -> IService:
    """
    Build the service twistd runs; a database it cannot use, or a file
    descriptor limit too low to serve anyone, stops start-up.
    """
    from twisted.internet import reactor

    config = config_from_options(options)
    try:
        max_clients, note = fit_descriptors(
            config.max_clients if options.get("max-clients-given", True) else None)
    except ValueError as e:
        _fail(str(e))
    if note is not None:
        log.warn("{note}", note=note)
    if max_clients != config.max_clients:
        config = dataclasses.replace(config, max_clients=max_clients)
    try:
        service = build(config, reactor)
    except (HistoryError, AccountError, ModerationError) as e:
        _fail(str(e))
    except ValueError as e:  # a malformed endpoint description
        _fail(str(e))
    # twistd's text log on standard output, a turn's lines written at once
    if twistd_logs_to_stdout(getattr(options, "parent", None)) \
            and os.environ.get(TURN_LOG_ENV, "1") != "0":
        service.log_observer = TurnTextObserver(sys.stdout, reactor)
    return service
