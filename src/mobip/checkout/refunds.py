"""refund_transaction (issue 13): a refund of a PAID transaction through the provider that took
its payment, and refunds the provider reports through its webhook.

The provider is called outside any database transaction (docs/fees.md): the first unit of work
reserves the refund (PENDING, under the transaction's row lock, so concurrent refunds cannot add
up past the total), api/routing commits it and calls the provider with no lock held, and a
second unit of work records the refund (SUCCEEDED, the merchant's callback queued) or releases
the reservation (nothing recorded; RefundFailed). Stripe does a refund once per idempotency key,
derived from our refund id, and echoes that id in its webhook, so a reservation left PENDING by a
crash is completed by Stripe's event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mobip.accounts.models import Account
from mobip.checkout import repository
from mobip.checkout.errors import ProviderNotAvailable, RefundFailed
from mobip.checkout.providers.base import PaymentProvider, ProviderError, ProviderRefund, Refund
from mobip.checkout.providers.registry import provider_for
from mobip.kit.errors import MobipError
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedRefund:
    """A reserved refund and what calling its provider needs."""

    reserved: transactions.ReservedRefund
    provider: PaymentProvider
    payment_reference: str | None

    def call(self) -> Refund | ProviderError:
        """Ask the provider (no database transaction open); its refusal as a value."""
        reserved = self.reserved
        try:
            refund = self.provider.refund(
                self.payment_reference,
                reserved.amount,
                idempotency_key=f"mobip-{reserved.refund_id}",
                metadata={"mobip_refund_id": reserved.refund_id, "trid": reserved.trid},
            )
        except ProviderError as exc:
            return exc
        if not refund.accepted:
            return ProviderError(f"{self.provider.label}: the refund is {refund.status}")
        return refund


def plan_refund(
    session: Session, caller: Account, trid: str, amount: int | None, runtime: Runtime
) -> PlannedRefund:
    """The first unit of work: the transaction found (the caller's or a descendant's), its
    provider ready, the refund reserved."""
    transaction, merchant = transactions.get_for(session, caller, trid, runtime.clock)
    paid = repository.paid_attempt(session, transaction)
    provider_name = paid.provider if paid is not None else merchant.provider
    reference = paid.provider_reference if paid is not None else None
    provider = provider_for(merchant, runtime)
    if provider.name != provider_name:
        raise ProviderNotAvailable(
            f"The payment was taken by {provider_name}; the merchant's provider is now "
            f"{provider.name}: refund it in {provider_name}'s dashboard"
        )
    reserved = transactions.reserve_refund(
        session, caller, trid, amount, provider=provider.name, clock=runtime.clock
    )
    return PlannedRefund(reserved, provider, reference)


def replan(
    session: Session, reserved: transactions.ReservedRefund, runtime: Runtime
) -> PlannedRefund | None:
    """A reservation left PENDING (its request stopped before the outcome), ready to be sent to
    its provider again; None when the merchant's provider is no longer the one it was reserved
    with (it stays PENDING and is logged: the refund must be looked at in that provider)."""
    found = transactions.get_for_worker(session, reserved.trid)
    if found is None:
        return None
    transaction, merchant = found
    paid = repository.paid_attempt(session, transaction)
    try:
        provider = provider_for(merchant, runtime)
    except MobipError:
        provider = None
    if provider is None or provider.name != reserved.provider:
        log.warning(
            "a stale refund's provider is not the merchant's any more",
            extra={"fields": {"trid": reserved.trid, "refund_id": reserved.refund_id}},
        )
        return None
    return PlannedRefund(reserved, provider, paid.provider_reference if paid else None)


def finish_refund(
    session: Session, planned: PlannedRefund, outcome: Refund | ProviderError, runtime: Runtime
) -> dict[str, Any]:
    """The second unit of work: record the refund, or release it and say why (RefundFailed)."""
    reserved = planned.reserved
    if isinstance(outcome, ProviderError):
        transactions.release_refund(session, reserved)
        log.warning(
            "refund refused by the provider",
            extra={"fields": {"trid": reserved.trid, "error": str(outcome)}},
        )
        raise RefundFailed(
            f"The payment provider did not refund ({outcome}); nothing was refunded or recorded"
        )
    refund = transactions.complete_refund(session, reserved, outcome.reference, runtime.clock)
    return transactions.refund_reply(session, reserved.trid, refund)


# --- refunds the provider reports (webhooks.py) --------------------------------------------------


def payment_reference(session: Session, merchant: Account, trid: str) -> str | None:
    """The provider's reference of the merchant's PAID transaction ``trid``, if paid here."""
    transaction = transactions.get_of_account(session, merchant, trid)
    if transaction is None:
        return None
    paid = repository.paid_attempt(session, transaction)
    return paid.provider_reference if paid is not None else None


def record_reported(
    session: Session,
    merchant: Account,
    provider: PaymentProvider,
    trid: str,
    reported: list[ProviderRefund],
    runtime: Runtime,
) -> int:
    """Record the provider's refunds of the payment (read from its API) not recorded yet, each
    once by its reference; returns how many were new."""
    transaction = transactions.get_of_account(session, merchant, trid, for_update=True)
    if transaction is None:
        return 0
    recorded = 0
    for refund in reported:
        if refund.status not in ("succeeded", "pending"):
            continue
        if transactions.record_provider_refund(
            session,
            transaction,
            provider=provider.name,
            reference=refund.reference,
            amount=refund.amount,
            refund_id=refund.refund_id,
            clock=runtime.clock,
        ):
            recorded += 1
    return recorded
