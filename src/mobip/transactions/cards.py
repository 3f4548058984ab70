"""Card brands: which brand a number is (its first digits), how a stored payment method reads
(``card visa ****4242``), and how pages and e-mails name a card ("Visa •••• 4242"). The brand
keys are Stripe's (``visa``, ``mastercard``, ``amex``…), so a brand detected here and one
reported by Stripe read the same. Here, below checkout and the messages, so that the hosted
pages and the receipt name a card alike.

The checkout's ``static/checkout.js`` detects the brand as the customer types with the same
prefix rules (tests/e2e/test_checkout_browser.py checks that both agree).
"""

from __future__ import annotations

import re

# Brand key → how it is written (a brand's name is not translated).
BRAND_NAMES: dict[str, str] = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "cartes_bancaires": "Cartes Bancaires",
}
UNKNOWN = "card"
# How a payment method is stored (checkout's providers.base.Outcome.payment_method).
_STORED_CARD = re.compile(r"card (?P<brand>[a-z0-9_]+) \*{4}(?P<last4>[0-9]{4})")


def brand_of(number: str) -> str:
    """The brand key of a card number (digits only), ``card`` when no rule matches."""
    two, four = number[:2], number[:4]
    if number.startswith("4"):
        return "visa"
    if two in {"34", "37"}:
        return "amex"
    if "51" <= two <= "55" or ("2221" <= four <= "2720" and len(four) == 4):
        return "mastercard"
    if four == "6011" or two == "65" or "644" <= number[:3] <= "649":
        return "discover"
    if two in {"36", "38", "39"} or "300" <= number[:3] <= "305":
        return "diners"
    if "3528" <= four <= "3589" and len(four) == 4:
        return "jcb"
    if two == "62":
        return "unionpay"
    return UNKNOWN


def brand_name(brand: str | None) -> str | None:
    """A brand key as people read it (``visa`` → ``Visa``); None for an unknown brand."""
    if not brand or brand in (UNKNOWN, "unknown"):
        return None
    return BRAND_NAMES.get(brand, brand.replace("_", " ").title())


def card_shown(brand: str | None, last4: str | None) -> str | None:
    """A card as a page names it: ``Visa •••• 4242`` (``•••• 4242`` without a known brand)."""
    if not last4:
        return None
    name = brand_name(brand)
    return f"{name} •••• {last4}" if name else f"•••• {last4}"


def stored_card(payment_method: str | None) -> tuple[str, str] | None:
    """(brand key, last 4) of a stored ``card visa ****4242``; None for anything else."""
    found = _STORED_CARD.fullmatch(payment_method or "")
    return None if found is None else (found["brand"], found["last4"])
