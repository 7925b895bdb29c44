"""
Where Redis is: C{--redis URL} parsed (no txredisapi needed to check it).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS

# How long a connection attempt may take.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is, from C{--redis}: C{redis://[user:password@]host[:port][/db]},
    C{rediss://} (TLS; the server's certificate checked against the system's
    CAs, or C{?ca=/path/ca.pem}'s), or C{unix:///path/redis.sock[?db=N]}."""

    scheme: str
    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    ca: str | None = None  # rediss: trust this CA file (PEM) instead of the system's

    def endpoint(self, reactor: Any) -> IStreamClientEndpoint:
        """The client endpoint that reaches it."""
        if self.scheme == "unix":
            return UNIXClientEndpoint(reactor, self.path, timeout=CONNECT_TIMEOUT)
        tcp = HostnameEndpoint(reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        if self.scheme == "rediss":
            if self.ca is None:
                return wrapClientTLS(optionsForClientTLS(self.host), tcp)
            from twisted.internet.ssl import Certificate

            with open(self.ca, "rb") as f:
                trust = Certificate.loadPEM(f.read())
            return wrapClientTLS(optionsForClientTLS(self.host, trustRoot=trust), tcp)
        return tcp

    def __str__(self) -> str:
        """Where, without the password (for the log)."""
        if self.scheme == "unix":
            return "unix://%s (db %d)" % (self.path, self.db)
        return "%s://%s:%d/%d" % (self.scheme, self.host, self.port, self.db)


def parse_url(url: str) -> RedisAddress:
    """
    @raise ValueError: with a message for people.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError("%r is not a Redis URL (redis://host:port/N, rediss://..., "
                         "unix:///path)" % url)
    query = urllib.parse.parse_qs(parts.query)
    username = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    db_text = query.get("db", [""])[0]
    if scheme == "unix":
        if not parts.path:
            raise ValueError("%r names no socket path (unix:///path/redis.sock)" % url)
        path = parts.path
    else:
        path = ""
        if parts.path.strip("/"):
            db_text = parts.path.strip("/")
    db = 0
    if db_text:
        if not db_text.isdigit():
            raise ValueError("%r: the database must be a number, not %r" % (url, db_text))
        db = int(db_text)
    if scheme == "unix":
        return RedisAddress(scheme, path=path, db=db, username=username, password=password)
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("%r has a bad port number" % url) from None
    ca = query.get("ca", [None])[0]
    if ca is not None:
        if scheme != "rediss":
            raise ValueError("%r: ?ca= is for rediss:// (TLS) only" % url)
        if not os.path.isfile(ca):
            raise ValueError("%r: no CA file %s" % (url, ca))
    return RedisAddress(scheme, parts.hostname or "127.0.0.1", port, "", db, username, password,
                        ca)
