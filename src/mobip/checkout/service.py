"""Hosted checkout rules: which page a customer sees, paying, and what each outcome changes.

Every status change goes through ``transactions.repository.change_status`` (compare-and-set
on the status the caller saw), so of two payments racing for one transaction exactly one wins.
Calls to a remote provider (Stripe) never run inside a database transaction: the endpoints run
them between two short ones (read and check → call the provider → record and apply).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session

from mobip.accounts import repository as accounts_repository
from mobip.accounts.models import Account, Provider
from mobip.checkout import repository
from mobip.checkout.errors import (
    CardFormInvalid,
    CheckoutNotFound,
    ProviderMisconfigured,
    ProviderNotAvailable,
    TooManyPaymentAttempts,
    WebhookAccountNotFound,
)
from mobip.checkout.models import AttemptOutcome, PaymentAttempt
from mobip.checkout.providers import sandbox
from mobip.checkout.providers.base import (
    Card,
    CardFormProvider,
    Outcome,
    Payment,
    PaymentProvider,
    ProviderError,
    Result,
    Start,
    WebhookEvent,
)
from mobip.checkout.providers.stripe import StripeProvider
from mobip.delivery import service as delivery
from mobip.kit.i18n import language_of
from mobip.kit.runtime import Runtime
from mobip.kit.security import DecryptionError
from mobip.kit.validation import stored_http_url
from mobip.transactions import repository as transactions_repository
from mobip.transactions.models import Transaction, TransactionStatus
from mobip.transactions.service import EXPIRED, expire_if_due, queue_callback

log = logging.getLogger(__name__)

MAX_DECLINES = 3
# A provider's payment page stays open this long; a newer attempt reuses it meanwhile.
OPEN_SESSION_REUSE = timedelta(hours=23)
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")
_CARD_SEPARATORS = re.compile(r"[\s-]")
# Decline reasons the page explains in words (others read as a plain decline).
_DECLINE_TEXTS = {"card_declined", "insufficient_funds", "payment_failed"}
# What a customer whose payment came too late is told (attempt reason → message key).
_REFUND_NOTICES = {"refunded": "payment_refunded", "refund_failed": "payment_refund_pending"}


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
    """What the payment page shows (the endpoint renders it in ``language``)."""

    state: PageState
    transaction: Transaction
    merchant: Account
    language: str
    provider: str | None = None
    # A message key (i18n) said above the form, e.g. why the last card was declined.
    notice: str | None = None
    attempts_left: int | None = None
    # Card form errors: field name → message key.
    errors: dict[str, str] = field(default_factory=dict)
    # Values typed that may be shown again (never the card number or the CVC).
    kept: dict[str, str] = field(default_factory=dict)
    status_code: int = 200

    @property
    def card_form(self) -> bool:
        return self.provider == sandbox.SandboxProvider.name

    @property
    def return_url(self) -> str:
        return merchant_return_url(self.transaction)


@dataclass(frozen=True)
class Applied:
    """After an attempt: send the customer to ``redirect`` or show ``page``."""

    redirect: str | None = None
    page: PageView | None = None


# --- providers ---------------------------------------------------------------------------------


def provider_name(merchant: Account, runtime: Runtime) -> str:
    """The name of the merchant's payment provider; refused when it cannot take payments here.
    (Nothing is decrypted or built: a page view needs no more.)"""
    if merchant.provider == Provider.SANDBOX:
        if runtime.settings.is_production and not merchant.is_test:
            raise ProviderNotAvailable(
                "The sandbox takes payments in production only for test accounts"
            )
        return sandbox.SandboxProvider.name
    if merchant.provider == Provider.STRIPE:
        if not merchant.provider_private_key_encrypted:
            raise ProviderNotAvailable("The merchant's Stripe secret key is not set")
        return StripeProvider.name
    raise ProviderNotAvailable(f"Unknown payment provider {merchant.provider!r}")


def provider_for(merchant: Account, runtime: Runtime) -> PaymentProvider:
    """The merchant's payment provider, ready to call; refused as ``provider_name`` refuses,
    and ``ProviderMisconfigured`` when its stored key cannot be decrypted."""
    if provider_name(merchant, runtime) == StripeProvider.name:
        assert merchant.provider_private_key_encrypted is not None
        secret_key = decrypt_provider_secret(
            merchant, merchant.provider_private_key_encrypted, "Stripe secret key", runtime
        )
        return StripeProvider(secret_key, api_base=runtime.settings.stripe_api_base)
    return sandbox.SandboxProvider()


def decrypt_provider_secret(merchant: Account, ciphertext: str, what: str, runtime: Runtime) -> str:
    """A provider secret stored encrypted for ``merchant``; ``ProviderMisconfigured`` (logged
    for the operator, without the secret or its ciphertext) when it cannot be decrypted."""
    try:
        return runtime.encryptor.decrypt(ciphertext)
    except DecryptionError:
        # Typically MOBIP_SECRET_KEY changed without the old key kept: the operator must act.
        log.error(
            "payment provider settings unusable",
            extra={
                "fields": {
                    "account_uid": merchant.uid,
                    "provider": merchant.provider,
                    "reason": f"the stored {what} cannot be decrypted with MOBIP_SECRET_KEY",
                }
            },
        )
        raise ProviderMisconfigured() from None


def payment_of(transaction: Transaction, runtime: Runtime) -> Payment:
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


# --- the page ----------------------------------------------------------------------------------


# A checkout token as transactions.service makes it (kit.security.new_id("ck", 24)): 24 random
# bytes in URL-safe base64, without padding.
_CHECKOUT_TOKEN = re.compile(r"ck_[A-Za-z0-9_-]{32}")


def is_checkout_token(value: str) -> bool:
    """Whether ``value`` has a checkout token's form; anything else is not looked up (a NUL is
    an error on PostgreSQL, and any other string is simply not one of ours)."""
    return _CHECKOUT_TOKEN.fullmatch(value) is not None


def load(
    session: Session, token: str, runtime: Runtime, *, for_update: bool = False
) -> tuple[Transaction, Account]:
    """The transaction behind a checkout link, with lazy expiry applied."""
    found = (
        repository.get_by_checkout_token(session, token, for_update=for_update)
        if is_checkout_token(token)
        else None
    )
    if found is None:
        raise CheckoutNotFound()
    transaction, merchant = found
    expire_if_due(session, transaction, runtime.clock)
    return transaction, merchant


def open_page(
    session: Session,
    token: str,
    runtime: Runtime,
    *,
    language: str | None = None,
    notice: str | None = None,
) -> PageView:
    """The page of a checkout link: payable, or the final state it reached."""
    transaction, merchant = load(session, token, runtime)
    return view(session, transaction, merchant, runtime, language=language, notice=notice)


def view(
    session: Session,
    transaction: Transaction,
    merchant: Account,
    runtime: Runtime,
    *,
    language: str | None = None,
    notice: str | None = None,
) -> PageView:
    lang = language_of(language, default=language_of(transaction.language))
    page = PageView(_state_of(transaction), transaction, merchant, lang)
    if page.state is not PageState.PAYABLE:
        return page
    try:
        page.provider = provider_name(merchant, runtime)
    except ProviderNotAvailable:
        page.state = PageState.UNAVAILABLE
        page.status_code = ProviderNotAvailable.http_status
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


def _state_of(transaction: Transaction) -> PageState:
    status = TransactionStatus(transaction.status)
    if status is TransactionStatus.CANCELLED:
        return PageState.EXPIRED if transaction.reason == EXPIRED else PageState.CANCELLED
    return {
        TransactionStatus.PENDING: PageState.PAYABLE,
        TransactionStatus.PAID: PageState.PAID,
        TransactionStatus.DENIED: PageState.DENIED,
        TransactionStatus.ERROR: PageState.ERROR,
    }[status]


# --- paying on our page (sandbox) ---------------------------------------------------------------


def parse_card(form: Mapping[str, str], now: datetime) -> Card:
    """The card form's fields, checked; ``CardFormInvalid`` names the fields at fault."""
    errors: dict[str, str] = {}
    number = _CARD_SEPARATORS.sub("", form.get("card_number", ""))
    if not (12 <= len(number) <= 19 and sandbox.luhn_ok(number)):
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
        raise CardFormInvalid(errors)
    return Card(number=number, expiry_month=month, expiry_year=year, cvc=cvc, name=name)


def pay_with_card(
    session: Session,
    token: str,
    form: Mapping[str, str],
    client_ip: str,
    runtime: Runtime,
) -> Applied:
    """A card typed on our page: charge it with the merchant's card-form provider and apply it.

    The transaction row is locked first, so a double submission waits and then sees the first
    one's result; ``change_status`` is the guard behind that.
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
    card = parse_card(form, runtime.clock.now())
    if isinstance(provider, sandbox.SandboxProvider) and card.number not in sandbox.TEST_CARDS:
        raise CardFormInvalid({"card_number": "error_not_test_card"})
    outcome = provider.charge(payment_of(transaction, runtime), card)
    return apply_outcome(
        session, transaction, merchant, provider, outcome, key, runtime, language=language
    )


def check_rate_limits(
    session: Session, transaction: Transaction, key: str, runtime: Runtime
) -> None:
    """Refuse a payment attempt past the per-transaction or per-client limit of the window."""
    settings = runtime.settings
    now = runtime.clock.now()
    window = timedelta(seconds=settings.checkout_attempt_window_seconds)
    counted = [
        (
            settings.checkout_max_attempts_per_transaction,
            repository.attempts_since(session, now - window, transaction_id=transaction.id),
        ),
        (
            settings.checkout_max_attempts_per_client,
            repository.attempts_since(session, now - window, client_key=key),
        ),
    ]
    for limit, (count, oldest) in counted:
        if count >= limit and oldest is not None:
            raise TooManyPaymentAttempts(int((oldest + window - now).total_seconds()) + 1)


# --- what an outcome changes -------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """An outcome being applied to its transaction (locked): by which provider, for which
    client, and the language of the page that answers it."""

    session: Session
    transaction: Transaction
    merchant: Account
    provider: PaymentProvider
    key: str
    runtime: Runtime
    language: str | None

    def page(self) -> PageView:
        return view(
            self.session, self.transaction, self.merchant, self.runtime, language=self.language
        )

    def record(self, outcome: Outcome, result: str) -> None:
        _record(
            self.session,
            self.transaction,
            self.provider.name,
            outcome,
            self.key,
            self.runtime,
            result,
        )

    def change(self, to: TransactionStatus, reason: str | None) -> bool:
        return transactions_repository.change_status(
            self.session,
            self.transaction,
            to=to,
            reason=reason.upper() if reason else None,
            now=self.runtime.clock.now(),
        )

    def queue_callback(self, resp_code: str) -> None:
        queue_callback(self.session, self.transaction, resp_code, self.runtime.clock)


def apply_outcome(
    session: Session,
    transaction: Transaction,
    merchant: Account,
    provider: PaymentProvider,
    outcome: Outcome,
    key: str,
    runtime: Runtime,
    *,
    language: str | None = None,
) -> Applied:
    """Record the attempt and move the transaction: PAID, a decline (DENIED at the third), ERROR."""
    attempt = _Attempt(session, transaction, merchant, provider, key, runtime, language)
    return _apply(attempt, outcome)


def _apply(attempt: _Attempt, outcome: Outcome) -> Applied:
    if outcome.result is Result.PENDING:
        page = attempt.page()
        if page.state is PageState.PAYABLE:
            page.notice = "not_completed"
        return Applied(page=page)
    if outcome.result is Result.PAID:
        return _apply_paid(attempt, outcome)
    if attempt.transaction.status != TransactionStatus.PENDING:
        # A late decline or error about a transaction already final: statuses never go back.
        return Applied(page=attempt.page())
    attempt.record(outcome, outcome.result.value)
    if outcome.result is Result.DECLINED:
        declines = repository.count_outcomes(
            attempt.session, attempt.transaction, AttemptOutcome.DECLINED
        )
        if declines >= MAX_DECLINES and attempt.change(
            TransactionStatus.DENIED, outcome.reason or "declined"
        ):
            attempt.queue_callback("PROCESSED")
    elif attempt.change(TransactionStatus.ERROR, outcome.reason or "provider_error"):
        attempt.queue_callback("ERROR")
    page = attempt.page()
    if page.state is PageState.PAYABLE:
        reason = outcome.reason if outcome.reason in _DECLINE_TEXTS else "card_declined"
        page.notice = f"declined_{reason}"
        page.status_code = 402
    return Applied(page=page)


def _apply_paid(attempt: _Attempt, outcome: Outcome) -> Applied:
    transaction = attempt.transaction
    if (outcome.trid, outcome.amount, outcome.currency) != (
        transaction.trid,
        transaction.total_amount,
        transaction.currency,
    ):
        # The provider took another amount than asked: never PAID; the merchant must look.
        log.error(
            "payment does not match its transaction",
            extra={"fields": {"trid": transaction.trid, "reference": outcome.reference}},
        )
        return _apply(
            attempt, Outcome(Result.ERROR, "amount_mismatch", reference=outcome.reference)
        )
    if not attempt.change(TransactionStatus.PAID, None):
        return _paid_already(attempt, outcome)
    clock = attempt.runtime.clock
    repository.set_payment_method(attempt.session, transaction, outcome.payment_method, clock.now())
    attempt.record(outcome, AttemptOutcome.PAID)
    if transaction.customer_email:
        delivery.queue_receipt(
            attempt.session,
            target=transaction.customer_email,
            trid=transaction.trid,
            language=transaction.language,
            account_id=transaction.account_id,
            clock=clock,
        )
    attempt.queue_callback("PROCESSED")
    return Applied(redirect=merchant_return_url(transaction))


def _paid_already(attempt: _Attempt, outcome: Outcome) -> Applied:
    """A payment confirmed for a transaction that is no longer PENDING."""
    session, transaction = attempt.session, attempt.transaction
    page = no_longer_payable(
        session, transaction, attempt.merchant, attempt.runtime, attempt.language
    )
    if outcome.reference is None:
        return Applied(page=page)
    paid = repository.paid_reference(session, transaction)
    if paid == outcome.reference:
        # The same payment confirmed twice (the return and the webhook): already applied.
        return Applied(redirect=merchant_return_url(transaction))
    handled = repository.attempt_with_reference(
        session, transaction, AttemptOutcome.DUPLICATE, outcome.reference
    )
    if handled is not None:  # already given back (the return and the webhook both saw it)
        page.notice = _REFUND_NOTICES[handled.reason or "refunded"]
        return Applied(page=page)
    # The provider took a payment the transaction cannot take any more (a second tab on a second
    # provider page, or the link was cancelled or expired meanwhile): give it back.
    reason = "refunded"
    try:
        attempt.provider.refund(outcome.reference, transaction.total_amount)
    except ProviderError as exc:
        reason = "refund_failed"
        log.error(
            "could not refund a duplicate payment",
            extra={"fields": {"trid": transaction.trid, "error": str(exc)}},
        )
    duplicate = Outcome(
        Result.PAID,
        reason,
        card_brand=outcome.card_brand,
        card_last4=outcome.card_last4,
        reference=outcome.reference,
    )
    attempt.record(duplicate, AttemptOutcome.DUPLICATE)
    page.notice = _REFUND_NOTICES[reason]
    return Applied(page=page)


def _record(
    session: Session,
    transaction: Transaction,
    provider: str,
    outcome: Outcome,
    key: str,
    runtime: Runtime,
    result: str,
) -> PaymentAttempt:
    return repository.add_attempt(
        session,
        PaymentAttempt(
            transaction_id=transaction.id,
            provider=provider,
            outcome=result,
            reason=outcome.reason,
            card_brand=outcome.card_brand,
            card_last4=outcome.card_last4,
            provider_reference=outcome.reference,
            client_key=key,
            created_at=runtime.clock.now(),
        ),
    )


# --- paying on the provider's page (Stripe): start, return ------------------------------------


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
        register_webhook_at=_webhook_to_register(session, merchant, runtime),
    )


def record_start(
    session: Session, token: str, plan: StartPlan, start: Start, runtime: Runtime
) -> None:
    """Count a new provider payment page as an attempt (a resumed one is not new)."""
    if start.reference is None or start.reference == plan.open_reference:
        return
    transaction, _ = load(session, token, runtime)
    _record(
        session,
        transaction,
        plan.provider.name,
        Outcome(Result.PENDING, reference=start.reference),
        plan.client_key,
        runtime,
        AttemptOutcome.STARTED,
    )


def record_provider_failure(
    session: Session, token: str, provider: str, key: str, runtime: Runtime
) -> None:
    """A provider that could not be reached: an attempt that changed nothing."""
    transaction, _ = load(session, token, runtime)
    _record(
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


# --- provider webhooks -------------------------------------------------------------------------


def webhook_url(runtime: Runtime, provider: str, account: Account) -> str:
    return f"{runtime.settings.resolved_base_url}/webhooks/{provider}/{account.uid}"


def _key_fingerprint(merchant: Account) -> str:
    return hashlib.sha256((merchant.provider_private_key_encrypted or "").encode()).hexdigest()


def _webhook_to_register(session: Session, merchant: Account, runtime: Runtime) -> str | None:
    """The URL to register on the merchant's Stripe account, or None when it is registered."""
    if merchant.provider != Provider.STRIPE:
        return None
    url = webhook_url(runtime, Provider.STRIPE.value, merchant)
    known = repository.get_webhook(session, merchant)
    if known and known.url == url and known.key_fingerprint == _key_fingerprint(merchant):
        return None
    return url


def save_webhook(
    session: Session,
    token: str,
    *,
    url: str,
    endpoint_id: str,
    secret: str,
    runtime: Runtime,
) -> None:
    _, merchant = load(session, token, runtime)
    repository.save_webhook(
        session,
        merchant,
        provider=merchant.provider,
        endpoint_id=endpoint_id,
        url=url,
        secret_encrypted=runtime.encryptor.encrypt(secret),
        key_fingerprint=_key_fingerprint(merchant),
        now=runtime.clock.now(),
    )


@dataclass(frozen=True)
class WebhookPlan:
    account: Account
    provider: PaymentProvider
    secret: str


def plan_webhook(
    session: Session, provider_name: str, account_uid: str, runtime: Runtime
) -> WebhookPlan:
    """The account a webhook address speaks for, its provider and the signing secret."""
    account = (
        accounts_repository.get_by_uid(session, account_uid) if len(account_uid) <= 64 else None
    )
    if account is None or account.provider != provider_name:
        raise WebhookAccountNotFound()
    webhook = repository.get_webhook(session, account)
    if webhook is None or webhook.provider != provider_name:
        raise WebhookAccountNotFound()
    try:
        provider = provider_for(account, runtime)
    except ProviderNotAvailable as exc:
        raise WebhookAccountNotFound() from exc
    secret = decrypt_provider_secret(
        account, webhook.secret_encrypted, "webhook signing secret", runtime
    )
    return WebhookPlan(account, provider, secret)


def apply_webhook(
    session: Session, plan: WebhookPlan, event: WebhookEvent, runtime: Runtime
) -> str:
    """Apply a verified event once (de-duplicated by id); returns what was done."""
    if not repository.record_event(
        session,
        provider=plan.provider.name,
        event_id=event.id,
        event_type=event.type,
        account_id=plan.account.id,
        now=runtime.clock.now(),
    ):
        return "duplicate"
    outcome = event.outcome
    if outcome is None or outcome.trid is None:
        return "ignored"
    transaction = repository.get_of_account(session, plan.account, outcome.trid, for_update=True)
    if transaction is None:
        return "unknown transaction"
    expire_if_due(session, transaction, runtime.clock)
    applied = apply_outcome(
        session,
        transaction,
        plan.account,
        plan.provider,
        outcome,
        f"provider:{plan.provider.name}",
        runtime,
    )
    return "applied" if applied.redirect else "recorded"
