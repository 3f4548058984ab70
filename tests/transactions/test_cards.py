"""transactions/cards.py: the brand of a card number, and how a page names a card."""

from __future__ import annotations

import pytest

from mobip.transactions.cards import BRAND_NAMES, brand_name, brand_of, card_shown, stored_card

# Published test numbers of each brand (Stripe's and the networks').
NUMBERS = {
    "4242424242424242": "visa",
    "4000056655665556": "visa",
    "5555555555554444": "mastercard",
    "2223003122003222": "mastercard",
    "378282246310005": "amex",
    "371449635398431": "amex",
    "6011111111111117": "discover",
    "6445644564456445": "discover",
    "6555900000604105": "discover",
    "3056930009020004": "diners",
    "36227206271667": "diners",
    "3566002020360505": "jcb",
    "6200000000000005": "unionpay",
    "9999999999999995": "card",
    "2220990000000000": "card",
    "2721000000000000": "card",
}


@pytest.mark.parametrize(("number", "brand"), NUMBERS.items())
def test_brand_of(number: str, brand: str) -> None:
    assert brand_of(number) == brand


def test_a_short_prefix_is_not_taken_for_a_longer_range() -> None:
    # "22" could begin a Mastercard (2221-2720) or not: no brand until the digits say.
    assert brand_of("22") == "card" and brand_of("2221") == "mastercard"
    assert brand_of("35") == "card" and brand_of("3528") == "jcb"
    assert brand_of("") == "card"


def test_every_brand_detected_has_a_name() -> None:
    assert {brand_of(n) for n in NUMBERS} - {"card"} <= set(BRAND_NAMES)


def test_cards_are_named_with_the_brand_capitalised_and_the_last_4() -> None:
    assert card_shown("visa", "4242") == "Visa •••• 4242"
    assert card_shown("amex", "0005") == "American Express •••• 0005"
    assert card_shown("eftpos_au", "1234") == "Eftpos Au •••• 1234"  # a Stripe brand we lack
    assert card_shown("card", "1234") == "•••• 1234"
    assert card_shown("unknown", "1234") == "•••• 1234"
    assert card_shown("visa", None) is None
    assert brand_name(None) is None and brand_name("mastercard") == "Mastercard"


@pytest.mark.parametrize(
    ("stored", "found"),
    [
        ("card visa ****4242", ("visa", "4242")),
        ("card cartes_bancaires ****0005", ("cartes_bancaires", "0005")),
        ("card", None),
        ("card visa 4242", None),
        ("sepa_debit", None),
        (None, None),
    ],
)
def test_a_stored_payment_method_reads_as_brand_and_last_4(
    stored: str | None, found: tuple[str, str] | None
) -> None:
    assert stored_card(stored) == found
