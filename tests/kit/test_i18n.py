"""Languages and money as customers read them (pages and messages alike)."""

from __future__ import annotations

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
