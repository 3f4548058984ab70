"""Languages, texts (the gettext catalogs) and money as customers read them (pages and
messages alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobip.kit import i18n


def test_language_of() -> None:
    assert i18n.language_of("fr") == "FR"
    assert i18n.language_of(" EN ") == "EN"
    assert i18n.language_of("de") == "EN"
    assert i18n.language_of(None, default="FR") == "FR"


def test_money_in_minor_units_for_currency_and_language() -> None:
    assert i18n.money(123456, "EUR", "EN") == "€1,234.56"
    assert i18n.money(123456, "EUR", "FR") == "1\u202f234,56\u00a0€"
    assert i18n.money(1500, "JPY", "EN") == "¥1,500"
    assert i18n.money(1234, "KWD", "EN").endswith("1.234")  # three decimals
    assert i18n.money(0, "USD", "EN") == "$0.00"


def test_texts_come_from_the_compiled_catalogs() -> None:
    assert i18n.translate("EN", "Card number") == "Card number"  # English is the source
    assert i18n.translate("FR", "Card number") == "Numéro de carte"
    assert i18n.translate("FR", "Pay %(amount)s", amount="12,50\u00a0€") == "Payer 12,50\u00a0€"
    assert i18n.translate("FR", "A text no catalog has") == "A text no catalog has"
    assert i18n.N_("Card number") == "Card number"  # only marks it for pybabel


def test_plurals_follow_each_language() -> None:
    singular = "You can try again (%(num)d attempt remaining)."
    plural = "You can try again (%(num)d attempts remaining)."

    def remaining(language: str, n: int) -> str:
        return i18n.translations(language).ngettext(singular, plural, n) % {"num": n}

    assert [remaining("EN", n) for n in (1, 2)] == [
        "You can try again (1 attempt remaining).",
        "You can try again (2 attempts remaining).",
    ]
    assert [remaining("FR", n) for n in (0, 1, 2)] == [
        "Vous pouvez réessayer (0 tentative restante).",
        "Vous pouvez réessayer (1 tentative restante).",
        "Vous pouvez réessayer (2 tentatives restantes).",
    ]


def test_a_missing_catalog_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not English on a French page: the app fails to render rather than translate nothing."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        with pytest.raises(FileNotFoundError):
            i18n.translations("FR")
    finally:
        monkeypatch.undo()
        i18n.translations.cache_clear()
