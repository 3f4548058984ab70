"""Debian's Chromium for the browser tests, driven by Playwright (`playwright install` cannot
download a browser here): where it is, how it is started, the rule when it is missing, and the
steps the customer flows share (a phone, paying on the hosted checkout with the sandbox card)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from checkout.support import PAID

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


@contextmanager
def on_phone(browser: Browser, url: str) -> Iterator[Page]:
    """``url`` open on a customer's phone (412 by 900 pixels, touch, JavaScript on, English (UK),
    15 s for each step); the phone put away after."""
    context = browser.new_context(
        viewport={"width": 412, "height": 900},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=True,
        locale="en-GB",
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        yield page
    finally:
        context.close()


def pay_on_checkout(page: Page, total: str) -> str:
    """On to the hosted checkout, which shows ``total``; paid with the sandbox card that pays, up
    to the confirmation. The checkout's URL."""
    page.wait_for_url(re.compile(r"/pay/ck_[A-Za-z0-9_-]+$"))
    checkout: str = page.url
    expect(page.locator(".total")).to_contain_text(total)
    page.get_by_label("Card number").fill(PAID)
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(r"paid=1"))
    expect(page.locator("h1")).to_have_text("Payment successful")
    return checkout
