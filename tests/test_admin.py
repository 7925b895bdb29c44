"""chat-admin against a temporary database (SPEC 7)."""

from __future__ import annotations

import io
import os
import sqlite3

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_chat.admin import AdminError, run
from twisted_chat.domain.moderation import Change, Moderation
from twisted_chat.storage.accounts import SQLiteAccounts
from twisted_chat.storage.history import SQLiteHistory
from twisted_chat.storage.moderation import SQLiteModeration

from .helpers import temp_dir


def fake_hash(password: str) -> str:
    return "fake1$" + password


class AdminTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = temp_dir(self)
        self.db = os.path.join(self.dir, "chat.db")
        self.secret = os.path.join(self.dir, "secret")
        with open(self.secret, "w") as f:
            f.write("correct horse\n")

    def admin(self, *argv: str, answers: tuple[str, ...] = ()) -> str:
        out = io.StringIO()
        given = list(answers)
        run(["--db", self.db, *argv], out=out, ask=lambda prompt: given.pop(0),
            hash=fake_hash)
        return out.getvalue()

    def account(self, name: str) -> object:
        store = SQLiteAccounts(self.db)
        self.addCleanup(store.close)
        return store.get(name)

    def test_add_list_op_deop_passwd_delete(self) -> None:
        self.assertEqual(self.admin("add", "alice", "--password-file", self.secret),
                         "added alice\n")
        self.assertEqual(self.account("alice").hash, "fake1$correct horse")  # type: ignore
        self.assertEqual(self.admin("add", "bob", answers=("password1", "password1")),
                         "added bob\n")
        self.assertEqual(self.admin("op", "ALICE"), "alice is now a server operator\n")
        listing = self.admin("list").splitlines()
        self.assertEqual(len(listing), 3)
        self.assertTrue(listing[0].startswith("alice") and "operator" in listing[0])
        self.assertNotIn("operator", listing[1])
        self.assertEqual(listing[2], "2 accounts")
        self.assertEqual(self.admin("deop", "alice"), "alice is no longer a server operator\n")
        self.assertEqual(self.admin("passwd", "bob", answers=("password2", "password2")),
                         "changed the password of bob\n")
        self.assertEqual(self.account("bob").hash, "fake1$password2")  # type: ignore
        self.assertEqual(self.admin("delete", "bob"), "deleted bob\n")
        self.assertIsNone(self.account("bob"))

    def test_errors(self) -> None:
        self.assertRaisesRegex(AdminError, "does not exist", self.admin, "list")
        self.assertRaisesRegex(AdminError, "a password is 8 to 128 characters", self.admin,
                               "add", "bob", answers=("short", "short"))
        self.assertFalse(os.path.exists(self.db))  # no stray file for a mistake
        self.admin("add", "alice", "--password-file", self.secret)
        for argv, answers, message in [
            (("add", "Alice", "--password-file", self.secret), (), "exists already"),
            (("add", "no way", "--password-file", self.secret), (), "cannot add 'no way'"),
            (("add", "admin", "--password-file", self.secret), (), "reserved"),
            (("add", "bob"), ("password1", "password2"), "the passwords differ"),
            (("add", "bob"), ("short", "short"), "a password is 8 to 128 characters"),
            (("add", "bob", "--password-file", "/nonexistent/x"), (), "cannot read"),
            (("passwd", "carol"), (), "no account named carol"),
            (("delete", "carol"), (), "no account named carol"),
            (("op", "carol"), (), "no account named carol"),
        ]:
            self.assertRaisesRegex(AdminError, message, self.admin, *argv, answers=answers)
        self.assertIsNone(self.account("bob"))

    def test_history_opens_a_database_chat_admin_created(self) -> None:
        self.admin("add", "alice", "--password-file", self.secret)
        SQLiteHistory(self.db, Clock(), connect=False).check()
        self.assertIsNotNone(self.account("alice"))

    def test_no_clear_text_in_the_file(self) -> None:
        run(["--db", self.db, "add", "alice", "--password-file", self.secret],
            out=io.StringIO())  # the real argon2id
        with open(self.db, "rb") as f:
            self.assertNotIn(b"correct horse", f.read())
        db = sqlite3.connect(self.db)
        self.addCleanup(db.close)
        (hash,) = db.execute("SELECT hash FROM accounts").fetchone()
        self.assertTrue(hash.startswith("$argon2id$"))


class ModerationAdminTests(SynchronousTestCase):
    """chat-admin bans, unban and modlog (SPEC 8)."""

    def setUp(self) -> None:
        self.db = os.path.join(temp_dir(self), "chat.db")
        store = SQLiteModeration(self.db)
        for change in [
            Change("ban", "den", "troll", "alice", None, "spam", 1_700_000_000.0),
            Change("ban", None, "198.51.100.0/24", "root", 1_700_003_600.0, "", 1_700_000_000.0),
            Change("mute", "den", "eve", "alice", None, "", 1_700_000_000.0),
            Change("kick", "den", "troll", "alice", None, "bye", 1_700_000_000.0),
        ]:
            store.write(change)
        store.close()

    def admin(self, *argv: str) -> str:
        out = io.StringIO()
        run(["--db", self.db, *argv], out=out)
        return out.getvalue()

    def test_bans(self) -> None:
        listing = self.admin("bans").splitlines()
        self.assertEqual(len(listing), 4)
        self.assertEqual(listing[0].split()[:3], ["ban", "#den", "troll"])
        self.assertIn("until lifted  spam", listing[0])
        self.assertEqual(listing[1].split()[:3], ["ban", "server", "198.51.100.0/24"])
        self.assertIn("until 2023-11-14 23:13 UTC", listing[1])
        self.assertEqual(listing[2].split()[:3], ["mute", "#den", "eve"])
        self.assertEqual(listing[3], "3 bans and mutes")
        self.assertEqual(self.admin("bans", "--room", "#DEN").splitlines()[-1],
                         "2 bans and mutes")

    def test_unban(self) -> None:
        self.assertIn("lifted the ban on 198.51.100.0/24 on the server",
                      self.admin("unban", "198.51.100.9/24"))
        self.assertIn("lifted the ban on troll in #den",
                      self.admin("unban", "Troll", "--room", "den"))
        self.assertEqual(self.admin("bans").splitlines()[-1], "1 ban or mute")
        error = self.assertRaises(AdminError, self.admin, "unban", "troll", "--room", "den")
        self.assertEqual(str(error),
                         "troll is not banned from #den (chat-admin bans lists the bans)")
        error = self.assertRaises(AdminError, self.admin, "unban", "*!*@*")
        self.assertIn("a target is a name", str(error))
        error = self.assertRaises(AdminError, self.admin, "unban", "x", "--room", "#bad room")
        self.assertIn("bad --room", str(error))
        # the server reads the same state at its next start
        moderation = Moderation(Clock(), SQLiteModeration(self.db))
        moderation.load()
        self.assertEqual(moderation.bans("den"), [])
        self.assertEqual(moderation.bans(None), [])
        moderation.stop()

    def test_modlog(self) -> None:
        self.admin("unban", "troll", "--room", "den")
        log = self.admin("modlog").splitlines()
        self.assertEqual(len(log), 5)
        self.assertEqual(log[0].split()[3:7], ["alice", "ban", "#den", "troll"])
        self.assertTrue(log[0].endswith("spam"))
        self.assertEqual(log[3].split()[3:], ["alice", "kick", "#den", "troll", "bye"])
        self.assertEqual(log[4].split()[3:7], ["chat-admin", "unban", "#den", "troll"])
        self.assertEqual(len(self.admin("modlog", "--limit", "2").splitlines()), 2)
        self.assertRaises(AdminError, self.admin, "modlog", "--limit", "0")

    def test_missing_db(self) -> None:
        error = self.assertRaises(AdminError, run, ["--db", self.db + ".nope", "bans"])
        self.assertIn("does not exist", str(error))
