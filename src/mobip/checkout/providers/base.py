"""The payment provider interface: start a payment, confirm the customer's return, read the
provider's webhook, refund later; and what checkout asks of a provider before calling it (its
test cards, whether the card is typed on our page, its payment page's origin, its webhook
registration). Providers never touch the database: the checkout service turns their answers
into status changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit

from mobip.config import Settings
from mobip.kit.validation import stored_http_url


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
    # An event about a payment's refunds (Stripe charge.refunded, refund.created/updated).
    refunds: RefundNotice | None = None


@dataclass(frozen=True)
class Refund:
    reference: str
    status: str

    @property
    def accepted(self) -> bool:
        """The provider took the refund (done, or under way as it says: never to be undone)."""
        return self.status in ("succeeded", "pending")


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider's API reports it: its id, amount, status and our refund id
    (from its metadata) when we asked for it."""

    reference: str
    amount: int
    status: str
    refund_id: str | None


@dataclass(frozen=True)
class RefundNotice:
    """A webhook event about refunds of one payment: which payment (the provider's id of it as
    the event names it, e.g. a Stripe PaymentIntent) and whose transaction (our trid, from the
    payment's metadata as the provider's API reports it)."""

    payment: str
    trid: str | None


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


def luhn_ok(number: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    if not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class ProviderError(Exception):
    """The provider could not be reached or refused the call (its message holds no secret)."""


class WebhookRejected(Exception):
    """A webhook whose signature, timestamp or payload is not acceptable."""


def url_origin(url: str) -> str | None:
    """scheme://host[:port] of ``url`` in ASCII; None when it has none (a header must be ASCII,
    and a row stored before URLs were normalised may hold a host that cannot be converted)."""
    ascii_url = stored_http_url(url)
    if ascii_url is None:
        return None
    parts = urlsplit(ascii_url)
    return f"{parts.scheme}://{parts.netloc}"


class PaymentProvider(ABC):
    # The provider's name: the account's ``provider`` value and the webhook address's part.
    name: ClassVar[str]
    # How messages and logs name it ("the Stripe secret key").
    label: ClassVar[str]
    # True for a provider whose card form is on our page; False when the customer is sent to
    # the provider's own payment page.
    card_form: ClassVar[bool] = False
    # A test provider's cards (number → result, reason): the only cards it takes and the list
    # its page shows. A provider with test cards moves no money, so in production it takes
    # payments only for test accounts. Empty for a real provider.
    test_cards: ClassVar[Mapping[str, tuple[Result, str | None]]] = MappingProxyType({})
    # True when the provider needs the merchant's secret key (stored encrypted on the account).
    needs_secret_key: ClassVar[bool] = False
    # True when MOBIP registers its webhook endpoint on the merchant's provider account.
    registers_webhooks: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def for_merchant(cls, secret_key: str | None, settings: Settings) -> PaymentProvider:
        """The provider ready to call, given the merchant's decrypted secret key if it needs one."""

    @classmethod
    def payment_page_origin(cls, settings: Settings) -> str | None:
        """The origin of the provider's payment page, which our form leads to (named in the
        page's Content-Security-Policy); None when the customer stays on our page."""
        return None

    def register_webhook(self, url: str) -> tuple[str, str]:
        """Create MOBIP's webhook endpoint at ``url`` on the merchant's provider account:
        (endpoint id, signing secret). Only for a provider that ``registers_webhooks``."""
        raise NotImplementedError(f"{self.label} has no webhook to register")

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
    def refund(
        self,
        reference: str | None,
        amount: int,
        *,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Refund:
        """Refund ``amount`` (minor units) of the paid payment ``reference``; the provider does
        it once per ``idempotency_key`` (derived from our refund id: a retried call refunds
        nothing more) and keeps ``metadata`` with it (our refund id, which its webhook echoes).
        Raises ProviderError when the provider refuses or cannot be reached."""

    def refunds_of_payment(self, reference: str) -> list[ProviderRefund]:
        """The refunds the provider holds for the paid payment ``reference`` (read from its API,
        never from a webhook's body); empty for a provider without a dashboard of its own."""
        return []


class CardFormProvider(PaymentProvider):
    """A provider whose card form is on our page (the sandbox)."""

    card_form: ClassVar[bool] = True

    @abstractmethod
    def charge(self, payment: Payment, card: Card) -> Outcome:
        """Charge a card the customer typed on our page."""
