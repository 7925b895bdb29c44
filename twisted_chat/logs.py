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
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    formatEvent,
    textFileLogObserver,
)
from zope.interface import implementer

JSON_LOG_ENV = "TWISTED_CHAT_JSON_LOG"
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
