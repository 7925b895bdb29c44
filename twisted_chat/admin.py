"""
C{chat-admin --db PATH}: manage accounts and operators in the server's
database, also while the server runs (SQLite WAL, short transactions, a
busy timeout); the server sees every change at the next login.  It also
lists the bans and mutes (C{bans}), lifts a ban (C{unban}: a running
server keeps the bans it holds until it restarts; lift one live with
C{/unban}) and shows the moderation log (C{modlog}).

Every error is one line on stderr starting C{chat-admin: }; exit status 0
on success, 1 for an error (no such account, a taken name, a database that
cannot be used), 2 for a usage mistake.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from twisted_chat.domain.moderation import Change, parse_target
from twisted_chat.errors import ChatError
from twisted_chat.session.session import PASSWORD_LENGTH
from twisted_chat.storage.accounts import (
    AccountError,
    AccountExists,
    NoSuchAccount,
    SQLiteAccounts,
)
from twisted_chat.storage.moderation import ModerationError, SQLiteModeration
from twisted_chat.text import check_name, room_key

MODERATION_COMMANDS = ("bans", "unban", "modlog")


class AdminError(Exception):
    """A mistake or a failure: one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-admin",
        description="Manage twisted-chat accounts and operators (also while the server runs).")
    parser.add_argument("--db", required=True, metavar="PATH",
                        help="the server's SQLite file (its --db)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="list the accounts (name, operator, created)")
    for name, text in (("add", "create an account (asks for its password)"),
                       ("passwd", "set an account's password (asks for it)")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.add_argument("--password-file", metavar="FILE",
                         help="read the password from FILE's first line instead of asking")
        if name == "add":
            sub.add_argument("--operator", action="store_true",
                             help="make it a server operator too")
    for name, text in (("delete", "delete an account"),
                       ("op", "make an account a server operator"),
                       ("deop", "make an operator an ordinary account")):
        commands.add_parser(name, help=text).add_argument("name")
    bans = commands.add_parser("bans", help="list the bans and mutes (rooms and server-wide)")
    bans.add_argument("--room", metavar="ROOM", help="only this room's")
    unban = commands.add_parser(
        "unban", help="lift a ban (server-wide, or a room's with --room); a running server"
        " keeps it until it restarts")
    unban.add_argument("target", help="a name, an address or a CIDR network")
    unban.add_argument("--room", metavar="ROOM", help="the room banned from")
    modlog = commands.add_parser("modlog", help="the moderation log, newest last")
    modlog.add_argument("--limit", type=int, default=50, metavar="N",
                        help="how many entries (default 50)")
    return parser


def read_password(path: str | None, ask: Callable[[str], str] = getpass.getpass) -> str:
    """The new password: C{path}'s first line, or asked twice on the terminal."""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as e:
            raise AdminError("cannot read %s: %s" % (path, e.strerror)) from None
        except UnicodeDecodeError:
            raise AdminError("%s is not UTF-8 text" % path) from None
    else:
        try:
            password = ask("Password: ")
            if ask("Again: ") != password:
                raise AdminError("the passwords differ; nothing changed")
        except (EOFError, KeyboardInterrupt):
            raise AdminError("no password given; nothing changed") from None
    low, high = PASSWORD_LENGTH
    if not low <= len(password) <= high:
        raise AdminError("a password is %d to %d characters" % (low, high))
    return password


def _hash(password: str) -> str:
    from argon2 import PasswordHasher

    return str(PasswordHasher().hash(password))


def run(argv: Sequence[str], out: TextIO = sys.stdout,
        ask: Callable[[str], str] = getpass.getpass,
        hash: Callable[[str], str] = _hash) -> None:
    """
    Do what C{argv} says.

    @raise AdminError: for anything that went wrong (one line).
    @raise SystemExit: for a usage mistake (argparse's, status 2).
    """
    args = _parser().parse_args(argv)
    if args.db == ":memory:":
        raise AdminError("--db :memory: keeps no accounts; give the server's --db file")
    if not os.path.exists(args.db) and args.command != "add":
        raise AdminError("%s does not exist (give the server's --db file)" % args.db)
    if args.command in MODERATION_COMMANDS:
        moderation = SQLiteModeration(args.db)
        try:
            _moderate(args, moderation, out)
        except ModerationError as e:
            raise AdminError(str(e)) from None
        finally:
            moderation.close()
        return
    store = SQLiteAccounts(args.db)
    try:
        _run(args, store, out, ask, hash)
    except AccountError as e:
        raise AdminError(str(e)) from None
    finally:
        store.close()


def _run(args: Any, store: SQLiteAccounts, out: TextIO,
         ask: Callable[[str], str], hash: Callable[[str], str]) -> None:
    command = args.command
    if command == "list":
        accounts = store.all()
        for each in accounts:
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(each.created))
            out.write("%-20s  %-8s  created %s UTC\n"
                      % (each.name, "operator" if each.operator else "", created))
        out.write("%d account%s\n" % (len(accounts), "" if len(accounts) == 1 else "s"))
        return
    name = args.name
    if command == "add":
        try:
            check_name(name)
        except ChatError as e:
            raise AdminError("cannot add %r: %s" % (name, e)) from None
        # (a new file is made only once the password is good)
        if os.path.exists(args.db) and store.get(name) is not None:
            raise AdminError("%s exists already (passwd changes its password)" % name)
        password = read_password(args.password_file, ask)
        try:
            store.add(name, hash(password), operator=args.operator)
        except AccountExists:
            raise AdminError("%s exists already (passwd changes its password)" % name) from None
        out.write("added %s%s\n" % (name, " (operator)" if args.operator else ""))
        return
    account = store.get(name)
    if account is None:
        raise AdminError("no account named %s (chat-admin list shows them)" % name)
    try:
        if command == "passwd":
            store.set_hash(account.name, hash(read_password(args.password_file, ask)))
            out.write("changed the password of %s\n" % account.name)
        elif command == "delete":
            store.delete(account.name)
            out.write("deleted %s\n" % account.name)
        elif command in ("op", "deop"):
            store.set_operator(account.name, command == "op")
            out.write("%s is %s a server operator\n"
                      % (account.name, "now" if command == "op" else "no longer"))
    except NoSuchAccount:
        raise AdminError("no account named %s (deleted meanwhile)" % name) from None


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def _room_option(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return room_key(text)
    except ChatError as e:
        raise AdminError("bad --room %r: %s" % (text, e)) from None


def _moderate(args: Any, store: SQLiteModeration, out: TextIO) -> None:
    command = args.command
    if command == "modlog":
        if args.limit < 1:
            raise AdminError("--limit is at least 1")
        for change in store.modlog(args.limit):
            where = "#" + change.room if change.room else "server"
            line = "%s UTC  %-10s %-7s %-12s %s" % (
                _when(change.when), change.by or "(expiry)", change.kind, where, change.target)
            if change.until is not None:
                line += "  until %s UTC" % _when(change.until)
            if change.reason:
                line += "  " + change.reason
            out.write(line.rstrip() + "\n")
        return
    room = _room_option(args.room)
    entries = [c for c in store.load() if c.kind in ("ban", "mute")]
    if command == "bans":
        shown = [c for c in entries if room is None or c.room == room]
        for change in shown:
            where = "#" + change.room if change.room else "server"
            until = "until " + _when(change.until) + " UTC" if change.until is not None \
                else "until lifted"
            line = "%-4s  %-12s %-20s by %-10s %s" % (
                change.kind, where, change.target, change.by or "-", until)
            if change.reason:
                line += "  " + change.reason
            out.write(line + "\n")
        out.write("1 ban or mute\n" if len(shown) == 1 else "%d bans and mutes\n" % len(shown))
        return
    try:
        target = parse_target(args.target)
    except ChatError as e:
        raise AdminError(str(e)) from None
    if not any(c.kind == "ban" and c.room == room and c.target == target for c in entries):
        raise AdminError("%s is not banned from %s (chat-admin bans lists the bans)"
                         % (target, "#" + room if room else "the server"))
    store.write(Change("unban", room, target, "chat-admin", None, "", time.time()))
    out.write("lifted the ban on %s %s (a running server keeps it until it restarts;"
              " /unban lifts it live)\n" % (target, "in #" + room if room else "on the server"))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The C{chat-admin} console script."""
    try:
        run(sys.argv[1:] if argv is None else argv)
    except AdminError as e:
        sys.stderr.write("chat-admin: %s\n" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("chat-admin: interrupted; nothing changed\n")
        sys.exit(1)
    sys.exit(0)
