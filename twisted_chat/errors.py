"""
User mistakes and refusals.  C{str(error)} is the text a client sees after
C{"ERROR "}; C{code} is the same error for programs (the JSON C{"code"}, a
stable snake_case string) and C{numeric} its IRC numeric (a 3-digit string).

Anything that is not a L{ChatError} is a bug in the server.
"""

from __future__ import annotations


class ChatError(Exception):
    """
    A mistake by the user; the session answers C{ERROR <str(self)>}.

    @cvar code: what went wrong, for programs.
    @cvar numeric: the IRC numeric reply for it (C{400}: no better one).
    @cvar field: for a refused login, what the user must give again
        (C{"passcode"} or C{"name"}; C{""}: nothing).
    """

    code = "error"
    numeric = "400"
    field = ""


class BadRoom(ChatError):
    """A room name that breaks the room-name rules."""

    code, numeric = "bad_room", "403"


class UnknownCommand(ChatError):
    """A line starting with C{/} that names no command."""

    code, numeric = "unknown_command", "421"


class BadUsage(ChatError):
    """A known command with missing or malformed arguments."""

    code, numeric = "bad_usage", "461"


class NoSuchTarget(ChatError):
    """A private message to nobody online and no room."""

    code, numeric = "no_such_target", "401"


class NotInRoom(ChatError):
    """A message to a room the sender is not in."""

    code, numeric = "not_in_room", "442"


class NotPermitted(ChatError):
    """A command the user may not run (its C{who} is not them)."""

    code, numeric = "not_permitted", "481"


class Flooding(ChatError):
    """More lines (or messages, or pings) than the limits allow: dropped."""

    code = "flood"


class LineTooLong(ChatError):
    """A line (or message) longer than C{--max-line}: dropped whole."""

    code, numeric = "line_too_long", "417"


class WrongProtocol(ChatError):
    """Something that is not this port's protocol (HTTP or TLS at the telnet port)."""

    code = "wrong_protocol"


class TooManyConnections(ChatError):
    """A connection past the connection limits, refused."""

    code = "too_many_connections"


class NotLoggedIn(ChatError):
    """Chat before the login finished."""

    code, numeric = "not_logged_in", "451"


class TimedOut(ChatError):
    """The login or idle deadline passed: the connection is closed."""

    code = "timed_out"


class ServerFailure(ChatError):
    """The server failed (a bug, logged); the user is told, nothing else."""

    code = "server_error"


# -- login ----------------------------------------------------------------------


class LoginRefused(ChatError):
    """
    A login call (C{authenticate}, C{claim}, C{log_in}) did not succeed; the
    session has told the user (and closed the connection if that was the
    end).  C{field} says what to ask for again.
    """

    code = "login_refused"


class WrongPasscode(LoginRefused):
    """The passcode is wrong."""

    code, numeric, field = "wrong_passcode", "464", "passcode"


class TooManyAttempts(LoginRefused):
    """The last wrong passcode a connection may send: it is closed."""

    code, numeric, field = "too_many_attempts", "464", "passcode"


class LockedOut(LoginRefused):
    """The address sent too many wrong passcodes lately: refused at once."""

    code, numeric, field = "locked_out", "464", "passcode"


class BadName(LoginRefused):
    """A username that breaks the name rules."""

    code, numeric, field = "bad_name", "432", "name"


class NameTaken(LoginRefused):
    """A username someone online already has."""

    code, numeric, field = "name_taken", "433", "name"


class TooManyBadNames(LoginRefused):
    """The last bad name a connection may send: it is closed."""

    code, numeric, field = "too_many_bad_names", "432", "name"


class AlreadyLoggedIn(LoginRefused):
    """A login call after the login finished."""

    code, numeric = "already_logged_in", "462"


class LoginClosed(LoginRefused):
    """The session ended (closed, timed out, disconnected) before the answer."""

    code = "closed"


class LoginFailed(LoginRefused):
    """The server failed to check the login (a bug, logged); the session is closed."""

    code = "server_error"


def numeric(code: str) -> str:
    """The IRC numeric of the error kind with C{code} (an L{Error} event's); C{400} if none."""
    global _NUMERICS
    if _NUMERICS is None:
        kinds: list[type[ChatError]] = [ChatError]
        table: dict[str, str] = {}
        while kinds:
            kind = kinds.pop()
            table.setdefault(kind.code, kind.numeric)
            kinds.extend(kind.__subclasses__())
        _NUMERICS = table
    return _NUMERICS.get(code, "400")


_NUMERICS: dict[str, str] | None = None


# -- accounts -------------------------------------------------------------------


class PasswordRequired(LoginRefused):
    """
    The name is a registered account and no password came with it: the
    front end asks for one (telnet: C{Password:}; the browser's page: its
    password field; IRC: C{433}).  Not told as an C{ERROR} by the session.
    """

    code, numeric, field = "password_required", "433", "password"


class WrongPassword(LoginRefused):
    """The password is wrong (or the name has no account): ask for the name again."""

    code, numeric, field = "wrong_password", "464", "name"


class AccountLocked(LoginRefused):
    """The account had too many wrong passwords in the last minute, from anywhere."""

    code, numeric, field = "account_locked", "464", "name"


class AccountRequired(LoginRefused):
    """C{--guests no}: only registered accounts may log in."""

    code, numeric, field = "account_required", "433", "name"


class RegistrationRefused(ChatError):
    """C{/register} or C{/password} refused (closed, throttled, a bad password)."""

    code = "registration_refused"


class BadPassword(RegistrationRefused):
    """A new password that is too short or too long."""

    code, numeric = "bad_password", "461"


# -- moderation -----------------------------------------------------------------


class NotOp(ChatError):
    """A room command (kick, ban, mute, a claimed room's topic) by someone not an op there."""

    code, numeric = "not_op", "482"


class NotOperator(NotPermitted):
    """A server command (kill, gban, gmute, wall) by someone not a server operator."""

    code, numeric = "not_operator", "481"


class Protected(ChatError):
    """A room op acting on a server operator or on the room's owner: refused."""

    code, numeric = "protected", "482"


class BannedFromRoom(ChatError):
    """A join of a room the member is banned from."""

    code, numeric = "banned_from_room", "474"


class Muted(ChatError):
    """A line to a room the member is muted in (or muted server-wide)."""

    code, numeric = "muted", "404"


class NeedAccount(ChatError):
    """Something only accounts may do or be (claim a room, be an op)."""

    code, numeric = "need_account", "477"


class BannedFromServer(LoginRefused):
    """A name or address banned server-wide (C{/gban}): refused at connect or login."""

    code, numeric = "banned_from_server", "465"
