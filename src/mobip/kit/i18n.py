"""The two languages a customer reads (EN, FR) and money written for them (Babel).

Shared by the hosted pages (checkout) and the messages (delivery), so a page and the e-mail
about it write an amount the same way.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

LANGUAGES = ("EN", "FR")
LOCALES = {"EN": "en", "FR": "fr_FR"}


def language_of(value: str | None, default: str = "EN") -> str:
    """EN or FR from a query parameter, a form or a transaction (anything else: ``default``)."""
    upper = (value or "").strip().upper()
    return upper if upper in LANGUAGES else default


def money(amount_minor: int, currency: str, language: str) -> str:
    """An amount in minor units as the language writes it: €1,234.50, 1 234,50 €."""
    digits = get_currency_precision(currency)
    return format_currency(
        Decimal(amount_minor).scaleb(-digits), currency, locale=LOCALES[language]
    )
