"""Queries on transactions. Reads take the caller as ``scope``: its own or its descendants'."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobip.accounts.models import Account, Role
from mobip.delivery.models import OutboxMessage
from mobip.transactions.models import (
    TRANSITIONS,
    Transaction,
    TransactionEvent,
    TransactionStatus,
)


def add(session: Session, transaction: Transaction) -> Transaction:
    session.add(transaction)
    session.flush()
    add_event(session, transaction)
    return transaction


def add_event(session: Session, transaction: Transaction) -> None:
    session.add(
        TransactionEvent(
            transaction_id=transaction.id,
            status=transaction.status,
            reason=transaction.reason,
            at=transaction.status_changed_at,
        )
    )


def get_visible(session: Session, scope: Account, trid: str) -> tuple[Transaction, Account] | None:
    """The transaction and its merchant, if ``scope`` owns it or is above its owner."""
    query = (
        select(Transaction, Account)
        .join(Account, Account.id == Transaction.account_id)
        .where(Transaction.trid == trid)
    )
    if scope.role != Role.ADMIN:
        query = query.where(Account.path.startswith(scope.path, autoescape=True))
    row = session.execute(query).first()
    return (row[0], row[1]) if row else None


def get_by_checkout_token(session: Session, token: str) -> Transaction | None:
    return session.scalars(select(Transaction).where(Transaction.checkout_token == token)).first()


def change_status(
    session: Session,
    transaction: Transaction,
    *,
    to: TransactionStatus,
    reason: str | None,
    now: datetime,
) -> bool:
    """Move from the status the caller saw to ``to``, if the status table allows it.

    False when the table forbids it or someone else moved the transaction first: the WHERE on
    the old status is the database-level guard, so of two concurrent changes exactly one wins.
    """
    if to not in TRANSITIONS[TransactionStatus(transaction.status)]:
        return False
    result = session.execute(
        update(Transaction)
        .where(Transaction.id == transaction.id, Transaction.status == transaction.status)
        .values(status=to.value, reason=reason, status_changed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(transaction)
        return False
    session.refresh(transaction)
    add_event(session, transaction)
    return True


def count_manual_resend(session: Session, transaction: Transaction, now: datetime) -> None:
    transaction.manual_resends += 1
    transaction.updated_at = now
    session.flush()


def events(session: Session, transaction: Transaction) -> Sequence[TransactionEvent]:
    return session.scalars(
        select(TransactionEvent)
        .where(TransactionEvent.transaction_id == transaction.id)
        .order_by(TransactionEvent.id)
    ).all()


def messages(session: Session, transaction: Transaction) -> Sequence[OutboxMessage]:
    return session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.subject == transaction.trid,
            OutboxMessage.account_id == transaction.account_id,
        )
        .order_by(OutboxMessage.id)
    ).all()
