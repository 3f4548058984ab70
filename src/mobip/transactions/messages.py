"""What a customer reads about a transaction: the payment request (and its automatic reminder) by
e-mail or SMS, and the payment receipt by e-mail, in EN or FR.

These are the composers of the outbox kinds transactions queue (``delivery.service``'s
PAYMENT_REQUEST and RECEIPT), registered with delivery by ``register`` (``mobip.wiring``). At send
time a composer loads the transaction and returns what to send; delivery does the rest (MIME,
SMTP, SMS gateways, retries). Templates are in ``templates/`` (Jinja2), one per message for every
language (their texts are gettext messages, translated from ``mobip/locale``'s catalogs):
``email/`` ``payment_request``, ``reminder`` and ``receipt`` (``.txt`` holds the subject and the
text part, ``.html`` the HTML part, which for a request shows the QR code of the checkout link
inline), and ``sms/``. A request that can no longer be paid is not sent (PermanentFailure).

The e-mails look like the checkout (docs/delivery.md): its accent colour, or the merchant's
accent and logo (``accounts.service.get_branding``); the Pay button first, the QR code small in
an aside after it; a TEST MODE mark when the payment is a test, by the checkout's rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from sqlalchemy.orm import Session

from mobip.accounts.models import Account, Language, Provider
from mobip.accounts.service import Branding, get_branding
from mobip.config import Settings
from mobip.delivery.composing import Composers, Composing, MailContent, SmsContent
from mobip.delivery.models import OutboxMessage
from mobip.delivery.rendering import Templates
from mobip.delivery.service import PAYMENT_REQUEST, RECEIPT
from mobip.delivery.sms import MAX_SEGMENTS, fit_text
from mobip.delivery.worker import PermanentFailure
from mobip.kit import i18n
from mobip.kit.clock import Clock
from mobip.qr.service import render_png
from mobip.transactions import cards, repository
from mobip.transactions.models import Media, Transaction, TransactionStatus
from mobip.transactions.service import checkout_url

TEMPLATES = Templates(Path(__file__).parent / "templates")
# Pixels per QR module in the PNG; the e-mail shows it at half that size (about 120 px for a
# checkout link), sharp on a 2x phone screen: small enough not to be the mail's largest element,
# large enough for a phone's camera across a desk.
QR_SCALE = 6
REMINDER = "reminder"  # the occasion of an automatic resend (tasks.send_reminders)
# The checkout's accent colour (checkout.css --accent), the e-mails' when the merchant has none:
# indigo, white text on it 6.1:1.
DEFAULT_ACCENT = "#3b5bdb"
_COLOUR = re.compile(r"#[0-9a-f]{6}")
# E-mail clients show PNG and JPEG; most (Gmail, Outlook) do not show an SVG: the name instead.
EMAIL_LOGO_TYPES = frozenset({"image/png", "image/jpeg"})
# TRANSLATORS: the payment method of a receipt when the card's brand and digits are unknown.
CARD = i18n.N_("Card")


def language_of(value: str | None) -> Language:
    """The language a message is written in: EN or FR (anything else falls back to EN)."""
    return Language(i18n.language_of(value))


def long_date(moment: datetime, language: Language) -> str:
    """March 4, 2026 / 4 mars 2026 (the UTC date)."""
    return format_date(moment.astimezone(UTC).date(), "long", locale=i18n.LOCALES[language])


def date_time(moment: datetime, language: Language) -> str:
    """March 4, 2026, 3:30\u202fPM UTC / 4 mars 2026, 15:30 UTC."""
    locale = i18n.LOCALES[language]
    time = format_time(moment, "short", tzinfo=UTC, locale=locale)
    return f"{long_date(moment, language)}, {time} UTC"


def is_test_payment(merchant: Account) -> bool:
    """Whether the merchant's payments are tests: the checkout's rule for its TEST MODE mark (a
    provider with test cards, the sandbox, moves no money)."""
    return merchant.provider == Provider.SANDBOX.value


def accent_of(branding: Branding) -> str:
    """The merchant's accent colour ("#rrggbb", checked for contrast by accounts), else the
    checkout's. Checked again here: it is written into style attributes."""
    colour = (branding.accent_colour or "").lower()
    return colour if _COLOUR.fullmatch(colour) else DEFAULT_ACCENT


def logo_url(settings: Settings, transaction: Transaction, branding: Branding) -> str | None:
    """The merchant's logo as the checkout serves it (absolute), when an e-mail can show it."""
    if branding.logo_version is None or branding.logo_content_type not in EMAIL_LOGO_TYPES:
        return None
    return f"{checkout_url(settings, transaction)}/logo?v={branding.logo_version}"


def card_shown(payment_method: str, language: Language) -> str:
    """A stored payment method as a receipt names it: ``card visa ****4242`` → ``Visa •••• 4242``,
    ``card`` (brand and digits unknown) → Card / Carte; anything else as it is stored."""
    if payment_method == "card":
        return i18n.translate(language, CARD)
    found = cards.stored_card(payment_method)
    if found is None:
        return payment_method
    return cards.card_shown(*found) or payment_method


@dataclass(frozen=True)
class PaymentView:
    """A transaction as its messages show it: every value already formatted for the language."""

    language: Language
    merchant_name: str
    customer_name: str
    item_name: str
    item_amount: str
    tax_amount: str | None  # None when there is no tax to show
    total: str
    checkout_url: str
    expires_on: str
    trid: str
    paid_at: str
    payment_method: str  # as a receipt names it: "Visa •••• 4242"
    test: bool  # a test payment: the e-mails say so
    accent: str  # "#rrggbb": the button's and links' colour
    logo_url: str | None  # the merchant's logo (PNG or JPEG), else its name is the header
    # An imported customer's invoice portal (receivables/), linked under the Pay button.
    portal_url: str | None = None


def payment_view(
    transaction: Transaction,
    merchant: Account,
    settings: Settings,
    language: Language,
    branding: Branding,
) -> PaymentView:
    def amount(value: int) -> str:
        return i18n.money(value, transaction.currency, language)

    return PaymentView(
        language=language,
        merchant_name=merchant.name,
        customer_name=transaction.customer_name or "",
        item_name=transaction.item_name,
        item_amount=amount(transaction.item_amount),
        tax_amount=amount(transaction.tax_amount) if transaction.tax_amount else None,
        total=amount(transaction.total_amount),
        checkout_url=checkout_url(settings, transaction),
        expires_on=long_date(transaction.expires_at, language),
        trid=transaction.trid,
        paid_at=date_time(transaction.status_changed_at, language),
        payment_method=card_shown(transaction.payment_method or "", language),
        test=is_test_payment(merchant),
        accent=accent_of(branding),
        logo_url=logo_url(settings, transaction, branding),
    )


def template_for(occasion: str) -> str:
    """The automatic reminder has its own template; initial and manual sends are the request."""
    return "reminder" if occasion == REMINDER else "payment_request"


# --- e-mail -------------------------------------------------------------------------------------


def render_payment_request(view: PaymentView, occasion: str, cid_domain: str) -> MailContent:
    """The payment request, or its reminder (``occasion`` reminder), in ``view``'s language."""
    qr_png = render_png(view.checkout_url, scale=QR_SCALE)
    qr_cid = f"qr.{view.trid}@{cid_domain}"
    return _render(
        view, template_for(occasion), qr_png, qr_cid, qr_cid=qr_cid, qr_size=_png_width(qr_png) // 2
    )


def render_receipt(view: PaymentView) -> MailContent:
    return _render(view, "receipt", None, None)


def _render(
    view: PaymentView, template: str, png: bytes | None, cid: str | None, **html: Any
) -> MailContent:
    """``template``'s ``.txt`` (subject and text part) and ``.html`` in ``view``'s language."""
    name = f"email/{template}"
    language = view.language.value
    return MailContent(
        from_name=view.merchant_name,
        subject=TEMPLATES.render_block(f"{name}.txt", "subject", language, view=view),
        text=TEMPLATES.render_block(f"{name}.txt", "body", language, view=view) + "\n",
        html=TEMPLATES.render(f"{name}.html", language, view=view, **html),
        inline_png=png,
        inline_cid=cid,
    )


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # IHDR width, right after the signature


# --- SMS ----------------------------------------------------------------------------------------


def payment_request_text(
    *,
    language: str,
    occasion: str,
    merchant_name: str,
    item_name: str,
    total: str,
    url: str,
    max_segments: int = MAX_SEGMENTS,
) -> str:
    """The SMS of a payment request, within ``max_segments`` when shortening the names allows:
    the item name first, then the merchant's; the link is never cut."""
    template = f"sms/{template_for(occasion)}.txt"
    lang = language_of(language).value

    def text(names: Mapping[str, str]) -> str:
        return TEMPLATES.render_block(
            template,
            "body",
            lang,
            merchant=names["merchant"],
            item=names["item"],
            total=total,
            url=url,
        )

    names = {"item": item_name, "merchant": merchant_name}  # the order they are shortened in
    return fit_text(text, names, max_segments=max_segments)


# --- the composers ------------------------------------------------------------------------------


def load(session: Session, trid: str) -> tuple[Transaction, Account]:
    """The transaction a message is about, with its merchant; PermanentFailure when it is gone."""
    found = repository.get_with_merchant_by_trid(session, trid)
    if found is None:
        raise PermanentFailure(f"transaction {trid} not found")
    return found


def require_payable(transaction: Transaction, clock: Clock) -> None:
    """A payment request is sent only while it can be paid: PENDING and not past its expiry."""
    if transaction.status != TransactionStatus.PENDING:
        raise PermanentFailure(
            f"not sent: the transaction is {transaction.status}"
            + (f" ({transaction.reason})" if transaction.reason else "")
        )
    if clock.now() >= transaction.expires_at:
        raise PermanentFailure("not sent: the transaction has expired")


def payment_request(message: OutboxMessage, composing: Composing) -> MailContent | SmsContent:
    """Outbox kind ``payment_request``: payload {trid, media, occasion, portal_url (a request for
    imported invoices: the customer's portal, which the e-mail links to)}; by SMS when media
    says so, else by e-mail."""
    payload = message.load_payload()
    transaction, merchant = load(composing.session, str(payload["trid"]))
    require_payable(transaction, composing.clock)
    occasion = str(payload.get("occasion", "initial"))
    language = language_of(transaction.language)
    if payload.get("media") == Media.SMS.value:
        return SmsContent(
            payment_request_text(
                language=language.value,
                occasion=occasion,
                merchant_name=merchant.name,
                item_name=transaction.item_name,
                total=i18n.money(transaction.total_amount, transaction.currency, language),
                url=checkout_url(composing.settings, transaction),
            )
        )
    branding = get_branding(composing.session, merchant.id)
    view = payment_view(transaction, merchant, composing.settings, language, branding)
    if isinstance(portal := payload.get("portal_url"), str):
        view = replace(view, portal_url=portal)
    return render_payment_request(view, occasion, composing.mail_domain)


def receipt(message: OutboxMessage, composing: Composing) -> MailContent:
    """Outbox kind ``receipt``: payload {trid, language, test}, target the customer's e-mail.
    ``test`` is whether the provider that took the payment moves no money (the merchant's
    provider may have changed since); a receipt queued without it follows the merchant's."""
    payload = message.load_payload()
    transaction, merchant = load(composing.session, str(payload["trid"]))
    if transaction.status != TransactionStatus.PAID:
        raise PermanentFailure(f"no receipt: the transaction is {transaction.status}")
    language = language_of(str(payload.get("language") or transaction.language))
    branding = get_branding(composing.session, merchant.id)
    view = payment_view(transaction, merchant, composing.settings, language, branding)
    if isinstance(test := payload.get("test"), bool):
        view = replace(view, test=test)
    return render_receipt(view)


def register(composers: Composers) -> None:
    """Give delivery the composers of the messages transactions queue."""
    composers.register(PAYMENT_REQUEST, payment_request)
    composers.register(RECEIPT, receipt)
