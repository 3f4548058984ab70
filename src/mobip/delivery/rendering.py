"""What a customer reads in an e-mail or an SMS: the templates, and amounts and dates in EN or FR.

Templates live in ``delivery/templates/`` (Jinja2, one folder per language). A message template
defines ``{% block subject %}`` (e-mail) and ``{% block body %}``; HTML templates are autoescaped,
text templates are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mobip.accounts.models import Account, Language
from mobip.config import Settings
from mobip.kit import i18n
from mobip.transactions.models import Transaction
from mobip.transactions.service import checkout_url

TEMPLATES = Path(__file__).parent / "templates"


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
    payment_method: str


def payment_view(
    transaction: Transaction, merchant: Account, settings: Settings, language: Language
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
        payment_method=transaction.payment_method or "",
    )


REMINDER = "reminder"  # the occasion of an automatic resend (schedules)


def template_for(occasion: str) -> str:
    """The automatic reminder has its own template; initial and manual sends are the request."""
    return "reminder" if occasion == REMINDER else "payment_request"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render_block(name: str, block: str, **context: Any) -> str:
    """One block of a template (``subject``, ``body``), rendered with ``context``."""
    template = environment().get_template(name)
    return "".join(template.blocks[block](template.new_context(context))).strip()


def render(name: str, **context: Any) -> str:
    """A whole template rendered with ``context``."""
    return environment().get_template(name).render(context)
