"""The printable poster of a reusable QR code (``url_qr?format=pdf&paper=A4|A6``): one page
with the merchant, the product's name, photo and price, and the QR code to scan.

Made with fpdf2 (pure Python, maintained; the fee invoices of issue 10 use it too). The PDF's
standard fonts (Helvetica) need no embedded file: text is written in Windows-1252, which covers
English, French and the euro sign; any other character is shown as "?" rather than failing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from fpdf import FPDF
from PIL import Image

from mobip.kit.i18n import N_, money, translate
from mobip.products.models import ReusableQr
from mobip.products.storage import PhotoStore
from mobip.qr.service import render_png

SCAN_TO_PAY = N_("Scan to pay")


@dataclass(frozen=True)
class Paper:
    width: float  # millimetres
    height: float
    margin: float
    title_pt: float
    price_pt: float
    text_pt: float


PAPERS = {
    "A4": Paper(210, 297, 15, 28, 34, 12),
    "A6": Paper(105, 148, 7, 14, 17, 7),
}
_ENCODING = "windows-1252"
# Babel's French amounts use narrow and ordinary no-break spaces; the first is not in cp1252.
_SPACES = str.maketrans({"\u202f": "\u00a0"})


def _printable(text: str) -> str:
    """``text`` as the standard fonts can write it (unknown characters become "?")."""
    return text.translate(_SPACES).encode(_ENCODING, "replace").decode(_ENCODING)


def render(
    qr: ReusableQr, merchant_name: str, url: str, store: PhotoStore, paper_name: str, language: str
) -> bytes:
    """The poster as PDF bytes."""
    paper = PAPERS[paper_name]
    pdf = FPDF(unit="mm", format=(paper.width, paper.height))
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_auto_page_break(False)
    pdf.set_margins(paper.margin, paper.margin, paper.margin)
    pdf.set_title(_printable(qr.item_name))
    pdf.set_creator("MOBIP")
    pdf.add_page()
    inner = paper.width - 2 * paper.margin
    y = paper.margin

    pdf.set_font("Helvetica", "", paper.text_pt)
    pdf.set_text_color(79, 86, 107)
    pdf.set_xy(paper.margin, y)
    pdf.cell(inner, paper.text_pt * 0.5, _printable(merchant_name), align="C")
    y += paper.text_pt * 0.7

    pdf.set_font("Helvetica", "B", paper.title_pt)
    pdf.set_text_color(26, 31, 54)
    pdf.set_xy(paper.margin, y)
    pdf.multi_cell(
        inner,
        paper.title_pt * 0.45,
        _printable(qr.item_name),
        align="C",
        max_line_height=paper.title_pt * 0.45,
    )
    y = pdf.get_y() + paper.margin * 0.3

    # The QR code takes the lower half, the photo what is left between the title and the price.
    qr_side = min(inner, paper.height * 0.38)
    qr_top = paper.height - paper.margin - paper.text_pt * 1.2 - qr_side
    price_height = paper.price_pt * 0.5
    price_top = qr_top - price_height - paper.text_pt * 1.1
    photo_box = price_top - y - paper.margin * 0.3
    data = store.get(qr.photo_key)
    if data is not None and photo_box > 10:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        scale = min(inner / width, photo_box / height)
        w, h = width * scale, height * scale
        pdf.image(io.BytesIO(data), x=(paper.width - w) / 2, y=y + (photo_box - h) / 2, w=w, h=h)

    pdf.set_font("Helvetica", "B", paper.price_pt)
    pdf.set_xy(paper.margin, price_top)
    pdf.cell(
        inner, price_height, _printable(money(qr.total_amount, qr.currency, language)), align="C"
    )

    pdf.set_font("Helvetica", "", paper.text_pt * 1.2)
    pdf.set_xy(paper.margin, qr_top - paper.text_pt * 0.75)
    pdf.cell(inner, paper.text_pt * 0.5, _printable(translate(language, SCAN_TO_PAY)), align="C")

    png = render_png(url, scale=16)
    pdf.image(io.BytesIO(png), x=(paper.width - qr_side) / 2, y=qr_top, w=qr_side, h=qr_side)

    pdf.set_font("Helvetica", "", paper.text_pt * 0.75)
    pdf.set_text_color(79, 86, 107)
    pdf.set_xy(paper.margin, qr_top + qr_side + paper.text_pt * 0.2)
    pdf.cell(inner, paper.text_pt * 0.4, _printable(url), align="C")
    return bytes(pdf.output())
