"""The hosted payment page in Debian's Chromium (driven by Playwright), against the whole app
served by uvicorn on loopback, with JavaScript disabled (the page must work without it).

Each test runs on SQLite and on PostgreSQL. After paying, the card number and CVC are looked
for in every table and in every log line written meanwhile: they must be in neither.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from checkout.support import (
    DECLINED,
    NO_FUNDS,
    PAID,
    attempts,
    database_text,
    free_port,
    merchant_site,
    new_transaction,
    outbox,
    pay_path,
    reload,
    serve_app,
)
from factories import make_account
from mobip.accounts.models import Account
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction

CHROMIUM = Path("/usr/bin/chromium")
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
CVC = "9317"  # distinctive, to look for it afterwards
SCREENSHOT = Path("/tmp/mobip-checkout-mobile.png")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def shop() -> Iterator[str]:
    with merchant_site() as url:
        yield url


@pytest.fixture
def base(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    runtime.settings.base_url = f"http://127.0.0.1:{port}"
    runtime.settings.__dict__.pop("resolved_base_url", None)
    with serve_app(runtime, port) as url:
        yield url


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Café Lumière").account


def transaction_for(
    runtime: Runtime, merchant: Account, shop: str, **values: object
) -> Transaction:
    return new_transaction(runtime, merchant, redirect_url=f"{shop}/thanks?order=7", **values)


def fill_card(
    page: Page, number: str, *, expiry: str = "12/30", name: str = "Ada Lovelace"
) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill(expiry)
    page.get_by_label("CVC").fill(CVC)
    page.get_by_label("Name on card").fill(name)


def pay(page: Page, number: str) -> None:
    fill_card(page, number)
    page.get_by_role("button", name="Pay").click()


def assert_no_card_data(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    stored = database_text(runtime)
    logged = caplog.text
    assert caplog.records, "the server's logs were not captured"
    for secret in (
        PAID,
        PAID.replace(" ", ""),
        DECLINED.replace(" ", ""),
        NO_FUNDS.replace(" ", ""),
    ):
        assert secret not in stored and secret not in logged
    assert CVC not in stored and CVC not in logged


def test_pay_and_land_on_the_merchants_page(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    expect(page.get_by_text("TEST MODE").first).to_be_visible()
    expect(page.locator("h1")).to_contain_text("Café Lumière")
    expect(page.locator(".total")).to_contain_text("€15.00")
    pay(page, PAID)
    page.wait_for_url(re.compile(r"/thanks\?"))
    expect(page.locator("h1")).to_have_text("Thank you for your order")
    landed = urlsplit(page.url)
    assert landed.netloc == urlsplit(shop).netloc
    assert parse_qs(landed.query) == {
        "order": ["7"],
        "trid": [transaction.trid],
        "status": ["PAID"],
    }
    paid = reload(runtime, transaction)
    assert (paid.status, paid.payment_method) == ("PAID", "card visa ****4242")
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("receipt") == 1 and kinds.count("callback") == 1
    # Back on the link: already paid.
    page.goto(base + pay_path(transaction))
    expect(page.locator("h1")).to_have_text("Already paid")
    assert_no_card_data(runtime, caplog)


def test_decline_then_succeed(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    pay(page, "4242 4242 4242 4241")  # fails the Luhn check: a form error, nothing recorded
    expect(page.locator("#card_number-error")).to_have_text("This card number is not valid.")
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    assert attempts(runtime, transaction) == []
    pay(page, DECLINED)
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
    expect(page.get_by_role("alert")).to_contain_text("2 attempt(s) left")
    pay(page, PAID)
    page.wait_for_url(re.compile(r"/thanks\?"))
    assert [a.outcome for a in attempts(runtime, transaction)] == ["declined", "paid"]
    assert_no_card_data(runtime, caplog)


def test_three_declines_deny_the_transaction(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    pay(page, DECLINED)
    pay(page, NO_FUNDS)
    expect(page.get_by_role("alert")).to_contain_text("insufficient funds")
    pay(page, DECLINED)
    expect(page.locator("h1")).to_have_text("Payment denied")
    assert reload(runtime, transaction).status == "DENIED"
    callbacks = [p for kind, _, p in outbox(runtime, transaction) if kind == "callback"]
    assert [c["resp_code"] for c in callbacks] == ["PROCESSED"]
    page.get_by_role("link", name="Return to Café Lumière").click()
    page.wait_for_url(re.compile(r"status=DENIED"))
    assert_no_card_data(runtime, caplog)


def test_cancelled_expired_and_paid_links(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    clock: ManualClock,
) -> None:
    cancelled = transaction_for(runtime, merchant, shop)
    with runtime.database.transaction() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        transactions_service.cancel(session, owner, cancelled.trid, runtime.clock)
    page.goto(base + pay_path(cancelled))
    expect(page.locator("h1")).to_have_text("Payment cancelled")
    expect(page.get_by_label("Card number")).to_have_count(0)

    paid = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(paid))
    pay(page, PAID)
    page.wait_for_url(re.compile(r"/thanks\?"))
    page.goto(base + pay_path(paid))
    expect(page.locator("h1")).to_have_text("Already paid")
    expect(page.get_by_text("This payment was made on January 1, 2026")).to_be_visible()

    expiring = transaction_for(runtime, merchant, shop, ttl_days=1)
    clock.advance(days=2)
    page.goto(base + pay_path(expiring))
    expect(page.locator("h1")).to_have_text("Link expired")
    assert reload(runtime, expiring).reason == "EXPIRED"

    page.goto(base + "/pay/ck_not_a_real_link")
    expect(page.locator("h1")).to_have_text("Payment not found")


def test_the_french_page(
    runtime: Runtime, base: str, shop: str, page: Page, merchant: Account
) -> None:
    transaction = transaction_for(runtime, merchant, shop, language="FR")
    page.goto(base + pay_path(transaction))
    assert page.locator("html").get_attribute("lang") == "fr"
    expect(page.get_by_text("MODE TEST").first).to_be_visible()
    expect(page.locator(".total")).to_contain_text("15,00\u00a0€")
    page.get_by_label("Numéro de carte").fill(DECLINED)
    page.get_by_label("Expiration (MM/AA)").fill("12/30")
    page.get_by_label("CVC").fill(CVC)
    page.get_by_label("Nom sur la carte").fill("Ada")
    page.get_by_role("button", name="Payer").click()
    expect(page.get_by_role("alert")).to_contain_text("Votre carte a été refusée.")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_label("Card number")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"


def test_phone_sized_viewport_and_keyboard_only(
    runtime: Runtime, base: str, shop: str, browser: Browser, merchant: Account
) -> None:
    context = browser.new_context(
        java_script_enabled=False,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        transaction = transaction_for(runtime, merchant, shop)
        page.goto(base + pay_path(transaction))
        # Nothing wider than the phone: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        button = page.get_by_role("button", name="Pay").bounding_box()
        assert button is not None and button["width"] >= 300 and button["height"] >= 44
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Keyboard only: tab to the card number, type, tab on, submit with Enter.
        focused_ids = []
        for _ in range(12):
            page.keyboard.press("Tab")
            focused_ids.append(page.evaluate("document.activeElement.id"))
            if focused_ids[-1] == "card_number":
                break
        assert focused_ids[-1] == "card_number", focused_ids
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # visible focus
        page.keyboard.type(PAID)
        page.keyboard.press("Tab")
        page.keyboard.type("12/30")
        page.keyboard.press("Tab")
        page.keyboard.type(CVC)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "name_on_card"
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/thanks\?"))
        assert reload(runtime, transaction).status == "PAID"
    finally:
        context.close()
