"""Outbox queries: the claim (safe with several workers) and the lease-checked outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Table,
    Update,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobip.delivery.models import CallbackSecret, OutboxAttempt, OutboxMessage, OutboxStatus
from mobip.kit.db import DriverInsert

# The ORM would otherwise try to sync objects in the session with the UPDATEs below.
_NO_SYNC = {"synchronize_session": False}
_INSERT_MANY = DriverInsert(cast(Table, OutboxMessage.__table__))


def insert_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new messages' rows at the driver's level: one statement whatever their number."""
    _INSERT_MANY.execute(conn, rows)


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


def _held_by(worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The message is still ``worker_id``'s: its lease and no outcome recorded yet."""
    return (
        OutboxMessage.lease_owner == worker_id,
        OutboxMessage.status == OutboxStatus.PENDING.value,
    )


def _finish(session: Session, message_id: int, worker_id: str, stmt: Update) -> bool:
    """Run an outcome UPDATE only if ``worker_id`` still holds the lease; True when it did."""
    guarded = stmt.where(OutboxMessage.id == message_id, *_held_by(worker_id))
    result = cast(CursorResult[Any], session.execute(guarded, execution_options=_NO_SYNC))
    return result.rowcount == 1


def mark_done(session: Session, message_id: int, worker_id: str, now: datetime) -> bool:
    """Record a delivery; False (and nothing written) if the lease has passed to another worker."""
    return message_id in mark_done_many(session, [message_id], worker_id, now)


def mark_done_many(
    session: Session, message_ids: Sequence[int], worker_id: str, now: datetime
) -> set[int]:
    """``mark_done`` for many messages in one statement; the ids whose lease was still ours."""
    if not message_ids:
        return set()
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids), *_held_by(worker_id))
        .values(
            status=OutboxStatus.DONE.value,
            delivered_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(OutboxMessage.id)
    )
    return set(session.scalars(stmt, execution_options=_NO_SYNC).all())


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


def add_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Log many attempts in one executemany (the worker's batched outcomes)."""
    if rows:
        session.execute(insert(OutboxAttempt), list(rows))


def attempts_of(session: Session, message_id: int) -> Sequence[OutboxAttempt]:
    """A message's logged attempts, oldest first."""
    return session.scalars(
        select(OutboxAttempt)
        .where(OutboxAttempt.message_id == message_id)
        .order_by(OutboxAttempt.id)
    ).all()


def attempts_by_message(
    session: Session, message_ids: Sequence[int]
) -> dict[int, list[OutboxAttempt]]:
    """The logged attempts of several messages in one query, oldest first per message."""
    logs: dict[int, list[OutboxAttempt]] = {message_id: [] for message_id in message_ids}
    if message_ids:
        stmt = (
            select(OutboxAttempt)
            .where(OutboxAttempt.message_id.in_(message_ids))
            .order_by(OutboxAttempt.id)
        )
        for attempt in session.scalars(stmt):
            logs[attempt.message_id].append(attempt)
    return logs


def messages_about(session: Session, account_id: int, subject: str) -> Sequence[OutboxMessage]:
    """The account's messages about ``subject`` (e.g. a trid), oldest first."""
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.subject == subject, OutboxMessage.account_id == account_id)
        .order_by(OutboxMessage.id)
    ).all()


def list_messages(
    session: Session, *, failed_only: bool, limit: int, kind: str | None = None
) -> Sequence[OutboxMessage]:
    """The newest messages first, of ``kind`` if given (operator tools: every account)."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if failed_only:
        stmt = stmt.where(OutboxMessage.status == OutboxStatus.FAILED.value)
    if kind is not None:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return session.scalars(stmt).all()


def requeue(
    session: Session, message_id: int, now: datetime, max_attempts: int, status: str | None = None
) -> bool:
    """Make a pending or failed message due now with ``max_attempts``.

    False if it is done, held by a worker's live lease (clearing that lease would drop the
    worker's outcome and send the message twice), or, with ``status``, no longer in it.
    """
    stmt = (
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status != OutboxStatus.DONE.value,
            or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at <= now),
            *([OutboxMessage.status == status] if status is not None else []),
        )
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=now,
            max_attempts=max_attempts,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    result = cast(CursorResult[Any], session.execute(stmt, execution_options=_NO_SYNC))
    return result.rowcount == 1


def callback_secret(session: Session, account_id: int) -> CallbackSecret | None:
    """The account's callback signing secret row, if one was made."""
    return session.get(CallbackSecret, account_id, populate_existing=True)


def add_callback_secret(session: Session, secret: CallbackSecret) -> bool:
    """Insert the account's first secret; False when another process inserted one first."""
    try:
        with session.begin_nested():
            session.add(secret)
            session.flush()
    except IntegrityError:
        return False
    return True
