"""The payment provider interface: start a payment, confirm the customer's return, read the
provider's webhook, refund later. Providers never touch the database: the checkout service
turns their answers into status changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Result(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    ERROR = "error"
    # Nothing final yet (the customer has not paid, or left): nothing to apply.
    PENDING = "pending"


@dataclass(frozen=True)
class Payment:
    """What a provider needs to know about the transaction being paid."""

    trid: str
    item_name: str
    item_amount: int
    tax_amount: int
    currency: str
    language: str
    customer_email: str | None
    return_url: str
    cancel_url: str

    @property
    def total(self) -> int:
        return self.item_amount + self.tax_amount


@dataclass(frozen=True)
class Outcome:
    """How a payment ended, as the provider reports it. Card data: brand and last 4 only."""

    result: Result
    reason: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    # The provider's id of the payment (a Stripe Checkout Session id).
    reference: str | None = None
    # What the provider says was paid, checked against the transaction before it becomes PAID.
    trid: str | None = None
    amount: int | None = None
    currency: str | None = None

    @property
    def payment_method(self) -> str:
        if self.card_brand and self.card_last4:
            return f"card {self.card_brand} ****{self.card_last4}"
        return "card"


@dataclass(frozen=True)
class Start:
    """How the customer pays: on our page (a card form) or on the provider's (a redirect)."""

    redirect_url: str | None
    reference: str | None = None

    @property
    def card_form(self) -> bool:
        return self.redirect_url is None


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    # What the event says about a payment; None for events MOBIP does not act on.
    outcome: Outcome | None


@dataclass(frozen=True)
class Refund:
    reference: str
    status: str


@dataclass(frozen=True)
class Card:
    """Card details typed by the customer; never stored, logged or shown (repr hides them)."""

    number: str = field(repr=False)
    expiry_month: int = field(repr=False)
    expiry_year: int = field(repr=False)
    cvc: str = field(repr=False)
    name: str = field(repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]


class ProviderError(Exception):
    """The provider could not be reached or refused the call (its message holds no secret)."""


class WebhookRejected(Exception):
    """A webhook whose signature, timestamp or payload is not acceptable."""


class PaymentProvider(ABC):
    name: ClassVar[str]

    @abstractmethod
    def start(self, payment: Payment, *, open_reference: str | None = None) -> Start:
        """Begin paying; ``open_reference`` is a payment started earlier that may be resumed."""

    @abstractmethod
    def confirm_return(self, payment: Payment, params: Mapping[str, str]) -> Outcome:
        """The outcome when the customer comes back from the provider (query ``params``)."""

    @abstractmethod
    def handle_webhook(
        self, payload: bytes, headers: Mapping[str, str], secret: str
    ) -> WebhookEvent:
        """Check a webhook's signature and read what it says; raises ``WebhookRejected``."""

    @abstractmethod
    def refund(self, reference: str, amount: int) -> Refund:
        """Refund ``amount`` (minor units) of a paid payment."""


class CardFormProvider(PaymentProvider):
    """A provider whose card form is on our page (the sandbox)."""

    @abstractmethod
    def charge(self, payment: Payment, card: Card) -> Outcome:
        """Charge a card the customer typed on our page."""
