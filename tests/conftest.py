"""
Keeps the fast tier honest under pytest: a test not marked C{e2e} that opens
an internet socket or starts a process fails at once, saying to mark it.

(C{python -m pytest -m "not e2e"} is the fast tier.  Under trial markers are
inert attributes and this file is not read.)
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_INTERNET = (socket.AF_INET, socket.AF_INET6)


class UnmarkedEndToEnd(AssertionError):
    """A test that is not marked C{e2e} opened a socket or started a process."""


def _refuse(what: str) -> None:
    raise UnmarkedEndToEnd(
        "%s in a test not marked e2e: mark it @pytest.mark.e2e (or pytestmark = "
        "pytest.mark.e2e for a module), or drive it with StringTransport/Clock" % what
    )


def _guard_socket(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(self: socket.socket, *args: Any) -> Any:
        if self.family in _INTERNET:
            _refuse("socket %s()" % name)
        return original(self, *args)

    return guarded


def _guard_call(what: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _refuse(what)

    return guarded


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Guard the setup, call and teardown of every test not marked C{e2e}."""
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    patch = pytest.MonkeyPatch()
    for name in ("bind", "connect", "connect_ex"):
        patch.setattr(socket.socket, name, _guard_socket(name, getattr(socket.socket, name)))
    patch.setattr(subprocess.Popen, "_execute_child", _guard_call("subprocess"))
    for name in ("fork", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            patch.setattr(os, name, _guard_call("os.%s()" % name))
    try:
        yield
    finally:
        patch.undo()
