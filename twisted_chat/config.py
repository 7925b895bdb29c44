"""The server's settings, as one frozen value built from the command line."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = "tcp:8080"


@dataclass(frozen=True)
class ChatConfig:
    """
    Every setting of a running server; SPEC section 1 documents them.

    @ivar passcode: the shared secret, or C{None} for an open server.
    @ivar rate: lines a second allowed per connection after login (0: no limit).
    @ivar sendq: bytes of unsent output after which a client that stopped
        reading is disconnected.
    @ivar limit_exempt: addresses not held to C{max_per_ip}.
    @ivar web: where the browser client is served (C{--web}), or C{None}.
    @ivar ircs: where the IRC front end listens (C{--irc}, repeatable).
    @ivar server_name: the IRC server's name (C{--server-name}; C{None}: the host name).
    @ivar web_origins: page origins, besides the server's own, allowed to
        open the WebSocket (C{--web-origin}).
    @ivar idle_timeout: seconds without a line after which a logged-in
        session is closed (0: never).
    @ivar metrics: where Prometheus metrics are served (C{--metrics}), or C{None}.
    @ivar direct_send: whether the line protocol sends each plain-TCP
        connection's output of a reactor turn with one direct C{send}
        (L{twisted_chat.frontends.line.fastwrite}); C{False} (env
        C{TWISTED_CHAT_DIRECT_SEND=0}) writes through C{transport.write} only.
    @ivar registration: C{"open"} (anyone may C{/register}) or C{"closed"}
        (only an operator or C{chat-admin} creates accounts).
    @ivar guests: whether names without an account may log in.
    @ivar operators: account names made server operators (C{--operator}).
    @ivar redis: the Redis URL of a cluster (C{--redis}), or C{None}: one process.
    @ivar node_name: this process's name in the cluster (C{--node-name}; C{None}: host:pid).
    @ivar redis_heartbeat: seconds between a cluster process's heartbeats (a
        dead process's users leave everyone's lists after four).
    @ivar founder_ops: the first member of an empty unclaimed room is its op
        until the room empties (C{--founder-ops}).
    """

    ports: tuple[str, ...] = (DEFAULT_PORT,)
    passcode: bytes | None = None
    db: str = "chat.db"
    web: str | None = None
    ircs: tuple[str, ...] = ()
    server_name: str | None = None
    web_origins: tuple[str, ...] = ()
    max_line: int = 1024
    rate: float = 5.0
    burst: int = 10
    history: int = 20
    sendq: int = 1 << 20
    login_timeout: float = 30.0
    login_attempts: int = 3
    max_clients: int = 10_000
    max_per_ip: int = 16
    limit_exempt: tuple[str, ...] = ()
    idle_timeout: float = 0.0
    metrics: str | None = None
    direct_send: bool = True
    registration: str = "open"
    guests: bool = True
    operators: tuple[str, ...] = ()
    redis: str | None = None
    node_name: str | None = None
    redis_heartbeat: float = 5.0
    founder_ops: bool = False
