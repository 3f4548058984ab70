"""The invoice's PDF: A4, in English or French, its text (read back with pypdf) names the
number, the period and the total; `mobip invoices pdf` writes the same."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from billing.support import close, invoices, merchant, monthly, pay
from mobip.billing import pdf
from mobip.billing.models import Invoice
from mobip.kit.runtime import Runtime

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def text_of(document: bytes) -> str:
    reader = PdfReader(io.BytesIO(document))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    # No-break spaces (French amounts) read as spaces; lines as single spaces.
    return re.sub(r"\s+", " ", reader.pages[0].extract_text().replace("\xa0", " "))


def january(runtime: Runtime) -> Invoice:
    shop = merchant(runtime, external_id="shop-42").account
    pay(runtime, shop, 10_000, JAN.replace(day=5))
    pay(runtime, shop, 2_050, JAN.replace(day=9))
    monthly(runtime, FEB + timedelta(hours=1))
    [invoice] = invoices(runtime, shop)
    return invoice


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "EN",
            [
                "Invoice",
                "Invoice number: MOBIP-2026-000001",
                "Invoice date: February 1, 2026",
                "Period: Jan 1, 2026 \u2013 Jan 31, 2026",
                "Seller MOBIP",
                "Buyer Bakery Dupont",
                "Your reference: shop-42",
                "Percentage fees on 2 PAID transactions totalling €120.50 €1.69",
                "Fixed fees on 2 PAID transactions €0.50",
                "Total excluding VAT €2.19",
                "VAT 20 % €0.44",
                "Total due €2.63",
            ],
        ),
        (
            "FR",
            [
                "Facture",
                "Numéro de facture : MOBIP-2026-000001",
                "Date de facture : 1 février 2026",
                "Période : 1 janv. 2026 \u2013 31 janv. 2026",
                "Vendeur MOBIP",
                "Client Bakery Dupont",
                "Votre référence : shop-42",
                "Frais proportionnels sur 2 transactions payées, d\u2019un total de 120,50 € "
                "1,69 €",
                "Frais fixes sur 2 transactions payées 0,50 €",
                "Total HT 2,19 €",
                "TVA 20 % 0,44 €",
                "Total TTC à payer 2,63 €",
            ],
        ),
    ],
)
def test_the_pdf_says_the_number_the_period_and_the_total(
    runtime: Runtime, language: str, expected: list[str]
) -> None:
    text = text_of(pdf.render(january(runtime), language))
    missing = [part for part in expected if part not in text]
    assert missing == [], text


def test_a_period_that_does_not_run_midnight_to_midnight_shows_its_times(
    runtime: Runtime,
) -> None:
    shop = merchant(runtime).account
    pay(runtime, shop, 1_000, JAN.replace(day=3))
    close(runtime, JAN.replace(day=20), until=JAN.replace(day=15, hour=14, minute=30))
    [invoice] = invoices(runtime, shop)
    assert pdf.period_text(invoice, "EN") == (
        "Jan 1, 2026, 12:00:00\u202fAM \u2013 Jan 15, 2026, 2:30:00\u202fPM (UTC)"
    )
    text = text_of(pdf.render(invoice, "EN"))
    assert "Jan 15, 2026, 2:30:00 PM (UTC)" in text
