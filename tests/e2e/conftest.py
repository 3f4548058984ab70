"""What the e2e tests share: one Chromium per test module (see e2e/browser.py), and the app of
the test's runtime served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from checkout.support import serve_app
from e2e.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from mobip.kit.runtime import Runtime


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def base(runtime: Runtime) -> Iterator[str]:
    """The app of the test's runtime under uvicorn on loopback (checkout.support.serve_app): its
    base URL. A module that needs more of the server defines its own ``base``."""
    with serve_app(runtime) as url:
        yield url
