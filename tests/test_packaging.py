"""
The packaging: what `pip install .` (the README's first command) installs.

An editable install finds every package on the checkout's path, so a package
missing from setup.cfg only breaks a plain install; this catches it without
building one.
"""

from __future__ import annotations

import configparser
import os

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def package_dirs() -> set[str]:
    found = set()
    top = os.path.join(ROOT, "twisted_chat")
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        if "__init__.py" in files:
            found.add(os.path.relpath(directory, ROOT).replace(os.sep, "."))
    return found


class PackagingTests(SynchronousTestCase):
    def test_every_package_listed(self) -> None:
        """Each twisted_chat package is in setup.cfg's list (a plain install has it)."""
        missing = package_dirs() - listed_packages()
        self.assertEqual(missing, set(), "add to setup.cfg [options] packages")

    def test_listed_packages_exist(self) -> None:
        stale = {name for name in listed_packages() - package_dirs()
                 if name.startswith("twisted_chat")}
        self.assertEqual(stale, set())

    def test_page_assets_shipped(self) -> None:
        """The browser page's files are package data of the web front end."""
        config = configparser.ConfigParser()
        config.read(os.path.join(ROOT, "setup.cfg"))
        data = config["options.package_data"]
        self.assertEqual(data["twisted_chat.frontends.web"].strip(), "static/*")
        static = os.path.join(ROOT, "twisted_chat", "frontends", "web", "static")
        self.assertTrue({"index.html", "app.js", "style.css"} <= set(os.listdir(static)))
