"""
L{result_now}: the value of a Deferred that has fired already, so a caller
can run its callback directly instead of through C{addCallbacks} (a login
makes several Deferreds that have all fired by the time they are returned:
the passcode checker's, the realm's, the directory's name claim).
Failures, and Deferreds that have not fired, go the Deferred way as before.
"""

from __future__ import annotations

from typing import Any, Final

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class _NotYet:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_YET"


NOT_YET: Final = _NotYet()


def result_now(d: Deferred[Any]) -> Any:
    """
    The value C{d} fired with, if it fired with one (not a L{Failure}) and
    is not paused (a fired Deferred that is not paused has run every
    callback added so far: C{result} is its outcome); else L{NOT_YET}.
    C{d} keeps its result: the caller takes the place of the callbacks it
    would have added.
    """
    if d.called and not d.paused:
        result = d.result
        if not isinstance(result, Failure):
            return result
    return NOT_YET
