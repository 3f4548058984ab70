"""The payment request and the receipt as a mail client shows them, in Debian's Chromium at a
phone's 412x900 and a desktop's 1280x800: screenshots kept as artifacts, nothing wider than the
window, no serious or critical axe-core violation, the Pay button above the small QR code, the
TEST MODE mark of a test payment, the card's brand capitalised (e2e/visual.py).

The HTML is what the worker composes (transactions.messages' composers on the queued outbox
rows), opened with page.set_content and its inline QR image given as the mail carries it. The
look does not depend on the database: SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from e2e.serving import sqlite_db_url
from e2e.visual import (
    DESKTOP,
    PHONE,
    Viewport,
    assert_bottom_within,
    check_page,
    each_viewport,
    viewport_context,
)
from factories import make_account, make_transaction
from mobip.accounts.models import Account, Provider
from mobip.delivery.composing import MailContent
from mobip.kit.runtime import Runtime
from transactions import emails

TRANSACTION = {
    "item_name": "Green tea, 250 g",
    "item_amount": 5490,
    "tax_amount": 498,
    "customer_name": "Zoé",
    "customer_email": "zoe@example.com",
}
BUTTON = {"EN": "Pay €59.88", "FR": "Payer 59,88\xa0€"}
MARK = {"EN": "TEST MODE", "FR": "MODE TEST"}


db_url = sqlite_db_url  # how it looks does not depend on the database


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


viewport = each_viewport  # 412x900 and 1280x800


@pytest.fixture
def page(browser: Browser, viewport: Viewport) -> Iterator[Page]:
    with viewport_context(browser, viewport) as context:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page


def show(page: Page, mail: MailContent) -> None:
    page.set_content(emails.html_as_shown(mail))


@pytest.mark.parametrize("language", ["EN", "FR"])
def test_the_payment_request(
    runtime: Runtime,
    merchant: Account,
    page: Page,
    viewport: Viewport,
    language: str,
    request: pytest.FixtureRequest,
) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    show(page, emails.payment_request(runtime, transaction))
    check_page(page, request.node.name)

    button = page.get_by_role("link", name=BUTTON[language])
    qr = page.locator('img[src^="data:image/png"]')
    expect(button).to_be_visible()
    expect(qr).to_be_visible()
    button_box, qr_box = button.bounding_box(), qr.bounding_box()
    assert button_box is not None and qr_box is not None
    assert button_box["y"] + button_box["height"] <= qr_box["y"]  # the button above the code
    assert qr_box["width"] <= 140  # small: not the mail's largest element
    assert button_box["width"] > qr_box["width"]
    assert_bottom_within(page, button, viewport.height, "the Pay button")
    expect(page.get_by_text(MARK[language], exact=True)).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == language.lower()


@pytest.mark.parametrize("language", ["EN", "FR"])
def test_the_receipt(
    runtime: Runtime,
    merchant: Account,
    page: Page,
    language: str,
    request: pytest.FixtureRequest,
) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    show(page, emails.receipt(runtime, transaction, "card visa ****4242"))
    check_page(page, request.node.name)
    expect(page.get_by_text("Visa •••• 4242")).to_be_visible()
    expect(page.get_by_text("card visa")).to_have_count(0)
    expect(page.get_by_text(MARK[language], exact=True)).to_be_visible()


def test_a_branded_request_shows_the_merchants_logo_and_colour(
    runtime: Runtime, merchant: Account, page: Page, request: pytest.FixtureRequest
) -> None:
    logo = emails.png(240, 80, "#1a7f37")
    emails.brand(runtime, merchant, accent="#1a7f37", logo=logo)
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    served: list[str] = []

    def logo_route(route: Route) -> None:  # the checkout's logo URL, answered as B's route does
        served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=logo)

    page.route("**/logo?v=*", logo_route)
    show(page, emails.payment_request(runtime, transaction))
    image = page.get_by_role("img", name="Maison Dupré")
    expect(image).to_be_visible()
    page.wait_for_function("() => [...document.images].every(image => image.complete)")
    check_page(page, request.node.name)
    box = image.bounding_box()
    assert box is not None and box["height"] == 40 and box["width"] == 120
    assert len(served) == 1
    colour = page.get_by_role("link", name="Pay €59.88").evaluate(
        "link => getComputedStyle(link.parentElement).backgroundColor"
    )
    assert colour == "rgb(26, 127, 55)"  # #1a7f37


def test_without_a_test_mark_the_request_is_still_clean(
    runtime: Runtime, merchant: Account, browser: Browser, request: pytest.FixtureRequest
) -> None:
    """A real payment's request (no TEST MODE line) at both widths."""
    emails.use_provider(runtime, merchant, Provider.STRIPE)
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    mail = emails.payment_request(runtime, transaction)
    for viewport in (PHONE, DESKTOP):
        with viewport_context(browser, viewport) as context:
            page = context.new_page()
            show(page, mail)
            check_page(page, request.node.name)
            expect(page.get_by_text("TEST MODE")).to_have_count(0)
