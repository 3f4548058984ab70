"""/dev/outbox in Debian's Chromium (driven by Playwright) at 1280 x 800, against the whole app
served by uvicorn on loopback: with a long callback URL and a long unbroken subject, no element
reaches past the viewport's right edge (the page wraps instead of scrolling sideways).

Each test runs on SQLite and on PostgreSQL. Without /usr/bin/chromium the test is skipped on a
developer's machine, but FAILS when the environment variable CI is set (the launch options and
this rule are those of test_checkout_browser.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Browser

from checkout.support import serve_app
from delivery.support import deliver, new_request
from factories import make_account
from mobip.delivery import service
from mobip.kit.runtime import Runtime

SCREENSHOT = Path("/tmp/mobip-devoutbox-1280.png")
# 600 characters without a space or a hyphen: nowhere a browser would break it by itself.
LONG_URL = (
    "https://shop.example.com/callbacks/"
    + "a" * 80
    + "?"
    + "&".join(f"order_reference_{n}=" + "x" * 20 for n in range(14))
)
LONG_ITEM = "Ceremonial_grade_matcha_" * 8


# Every element whose right edge is past the viewport's (sub-pixel rounding allowed).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.body.querySelectorAll('*')]
    .filter(element => element.getBoundingClientRect().right > width + 1)
    .map(element => `${element.tagName} ${(element.textContent || '').trim().slice(0, 60)}`);
}"""


def test_the_page_fits_1280_pixels_with_long_urls(runtime: Runtime, browser: Browser) -> None:
    merchant = make_account(runtime, name="Maison Dupré").account
    new_request(runtime, merchant, media="EMAIL", item_name=LONG_ITEM)
    new_request(runtime, merchant, media="SMS", item_name="Green tea")
    # Playwright's sync API runs an event loop in this thread; the worker's batch needs its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(deliver, runtime).result()
    with runtime.database.transaction() as session:
        service.queue_callback(
            session,
            url=LONG_URL,
            trid="tr_long",
            track_id="order-42",
            resp_code="PROCESSED",
            account_id=merchant.id,
            clock=runtime.clock,
        )
    with serve_app(runtime) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.goto(f"{base}/dev/outbox")
            assert page.get_by_role("heading", name="Callbacks").is_visible()
            assert page.get_by_text("POST " + LONG_URL[:40]).is_visible()
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert page.evaluate(OVERFLOWING) == []
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 1280
        finally:
            context.close()
