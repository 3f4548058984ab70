"""The two languages a customer reads (EN, FR), their gettext catalogs, and money written for
them (Babel).

Shared by the hosted pages (checkout) and the messages (transactions, delivery), so a page and
the e-mail about it write an amount the same way and take their texts from the same catalogs.

Texts are gettext messages: English in the code and the templates is the msgid, ``locale/``
holds each other language's catalog (``fr/LC_MESSAGES/messages.po``, compiled to ``.mo``).
English has no catalog: it is the source. docs/i18n.md says how to change a text or add a
language.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.numbers import format_currency, get_currency_precision
from babel.support import NullTranslations, Translations

LANGUAGES = ("EN", "FR")
LOCALES = {"EN": "en", "FR": "fr_FR"}
SOURCE_LANGUAGE = "EN"
# Where the catalogs are (``<catalog>/LC_MESSAGES/messages.mo``), and each language's catalog.
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
CATALOGS = {"FR": "fr"}


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


def N_(message: str) -> str:
    """Marks ``message`` for extraction where it is defined; it is translated where it is shown
    (a table of messages chosen by a key, for instance)."""
    return message


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (Babel's Translations, which Jinja2's i18n extension
    takes too); the source language's is empty. A missing catalog is an error, not English on a
    French page."""
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    path = LOCALE_DIR / CATALOGS[language] / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as catalog:
        return Translations(catalog, domain=DOMAIN)


def translate(language: str, message: str, **values: object) -> str:
    """``message`` in ``language``, its ``%(name)s`` placeholders filled from ``values``.

    For a message chosen at run time (marked where it is written with ``N_``): pybabel does not
    extract this function's calls. A literal plural is written where pybabel sees it,
    ``translations(language).ngettext("1 file", "%(num)d files", n) % {"num": n}``."""
    text = translations(language).gettext(message)
    return text % values if values else text
