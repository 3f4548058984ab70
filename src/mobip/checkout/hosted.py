"""What the hosted pages of other domains (a product page, the customer portal) share with the
checkout's: the language a browser asks for, and the TEST MODE mark (the payments one client
may start are counted by checkout.service.count_start)."""

from __future__ import annotations

from mobip.checkout.providers.registry import PROVIDERS
from mobip.kit.i18n import LANGUAGES


def accepted_language(header: str) -> str:
    """EN or FR, whichever the Accept-Language header prefers (EN when it names neither)."""
    best, best_q = "EN", -1.0
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].upper()
        # Ties go to the first named (q is compared strictly; position only orders equals).
        if primary in LANGUAGES and q > best_q and q > 0:
            best, best_q = primary, q - position * 1e-9
    return best


def moves_no_money(provider_name: str) -> bool:
    """Whether a payment through ``provider_name`` is a test (a provider with test cards)."""
    provider = PROVIDERS.get(provider_name)
    return provider is not None and bool(provider.test_cards)
