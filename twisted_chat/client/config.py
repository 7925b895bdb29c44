"""
The command line of C{chat-client}: options, checked, into a L{ClientConfig}.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from twisted_chat.errors import BadName
from twisted_chat.text import check_name

PROGRAM = "chat-client"


@dataclass(frozen=True)
class ClientConfig:
    """Everything the command line says, checked."""

    host: str = "127.0.0.1"
    port: int = 8080
    name: str | None = None
    passcode: str | None = None
    password: str | None = None
    tls: bool = False
    ca: str | None = None
    plain: bool = False


class UsageError(Exception):
    """A bad command line; C{str(error)} says what is wrong."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Terminal client for twisted-chat. Full-screen on a terminal; "
        "line in, line out when input or output is piped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server host (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="server port (default %(default)s)")
    parser.add_argument("--name", "--username", dest="name", help="your username")
    parser.add_argument(
        "--passcode", help="the server passcode (visible in ps; see --passcode-file)"
    )
    parser.add_argument(
        "--passcode-file",
        metavar="PATH",
        help="read the passcode from this file (one trailing newline is stripped)",
    )
    parser.add_argument(
        "--password", help="your account's password (visible in ps; see --password-file)"
    )
    parser.add_argument(
        "--password-file",
        metavar="PATH",
        help="read your account's password from this file (one trailing newline is stripped)",
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca", metavar="FILE", help="trust this PEM certificate (with --tls)")
    parser.add_argument(
        "--plain", action="store_true", help="line mode even on a terminal (no full-screen UI)"
    )
    return parser


def _secret(what: str, given: str | None, path: str | None) -> str | None:
    """C{--what}, or C{--what-file}'s text without one trailing newline."""
    if given is not None and path is not None:
        raise UsageError("use --%s or --%s-file, not both" % (what, what))
    if path is None:
        return given
    try:
        secret = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError("cannot read %s file: %s" % (what, error)) from None
    if secret.endswith("\r\n"):
        return secret[:-2]
    if secret.endswith("\n"):
        return secret[:-1]
    return secret


def parse_args(argv: Sequence[str]) -> ClientConfig:
    """
    Turn the command line into a L{ClientConfig}.

    @raise UsageError: for anything argparse accepts but we do not.
    @raise SystemExit: from argparse itself (bad syntax, C{--help}).
    """
    args = _parser().parse_args(list(argv))
    passcode = _secret("passcode", args.passcode, args.passcode_file)
    password = _secret("password", args.password, args.password_file)
    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.ca is not None and not args.tls:
        raise UsageError("--ca only makes sense with --tls")
    if args.ca is not None and not Path(args.ca).is_file():
        raise UsageError("--ca: no such file: %s" % args.ca)
    if args.name is not None:
        try:
            check_name(args.name)
        except BadName as error:
            raise UsageError("--name: %s" % (error,)) from None
    return ClientConfig(
        host=args.host,
        port=args.port,
        name=args.name,
        passcode=passcode,
        password=password,
        tls=args.tls,
        ca=args.ca,
        plain=args.plain,
    )
