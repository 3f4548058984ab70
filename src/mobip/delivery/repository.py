"""Outbox queries: the claim (safe with several workers) and the lease-checked outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Update, or_, select, update
from sqlalchemy.orm import Session

from mobip.delivery.models import OutboxMessage, OutboxStatus

# The ORM would otherwise try to sync objects in the session with the UPDATEs below.
_NO_SYNC = {"synchronize_session": False}


def claim_due(
    session: Session, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due messages to ``worker_id`` and count the attempt; oldest due first.

    Due: pending, ``next_attempt_at <= now`` and no lease or an expired one. On PostgreSQL the
    inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent claimers take disjoint rows
    without waiting; SQLite ignores it, and the caller must run this in
    ``Database.transaction(immediate=True)`` so that claims are serialised by the write lock.
    Commit right after: the lease is what keeps other workers away, not the transaction.
    """
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING.value,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at <= now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=worker_id,
            lease_expires_at=now + lease,
            attempts=OutboxMessage.attempts + 1,
            updated_at=now,
        )
        .returning(OutboxMessage)
    )
    claimed = session.scalars(stmt, execution_options={**_NO_SYNC, "populate_existing": True}).all()
    # RETURNING has no order; hand them out in the order they became due.
    return sorted(claimed, key=lambda m: (m.next_attempt_at, m.id))


def _finish(session: Session, message_id: int, worker_id: str, stmt: Update) -> bool:
    """Run an outcome UPDATE only if ``worker_id`` still holds the lease; True when it did."""
    guarded = stmt.where(
        OutboxMessage.id == message_id,
        OutboxMessage.lease_owner == worker_id,
        OutboxMessage.status == OutboxStatus.PENDING.value,
    )
    result = cast(CursorResult[Any], session.execute(guarded, execution_options=_NO_SYNC))
    return result.rowcount == 1


def mark_done(session: Session, message_id: int, worker_id: str, now: datetime) -> bool:
    """Record a delivery; False (and nothing written) if the lease has passed to another worker."""
    stmt = update(OutboxMessage).values(
        status=OutboxStatus.DONE.value,
        delivered_at=now,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
    )
    return _finish(session, message_id, worker_id, stmt)


def schedule_retry(
    session: Session,
    message_id: int,
    worker_id: str,
    now: datetime,
    next_attempt_at: datetime,
    error: str,
) -> bool:
    """Record a failed attempt and when to try again; False if the lease is no longer ours."""
    stmt = update(OutboxMessage).values(
        next_attempt_at=next_attempt_at,
        last_error=error,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
    )
    return _finish(session, message_id, worker_id, stmt)


def mark_failed(
    session: Session, message_id: int, worker_id: str, now: datetime, error: str
) -> bool:
    """Give up on a message for good; False if the lease is no longer ours."""
    stmt = update(OutboxMessage).values(
        status=OutboxStatus.FAILED.value,
        last_error=error,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
    )
    return _finish(session, message_id, worker_id, stmt)


def release(session: Session, message_id: int, worker_id: str, now: datetime) -> bool:
    """Give a claimed message back untried (graceful stop): lease cleared, the attempt uncounted."""
    stmt = update(OutboxMessage).values(
        attempts=OutboxMessage.attempts - 1,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
    )
    return _finish(session, message_id, worker_id, stmt)


def get(session: Session, message_id: int) -> OutboxMessage | None:
    """One message by id (operator tools and tests; outbox rows are not tenant data)."""
    return session.get(OutboxMessage, message_id, populate_existing=True)
