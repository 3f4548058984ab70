"""What a provider's outcome changes: the attempt recorded, the transaction PAID, DENIED (at the
third decline) or ERROR, the receipt and the merchant's callback queued, a late duplicate
payment refunded.

Every status change goes through ``transactions.service`` (``mark_paid``, ``deny``, ``fail``:
a compare-and-set on the status the caller saw), so of two payments racing for one transaction
exactly one wins. All of it runs in the caller's database transaction, with the transaction row
locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mobip.accounts.models import Account
from mobip.checkout import repository
from mobip.checkout.models import AttemptOutcome, PaymentAttempt
from mobip.checkout.providers.base import Outcome, PaymentProvider, ProviderError, Result
from mobip.checkout.views import (
    MAX_DECLINES,
    Applied,
    PageState,
    PageView,
    confirmation_url,
    no_longer_payable,
    view,
)
from mobip.delivery import service as delivery
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions
from mobip.transactions.cards import card_shown
from mobip.transactions.models import Transaction, TransactionStatus

log = logging.getLogger(__name__)

# Decline reasons the page explains in words (others read as a plain decline).
DECLINE_TEXTS = {"card_declined", "insufficient_funds", "payment_failed"}
# What a customer whose payment came too late is told (attempt reason → message key).
REFUND_NOTICES = {"refunded": "payment_refunded", "refund_failed": "payment_refund_pending"}


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
    # The address the customer typed for the receipt (checked), if any.
    receipt_email: str | None = None

    def page(self) -> PageView:
        return view(
            self.session, self.transaction, self.merchant, self.runtime, language=self.language
        )

    def record(self, outcome: Outcome, result: str) -> None:
        record_attempt(
            self.session,
            self.transaction,
            self.provider.name,
            outcome,
            self.key,
            self.runtime,
            result,
        )

    def deny(self, reason: str) -> bool:
        now = self.runtime.clock.now()
        return transactions.deny(self.session, self.transaction, reason=reason.upper(), now=now)

    def fail(self, reason: str) -> bool:
        now = self.runtime.clock.now()
        return transactions.fail(self.session, self.transaction, reason=reason.upper(), now=now)

    def queue_callback(self, resp_code: str) -> None:
        transactions.queue_callback(self.session, self.transaction, resp_code, self.runtime.clock)


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
    receipt_email: str | None = None,
) -> Applied:
    """Record the attempt and move the transaction: PAID, a decline (DENIED at the third), ERROR.

    Paid, the customer is sent to the confirmation page; the receipt goes to the transaction's
    customer_email, else to ``receipt_email`` (typed on the page), in this same unit of work."""
    attempt = _Attempt(
        session, transaction, merchant, provider, key, runtime, language, receipt_email
    )
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
        if declines >= MAX_DECLINES and attempt.deny(outcome.reason or "declined"):
            attempt.queue_callback("PROCESSED")
    elif attempt.fail(outcome.reason or "provider_error"):
        attempt.queue_callback("ERROR")
    page = attempt.page()
    if page.state is PageState.PAYABLE:
        reason = outcome.reason if outcome.reason in DECLINE_TEXTS else "card_declined"
        page.notice = f"declined_{reason}"
        page.tried_card = card_shown(outcome.card_brand, outcome.card_last4)
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
    clock = attempt.runtime.clock
    settings = attempt.runtime.settings
    if not transactions.mark_paid(attempt.session, transaction, now=clock.now(), settings=settings):
        return _paid_already(attempt, outcome)
    transactions.set_payment_method(
        attempt.session, transaction, outcome.payment_method, clock.now()
    )
    attempt.record(outcome, AttemptOutcome.PAID)
    if attempt.receipt_email and not transaction.customer_email:
        transactions.set_receipt_email(
            attempt.session, transaction, attempt.receipt_email, clock.now()
        )
    receipt_to = transactions.receipt_address(transaction)
    if receipt_to:
        delivery.queue_receipt(
            attempt.session,
            target=receipt_to,
            trid=transaction.trid,
            language=transaction.language,
            account_id=transaction.account_id,
            clock=clock,
            test=bool(attempt.provider.test_cards),  # the TEST MODE rule of the pages
        )
    attempt.queue_callback("PROCESSED")
    return Applied(redirect=confirmation_url(transaction, attempt.language, just_paid=True))


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
        return Applied(redirect=confirmation_url(transaction, attempt.language, just_paid=True))
    handled = repository.attempt_with_reference(
        session, transaction, AttemptOutcome.DUPLICATE, outcome.reference
    )
    if handled is not None:  # already given back (the return and the webhook both saw it)
        page.notice = REFUND_NOTICES[handled.reason or "refunded"]
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
    page.notice = REFUND_NOTICES[reason]
    return Applied(page=page)


def record_attempt(
    session: Session,
    transaction: Transaction,
    provider: str,
    outcome: Outcome,
    key: str,
    runtime: Runtime,
    result: str,
) -> PaymentAttempt:
    """One payment attempt of ``transaction`` (card data: brand and last 4 only)."""
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
