"""get_invoice_list and get_invoice: the caller's invoices, a partner's descendant's, the same
404 for someone else's as for an unknown id, XML replies, and the signed PDF link."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pypdf import PdfReader
from starlette.testclient import TestClient

from billing.support import merchant, monthly, pay
from factories import make_account, token_for
from mobip.accounts.models import Role
from mobip.kit.runtime import Runtime

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def call(client: TestClient, name: str, token: str, **fields: str) -> Any:
    reply = client.get(f"/api/2.0/mobip/{name}", params={"access_token": token, **fields})
    return reply


def two_months(runtime: Runtime) -> Any:
    partner = make_account(runtime, role=Role.PARTNER)
    shop = merchant(runtime, parent=partner, external_id="shop-42")
    stranger = merchant(runtime, name="Stranger")
    pay(runtime, shop.account, 10_000, JAN.replace(day=5))
    pay(runtime, stranger.account, 10_000, JAN.replace(day=5))
    pay(runtime, shop.account, 20_000, FEB.replace(day=5))
    monthly(runtime, FEB + timedelta(hours=1))
    monthly(runtime, MAR + timedelta(hours=1))
    return partner, shop, stranger


def test_the_list_is_the_callers_newest_first_and_a_partner_reads_a_descendants(
    client: TestClient, runtime: Runtime
) -> None:
    partner, shop, stranger = two_months(runtime)
    token = token_for(client, shop)
    data = call(client, "get_invoice_list", token).json()
    assert data["return_code"] == "0"
    february, january = data["invoice_data"]
    assert february["period_start"] == "2026-02-01T00:00:00Z"
    assert february["period_end"] == "2026-03-01T00:00:00Z"
    assert january["invoice_number"] == "MOBIP-2026-000001"
    assert february["invoice_number"] == "MOBIP-2026-000003"  # the stranger's was second
    # 20,000 at 1.4 % + 25 = 305; VAT 20 % = 61.
    assert {k: february[k] for k in ("amount_excl_tax", "vat_amount", "amount", "currency")} == {
        "amount_excl_tax": "305",
        "vat_amount": "61",
        "amount": "366",
        "currency": "EUR",
    }
    assert set(january) == {
        "invoice_id", "invoice_date", "amount", "invoice_number", "period_start",
        "period_end", "currency", "amount_excl_tax", "vat_amount",
    }  # fmt: skip
    partner_token = token_for(client, partner)
    assert call(client, "get_invoice_list", partner_token).json()["invoice_data"] == []
    mine = call(client, "get_invoice_list", partner_token, uid=shop.account.uid).json()
    assert mine["invoice_data"] == data["invoice_data"]
    # Not a descendant (nor for a merchant, anyone but itself): the accounts' 404.
    for caller, uid in ((partner_token, stranger.account.uid), (token, partner.account.uid)):
        refused = call(client, "get_invoice_list", caller, uid=uid)
        assert (refused.status_code, refused.json()["return_code"]) == (404, "4002")


def test_get_invoice_gives_every_field_and_someone_elses_is_not_found(
    client: TestClient, runtime: Runtime
) -> None:
    partner, shop, stranger = two_months(runtime)
    token = token_for(client, shop)
    january = call(client, "get_invoice_list", token).json()["invoice_data"][1]
    data = call(client, "get_invoice", token, invoice_id=january["invoice_id"]).json()
    invoice = data["invoice_data"]
    assert {k: invoice[k] for k in january} == january
    assert invoice["buyer_name"] == "Bakery Dupont"
    assert invoice["buyer_external_id"] == "shop-42"
    assert invoice["seller_name"] == "MOBIP"
    assert invoice["vat_rate"] == "20"
    assert invoice["lines"] == [
        {
            "line": "percentage",
            "transactions": "1",
            "transactions_amount": "10000",
            "amount": "140",
        },
        {"line": "fixed", "transactions": "1", "amount": "25"},
    ]
    assert invoice["url_pdf"].startswith("http://127.0.0.1:8000/invoices/")
    partner_token = token_for(client, partner)
    seen = call(client, "get_invoice", partner_token, invoice_id=january["invoice_id"]).json()
    assert seen["invoice_data"]["invoice_id"] == january["invoice_id"]
    stranger_token = token_for(client, stranger)
    theirs = call(client, "get_invoice", stranger_token, invoice_id=january["invoice_id"])
    unknown = call(client, "get_invoice", stranger_token, invoice_id="inv_" + "x" * 22)
    junk = call(client, "get_invoice", stranger_token, invoice_id="nope")
    for reply in (theirs, unknown, junk):
        assert reply.status_code == 404
        assert reply.json() == {"return_code": "4040", "return_message": "Invoice not found"}


def test_xml_replies(client: TestClient, runtime: Runtime) -> None:
    _, shop, _ = two_months(runtime)
    token = token_for(client, shop)
    reply = call(client, "get_invoice_list", token, format="xml")
    assert reply.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(reply.content)
    items = root.findall("./invoice_data/item")
    assert [item.findtext("invoice_number") for item in items] == [
        "MOBIP-2026-000003",
        "MOBIP-2026-000001",
    ]
    one = call(client, "get_invoice", token, invoice_id=items[0].findtext("invoice_id") or "",
               format="xml")  # fmt: skip
    root = ET.fromstring(one.content)
    assert root.findtext("./invoice_data/amount") == "366"
    assert root.findtext("./invoice_data/lines/item/line") == "percentage"


def test_the_signed_pdf_link_works_for_24_hours_only(client: TestClient, runtime: Runtime) -> None:
    _, shop, _ = two_months(runtime)
    token = token_for(client, shop)
    first = call(client, "get_invoice_list", token).json()["invoice_data"][0]
    url = call(client, "get_invoice", token, invoice_id=first["invoice_id"]).json()["invoice_data"][
        "url_pdf"
    ]
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    reply = client.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(reply.content)).pages)
    assert "MOBIP-2026-000003" in text
    assert "Feb 1, 2026 \u2013 Feb 28, 2026" in text
    assert "€3.66" in text
    tampered = path.replace("signature=", "signature=0")
    other = path.replace(first["invoice_id"], "inv_" + "y" * 22)
    for bad in (tampered, other, parts.path):
        assert client.get(bad).status_code == 403
    runtime.clock.advance(hours=24, seconds=1)  # type: ignore[attr-defined]
    assert client.get(path).status_code == 403
