"""The product page of a reusable QR code and a disabled code's 410 page in Debian's Chromium
at a phone's 412x900 and a desktop's 1280x800 (e2e/visual.py), in English and French: a
full-page screenshot kept as an artifact, nothing wider than the window, no serious or critical
axe-core violation; on the phone, the price ends within the first 900 px. SQLite only (the
look does not depend on the database)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from e2e.serving import sqlite_db_url
from e2e.visual import PHONE, VIEWPORTS, Viewport, assert_bottom_within, check_page
from e2e.visual import viewport_context as visual_context
from factories import make_account
from mobip.kit.runtime import Runtime
from mobip.products.models import QrStatus
from products.support import make_reusable_qr

db_url = sqlite_db_url  # how it looks does not depend on the database


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)
@pytest.mark.parametrize("language", ["EN", "FR"])
@pytest.mark.parametrize("state", ["active", "disabled"])
def test_the_product_page_and_the_410_page(
    browser: Browser, runtime: Runtime, base: str, viewport: Viewport, language: str, state: str
) -> None:
    merchant = make_account(runtime, name="Maison Dupré")
    qr_id = make_reusable_qr(
        runtime,
        merchant,
        item_name="Hand-thrown stoneware mug, deep blue glaze, 350 ml",
        item_message="Made in Lyon by our potters.\nDishwasher and microwave safe.",
        item_brand="Maison Dupré",
        item_category="Kitchen · Tableware",
        item_video="https://video.example/mug",
        status=(QrStatus.ACTIVE if state == "active" else QrStatus.DISABLED).value,
    )
    with visual_context(browser, viewport, java_script_enabled=True) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        reply = page.goto(f"{base}/p/{qr_id}?lang={language}")
        assert reply is not None
        assert reply.status == (200 if state == "active" else 410)
        expect(page.locator("h1")).to_be_visible()
        check_page(page, f"product-{state}-{language.lower()}-{viewport.name}")
        if state == "active" and viewport == PHONE:
            # The photo is bounded (30 % of the screen): the price is in the first screen
            # even with a long name and message (the form follows below it).
            assert_bottom_within(page, page.locator(".total"), PHONE.height, "the price")
