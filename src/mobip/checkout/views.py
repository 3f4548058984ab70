"""What a checkout page shows: the transaction behind a link, the state it reached, and what
the customer is told (the pages render it)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session

from mobip.accounts import service as accounts
from mobip.accounts.models import Account
from mobip.accounts.service import Branding
from mobip.checkout import repository
from mobip.checkout.errors import CheckoutNotFound, ProviderNotAvailable
from mobip.checkout.hosted import moves_no_money
from mobip.checkout.models import AttemptOutcome
from mobip.checkout.providers.base import PaymentProvider
from mobip.checkout.providers.registry import provider_class
from mobip.kit.i18n import language_of
from mobip.kit.runtime import Runtime
from mobip.kit.validation import stored_http_url
from mobip.transactions import service as transactions
from mobip.transactions.cards import card_shown
from mobip.transactions.models import Transaction, TransactionStatus

MAX_DECLINES = 3
# The confirmation page continues to the merchant's site by itself after this many seconds.
CONTINUE_AFTER_SECONDS = 6

# A checkout token as transactions.service makes it (kit.security.new_id("ck", 24)): 24 random
# bytes in URL-safe base64, without padding.
_CHECKOUT_TOKEN = re.compile(r"ck_[A-Za-z0-9_-]{32}")
NO_BRANDING = Branding(None, None, None)


class PageState(StrEnum):
    PAYABLE = "payable"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DENIED = "denied"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


@dataclass
class PageView:
    """What the payment page shows (``rendering.render_page`` renders it in ``language``)."""

    state: PageState
    transaction: Transaction
    merchant: Account
    language: str
    # The merchant's provider, when the transaction is payable through it.
    provider: type[PaymentProvider] | None = None
    # A key of i18n.KEYED said above the form, e.g. why the last card was declined.
    notice: str | None = None
    attempts_left: int | None = None
    # Card form errors: field name → a key of i18n.KEYED.
    errors: dict[str, str] = field(default_factory=dict)
    # Values typed that may be shown again (never the card number or the CVC).
    kept: dict[str, str] = field(default_factory=dict)
    # The card just declined, as the notice names it ("Visa •••• 0002").
    tried_card: str | None = None
    # Where the receipt goes (payable) or went (paid), masked; the card that paid.
    paid_card: str | None = None
    receipt_to: str | None = None
    # The confirmation page right after paying: it continues to the merchant's site by itself.
    just_paid: bool = False
    # A payment through a provider that moves no money (the sandbox): marked TEST MODE.
    test_mode: bool = False
    # The merchant's logo and accent colour (accounts' branding).
    branding: Branding = field(default_factory=lambda: NO_BRANDING)
    status_code: int = 200

    @property
    def card_form(self) -> bool:
        return self.provider is not None and self.provider.card_form

    @property
    def return_url(self) -> str:
        return merchant_return_url(self.transaction)

    @property
    def asks_receipt_email(self) -> bool:
        """Whether the card form asks where to send the receipt (the merchant gave none)."""
        return not self.transaction.customer_email


@dataclass(frozen=True)
class Applied:
    """After an attempt: send the customer to ``redirect`` or show ``page``."""

    redirect: str | None = None
    page: PageView | None = None


def is_checkout_token(value: str) -> bool:
    """Whether ``value`` has a checkout token's form; anything else is not looked up (a NUL is
    an error on PostgreSQL, and any other string is simply not one of ours)."""
    return _CHECKOUT_TOKEN.fullmatch(value) is not None


def load(
    session: Session, token: str, runtime: Runtime, *, for_update: bool = False
) -> tuple[Transaction, Account]:
    """The transaction behind a checkout link, with lazy expiry applied."""
    found = (
        transactions.get_by_checkout_token(session, token, for_update=for_update)
        if is_checkout_token(token)
        else None
    )
    if found is None:
        raise CheckoutNotFound()
    transaction, merchant = found
    transactions.expire_if_due(session, transaction, runtime.clock)
    return transaction, merchant


def is_test_checkout(session: Session, token: str) -> bool:
    """Whether a checkout link's payments are tests (its pages' TEST MODE mark), for the pages
    that show no transaction (errors)."""
    found = transactions.get_by_checkout_token(session, token) if is_checkout_token(token) else None
    return found is not None and moves_no_money(found[1].provider)


def open_page(
    session: Session,
    token: str,
    runtime: Runtime,
    *,
    language: str | None = None,
    notice: str | None = None,
    just_paid: bool = False,
) -> PageView:
    """The page of a checkout link: payable, or the final state it reached (``just_paid``: the
    confirmation page the customer is sent to after paying)."""
    transaction, merchant = load(session, token, runtime)
    page = view(session, transaction, merchant, runtime, language=language, notice=notice)
    page.just_paid = just_paid and page.state is PageState.PAID
    return page


def view(
    session: Session,
    transaction: Transaction,
    merchant: Account,
    runtime: Runtime,
    *,
    language: str | None = None,
    notice: str | None = None,
) -> PageView:
    """The page of ``transaction`` as it stands, in ``language`` (else the transaction's)."""
    lang = language_of(language, default=language_of(transaction.language))
    page = PageView(_state_of(transaction), transaction, merchant, lang)
    page.branding = accounts.get_branding(session, merchant.id)
    if page.state is PageState.PAID:
        return _paid(session, page)
    page.test_mode = moves_no_money(merchant.provider)
    if page.state is not PageState.PAYABLE:
        return page
    if transaction.customer_email:
        page.receipt_to = transactions.mask_recipient(transaction.customer_email)
    try:
        page.provider = provider_class(merchant, runtime)
    except ProviderNotAvailable:
        page.state = PageState.UNAVAILABLE
        page.status_code = ProviderNotAvailable.http_status
        page.test_mode = False
        return page
    page.notice = notice if notice == "not_completed" else None
    declines = repository.count_outcomes(session, transaction, AttemptOutcome.DECLINED)
    page.attempts_left = MAX_DECLINES - declines
    return page


def no_longer_payable(
    session: Session,
    transaction: Transaction,
    merchant: Account,
    runtime: Runtime,
    language: str | None,
) -> PageView:
    """The state page (paid, cancelled, expired…) answering an attempt to pay: HTTP 409."""
    page = view(session, transaction, merchant, runtime, language=language)
    page.status_code = 409
    return page


def confirmation_url(transaction: Transaction, language: str | None, *, just_paid: bool) -> str:
    """Our page of a paid link (``paid=1``: right after paying, it continues by itself)."""
    lang = language_of(language, default=language_of(transaction.language))
    query = {"lang": lang, **({"paid": "1"} if just_paid else {})}
    return f"/pay/{transaction.checkout_token}?{urlencode(query)}"


def _paid(session: Session, page: PageView) -> PageView:
    """A paid link's page: the card that paid (brand and last 4, as stored) and the receipt."""
    attempt = repository.paid_attempt(session, page.transaction)
    if attempt is not None:
        page.paid_card = card_shown(attempt.card_brand, attempt.card_last4)
    page.test_mode = moves_no_money(attempt.provider if attempt else page.merchant.provider)
    receipt_to = transactions.receipt_address(page.transaction)
    page.receipt_to = transactions.mask_recipient(receipt_to) if receipt_to else None
    return page


def merchant_return_url(transaction: Transaction) -> str:
    """``redirect_url`` with ``trid`` and ``status`` added to its query (the rest kept)."""
    # A row stored before URLs were normalised may hold a non-ASCII host: converted here. One
    # that cannot be is percent-encoded, so the link and the Location header are still ASCII.
    stored = transaction.redirect_url
    ascii_url = stored_http_url(stored) or quote(stored, safe=string.punctuation, errors="replace")
    parts = urlsplit(ascii_url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("trid", "status")
    ]
    query += [("trid", transaction.trid), ("status", transaction.status)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _state_of(transaction: Transaction) -> PageState:
    status = TransactionStatus(transaction.status)
    if status is TransactionStatus.CANCELLED:
        return (
            PageState.EXPIRED if transaction.reason == transactions.EXPIRED else PageState.CANCELLED
        )
    return {
        TransactionStatus.PENDING: PageState.PAYABLE,
        TransactionStatus.PAID: PageState.PAID,
        TransactionStatus.DENIED: PageState.DENIED,
        TransactionStatus.ERROR: PageState.ERROR,
    }[status]
