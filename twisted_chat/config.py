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
    """

    ports: tuple[str, ...] = (DEFAULT_PORT,)
    passcode: bytes | None = None
    db: str = "chat.db"
    web: str | None = None
    max_line: int = 1024
    rate: float = 5.0
    burst: int = 10
    history: int = 20
    sendq: int = 1 << 20
    login_timeout: float = 30.0
    login_attempts: int = 3
