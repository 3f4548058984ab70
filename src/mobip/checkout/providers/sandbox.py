"""The built-in sandbox: a TEST MODE card form on our page, with Stripe-like test cards.

Nothing leaves the process and no money moves. Only the brand and last 4 digits of a card are
returned; the number and CVC are dropped here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from mobip.checkout.providers.base import (
    Card,
    CardFormProvider,
    Outcome,
    Payment,
    Refund,
    Result,
    Start,
    WebhookEvent,
    WebhookRejected,
)
from mobip.config import Settings
from mobip.kit.security import new_id
from mobip.transactions.cards import brand_of

PAID_CARD = "4242424242424242"
# Test card → (result, reason).
TEST_CARDS: Mapping[str, tuple[Result, str | None]] = MappingProxyType(
    {
        PAID_CARD: (Result.PAID, None),
        "4000000000000002": (Result.DECLINED, "card_declined"),
        "4000000000009995": (Result.DECLINED, "insufficient_funds"),
        "4000000000000119": (Result.ERROR, "processing_error"),
    }
)


class SandboxProvider(CardFormProvider):
    name: ClassVar[str] = "sandbox"
    label: ClassVar[str] = "sandbox"
    test_cards: ClassVar[Mapping[str, tuple[Result, str | None]]] = TEST_CARDS

    @classmethod
    def for_merchant(cls, secret_key: str | None, settings: Settings) -> SandboxProvider:
        return cls()

    def start(self, payment: Payment, *, open_reference: str | None = None) -> Start:
        return Start(redirect_url=None)

    def charge(self, payment: Payment, card: Card) -> Outcome:
        result, reason = TEST_CARDS.get(card.number, (Result.DECLINED, "card_declined"))
        return Outcome(
            result=result,
            reason=reason,
            card_brand=brand_of(card.number),
            card_last4=card.last4,
            reference=new_id("sbx", 12),
            trid=payment.trid,
            amount=payment.total,
            currency=payment.currency,
        )

    def confirm_return(self, payment: Payment, params: Mapping[str, str]) -> Outcome:
        # The customer never leaves our page in the sandbox: there is nothing to confirm.
        return Outcome(result=Result.PENDING)

    def handle_webhook(
        self, payload: bytes, headers: Mapping[str, str], secret: str
    ) -> WebhookEvent:
        raise WebhookRejected("the sandbox sends no webhooks")

    def refund(
        self,
        reference: str | None,
        amount: int,
        *,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Refund:
        # Immediate: the sandbox moves no money (its refund is recorded as succeeded).
        if amount <= 0:
            raise ValueError("a refund is of a positive amount")
        return Refund(reference=new_id("re_sbx", 12), status="succeeded")
