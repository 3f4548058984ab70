"""The e-mails as transactions.messages composes them: the checkout's look (accent colour, or the
merchant's accent and logo), the Pay button before a small QR code aside, card brands as people
write them, the TEST MODE mark of a test payment, in EN and FR. (Sending them through SMTP:
tests/delivery/test_email.py; how they look in a browser: tests/e2e/test_email_visual.py.)"""

from __future__ import annotations

import hashlib
import io
import re

import pytest
import zxingcpp
from PIL import Image

from factories import make_account, make_transaction
from mobip.accounts.models import Account, Language, Provider
from mobip.accounts.service import Branding
from mobip.delivery.composing import MailContent
from mobip.kit.runtime import Runtime
from mobip.transactions import messages
from mobip.transactions.models import Transaction
from mobip.transactions.service import checkout_url
from transactions import emails

TRANSACTION = {
    "item_name": "Green tea, 250 g",
    "item_amount": 5490,
    "tax_amount": 498,
    "customer_name": "Zoé",
    "customer_email": "zoe@example.com",
}


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


def request_of(runtime: Runtime, merchant: Account, **values: object) -> MailContent:
    transaction = make_transaction(runtime, merchant, **(TRANSACTION | values))
    return emails.payment_request(runtime, transaction)


def position(html: str, pattern: str) -> int:
    found = re.search(pattern, html)
    assert found is not None, pattern
    return found.start()


# --- the payment request -------------------------------------------------------------------------


@pytest.mark.parametrize("occasion", ["initial", messages.REMINDER])
def test_the_pay_button_comes_first_then_the_details_then_a_small_qr_code_aside(
    runtime: Runtime, merchant: Account, occasion: str
) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    view = english_view(runtime, transaction, merchant)
    mail = messages.render_payment_request(view, occasion, "mobip.test")
    url = checkout_url(runtime.settings, transaction)
    button = position(mail.html, rf'<a href="{re.escape(url)}"[^>]*>Pay €59\.88</a>')
    details = position(mail.html, "Green tea, 250 g")
    aside = position(mail.html, "Paying from another device?")
    qr = position(mail.html, r'<img src="cid:')
    assert button < details < aside < qr
    assert mail.html.count("<img") == 1  # no logo: the merchant's name heads the mail
    # The QR code reads as the link and is shown at half its pixels: about 120 px, not 250.
    assert mail.inline_png is not None
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(mail.inline_png)))
    assert decoded.text == url
    png_width = Image.open(io.BytesIO(mail.inline_png)).width
    shown = re.search(r'<img src="cid:[^"]+" alt="[^"]+" width="(\d+)" height="(\d+)"', mail.html)
    assert shown is not None
    assert int(shown[1]) == int(shown[2]) == png_width // 2
    assert 100 <= int(shown[1]) <= 140
    # The text part says the same, in the same order.
    text = mail.text
    assert text.index(f"Pay here: {url}") < text.index("Green tea, 250 g: €54.90")
    assert "Total: €59.88" in text


def english_view(
    runtime: Runtime, transaction: Transaction, merchant: Account
) -> messages.PaymentView:
    return messages.payment_view(
        transaction, merchant, runtime.settings, Language.EN, Branding(None, None, None)
    )


def test_the_colours_are_the_checkouts_by_default(runtime: Runtime, merchant: Account) -> None:
    mail = request_of(runtime, merchant)
    assert 'bgcolor="#3b5bdb" style="background:#3b5bdb;' in mail.html  # the button
    assert "border-top:4px solid #3b5bdb" in mail.html
    for other_blue in ("#1a73e8", "#1f6feb"):
        assert other_blue not in mail.html
    assert (
        '<p style="margin:0 0 20px;font-size:16px;font-weight:bold;color:#1f2933;">Maison Dupré</p>'
        in mail.html
    )


def test_the_merchants_accent_colour_and_logo_replace_the_checkouts(
    runtime: Runtime, merchant: Account
) -> None:
    logo = emails.png()
    emails.brand(runtime, merchant, accent="#1a7f37", logo=logo)
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    mail = emails.payment_request(runtime, transaction)
    assert "#3b5bdb" not in mail.html
    assert 'bgcolor="#1a7f37" style="background:#1a7f37;' in mail.html
    assert "color:#1a7f37;word-break:break-all" in mail.html  # the link under the button
    version = hashlib.sha256(logo).hexdigest()[:16]
    logo_src = f"{checkout_url(runtime.settings, transaction)}/logo?v={version}"
    assert f'<img src="{logo_src}" alt="Maison Dupré" height="40"' in mail.html
    assert logo_src.startswith(("http://", "https://"))  # absolute: a mail has no base URL


def test_an_svg_logo_is_not_shown_in_an_email_the_name_is(
    runtime: Runtime, merchant: Account
) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    emails.brand(runtime, merchant, logo=svg, logo_type="image/svg+xml")
    mail = request_of(runtime, merchant)
    assert "/logo?v=" not in mail.html
    assert ">Maison Dupré</p>" in mail.html
    assert "#3b5bdb" in mail.html  # no accent colour: the checkout's


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("#1a7f37", "#1a7f37"),
        ("#1A7F37", "#1a7f37"),
        (None, "#3b5bdb"),
        ("", "#3b5bdb"),
        ("red", "#3b5bdb"),
        ("#1a7f37;background:url(x)", "#3b5bdb"),
        ('#1a7f37" onmouseover="x', "#3b5bdb"),
        ("#1a7f3", "#3b5bdb"),
    ],
)
def test_only_an_rrggbb_accent_colour_reaches_a_style_attribute(
    stored: str | None, shown: str
) -> None:
    assert messages.accent_of(Branding(stored, None, None)) == shown


# --- the receipt ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "language", "shown"),
    [
        ("card visa ****4242", Language.EN, "Visa •••• 4242"),
        ("card mastercard ****4444", Language.FR, "Mastercard •••• 4444"),
        ("card amex ****0005", Language.EN, "American Express •••• 0005"),
        ("card cartes_bancaires ****1001", Language.FR, "Cartes Bancaires •••• 1001"),
        ("card jcb ****0000", Language.EN, "JCB •••• 0000"),
        ("card link ****1234", Language.EN, "Link •••• 1234"),  # a brand we do not list
        ("card card ****1234", Language.EN, "•••• 1234"),
        ("card unknown ****1234", Language.EN, "•••• 1234"),
        ("card", Language.EN, "Card"),
        ("card", Language.FR, "Carte"),
        ("bank transfer", Language.EN, "bank transfer"),
    ],
)
def test_a_card_is_named_as_people_write_it(stored: str, language: Language, shown: str) -> None:
    assert messages.card_shown(stored, language) == shown


@pytest.mark.parametrize(
    ("language", "method", "amount"),
    [
        ("EN", "Payment method: Visa •••• 4242", "€59.88"),
        ("FR", "Moyen de paiement : Visa •••• 4242", "59,88\xa0€"),
    ],
)
def test_the_receipt_names_the_card_with_its_brand_capitalised(
    runtime: Runtime, merchant: Account, language: str, method: str, amount: str
) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    mail = emails.receipt(runtime, transaction)
    for part in (mail.text, mail.html):
        assert method in part
        assert "card visa" not in part
        assert "****" not in part
    # The amount paid, large, before the details.
    assert position(mail.html, f"font-size:32px[^>]*>{re.escape(amount)}</p>") < position(
        mail.html, "Green tea, 250 g"
    )
    assert mail.inline_png is None  # nothing to scan in a receipt


# --- test payments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "mark", "words"),
    [
        ("EN", "TEST MODE", "No real payment is made."),
        ("FR", "MODE TEST", "Aucun paiement réel n'est effectué."),
    ],
)
def test_every_email_of_a_test_payment_says_so(
    runtime: Runtime, merchant: Account, language: str, mark: str, words: str
) -> None:
    assert merchant.provider == Provider.SANDBOX  # the checkout's TEST MODE rule: test cards
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language=language)
    request = emails.payment_request(runtime, transaction)
    receipt = emails.receipt(runtime, transaction)
    for mail in (request, receipt):
        assert mail.text.startswith(f"{mark} - {words}\n\n")
        assert re.search(rf"<span [^>]*>{mark}</span>", mail.html)
        assert words in mail.html
        # At the top, before the merchant's name and the title.
        assert position(mail.html, mark) < position(mail.html, "<h1")


def test_a_payment_through_a_real_provider_has_no_test_mark(
    runtime: Runtime, merchant: Account
) -> None:
    emails.use_provider(runtime, merchant, Provider.STRIPE)
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    request = emails.payment_request(runtime, transaction)
    receipt = emails.receipt(runtime, transaction)
    for mail in (request, receipt):
        assert "TEST" not in mail.text
        assert "TEST" not in mail.html
        assert "No real payment" not in mail.html


def test_the_french_emails_are_translated(runtime: Runtime, merchant: Account) -> None:
    transaction = make_transaction(runtime, merchant, **TRANSACTION, language="FR")
    mail = emails.payment_request(runtime, transaction)
    assert "Payer 59,88\xa0€</a>" in mail.html
    assert "Vous payez depuis un autre appareil ?" in mail.html.replace("\u202f", " ")
    assert "Montant dû" in mail.html
    assert '<html lang="fr">' in mail.html
    for english in ("Paying from another device", "Amount due", "Scan this code", "Pay "):
        assert english not in mail.html


@pytest.mark.parametrize(
    ("provider", "paid_in_test"), [(Provider.STRIPE, True), (Provider.SANDBOX, False)]
)
def test_a_receipt_says_test_as_the_payment_was_not_as_the_merchant_is_now(
    runtime: Runtime, merchant: Account, provider: Provider, paid_in_test: bool
) -> None:
    """The receipt's TEST MODE mark is the paying provider's (written with the receipt), not the
    provider the merchant has switched to since."""
    transaction = make_transaction(runtime, merchant, **TRANSACTION)
    emails.use_provider(runtime, merchant, provider)
    mail = emails.receipt(runtime, transaction, test=paid_in_test)
    assert ("TEST MODE" in mail.text) is paid_in_test
    assert ("TEST MODE" in mail.html) is paid_in_test
