"""An invoice as a PDF (fpdf2): A4, one page, in the merchant's language (EN or FR).

The standard fonts need no embedded file; text is written in Windows-1252 (English, French, the
euro sign), any other character shown as "?" (as the posters of products/poster.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from fpdf import FPDF

from mobip.billing.models import Invoice
from mobip.kit.i18n import LOCALES, N_, money, translate, translations

INVOICE = N_("Invoice")
NUMBER = N_("Invoice number")
DATE = N_("Invoice date")
PERIOD = N_("Period")
SELLER = N_("Seller")
BUYER = N_("Buyer")
VAT_ID = N_("VAT number: %(vat_id)s")
CUSTOMER_REFERENCE = N_("Your reference: %(reference)s")
ACCOUNT = N_("Account: %(uid)s")
DESCRIPTION = N_("Description")
AMOUNT = N_("Amount")
EXCL_TAX = N_("Total excluding VAT")
VAT = N_("VAT %(rate)s %%")
DUE = N_("Total due")
FEE_NOTE = N_("Fees are computed once, when a payment is made, and are not returned on a refund.")

_ENCODING = "windows-1252"
DASH = " \u2013 "  # between the period's two ends
_SPACES = str.maketrans({"\u202f": "\u00a0"})
_MARGIN = 18
_WIDTH = 210 - 2 * _MARGIN


def _printable(text: str) -> str:
    return text.translate(_SPACES).encode(_ENCODING, "replace").decode(_ENCODING)


def period_text(invoice: Invoice, language: str) -> str:
    """The period as people read it: "1 Nov 2026 - 30 Nov 2026" (with an en dash) when it runs
    from midnight to midnight in the invoice's zone (the end is exclusive: its day before is
    shown), else the two moments with their time and the zone."""
    zone = ZoneInfo(invoice.timezone)
    locale = LOCALES[language]
    start = invoice.period_start.astimezone(zone)
    end = invoice.period_end.astimezone(zone)
    if _is_midnight(start) and _is_midnight(end):
        last_day = (end - timedelta(days=1)).date()
        first = format_date(start.date(), "medium", locale=locale)
        return f"{first}{DASH}{format_date(last_day, 'medium', locale=locale)}"
    first = format_datetime(start, "medium", locale=locale)
    last = format_datetime(end, "medium", locale=locale)
    return f"{first}{DASH}{last} ({invoice.timezone})"


def _is_midnight(moment: datetime) -> bool:
    return (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)


def _percent(basis_points: int) -> str:
    whole, cents = divmod(basis_points, 100)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}".rstrip("0")


def line_texts(invoice: Invoice, language: str) -> list[tuple[str, str]]:
    """(description, amount) of each line, as printed."""
    catalog = translations(language)
    count = invoice.transactions_count
    paid = money(invoice.transactions_amount, invoice.currency, language)
    percentage = catalog.ngettext(
        "Percentage fees on %(num)d PAID transaction totalling %(amount)s",
        "Percentage fees on %(num)d PAID transactions totalling %(amount)s",
        count,
    ) % {"num": count, "amount": paid}
    fixed = catalog.ngettext(
        "Fixed fees on %(num)d PAID transaction",
        "Fixed fees on %(num)d PAID transactions",
        count,
    ) % {"num": count}
    return [
        (percentage, money(invoice.fee_variable, invoice.currency, language)),
        (fixed, money(invoice.fee_fixed, invoice.currency, language)),
    ]


def render(invoice: Invoice, language: str) -> bytes:
    """The invoice as PDF bytes (A4)."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_auto_page_break(True, _MARGIN)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_title(_printable(f"{translate(language, INVOICE)} {invoice.number}"))
    pdf.set_creator("MOBIP")
    pdf.add_page()

    def text(value: str, size: float = 10, style: str = "", height: float = 5.5) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(_WIDTH, height, _printable(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_text_color(26, 31, 54)
    text(translate(language, INVOICE), 24, "B", 11)
    pdf.ln(2)
    for label, value in (
        (NUMBER, invoice.number),
        (
            DATE,
            format_date(
                datetime.fromisoformat(invoice.invoice_date), "long", locale=LOCALES[language]
            ),
        ),
        (PERIOD, period_text(invoice, language)),
    ):
        # French puts a (no-break) space before a colon.
        colon = "\u00a0: " if language == "FR" else ": "
        text(f"{translate(language, label)}{colon}{value}", 11)
    pdf.ln(4)

    top = pdf.get_y()
    column = _WIDTH / 2 - 4
    for x, title, lines in (
        (
            _MARGIN,
            SELLER,
            [
                invoice.seller_name,
                *invoice.seller_address.splitlines(),
                translate(language, VAT_ID, vat_id=invoice.seller_vat_id)
                if invoice.seller_vat_id
                else "",
            ],
        ),
        (
            _MARGIN + _WIDTH / 2 + 4,
            BUYER,
            [
                invoice.buyer_name,
                translate(language, ACCOUNT, uid=invoice.buyer_uid),
                translate(language, CUSTOMER_REFERENCE, reference=invoice.buyer_external_id)
                if invoice.buyer_external_id
                else "",
            ],
        ),
    ):
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(column, 6, _printable(translate(language, title)), new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for line in filter(None, lines):
            pdf.multi_cell(column, 5, _printable(line), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(_MARGIN, max(pdf.get_y(), top + 30) + 6)

    amount_width = 40
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_fill_color(238, 240, 245)
    pdf.cell(_WIDTH - amount_width, 8, _printable(translate(language, DESCRIPTION)), fill=True)
    pdf.cell(
        amount_width,
        8,
        _printable(translate(language, AMOUNT)),
        fill=True,
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 10)
    for description, shown in line_texts(invoice, language):
        pdf.cell(_WIDTH - amount_width, 8, _printable(description))
        pdf.cell(amount_width, 8, _printable(shown), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    totals: list[tuple[str, int, str]] = [
        (translate(language, EXCL_TAX), invoice.amount_excl_tax, ""),
        (translate(language, VAT, rate=_percent(invoice.vat_rate_bp)), invoice.vat_amount, ""),
        (translate(language, DUE), invoice.amount, "B"),
    ]
    for label, minor, style in totals:
        pdf.set_font("Helvetica", style, 11)
        pdf.cell(_WIDTH - amount_width, 7, _printable(label), align="R")
        pdf.cell(
            amount_width,
            7,
            _printable(money(minor, invoice.currency, language)),
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(8)
    pdf.set_text_color(79, 86, 107)
    text(translate(language, FEE_NOTE), 9)
    return bytes(pdf.output())
