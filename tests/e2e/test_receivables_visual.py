"""The customer portal in Debian's Chromium at a phone's 412x900 and a desktop's 1280x800
(e2e/visual.py), in English and French: the list with due, not-yet-due, partly paid and paid
invoices (long labels and ids), and the page again after Pay with nothing ticked (its error);
JavaScript on, and off for the error page (the page works without it). Each: a full-page
screenshot kept as an artifact, nothing wider than the window, no serious or critical axe-core
violation; on the phone, the first invoice and its checkbox are in the first screen. SQLite only
(the look does not depend on the database)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, expect

from e2e.serving import sqlite_db_url
from e2e.visual import PHONE, Viewport, assert_bottom_within, check_page, each_viewport
from e2e.visual import viewport_context as visual_context
from factories import make_account
from mobip.accounts.models import Account, Language
from mobip.kit.runtime import Runtime
from mobip.receivables import service

db_url = sqlite_db_url  # how it looks does not depend on the database
viewport = each_viewport  # 412x900 and 1280x800

INVOICES = """[{"CustomerId": "CUST-2025-000417-LYON-PART-DIEU", "Invoices": [
 {"InvId": "FA-2025-11-000123", "InvDueDate": "2025-11-15", "Amount_in_cents": "128450",
  "InvLbl": "Maintenance contract, heating and hot water, building B, 2nd quarter 2025",
  "InvStatus": "OPEN"},
 {"InvId": "FA-2025-12-000456", "InvDueDate": "2025-12-20", "Amount_in_cents": "3050",
  "InvLbl": "Spare parts", "InvStatus": "PART"},
 {"InvId": "FA-2026-01-000789-SUPPLEMENT-ANNUEL-REGULARISATION", "InvDueDate": "2026-02-28",
  "Amount_in_cents": "999999", "InvLbl": "", "InvStatus": "NEW"},
 {"InvId": "FA-2025-10-000001", "InvDueDate": "2025-10-01", "Amount_in_cents": "4500",
  "InvLbl": "Annual check-up", "InvStatus": "SETTLED"}]}]"""
MAPPING = {"pending": "NEW", "due": "OPEN", "fully_paid": "SETTLED", "partially_paid": "PART"}


def portal_path(runtime: Runtime, language: Language) -> str:
    merchant = make_account(runtime, name="Chauffage & Sanitaire Dupré-Vasseur SARL").account
    settings, clock = runtime.settings, runtime.clock
    with runtime.database.transaction() as session:
        caller = session.get(Account, merchant.id)
        assert caller is not None
        caller.language = language
        service.set_external_invoices(session, caller, "erp", None, INVOICES, settings, clock)
        service.set_external_invoice_status(session, caller, "erp", MAPPING, clock)
        listed = service.get_external_invoices(session, caller, "erp", None, settings, clock)
    return httpx.URL(listed["InvoicesList"][0]["url_portal"]).path


@pytest.mark.parametrize("language", [Language.EN, Language.FR])
@pytest.mark.parametrize("state", ["list", "nothing-ticked"])
def test_the_portal_page(
    browser: Browser,
    runtime: Runtime,
    base: str,
    viewport: Viewport,
    language: Language,
    state: str,
) -> None:
    path = portal_path(runtime, language)
    javascript = state == "list"
    with visual_context(browser, viewport, java_script_enabled=javascript) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        reply = page.goto(f"{base}{path}")
        assert reply is not None and reply.status == 200
        boxes = page.locator('input[name="invoices"]')
        expect(boxes).to_have_count(3)
        if state == "nothing-ticked":
            for index in range(3):
                boxes.nth(index).uncheck()
            with page.expect_navigation():
                page.locator("button.pay").click()
            expect(page.locator("#invoices-error")).to_be_visible()
        check_page(page, f"portal-{state}-{language.value.lower()}-{viewport.name}")
        if viewport == PHONE:
            assert_bottom_within(page, boxes.first, PHONE.height, "the first invoice's checkbox")
