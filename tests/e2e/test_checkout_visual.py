"""The hosted checkout's pages in Debian's Chromium at a phone's 412x900 and a desktop's 1280x800
(e2e/visual.py): the payment page in English and French, in test mode and through a real
provider, after a decline, with invalid fields, and the confirmation page after paying (and on
opening a paid link again); JavaScript on, and off where the page must work without it.

Each page: a full-page screenshot kept as an artifact, nothing wider than the window, no serious
or critical axe-core violation; on the phone, the total and the Pay button end within the first
900 px. The app is served by uvicorn on loopback; the look does not depend on the database:
SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, expect

from checkout.support import DECLINED, PAID, pay_path
from e2e.serving import sqlite_db_url
from e2e.visual import PHONE, Viewport, assert_bottom_within, check_page, each_viewport
from e2e.visual import viewport_context as visual_context
from factories import make_account, make_transaction
from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account, Provider
from mobip.kit.i18n import translate
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

SHOP = "https://shop.example"
NOT_LUHN = "4242 4242 4242 4241"
TRANSACTION = {
    "item_name": "Green tea, 250 g",
    "item_amount": 5490,
    "tax_amount": 498,
    "customer_name": None,
    "redirect_url": f"{SHOP}/thanks?order=7",
}
TOTAL = {"EN": "€59.88", "FR": "59,88\xa0€"}
PAY_BUTTON = re.compile(r"^(Pay|Payer)\b")


db_url = sqlite_db_url  # how it looks does not depend on the database


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


viewport = each_viewport  # 412x900 and 1280x800


@contextmanager
def open_page(browser: Browser, viewport: Viewport, javascript: bool) -> Iterator[Page]:
    with visual_context(browser, viewport, java_script_enabled=javascript) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        # The merchant's site is not there: the confirmation page's automatic continuation
        # (meta refresh or script) fails and the page stays for the checks.
        page.route(f"{SHOP}/**", lambda route: route.abort())
        yield page


def real_provider(runtime: Runtime, merchant: Account) -> None:
    """``merchant`` pays through Stripe (keys set; showing the page calls nothing)."""
    with runtime.database.transaction() as session:
        accounts_service.set_provider(
            session,
            merchant.uid,
            provider=Provider.STRIPE,
            public_key="pk_test_visual",
            private_key="sk_test_" + "v" * 24,
            login=None,
            encryptor=runtime.encryptor,
            now=runtime.clock.now(),
        )


def label(page: Page, english: str) -> str:
    """A field's label in the page's language (the catalogs' translation of the English one)."""
    language = str(page.evaluate("() => document.documentElement.lang")).upper()
    return translate(language, english)


def fill_card(page: Page, number: str, expiry: str = "12/30", cvc: str = "123") -> None:
    page.get_by_label(label(page, "Card number")).fill(number)
    page.get_by_label(label(page, "Expiry (MM/YY)")).fill(expiry)
    page.get_by_label(label(page, "CVC")).fill(cvc)
    page.get_by_label(label(page, "Name on card")).fill("Ada Lovelace")


def submit(page: Page) -> None:
    page.get_by_role("button", name=PAY_BUTTON).click()
    page.wait_for_load_state()


# Each state: how to reach it from the payment page, its language, and what it is.
def payable(page: Page) -> None:
    pass


def declined(page: Page) -> None:
    fill_card(page, DECLINED)
    submit(page)
    expect(page.get_by_role("alert")).to_be_visible()


def invalid(page: Page) -> None:
    fill_card(page, NOT_LUHN, expiry="13/20", cvc="1")
    submit(page)
    expect(page.locator('[aria-invalid="true"]').first).to_be_visible()


def paid(page: Page) -> None:
    fill_card(page, PAID)
    submit(page)
    page.wait_for_url(re.compile(r"/pay/[^/?]+(\?.*)?$"))
    expect(page.locator("h1")).to_be_visible()


STATES: dict[str, tuple[Callable[[Page], None], str]] = {
    "en": (payable, "EN"),
    "fr": (payable, "FR"),
    "declined": (declined, "EN"),
    "invalid-fr": (invalid, "FR"),  # French: the longer labels and errors
}


def pay_url(base: str, transaction: Transaction, language: str) -> str:
    return f"{base}{pay_path(transaction)}?lang={language}"


def assert_payment_page(page: Page, viewport: Viewport, language: str) -> None:
    """The total and the Pay button are shown, within the first screen on a phone."""
    total = page.get_by_text(TOTAL[language], exact=True).first
    button = page.get_by_role("button", name=PAY_BUTTON)
    expect(total).to_be_visible()
    expect(button).to_be_visible()
    if viewport == PHONE:
        assert_bottom_within(page, total, PHONE.height, "the total")
        assert_bottom_within(page, button, PHONE.height, "the Pay button")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("state", list(STATES))
def test_the_payment_page(
    runtime: Runtime,
    base: str,
    browser: Browser,
    merchant: Account,
    viewport: Viewport,
    state: str,
    javascript: bool,
    request: pytest.FixtureRequest,
) -> None:
    reach, language = STATES[state]
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    with open_page(browser, viewport, javascript) as page:
        page.goto(pay_url(base, transaction, language))
        reach(page)
        check_page(page, request.node.name)
        assert_payment_page(page, viewport, language)
        # A sandbox payment is a test: one discreet mark, in the page's language.
        mark = "TEST MODE" if language == "EN" else "MODE TEST"
        expect(page.get_by_text(mark, exact=True)).to_have_count(1)


def test_the_payment_page_of_a_real_provider(
    runtime: Runtime,
    base: str,
    browser: Browser,
    merchant: Account,
    viewport: Viewport,
    request: pytest.FixtureRequest,
) -> None:
    real_provider(runtime, merchant)
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language="EN")
    with open_page(browser, viewport, True) as page:
        page.goto(pay_url(base, transaction, "EN"))
        check_page(page, request.node.name)
        expect(page.get_by_text("TEST MODE")).to_have_count(0)
        expect(page.get_by_text(TOTAL["EN"], exact=True).first).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("language", ["EN", "FR"])
def test_the_confirmation_page_after_paying_and_on_opening_the_link_again(
    runtime: Runtime,
    base: str,
    browser: Browser,
    merchant: Account,
    viewport: Viewport,
    language: str,
    javascript: bool,
    request: pytest.FixtureRequest,
) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    with open_page(browser, viewport, javascript) as page:
        page.goto(pay_url(base, transaction, language))
        paid(page)
        assert page.url.startswith(base), f"after paying: {page.url}, not our confirmation page"
        check_page(page, request.node.name)
        expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
        expect(page.get_by_text(TOTAL[language], exact=True).first).to_be_visible()
        expect(page.get_by_text("TEST MODE" if language == "EN" else "MODE TEST")).to_have_count(1)
        # The same page when the link is opened again.
        page.goto(pay_url(base, transaction, language))
        check_page(page, request.node.name + "-reopened")
        expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
