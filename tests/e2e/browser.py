"""Debian's Chromium for the browser tests, driven by Playwright (`playwright install` cannot
download a browser here): where it is, how it is started, and the rule when it is missing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, with nothing that reaches out: without the background-networking flags,
# Chromium's own connections are refused by this machine's closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(path: Path = CHROMIUM, environ: Mapping[str, str] = os.environ) -> None:
    """Skip without Chromium on a developer's machine; fail under CI (``CI`` set)."""
    if path.exists():
        return
    if "CI" in environ:
        pytest.fail(
            f"{path} is missing and CI is set: the browser tests must run in CI "
            "(install Debian's chromium, as .ci/run does)",
            pytrace=False,
        )
    pytest.skip(f"{path} is not installed (Debian's chromium); CI would fail here")
