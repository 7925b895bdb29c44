"""
JSON logs for twistd's C{--logger}: one JSON object per line, with the
event's own fields, so logins, refusals and errors can be searched and
counted by a log shipper without parsing text.

    twistd -n --logger twisted_chat.logs.json_observer chat ...
        JSON lines on standard output instead of text (journald, Docker).
    twistd -n --logger twisted_chat.logs.text_and_json_observer chat ...
        the usual text log on standard output, and JSON lines appended to
        the file named by C{$TWISTED_CHAT_JSON_LOG} (default: C{chat.log.json}
        in the working directory).

Each object has C{time} (ISO 8601, UTC), C{level}, C{namespace} (the logging
class), C{text} (the line as the text log shows it), C{event} (the format
string: the same for every login, every refusal...), every field the code
logged (C{name}, C{peer}, C{host}, C{why}...) and, for an error, the
C{traceback}.  Values that are not JSON types are written as strings.

The text log itself (twistd's format, which operators grep) is written by
L{TurnTextObserver} when twistd would write it to standard output
(C{twistd -n} without C{--logfile}, C{--logger} or C{--syslog}): the same
lines as twistd's own observer, but each second's time stamp formatted
once and the lines of one reactor turn written (and flushed) together,
which made the log line of a login about a fifth of its cost.  Lines
logged while the reactor is not running, and failures, are written at
once; what is buffered is written when the reactor shuts down and at
exit, so a SIGTERM loses nothing.  C{TWISTED_CHAT_TURN_LOG=0} keeps
twistd's own observer.
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import string
import sys
import threading
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
    textFileLogObserver,
)
from zope.interface import implementer

JSON_LOG_ENV = "TWISTED_CHAT_JSON_LOG"
TURN_LOG_ENV = "TWISTED_CHAT_TURN_LOG"
DEFAULT_JSON_LOG = "chat.log.json"
# Event keys that are Twisted's bookkeeping, not fields the code logged.
_OWN = frozenset({"log_format", "log_level", "log_namespace", "log_time", "log_failure",
                  "log_logger", "log_source", "log_system", "log_io", "log_text",
                  "log_trace", "log_flattened", "format", "message", "isError", "system",
                  "failure"})
_BUILTIN = ("time", "level", "namespace", "text", "event", "traceback")


def _value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def event_as_json(event: LogEvent) -> str:
    """One log event as one line of JSON (without the newline)."""
    when = event.get("log_time")
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(
            timespec="milliseconds") if when is not None else None,
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "text": formatEvent(event),
        "event": event.get("log_format") or "",
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
        if record["level"] == "info":  # a legacy err() without a level
            record["level"] = "critical"
    for key, value in event.items():
        if key.startswith("log_") or key in _OWN:
            continue
        record[key if key not in _BUILTIN else "field_" + key] = _value(value)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def json_file_observer(out: IO[str]) -> FileLogObserver:
    """An observer writing each event to C{out} as one line of JSON."""
    return FileLogObserver(out, lambda event: event_as_json(event) + "\n")


def json_observer() -> ILogObserver:
    """For C{twistd --logger}: JSON lines on standard output."""
    return json_file_observer(sys.stdout)


@implementer(ILogObserver)
class _Both:
    """Hands each event to every observer it holds."""

    def __init__(self, *observers: ILogObserver) -> None:
        self._observers = observers

    def __call__(self, event: LogEvent) -> None:
        for observer in self._observers:
            observer(event)


def text_and_json_observer() -> ILogObserver:
    """
    For C{twistd --logger}: the text log on standard output (as twistd
    writes it without C{--logger}) and JSON lines appended to
    C{$TWISTED_CHAT_JSON_LOG} (default C{chat.log.json}).
    """
    path = os.environ.get(JSON_LOG_ENV) or DEFAULT_JSON_LOG
    try:
        out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open for the run)
    except OSError as e:
        sys.stderr.write("twistd chat: cannot write the JSON log %s: %s\n" % (path, e.strerror))
        raise SystemExit(1) from None
    return _Both(textFileLogObserver(sys.stdout), json_file_observer(out))


def _simple_fields(log_format: str) -> bool:
    """
    Whether every field of C{log_format} is a plain C{{name}} (no
    attribute, index, call, conversion or spec): then C{str.format_map}
    on the event writes exactly what Twisted's C{formatEvent} does.
    """
    try:
        for _, field, spec, conversion in string.Formatter().parse(log_format):
            if field is not None and (not field.isidentifier() or spec or conversion):
                return False
    except ValueError:
        return False
    return True


@implementer(ILogObserver)
class TurnTextObserver:
    """
    twistd's text log lines (C{formatEventAsClassicLogText}), written once
    per reactor turn: the lines of a turn are gathered and written and
    flushed together at its end.  The time stamp is formatted once a
    second.  A failure, a line logged from another thread or while the
    reactor is not running is written at once (with what is gathered);
    the reactor's shutdown and the process's exit write the rest.

    @param out: the text file to write to.
    @param reactor: the reactor (C{running}, C{callLater},
        C{addSystemEventTrigger}); the global one by default.
    @param at_exit: registers a call for the process's exit.
    """

    def __init__(self, out: IO[str], reactor: Any = None,
                 at_exit: Any = atexit.register) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor
            reactor = global_reactor
        self._out = out
        self._reactor = reactor
        self._lines: list[str] = []
        self._scheduled = False
        # Re-entrant: a signal handler (twistd's SIGTERM logs a line) runs
        # in the reactor's thread, possibly while this observer holds it.
        self._lock = threading.RLock()
        self._thread = threading.get_ident()  # the reactor's: it is made there
        self._second = -1
        self._stamp = ""
        self._simple: dict[str, bool] = {}
        reactor.addSystemEventTrigger("after", "shutdown", self.flush)
        at_exit(self.flush)

    def time_stamp(self, when: float | None) -> str:
        """C{formatTime(when)}, formatted once a second."""
        if when is None:
            return formatTime(when)
        second = int(when)
        if when - second >= 0.999999:  # fromtimestamp may round it up to the next second
            return formatTime(when)
        if second != self._second:
            self._second = second
            self._stamp = formatTime(when)
        return self._stamp

    def format(self, event: LogEvent) -> str | None:
        """One event as twistd's text log writes it (with its newline), or C{None}."""
        log_format = event.get("log_format")
        if (type(log_format) is str and "log_failure" not in event
                and "log_flattened" not in event):
            simple = self._simple.get(log_format)
            if simple is None:
                simple = self._simple[log_format] = _simple_fields(log_format)
            if simple:
                try:
                    text = log_format.format_map(event)
                except Exception:  # a missing field: Twisted says so its way
                    text = None
                if text is not None:
                    if not text:
                        return None
                    system = event.get("log_system")
                    if system is None:
                        level = event.get("log_level")
                        system = "%s#%s" % (event.get("log_namespace", "-"),
                                            "-" if level is None else level.name)
                    elif type(system) is not str:
                        return formatEventAsClassicLogText(event, self.time_stamp)
                    return "%s [%s] %s\n" % (self.time_stamp(event.get("log_time")), system,
                                             text.replace("\n", "\n\t"))
        return formatEventAsClassicLogText(event, self.time_stamp)

    def __call__(self, event: LogEvent) -> None:
        text = self.format(event)
        if not text:
            return
        with self._lock:
            self._lines.append(text)
            if (threading.get_ident() == self._thread and self._reactor.running
                    and "log_failure" not in event):
                if not self._scheduled:
                    self._scheduled = True
                    self._reactor.callLater(0, self.flush)
                return
        self.flush()

    def flush(self) -> None:
        """Write and flush what was gathered."""
        with self._lock:
            self._scheduled = False
            lines, self._lines = self._lines, []
            if lines:
                self._out.write("".join(lines))
                self._out.flush()


def turn_text_observer() -> ILogObserver:
    """For C{twistd --logger}: L{TurnTextObserver} on standard output."""
    return TurnTextObserver(sys.stdout)


def twistd_logs_to_stdout(twistd_options: Any) -> bool:
    """
    Whether twistd, run with C{twistd_options} (the chat options' parent),
    would write its text log to standard output with its own observer:
    C{-n}, and no C{--logfile} (or C{-}), C{--logger} or C{--syslog}.
    """
    if twistd_options is None or not hasattr(twistd_options, "get"):
        return False
    return (bool(twistd_options.get("nodaemon")) and not twistd_options.get("logger")
            and not twistd_options.get("syslog")
            and twistd_options.get("logfile") in (None, "", "-"))
