"""
An irctest controller for twisted-chat's IRC front end (SPEC section 6).

irctest (https://github.com/progval/irctest) is not part of this project and
nothing in CI uses it: this file only runs inside a local irctest checkout.
Link it into that checkout's controllers and point irctest at it (see
docs/IRCTEST.md):

    ln -s "$PWD/tools/irctest_controller.py" ~/irctest/irctest/controllers/twisted_chat.py
    cd ~/irctest && .venv/bin/python -m pytest --controller irctest.controllers.twisted_chat \\
        -m 'not services and not implementation-specific and not deprecated and not strict' \\
        irctest/server_tests

It starts C{twistd -n chat} from a virtualenv: C{$TWISTED_CHAT_VENV}, or else
the C{.venv} of the checkout this file lives in (through the symlink), or else
the C{twistd} on C{$PATH}.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities

SERVER_NAME = "My.Little.Server"  # the name irctest's tests expect


def find_twistd() -> str:
    """The twistd to run: from C{$TWISTED_CHAT_VENV}, this checkout's .venv, or C{$PATH}."""
    venv = os.environ.get("TWISTED_CHAT_VENV")
    if venv:
        return str(Path(venv) / "bin" / "twistd")
    # resolve(): through the symlink in irctest/controllers/ to tools/ in our checkout
    local = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "twistd"
    if local.exists():
        return str(local)
    found = shutil.which("twistd")
    if found is None:
        raise RuntimeError("no twistd: set TWISTED_CHAT_VENV to a venv with twisted-chat")
    return found


class TwistedChatController(BaseServerController, DirectoryBasedController):
    """Runs C{twistd -n chat --irc ...} in a temporary directory, one per test."""

    software_name = "twisted-chat"
    # IRC SASL PLAIN against the server's own accounts (SPEC 7); irctest's
    # "services" are built in: registerUser adds an account with chat-admin.
    supported_sasl_mechanisms: frozenset[str] = frozenset({"PLAIN"})
    supports_sts = False
    # Mutes are the extban m: (MODE #chan +b m:nick!*@*), as ergo's and InspIRCd's.
    extban_mute_char = "m"
    # The capabilities SPEC 6 requires, and those we offer besides.  irctest
    # skips a test whose CAP REQ is NAKed only for capabilities *not* listed
    # here, so a regression in one of these fails instead of hiding as a skip.
    capabilities = frozenset(
        {
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_MONITOR,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        }
    )
    # The 005 tokens SPEC 6 requires, checked by isupport.py's testValues.
    isupport: ClassVar[dict[str, str | None]] = {
        "CASEMAPPING": "ascii",
        "CHANTYPES": "#",
        "NICKLEN": "20",
        "CHANNELLEN": "33",
        "UTF8ONLY": None,
        "MONITOR": "100",
        "WHOX": None,
    }
    # irctest's oper tests send "OPER operuser operpassword": run() makes
    # that account, an operator, with chat-admin before the server starts.

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None,
        websocket_port: int | None,
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory is not None

        if ssl:
            self.gen_ssl()
            irc = (
                f"ssl:{port}:interface={hostname}"
                f":privateKey={self.key_path}:certKey={self.pem_path}"
            )
        else:
            irc = f"tcp:{port}:interface={hostname}"

        path = self.directory / "operpassword"
        path.write_text("operpassword\n")
        subprocess.run([str(Path(find_twistd()).parent / "chat-admin"), "--db",
                        str(self.directory / "chat.db"), "add", "operuser", "--operator",
                        "--password-file", str(path)], check=True, capture_output=True)

        command = [
            find_twistd(),
            "-n",
            "--pidfile=",  # one server per test, all in temporary directories
            "chat",
            "--irc", irc,
            "--port", "tcp:0:interface=127.0.0.1",  # telnet: any free port, unused here
            "--server-name", SERVER_NAME,
            # a file: chat-admin (registerUser) adds accounts to it while we run
            "--db", str(self.directory / "chat.db"),
            # irctest sends lines as fast as it can and connects many clients
            # from 127.0.0.1: no flood limit, no per-address limit.
            "--rate", "0",
            "--limit-exempt", "127.0.0.1",
            # irctest expects a channel's creator to be its op (SPEC 8's
            # default is an unclaimed room with no ops): IRC's habit.
            "--founder-ops",
        ]
        if password is not None:
            # irctest's "password" is the server password: our passcode
            # (PASS <passcode>; 464 when wrong or missing).  A file keeps it
            # out of ps, as an operator would run it.
            with self.open_file("passcode", "w") as f:
                f.write(password + "\n")
            command += ["--passcode-file", str(self.directory / "passcode")]

        if faketime and shutil.which("faketime"):
            command = ["faketime", "-f", faketime, *command]
            self.faketime_enabled = True

        self.proc = self.execute(command, cwd=self.directory, proc_name="twistd")

    def wait_for_services(self) -> None:
        """The accounts are the server's own: nothing to wait for."""

    def registerUser(  # noqa: N802 (irctest's name)
        self, case: Any, username: str, password: str | None = None
    ) -> None:
        """
        An account through C{chat-admin --db ... add NAME --password-file}.
        irctest's passwords are often shorter than ours may be (8 to 128
        characters, a policy of registration, not of SASL): those are
        stored through the same store and hasher, beside the policy.
        """
        assert self.directory is not None and password is not None
        db = str(self.directory / "chat.db")
        bindir = Path(find_twistd()).parent
        if 8 <= len(password) <= 128:
            path = self.directory / ("password-" + username)
            path.write_text(password + "\n")
            subprocess.run([str(bindir / "chat-admin"), "--db", db, "add", username,
                            "--password-file", str(path)], check=True, capture_output=True)
            return
        script = ("import sys; from twisted_chat.admin import _hash; "
                  "from twisted_chat.storage.accounts import SQLiteAccounts; "
                  "SQLiteAccounts(sys.argv[1]).add(sys.argv[2], _hash(sys.stdin.read()))")
        subprocess.run([str(bindir / "python"), "-c", script, db, username],
                       input=password.encode("utf-8"), check=True, capture_output=True)


def get_irctest_controller_class() -> type[TwistedChatController]:
    """What irctest's --controller loads."""
    return TwistedChatController
