"""Hosted checkout rules for paying: a card typed on our page, a payment started on the
provider's page and the customer's return from it; the rate limits every attempt passes.

Calls to a remote provider (Stripe) never run inside a database transaction: the pages run them
between two short ones (read and check → call the provider → record and apply). What an outcome
changes is ``outcomes.py``'s; what a page shows is ``views.py``'s.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from mobip.checkout import repository, webhooks
from mobip.checkout.errors import (
    CardFormInvalid,
    ProviderMisconfigured,
    ProviderNotAvailable,
    TooManyPaymentAttempts,
)
from mobip.checkout.models import AttemptOutcome
from mobip.checkout.outcomes import apply_outcome, record_attempt
from mobip.checkout.providers.base import (
    Card,
    CardFormProvider,
    Outcome,
    Payment,
    PaymentProvider,
    Result,
    Start,
    luhn_ok,
)
from mobip.checkout.providers.registry import provider_for
from mobip.checkout.views import (
    Applied,
    PageState,
    PageView,
    load,
    no_longer_payable,
    open_page,
    view,
)
from mobip.kit.errors import InvalidField
from mobip.kit.runtime import Runtime
from mobip.kit.validation import email_address
from mobip.transactions.models import Transaction, TransactionStatus

# A provider's payment page stays open this long; a newer attempt reuses it meanwhile.
OPEN_SESSION_REUSE = timedelta(hours=23)
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")
_CARD_SEPARATORS = re.compile(r"[\s-]")
RECEIPT_EMAIL = "receipt_email"
# Fields shown again after an error or a decline → how much of them (the inputs' maxlength).
KEPT_FIELDS = {"expiry": 7, "name_on_card": 100, RECEIPT_EMAIL: 254}


def payment_of(transaction: Transaction, runtime: Runtime) -> Payment:
    """What a provider is told of ``transaction``, with the addresses it sends the customer to."""
    base = f"{runtime.settings.resolved_base_url}/pay/{transaction.checkout_token}"
    return Payment(
        trid=transaction.trid,
        item_name=transaction.item_name,
        item_amount=transaction.item_amount,
        tax_amount=transaction.tax_amount,
        currency=transaction.currency,
        language=transaction.language,
        customer_email=transaction.customer_email,
        return_url=f"{base}/return",
        cancel_url=f"{base}?notice=not_completed",
    )


def client_key(runtime: Runtime, client_ip: str) -> str:
    """A keyed hash of the client address: rate limits without storing the address."""
    key = runtime.settings.resolved_secret_key.encode()
    return hmac.new(key, f"checkout-client:{client_ip}".encode(), hashlib.sha256).hexdigest()


def _attempt_window(runtime: Runtime) -> timedelta:
    return timedelta(seconds=runtime.settings.checkout_attempt_window_seconds)


def _refuse_past(limit: int, counted: tuple[int, datetime | None], runtime: Runtime) -> None:
    """TooManyPaymentAttempts when ``counted`` (how many in the window, the oldest's time) has
    reached ``limit``: Retry-After is when the oldest leaves the window."""
    count, oldest = counted
    if count >= limit and oldest is not None:
        left = oldest + _attempt_window(runtime) - runtime.clock.now()
        raise TooManyPaymentAttempts(int(left.total_seconds()) + 1)


def check_rate_limits(
    session: Session, transaction: Transaction, key: str, runtime: Runtime
) -> None:
    """Refuse a payment attempt past the per-transaction or per-client limit of the window."""
    settings = runtime.settings
    since = runtime.clock.now() - _attempt_window(runtime)
    _refuse_past(
        settings.checkout_max_attempts_per_transaction,
        repository.attempts_since(session, since, transaction_id=transaction.id),
        runtime,
    )
    _refuse_past(
        settings.checkout_max_attempts_per_client,
        repository.attempts_since(session, since, client_key=key),
        runtime,
    )


def count_start(session: Session, runtime: Runtime, client_ip: str) -> None:
    """Count a payment the client at ``client_ip`` starts from a page of another domain (a
    product's Pay, the customer portal's Pay), in the caller's unit of work:
    ``TooManyPaymentAttempts`` past the checkout's per-client limit of the attempt window. The
    count is rows, so every server process shares it; a start refused or rolled back counts
    nothing."""
    now = runtime.clock.now()
    key = client_key(runtime, client_ip)
    _refuse_past(
        runtime.settings.checkout_max_attempts_per_client,
        repository.starts_since(session, key, now - _attempt_window(runtime)),
        runtime,
    )
    repository.add_start(session, key, now)


def delete_old_starts(session: Session, runtime: Runtime, limit: int) -> int:
    """Delete up to ``limit`` page starts the per-client limit no longer counts; how many."""
    return repository.delete_starts(session, runtime.clock.now() - _attempt_window(runtime), limit)


# --- paying on our page (a card-form provider) ------------------------------------------------


def parse_card(form: Mapping[str, str], now: datetime) -> Card:
    """The card form's fields, checked; ``CardFormInvalid`` names the fields at fault.

    The number and the expiry are taken as typed or as the page's script formats them
    (``4242 4242 4242 4242``, ``12 / 34``)."""
    errors: dict[str, str] = {}
    card = _card_of(form, now, errors)
    if card is None:
        raise CardFormInvalid(errors)
    return card


def parse_receipt_email(
    form: Mapping[str, str], transaction: Transaction, runtime: Runtime
) -> str | None:
    """The optional address typed for the receipt, checked by the API's e-mail rule; None when
    empty, or when the transaction already has the merchant's customer_email (which wins)."""
    typed = form.get("receipt_email", "").strip()
    if not typed or transaction.customer_email:
        return None
    try:
        return email_address(RECEIPT_EMAIL, typed, smtputf8=runtime.settings.smtp_smtputf8)
    except InvalidField:
        raise CardFormInvalid({RECEIPT_EMAIL: "error_receipt_email"}) from None


def _card_of(form: Mapping[str, str], now: datetime, errors: dict[str, str]) -> Card | None:
    """The card typed, or None with ``errors`` filled (field name → message key)."""
    number = _CARD_SEPARATORS.sub("", form.get("card_number", ""))
    if not (12 <= len(number) <= 19 and luhn_ok(number)):
        errors["card_number"] = "error_card_number"
    month = year = 0
    match = _EXPIRY.match(form.get("expiry", ""))
    if match is None or not 1 <= int(match.group(1)) <= 12:
        errors["expiry"] = "error_expiry_format"
    else:
        month, year = int(match.group(1)), int(match.group(2))
        year = year + 2000 if year < 100 else year
        if (year, month) < (now.year, now.month):
            errors["expiry"] = "error_expiry_past"
    cvc = form.get("cvc", "").strip()
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        errors["cvc"] = "error_cvc"
    name = " ".join(form.get("name_on_card", "").split())
    if not 1 <= len(name) <= 100:
        errors["name_on_card"] = "error_name"
    if errors:
        return None
    return Card(number=number, expiry_month=month, expiry_year=year, cvc=cvc, name=name)


def _read_card_form(
    form: Mapping[str, str], transaction: Transaction, runtime: Runtime
) -> tuple[Card, str | None]:
    """The card and the receipt address typed; every field at fault named at once."""
    errors: dict[str, str] = {}
    card = _card_of(form, runtime.clock.now(), errors)
    receipt_email = None
    try:
        receipt_email = parse_receipt_email(form, transaction, runtime)
    except CardFormInvalid as error:
        errors.update(error.errors)
    if card is None or errors:
        raise CardFormInvalid(errors)
    return card, receipt_email


def pay_with_card(
    session: Session,
    token: str,
    form: Mapping[str, str],
    client_ip: str,
    runtime: Runtime,
) -> Applied:
    """A card typed on our page: charge it with the merchant's card-form provider and apply it.

    The transaction row is locked first, so a double submission waits and then sees the first
    one's result; ``transactions.service.mark_paid`` is the guard behind that.
    """
    transaction, merchant = load(session, token, runtime, for_update=True)
    language = form.get("lang")
    if transaction.status != TransactionStatus.PENDING:
        return Applied(page=no_longer_payable(session, transaction, merchant, runtime, language))
    provider = provider_for(merchant, runtime)
    if not isinstance(provider, CardFormProvider):
        raise ProviderNotAvailable("This merchant's provider takes cards on its own page")
    key = client_key(runtime, client_ip)
    check_rate_limits(session, transaction, key, runtime)
    card, receipt_email = _read_card_form(form, transaction, runtime)
    if provider.test_cards and card.number not in provider.test_cards:
        # A real card typed into a test provider is never a payment nor a decline.
        raise CardFormInvalid({"card_number": "error_not_test_card"})
    outcome = provider.charge(payment_of(transaction, runtime), card)
    applied = apply_outcome(
        session,
        transaction,
        merchant,
        provider,
        outcome,
        key,
        runtime,
        language=language,
        receipt_email=receipt_email,
    )
    if applied.page is not None and applied.page.state is PageState.PAYABLE:
        applied.page.kept = kept_fields(form)  # declined: try again without typing it all
    return applied


def form_errors_page(
    session: Session,
    token: str,
    form: Mapping[str, str],
    error: CardFormInvalid,
    runtime: Runtime,
) -> PageView:
    """The card form again with what was wrong, and what was typed that may be shown again."""
    page = open_page(session, token, runtime, language=form.get("lang"))
    page.errors = error.errors
    page.kept = kept_fields(form)
    page.status_code = error.http_status
    return page


def kept_fields(form: Mapping[str, str]) -> dict[str, str]:
    """The fields typed that a page shows again after an error or a decline: the expiry, the
    name and the receipt address; never the card number nor the CVC."""
    return {name: form.get(name, "")[:limit] for name, limit in KEPT_FIELDS.items()}


# --- paying on the provider's page: start, return ---------------------------------------------


@dataclass(frozen=True)
class StartPlan:
    """What the start of a redirect payment needs after its first, read-only transaction."""

    provider: PaymentProvider
    payment: Payment
    open_reference: str | None
    client_key: str
    register_webhook_at: str | None


def plan_start(
    session: Session, token: str, client_ip: str, runtime: Runtime, *, language: str | None
) -> StartPlan | PageView:
    """Check that the transaction can be paid now and what the provider call needs."""
    transaction, merchant = load(session, token, runtime)
    if transaction.status != TransactionStatus.PENDING:
        return no_longer_payable(session, transaction, merchant, runtime, language)
    provider = provider_for(merchant, runtime)
    key = client_key(runtime, client_ip)
    check_rate_limits(session, transaction, key, runtime)
    since = runtime.clock.now() - OPEN_SESSION_REUSE
    return StartPlan(
        provider=provider,
        payment=payment_of(transaction, runtime),
        open_reference=repository.latest_reference(
            session, transaction, AttemptOutcome.STARTED, since
        ),
        client_key=key,
        register_webhook_at=webhooks.to_register(session, merchant, provider, runtime),
    )


def record_start(
    session: Session,
    token: str,
    plan: StartPlan,
    start: Start,
    registration: webhooks.Registration | None,
    runtime: Runtime,
) -> None:
    """Count a new provider payment page as an attempt (a resumed one is not new), and keep the
    webhook registered on the way."""
    new = start.reference is not None and start.reference != plan.open_reference
    if not new and registration is None:
        return
    transaction, merchant = load(session, token, runtime)
    if new:
        record_attempt(
            session,
            transaction,
            plan.provider.name,
            Outcome(Result.PENDING, reference=start.reference),
            plan.client_key,
            runtime,
            AttemptOutcome.STARTED,
        )
    if registration is not None:
        webhooks.save(session, merchant, registration, runtime)


def record_provider_failure(
    session: Session, token: str, provider: str, key: str, runtime: Runtime
) -> None:
    """A provider that could not be reached: an attempt that changed nothing."""
    transaction, _ = load(session, token, runtime)
    record_attempt(
        session,
        transaction,
        provider,
        Outcome(Result.ERROR, "provider_unreachable"),
        key,
        runtime,
        AttemptOutcome.ERROR,
    )


def plan_return(
    session: Session, token: str, runtime: Runtime, *, language: str | None
) -> tuple[PaymentProvider, Payment] | PageView:
    """What confirming a customer's return from the provider needs, or the page to show.

    The provider is asked even when the transaction is no longer payable: a payment taken after
    the link was cancelled or expired (or paid by another tab) must be found and refunded.
    """
    transaction, merchant = load(session, token, runtime)
    try:
        provider = provider_for(merchant, runtime)
    except (ProviderNotAvailable, ProviderMisconfigured):
        if transaction.status == TransactionStatus.PENDING:
            raise
        return view(session, transaction, merchant, runtime, language=language)
    return provider, payment_of(transaction, runtime)


def apply_return(
    session: Session,
    token: str,
    provider: PaymentProvider,
    outcome: Outcome,
    client_ip: str,
    runtime: Runtime,
    *,
    language: str | None,
) -> Applied:
    """The customer is back from the provider's page with ``outcome``, asked from ``provider``
    (the one ``plan_return`` gave: a duplicate payment is refunded where it was taken)."""
    transaction, merchant = load(session, token, runtime, for_update=True)
    return apply_outcome(
        session,
        transaction,
        merchant,
        provider,
        outcome,
        client_key(runtime, client_ip),
        runtime,
        language=language,
    )
