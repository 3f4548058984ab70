"""Issue 15's whole loop with a customer's phone in Debian's Chromium, against the app served by
uvicorn on loopback and a real SMTP server (aiosmtpd) on loopback: the merchant imports three
invoices and maps its status codes; request_invoices_payment e-mails the customer; the portal
link is taken from the e-mail received; on the portal the customer leaves one invoice unticked,
pays the other two with the sandbox card; get_external_invoices then shows those two fully_paid
with the external code mapped to fully_paid and the third still due, and the portal shows the
two as paid with their date. SQLite: the flow does not depend on the database (tests/receivables
covers both)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, expect

from delivery.support import deliver, with_settings
from e2e.browser import on_phone, pay_on_checkout
from e2e.serving import api, sqlite_db_url
from factories import free_port, make_account
from mobip.accounts.service import NewCredentials
from mobip.config import SmtpSecurity
from mobip.kit.runtime import Runtime

SOURCE = "erp-1"
# Due before the test clock's today (2026-01-01): the three are due.
INVOICES = """{"InvoicesLists": [
 {"CustomerId": "C-ADA", "CustomerEmail": "ada@example.com", "Invoices": [
   {"InvId": "inv_001", "InvDate": "2025-10-01", "InvDueDate": "2025-11-01",
    "InvLbl": "Boiler service", "Amount_in_cents": "12000", "InvStatus": "OPEN"},
   {"InvId": "inv_002", "InvDate": "2025-11-01", "InvDueDate": "2025-12-01",
    "InvLbl": "Spare parts", "Amount_in_cents": "3050", "InvStatus": "OPEN"},
   {"InvId": "inv_003", "InvDate": "2025-12-01", "InvDueDate": "2025-12-20",
    "InvLbl": "Winter check-up", "Amount_in_cents": "8900", "InvStatus": "OPEN"}]}
]}"""
MAPPING = {"pending": "NEW", "due": "OPEN", "fully_paid": "PAID|SETTLED", "partially_paid": "PART"}

db_url = sqlite_db_url  # the flow in a browser; tests/receivables runs on both databases


class Mailbox:
    """aiosmtpd's handler: each message received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A plain SMTP server on loopback: its mailbox and port."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Garage Dupré")


def portal_link(message: EmailMessage, base: str) -> str:
    """The portal link of the payment request e-mail (its plain-text part)."""
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    found = re.search(re.escape(base) + r"/portal/cp_[A-Za-z0-9_-]+", text)
    assert found, text
    return found.group(0)


def pay_two_of_three(browser: Browser, link: str) -> None:
    """The customer's phone: the portal, inv_003 unticked, Pay, the sandbox card."""
    with on_phone(browser, link) as page:
        expect(page.locator("h1")).to_have_text("Your invoices")
        boxes = page.locator('input[name="invoices"]')
        expect(boxes).to_have_count(3)
        for inv_id in ("inv_001", "inv_002", "inv_003"):
            expect(page.locator(f'input[value="{inv_id}"]')).to_be_checked()
        expect(page.locator("#portal-total")).to_have_text("€239.50")
        # Each box's name says the invoice and what is left to pay on it.
        page.get_by_role("checkbox", name=re.compile(r"Winter check-up.*€89\.00")).uncheck()
        # The page's script keeps the total of the ticked ones.
        expect(page.locator("#portal-total")).to_have_text("€150.50")
        page.get_by_role("button", name="Pay", exact=True).click()
        pay_on_checkout(page, "€150.50")


def test_import_request_by_email_and_pay_two_of_three_invoices_on_the_portal(
    browser: Browser,
    runtime: Runtime,
    base: str,
    merchant: NewCredentials,
    mailbox: tuple[Mailbox, int],
) -> None:
    token = api(
        base,
        "GET",
        "get_token",
        api_account_id=merchant.account.api_account_id,
        api_secret_key=merchant.api_secret_key,
    )["access_token"]
    imported = api(
        base,
        "POST",
        "set_external_invoices",
        access_token=token,
        ExternalSourceId=SOURCE,
        InvoicesLists=INVOICES,
    )
    assert imported["invoices"] == "3"
    api(
        base,
        "POST",
        "set_external_invoice_status",
        access_token=token,
        ExternalSourceId=SOURCE,
        **MAPPING,
    )
    requested = api(
        base,
        "POST",
        "request_invoices_payment",
        access_token=token,
        ExternalSourceId=SOURCE,
        CustomerId="C-ADA",
        media="EMAIL",
    )
    assert requested["track_id"] == "inv_001|inv_002|inv_003"
    # The worker's batch sends the e-mail through the SMTP server (in a thread of its own:
    # Playwright's sync API holds an event loop in this one).
    box, port = mailbox
    mailing = with_settings(
        runtime,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=SmtpSecurity.NONE,
        smtp_from="Payments <payments@mobip.test>",
    )
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(deliver, mailing).result(timeout=60) >= 1
    [message] = box.messages
    assert message["To"] == "ada@example.com"
    link = portal_link(message, base)

    pay_two_of_three(browser, link)

    listed = api(base, "GET", "get_external_invoices", access_token=token, ExternalSourceId=SOURCE)
    rows = {row["InvId"]: row for row in listed["InvoicesList"]}
    for inv_id in ("inv_001", "inv_002"):
        assert rows[inv_id]["mobip_status"] == "fully_paid"
        assert rows[inv_id]["InvStatus"] == "PAID"  # the first code mapped to fully_paid
        assert rows[inv_id]["remaining_amount_in_cents"] == "0"
        assert rows[inv_id]["paid_by"]
    assert rows["inv_001"]["paid_by"] == rows["inv_002"]["paid_by"]
    third = rows["inv_003"]
    assert (third["mobip_status"], third["InvStatus"]) == ("due", "OPEN")
    assert (third["remaining_amount_in_cents"], third["paid_by"]) == ("8900", "")
    assert {row["url_portal"] for row in rows.values()} == {link}

    # The portal again: the two paid with their date, the third still to pay.
    with on_phone(browser, link) as page:
        expect(page.locator('input[name="invoices"]')).to_have_count(1)
        expect(page.locator('input[value="inv_003"]')).to_be_checked()
        paid = page.locator(".portal-paid li")
        expect(paid).to_have_count(2)
        expect(paid.filter(has_text="Boiler service")).to_contain_text("Paid on Jan 1, 2026")
        expect(paid.filter(has_text="Spare parts")).to_contain_text("Paid on Jan 1, 2026")
        expect(page.locator("#portal-total")).to_have_text("€89.00")
