"""The hosted payment page in Debian's Chromium (driven by Playwright), against the whole app
served by uvicorn on loopback: with JavaScript disabled (the page must work without it) and
enabled (checkout.js formats the number and the expiry as they are typed and shows the brand).

Each test runs on SQLite and on PostgreSQL. After paying, the card numbers and CVC typed are
looked for in every row of every table (and, on SQLite, in the raw bytes of the database file and
its write-ahead log) and in every log line written meanwhile, formatted as production writes
it: they must be in none of them.

Without /usr/bin/chromium the tests are skipped on a developer's machine, but FAIL when the
environment variable CI is set: CI must never pass by silently skipping the browser.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from checkout.support import (
    DECLINED,
    NO_FUNDS,
    PAID,
    PROVIDER_ERROR,
    attempts,
    callback_codes,
    database_text,
    merchant_site,
    outbox,
    pay_path,
    reload,
    serve_app,
    sqlite_file_bytes,
)
from factories import make_account, make_transaction
from mobip.accounts.models import Account
from mobip.kit.clock import ManualClock
from mobip.kit.logging import JsonFormatter
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction, TransactionKind

CVC = "9317"  # distinctive, to look for it afterwards
# A secret counts as found when it stands alone, not inside a longer run of letters, digits, "_"
# and "-" (the alphabet of hex hashes and of our base64url tokens):
# a 4-digit CVC occurs by chance inside hex hashes and random tokens ("49be4793173988..."), which
# made the scan flaky. A leak stores or logs the value as a field (``9317``, ``cvc=9317``,
# ``"9317"``), which the boundaries still catch.
ALNUM = "0-9A-Za-z_-"


def found(secret: str, haystack: str | bytes) -> bool:
    pattern = f"(?<![{ALNUM}]){re.escape(secret)}(?![{ALNUM}])"
    if isinstance(haystack, bytes):
        return re.search(pattern.encode(), haystack) is not None
    return re.search(pattern, haystack) is not None


NOT_LUHN = "4242 4242 4242 4241"  # typed in a test: a form error, never stored either
SCREENSHOT = Path("/tmp/mobip-checkout-mobile.png")


@pytest.fixture
def shop() -> Iterator[str]:
    with merchant_site() as url:
        yield url


@pytest.fixture
def base(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    caplog.set_level(logging.DEBUG)
    with serve_app(runtime) as url:
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
    return make_transaction(runtime, merchant, redirect_url=f"{shop}/thanks?order=7", **values)


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


def continue_to_shop(page: Page) -> None:
    """On the confirmation page: the button on to the merchant (it also goes by itself)."""
    expect(page.locator("h1")).to_have_text("Payment successful")
    page.get_by_role("link", name="Continue to Café Lumière").click()
    page.wait_for_url(re.compile(r"/thanks\?"))


def assert_no_card_data(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, transaction: Transaction
) -> None:
    """No card number nor CVC in the database (rows, and raw SQLite bytes) nor in the logs."""
    stored = database_text(runtime)
    raw = sqlite_file_bytes(runtime)
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    # The scans see what they must see (else they could never fail).
    assert transaction.trid in stored
    assert runtime.settings.resolved_database_url.startswith("postgresql") or (
        transaction.trid.encode() in raw
    )
    assert pay_path(transaction) in logged, "the server's logs were not captured"
    numbers = [PAID, DECLINED, NO_FUNDS, PROVIDER_ERROR, NOT_LUHN]
    secrets = {CVC, *numbers, *(number.replace(" ", "") for number in numbers)}
    for secret in secrets:
        assert not found(secret, stored), secret
        assert not found(secret, raw), secret
        assert not found(secret, logged), secret


@pytest.mark.parametrize(
    ("haystack", "expected"),
    [
        ("9317", True),
        ("cvc=9317&x", True),
        ('{"cvc": "9317"}', True),
        ("1 sandbox visa 0002 9317 2026", True),
        ("49be4793173988dc", False),
        ("tok_Ab9317Zz", False),
        ("ck_Dk_9317-x", False),
        ("93170", False),
    ],
)
def test_the_secret_scan_finds_a_standalone_value_only(haystack: str, expected: bool) -> None:
    assert found(CVC, haystack) is expected
    assert found(CVC, haystack.encode()) is expected


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
    expect(page.get_by_text("TEST MODE")).to_have_count(1)
    expect(page.locator("h1")).to_contain_text("Café Lumière")
    expect(page.locator("h1")).to_contain_text("€15.00")
    expect(page.locator(".total")).to_contain_text("€15.00")
    # Without the script: typed unformatted, accepted as typed; no brand shown.
    pay(page, PAID.replace(" ", ""))
    # Our confirmation page; without the script it stays, with its button on to the merchant.
    page.wait_for_url(re.compile(r"/pay/ck_[^?]+\?lang=EN&paid=1$"))
    expect(page.locator("h1")).to_have_text("Payment successful")
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    expect(page.get_by_text("Receipt sent to a***@example.com")).to_be_visible()
    expect(page.get_by_text("TEST MODE")).to_have_count(1)
    expect(page.get_by_text("You will be taken back")).to_be_hidden()
    page.get_by_role("link", name="Continue to Café Lumière").click()
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
    # Back on the link: the same confirmation, which stays.
    page.goto(base + pay_path(transaction))
    expect(page.locator("h1")).to_have_text("Payment successful")
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    assert_no_card_data(runtime, caplog, transaction)


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
    pay(page, NOT_LUHN)  # fails the Luhn check: a form error, nothing recorded
    expect(page.locator("#card_number-error")).to_have_text("This card number is not valid.")
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    assert attempts(runtime, transaction) == []
    pay(page, DECLINED)
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
    expect(page.get_by_role("alert")).to_contain_text("2 attempts remaining")
    pay(page, PAID)
    continue_to_shop(page)
    assert [a.outcome for a in attempts(runtime, transaction)] == ["declined", "paid"]
    assert_no_card_data(runtime, caplog, transaction)


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
    assert callback_codes(runtime, transaction) == ["PROCESSED"]
    page.get_by_role("link", name="Return to Café Lumière").click()
    page.wait_for_url(re.compile(r"status=DENIED"))
    assert_no_card_data(runtime, caplog, transaction)


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
    continue_to_shop(page)
    page.goto(base + pay_path(paid))
    expect(page.locator("h1")).to_have_text("Payment successful")
    expect(page.get_by_text("January 1, 2026")).to_be_visible()

    expiring = transaction_for(runtime, merchant, shop, ttl_days=1)
    clock.advance(days=2)
    page.goto(base + pay_path(expiring))
    expect(page.locator("h1")).to_have_text("Link expired")
    assert reload(runtime, expiring).reason == "EXPIRED"

    page.goto(base + "/pay/ck_not_a_real_link")
    expect(page.locator("h1")).to_have_text("Payment not found")


def test_the_french_page(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transaction = transaction_for(runtime, merchant, shop, language="FR")
    page.goto(base + pay_path(transaction))
    assert page.locator("html").get_attribute("lang") == "fr"
    assert texts_in_other_language(page, "FR") == []
    expect(page.get_by_text("MODE TEST").first).to_be_visible()
    expect(page.locator(".total")).to_contain_text("15,00\u00a0€")
    page.get_by_label("Numéro de carte").fill(DECLINED)
    page.get_by_label("Expiration (MM/AA)").fill("12/30")
    page.get_by_label("CVC").fill(CVC)
    page.get_by_label("Nom sur la carte").fill("Ada")
    page.get_by_role("button", name="Payer").click()
    expect(page.get_by_role("alert")).to_contain_text("Votre carte a été refusée.")
    assert texts_in_other_language(page, "FR") == []
    page.get_by_role("link", name="English").click()
    expect(page.get_by_label("Card number")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    assert texts_in_other_language(page, "EN") == []
    # And back: the switch works both ways, from any page.
    page.get_by_role("link", name="Français").click()
    expect(page.get_by_label("Numéro de carte")).to_be_visible()
    assert_no_card_data(runtime, caplog, transaction)


def test_phone_sized_viewport_and_keyboard_only(
    runtime: Runtime,
    base: str,
    shop: str,
    browser: Browser,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
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
        expect(page.locator("h1")).to_have_text("Payment successful")
        assert reload(runtime, transaction).status == "PAID"
    finally:
        context.close()
    assert_no_card_data(runtime, caplog, transaction)


def test_a_provider_error_shows_its_own_page(
    runtime: Runtime,
    base: str,
    shop: str,
    page: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    pay(page, PROVIDER_ERROR)
    expect(page.locator("h1")).to_have_text("Payment error")
    expect(page.get_by_text("No payment was taken.")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_count(0)
    failed = reload(runtime, transaction)
    assert (failed.status, failed.reason) == ("ERROR", "PROCESSING_ERROR")
    assert callback_codes(runtime, transaction) == ["ERROR"]
    page.get_by_role("link", name="Français").click()
    expect(page.locator("h1")).to_have_text("Erreur de paiement")
    assert texts_in_other_language(page, "FR") == []
    page.get_by_role("link", name="Retour vers Café Lumière").click()
    page.wait_for_url(re.compile(r"status=ERROR"))
    assert_no_card_data(runtime, caplog, transaction)


# --- with JavaScript: formatting as you type, the brand, the same payment -------------------------


@pytest.fixture
def scripted(browser: Browser) -> Iterator[Page]:
    """A page with JavaScript on; any script error or CSP violation fails the test."""
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico")
            else None
        ),
    )
    yield page
    context.close()
    assert problems == []


def test_with_javascript_typing_formats_the_number_shows_the_brand_and_pays(
    runtime: Runtime,
    base: str,
    shop: str,
    scripted: Page,
    merchant: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = scripted
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    number = page.get_by_label("Card number")
    brand = page.locator("#card_brand")
    expect(brand).to_be_hidden()  # nothing typed, no brand
    number.press_sequentially("378282246310005")
    expect(number).to_have_value("3782 822463 10005")  # American Express: 4-6-5
    expect(brand).to_have_text("American Express")
    number.fill("")
    number.press_sequentially("5555555555554444")
    expect(number).to_have_value("5555 5555 5555 4444")
    expect(brand).to_have_text("Mastercard")
    number.fill("")
    number.press_sequentially(PAID.replace(" ", ""))
    expect(number).to_have_value(PAID)
    expect(brand).to_have_text("Visa")
    expiry = page.get_by_label("Expiry (MM/YY)")
    expiry.press_sequentially("1230")
    expect(expiry).to_have_value("12 / 30")
    expiry.press("Backspace")
    expect(expiry).to_have_value("12 / 3")
    expiry.press("Backspace")  # the separator goes with the last digit of the year
    expect(expiry).to_have_value("12")
    expiry.press_sequentially("30")
    expect(expiry).to_have_value("12 / 30")
    cvc = page.get_by_label("CVC")
    cvc.press_sequentially(f"{CVC}x")
    expect(cvc).to_have_value(CVC)
    page.get_by_role("button", name="Pay €15.00").click()
    expect(page.locator("h1")).to_have_text("Payment successful")
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    expect(page.get_by_text("You will be taken back to Café Lumière in 6 seconds.")).to_be_visible()
    page.wait_for_url(re.compile(r"/thanks\?"))  # by itself, after a few seconds
    assert parse_qs(urlsplit(page.url).query)["status"] == ["PAID"]
    assert reload(runtime, transaction).status == "PAID"
    assert_no_card_data(runtime, caplog, transaction)


def test_the_customer_may_stay_on_the_confirmation_page(
    runtime: Runtime, base: str, shop: str, scripted: Page, merchant: Account
) -> None:
    page = scripted
    page.clock.install()  # the page's timers, moved by hand
    page.goto(base + pay_path(transaction_for(runtime, merchant, shop)))
    pay(page, PAID)
    expect(page.locator("h1")).to_have_text("Payment successful")
    page.get_by_role("button", name="Stay on this page").click()
    expect(page.get_by_text("You will be taken back")).to_be_hidden()
    expect(page.get_by_role("link", name="Continue to Café Lumière")).to_be_focused()
    page.clock.run_for(60_000)
    expect(page.locator("h1")).to_have_text("Payment successful")
    assert "/pay/" in page.url
    # And when the customer does not: on to the merchant once the time has run.
    again = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(again))
    pay(page, PAID)
    expect(page.get_by_role("button", name="Stay on this page")).to_be_visible()
    page.clock.run_for(6_000)
    page.wait_for_url(re.compile(r"/thanks\?"))


def test_the_script_and_the_server_detect_the_same_brand(
    runtime: Runtime, base: str, shop: str, scripted: Page, merchant: Account
) -> None:
    from mobip.transactions.cards import brand_of
    from transactions.test_cards import NUMBERS

    scripted.goto(base + pay_path(transaction_for(runtime, merchant, shop)))
    numbers = [*NUMBERS, *(n[:k] for n in NUMBERS for k in (1, 2, 3, 4, 6))]
    in_browser = scripted.evaluate(
        "(ns) => ns.map((n) => window.mobipCheckout.brandOf(n))", numbers
    )
    assert dict(zip(numbers, in_browser, strict=True)) == {n: brand_of(n) for n in numbers}


def test_the_merchants_logo_and_accent_colour_under_the_pages_csp(
    runtime: Runtime, base: str, shop: str, scripted: Page, merchant: Account
) -> None:
    from checkout.test_branding_page import ACCENT, brand, png

    brand(runtime, merchant, logo=png(), accent_colour=ACCENT)
    page = scripted
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    logo = page.get_by_role("img", name="Café Lumière")
    expect(logo).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", logo.element_handle()) == 48
    rgb = "rgb(11, 110, 79)"
    button = page.get_by_role("button", name="Pay €15.00")
    assert button.evaluate("(b) => getComputedStyle(b).backgroundColor") == rgb
    pay(page, PAID)
    expect(page.locator("h1")).to_have_text("Payment successful")
    link = page.get_by_role("link", name="Continue to Café Lumière")
    assert link.evaluate("(a) => getComputedStyle(a).backgroundColor") == rgb
    # (The fixture fails the test on any console error: a style or image the CSP refused.)


# --- declines, errors and the receipt address (JavaScript off) ------------------------------------


def test_a_decline_keeps_the_name_and_expiry_and_is_said_by_the_form(
    runtime: Runtime, base: str, shop: str, page: Page, merchant: Account
) -> None:
    transaction = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(transaction))
    fill_card(page, DECLINED, expiry="11/31", name="Grace Hopper")
    page.get_by_role("button", name="Pay").click()
    notice = page.locator(".notice")
    expect(notice).to_contain_text("Your card was declined.")
    expect(notice).to_contain_text("Visa •••• 0002")
    expect(page.get_by_label("Name on card")).to_have_value("Grace Hopper")
    expect(page.get_by_label("Expiry (MM/YY)")).to_have_value("11/31")
    expect(page.get_by_label("Card number")).to_have_value("")
    expect(page.get_by_label("CVC")).to_have_value("")
    # In the form, above its fields: not above a panel far from it.
    form = page.locator("form").bounding_box()
    said = notice.bounding_box()
    number = page.get_by_label("Card number").bounding_box()
    assert form and said and number
    assert form["y"] <= said["y"] and said["y"] + said["height"] <= number["y"]


@pytest.mark.parametrize("language", ["EN", "FR"])
def test_invalid_fields_show_errors_by_their_field_and_expiry_and_cvc_stay_on_one_line(
    runtime: Runtime, base: str, shop: str, browser: Browser, merchant: Account, language: str
) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 412, "height": 900}, is_mobile=True
    )
    try:
        page = context.new_page()
        transaction = transaction_for(runtime, merchant, shop, language=language)
        page.goto(base + pay_path(transaction))
        page.locator("#card_number").fill(NOT_LUHN)
        page.locator("#expiry").fill("13/99")
        page.locator("#cvc").fill("1")
        page.locator("button.pay").click()
        expect(page.locator(".errors")).to_be_visible()
        for name in ("card_number", "expiry", "cvc"):
            field = page.locator(f"#{name}").bounding_box()
            error = page.locator(f"#{name}-error").bounding_box()
            assert field and error, name
            # Right under its field, in its column.
            assert 0 <= error["y"] - (field["y"] + field["height"]) <= 12, name
            assert field["x"] <= error["x"] < field["x"] + field["width"], name
        expiry = page.locator("#expiry").bounding_box()
        cvc = page.locator("#cvc").bounding_box()
        assert expiry and cvc
        assert expiry["y"] == cvc["y"] and expiry["height"] == cvc["height"]
        assert expiry["x"] + expiry["width"] < cvc["x"]
        # Each label on one line ("Expiration (MM/AA)" too).
        for name in ("expiry", "cvc"):
            label = page.locator(f'label[for="{name}"]').bounding_box()
            assert label and label["height"] < 30, (name, label)
        assert page.evaluate("document.documentElement.scrollWidth") <= 412
    finally:
        context.close()


def test_the_receipt_address_typed_gets_the_receipt(
    runtime: Runtime, base: str, shop: str, page: Page, merchant: Account
) -> None:
    qr = transaction_for(
        runtime, merchant, shop, kind=TransactionKind.ONE_USE_QR, media=None, customer_email=None
    )
    page.goto(base + pay_path(qr))
    page.get_by_label("E-mail for your receipt").fill("not an address")
    pay(page, PAID)
    expect(page.locator("#receipt_email-error")).to_contain_text("Enter an e-mail address")
    expect(page.get_by_label("E-mail for your receipt")).to_have_value("not an address")
    assert attempts(runtime, qr) == []
    page.get_by_label("E-mail for your receipt").fill("zoe@example.com")
    pay(page, PAID)
    expect(page.get_by_text("Receipt sent to z***@example.com")).to_be_visible()
    receipts = [(target, p) for kind, target, p in outbox(runtime, qr) if kind == "receipt"]
    assert receipts == [("zoe@example.com", {"trid": qr.trid, "language": "EN", "test": True})]


def test_on_a_phone_the_merchant_the_total_and_the_whole_card_form_are_in_the_first_screen(
    runtime: Runtime, base: str, shop: str, browser: Browser, merchant: Account
) -> None:
    context = browser.new_context(viewport={"width": 412, "height": 900}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(base + pay_path(transaction_for(runtime, merchant, shop)))
        for locator in (
            page.get_by_text("Café Lumière").first,
            page.locator("h1 .amount"),
            page.get_by_label("Card number"),
            page.get_by_label("Name on card"),
            page.get_by_role("button", name="Pay €15.00"),
        ):
            box = locator.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 900, locator
        # The test cards are one line until opened.
        cards = page.locator("details.test-cards")
        expect(cards).not_to_have_attribute("open", "")
        expect(page.get_by_text("4000 0000 0000 0002")).to_be_hidden()
        cards.locator("summary").click()
        expect(page.get_by_text("4000 0000 0000 0002")).to_be_visible()
    finally:
        context.close()


def test_on_a_desktop_the_summary_and_the_payment_are_side_by_side(
    runtime: Runtime, base: str, shop: str, browser: Browser, merchant: Account
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(base + pay_path(transaction_for(runtime, merchant, shop)))
        summary = page.locator("section.summary").bounding_box()
        payment = page.locator("section.payment").bounding_box()
        assert summary and payment
        assert summary["x"] + summary["width"] <= payment["x"]  # left, then right
        assert abs(summary["y"] - payment["y"]) < 1  # on the same level
        total = page.locator("h1 .amount").bounding_box()
        assert total and total["height"] >= 40  # large
    finally:
        context.close()


# --- accessibility: contrast, visible focus, labels, every text in the page's language -----------

_TEXTS_JS = """() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    const box = el.getBoundingClientRect();
    if (!text || box.width === 0 || box.right < 0 || box.bottom < 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    out.push({text, color: parse(style.color), background: background(el),
              size: parseFloat(style.fontSize), weight: parseInt(style.fontWeight, 10)});
  }
  return out;
}"""

_FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const parse = (c) =>
    c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  let back = [255, 255, 255];
  for (let e = el.parentElement; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) { back = c.slice(0, 3); break; }
  }
  return {name: el.id || el.getAttribute("href") || el.tagName, style: style.outlineStyle,
          width: parseFloat(style.outlineWidth), color: parse(style.outlineColor).slice(0, 3),
          background: back};
}"""


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: list[float], other: list[float]) -> float:
    """WCAG 2 contrast ratio of two opaque sRGB colours."""
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula() -> None:
    assert round(contrast([0, 0, 0], [255, 255, 255]), 1) == 21.0
    assert contrast([119, 119, 119], [255, 255, 255]) < 4.5 < contrast([117, 117, 117], [255] * 3)


def accessibility_problems(page: Page, min_stops: int = 3) -> list[str]:
    """Text under WCAG AA contrast (4.5:1, 3:1 for large text), a field without a label, a
    keyboard stop without a visible focus outline (at 3:1 against what surrounds it)."""
    problems: list[str] = []
    texts = page.evaluate(_TEXTS_JS)
    assert texts, "no text found on the page"
    for item in texts:
        large = item["size"] >= 24 or (item["size"] >= 18.66 and item["weight"] >= 700)
        ratio = contrast(item["color"], item["background"])
        if ratio < (3.0 if large else 4.5):
            problems.append(f"contrast {ratio:.2f} for {item['text']!r}")
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"
    )
    problems += [f"no label for field {name}" for name in unlabelled]
    page.locator("body").focus()
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focus = page.evaluate(_FOCUS_JS)
        if focus is None or focus["name"] in seen:
            break
        seen.append(focus["name"])
        visible = focus["style"] != "none" and focus["width"] >= 2
        if not visible or contrast(focus["color"], focus["background"]) < 3:
            problems.append(f"no visible focus on {focus['name']}: {focus}")
    if len(seen) < min_stops:
        problems.append(f"too few keyboard stops: {seen}")
    return problems


def test_every_page_is_readable_labelled_and_keyboard_usable(
    runtime: Runtime, base: str, shop: str, page: Page, merchant: Account
) -> None:
    payable = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(payable))
    assert accessibility_problems(page) == []
    page.get_by_role("button", name="Pay").click()  # empty form: HTML's own checks stop it
    assert attempts(runtime, payable) == []
    fill_card(page, NOT_LUHN, expiry="01/20")  # the form errors, their summary and links
    page.get_by_role("button", name="Pay").click()
    expect(page.locator(".errors")).to_be_visible()
    assert accessibility_problems(page) == []
    pay(page, DECLINED)  # the decline notice
    expect(page.locator(".notice")).to_be_visible()
    assert accessibility_problems(page) == []

    failed = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(failed))
    pay(page, PROVIDER_ERROR)
    expect(page.locator("h1")).to_have_text("Payment error")
    assert accessibility_problems(page) == []

    paid = transaction_for(runtime, merchant, shop)
    page.goto(base + pay_path(paid))
    pay(page, PAID)
    expect(page.locator("h1")).to_have_text("Payment successful")
    assert accessibility_problems(page) == []
    page.goto(base + pay_path(paid) + "?lang=FR")
    expect(page.locator("h1")).to_have_text("Paiement réussi")
    assert accessibility_problems(page) == []

    page.goto(base + "/pay/ck_not_a_real_link")
    # Nothing to pay, nowhere to go back to: the skip link and the other language only.
    assert accessibility_problems(page, min_stops=2) == []


def texts_in_other_language(page: Page, language: str) -> list[str]:
    """Text on the page that is a message of the other language and not of this one."""
    from babel.messages.pofile import read_po

    from mobip.kit.i18n import CATALOGS, LOCALE_DIR

    with (LOCALE_DIR / CATALOGS["FR"] / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    patterns = []
    for message in catalog:
        if not message.id:
            continue
        english = message.id if isinstance(message.id, tuple) else (message.id,)
        french = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in french if language == "EN" else english:
            if text in (english if language == "EN" else french):
                continue  # the same in both languages (Total, CVC)
            parts = re.split(r"%\(\w+\)[sd]", text)
            if not re.search(r"[^\W\d_]{3}", "".join(parts)):
                continue  # placeholders and punctuation only ("%(label)s: %(amount)s")
            patterns.append(re.compile(".+".join(re.escape(part) for part in parts)))
    shown = [item["text"] for item in page.evaluate(_TEXTS_JS)]
    shown += page.eval_on_selector_all("[aria-label]", "els => els.map(e => e.ariaLabel)")
    shown.append(page.title())
    return [text for text in shown if any(p.fullmatch(text) for p in patterns)]
