"""Queries of the hosted checkout's own tables: payment attempts, provider events and the
webhooks registered on merchants' provider accounts. (The transactions table is
``transactions``': checkout reads and changes it through ``transactions.service``.)"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from mobip.accounts.models import Account
from mobip.checkout.models import (
    AttemptOutcome,
    PageStart,
    PaymentAttempt,
    ProviderEvent,
    ProviderWebhook,
)
from mobip.kit.db import insert_unless_present
from mobip.transactions.models import Transaction


def add_attempt(session: Session, attempt: PaymentAttempt) -> PaymentAttempt:
    session.add(attempt)
    session.flush()
    return attempt


def attempts(session: Session, transaction: Transaction) -> list[PaymentAttempt]:
    return list(
        session.scalars(
            select(PaymentAttempt)
            .where(PaymentAttempt.transaction_id == transaction.id)
            .order_by(PaymentAttempt.id)
        )
    )


def attempts_since(
    session: Session,
    since: datetime,
    *,
    transaction_id: int | None = None,
    client_key: str | None = None,
) -> tuple[int, datetime | None]:
    """How many attempts of a transaction or of a client since ``since``, and the oldest's time."""
    query = select(func.count(), func.min(PaymentAttempt.created_at)).where(
        PaymentAttempt.created_at > since
    )
    if transaction_id is not None:
        query = query.where(PaymentAttempt.transaction_id == transaction_id)
    if client_key is not None:
        query = query.where(PaymentAttempt.client_key == client_key)
    count, oldest = session.execute(query).one()
    return int(count), oldest


def starts_since(session: Session, client_key: str, since: datetime) -> tuple[int, datetime | None]:
    """How many payments the client started from pages since ``since``, and the oldest's time."""
    query = select(func.count(), func.min(PageStart.started_at)).where(
        PageStart.client_key == client_key, PageStart.started_at > since
    )
    count, oldest = session.execute(query).one()
    return int(count), oldest


def add_start(session: Session, client_key: str, now: datetime) -> None:
    session.execute(insert(PageStart).values(client_key=client_key, started_at=now))


def delete_starts(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` page starts from before ``before``; how many."""
    old = select(PageStart.id).where(PageStart.started_at <= before).limit(limit)
    ids = list(session.scalars(old))
    if ids:
        session.execute(delete(PageStart).where(PageStart.id.in_(ids)))
    return len(ids)


def count_outcomes(session: Session, transaction: Transaction, outcome: AttemptOutcome) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                PaymentAttempt.transaction_id == transaction.id,
                PaymentAttempt.outcome == outcome.value,
            )
        )
        or 0
    )


def latest_reference(
    session: Session, transaction: Transaction, outcome: AttemptOutcome, since: datetime
) -> str | None:
    """The provider reference of the newest attempt with ``outcome`` since ``since``."""
    return session.scalar(
        select(PaymentAttempt.provider_reference)
        .where(
            PaymentAttempt.transaction_id == transaction.id,
            PaymentAttempt.outcome == outcome.value,
            PaymentAttempt.created_at > since,
            PaymentAttempt.provider_reference.is_not(None),
        )
        .order_by(PaymentAttempt.id.desc())
        .limit(1)
    )


def attempt_with_reference(
    session: Session, transaction: Transaction, outcome: AttemptOutcome, reference: str
) -> PaymentAttempt | None:
    return session.scalars(
        select(PaymentAttempt)
        .where(
            PaymentAttempt.transaction_id == transaction.id,
            PaymentAttempt.outcome == outcome.value,
            PaymentAttempt.provider_reference == reference,
        )
        .limit(1)
    ).first()


def paid_attempt(session: Session, transaction: Transaction) -> PaymentAttempt | None:
    """The attempt that paid ``transaction`` (its provider, card brand and last 4)."""
    return session.scalars(
        select(PaymentAttempt)
        .where(
            PaymentAttempt.transaction_id == transaction.id,
            PaymentAttempt.outcome == AttemptOutcome.PAID.value,
        )
        .limit(1)
    ).first()


def paid_reference(session: Session, transaction: Transaction) -> str | None:
    return session.scalar(
        select(PaymentAttempt.provider_reference)
        .where(
            PaymentAttempt.transaction_id == transaction.id,
            PaymentAttempt.outcome == AttemptOutcome.PAID.value,
        )
        .limit(1)
    )


def record_event(
    session: Session,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    account_id: int,
    now: datetime,
) -> bool:
    """Remember a provider event; False when it was already recorded (a duplicate delivery)."""
    return insert_unless_present(
        session,
        ProviderEvent,
        ("provider", "event_id"),
        provider=provider,
        event_id=event_id,
        event_type=event_type,
        account_id=account_id,
        received_at=now,
    )


def get_webhook(session: Session, account: Account) -> ProviderWebhook | None:
    return session.scalars(
        select(ProviderWebhook).where(ProviderWebhook.account_id == account.id)
    ).first()


def save_webhook(
    session: Session,
    account: Account,
    *,
    provider: str,
    endpoint_id: str,
    url: str,
    secret_encrypted: str,
    key_fingerprint: str,
    now: datetime,
) -> ProviderWebhook:
    webhook = get_webhook(session, account) or ProviderWebhook(account_id=account.id)
    webhook.provider = provider
    webhook.endpoint_id = endpoint_id
    webhook.url = url
    webhook.secret_encrypted = secret_encrypted
    webhook.key_fingerprint = key_fingerprint
    webhook.created_at = now
    session.add(webhook)
    session.flush()
    return webhook
