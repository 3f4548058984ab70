"""A reusable QR code's product page in Debian's Chromium, on a phone-sized viewport: two
customers scan the same code and pay (the first buys 2); each payment is its own transaction,
PAID with its own trid, and the merchant's callback arrives for each. SQLite: the flow does not
depend on the database (tests/products covers both)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, expect

from callback_receiver import Receiver, running_receiver
from delivery.support import deliver
from e2e.browser import on_phone, pay_on_checkout
from e2e.serving import api, sqlite_db_url
from factories import make_account
from mobip.accounts.service import NewCredentials
from mobip.kit.runtime import Runtime
from products.support import reusable_qr, serve_photos

db_url = (
    sqlite_db_url  # the flow in a browser; its database work is tested on both in tests/products
)


@pytest.fixture
def site() -> Iterator[Receiver]:
    """The merchant's site on loopback: the photo, and the callbacks."""
    with running_receiver() as receiver:
        serve_photos(receiver)
        yield receiver


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Maison Dupré")


def token_of(base: str, merchant: NewCredentials) -> str:
    return str(
        api(
            base,
            "GET",
            "get_token",
            api_account_id=merchant.account.api_account_id,
            api_secret_key=merchant.api_secret_key,
        )["access_token"]
    )


def scan_and_pay(browser: Browser, url: str, quantity: int, email: str) -> str:
    """A customer's phone: the product page, the quantity, Pay, the card; the checkout link."""
    with on_phone(browser, url) as page:
        expect(page.locator("h1")).to_have_text("Blue mug")
        expect(page.locator(".total")).to_contain_text("€15.00")
        expect(page.locator("img.product-photo")).to_be_visible()
        page.get_by_label("Quantity").fill(str(quantity))
        page.get_by_label("Your e-mail").fill(email)
        page.get_by_role("button", name="Pay", exact=True).click()
        return pay_on_checkout(page, f"€{15 * quantity}.00")


def test_two_customers_pay_through_one_qr_code(
    browser: Browser, runtime: Runtime, base: str, site: Receiver, merchant: NewCredentials
) -> None:
    token = token_of(base, merchant)
    created = api(
        base,
        "POST",
        "create_reusable_qr",
        access_token=token,
        call_back_url=site.url("/callback"),
        redirect_url=site.url("/thanks"),
        **{k: str(v) for k, v in reusable_qr(site.url("/photo.png")).items()},
    )
    first = scan_and_pay(browser, created["url_checkout"], 2, "ada@example.com")
    second = scan_and_pay(browser, created["url_checkout"], 1, "bob@example.com")
    assert first != second
    # The merchant's backend: both payments counted, each its own PAID transaction.
    data = api(base, "GET", "get_reusable_qr", access_token=token, qr_id=created["qr_id"])
    stats = data["reusable_qr"]
    assert (stats["payments_count"], stats["payments_amount"]) == ("2", "4500")
    # The callbacks arrive (a worker's batch sends them, in a thread of its own: Playwright's
    # sync API holds an event loop in this one), one per payment.
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(deliver, runtime).result(timeout=60) >= 2
    callbacks = [r for r in site.requests if r.path == "/callback"]  # sent during the batch
    assert {c.form["track_id"][0] for c in callbacks} == {"MUG-BLUE"}
    trids = [c.form["trid"][0] for c in callbacks]
    assert len(set(trids)) == 2
    amounts = {}
    for trid in trids:
        transaction = api(base, "GET", "get_transaction", access_token=token, trid=trid)[
            "transaction_data"
        ]
        assert transaction["transaction_status"] == "PAID"
        assert transaction["qr_id"] == created["qr_id"]
        amounts[transaction["quantity"]] = transaction["total_amount_in_cents"]
    assert amounts == {"2": "3000", "1": "1500"}
