"""Queries on transactions. Reads take the caller as ``scope``: its own or its descendants'."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Float,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mobip.accounts.models import Account, Role
from mobip.kit.db import DriverInsert, DriverStatement, among
from mobip.transactions.models import (
    TRANSITIONS,
    Refund,
    RefundStatus,
    Transaction,
    TransactionEvent,
    TransactionKind,
    TransactionStatus,
)

_TRANSACTIONS = cast(Table, Transaction.__table__)
# The create path's INSERTs at the driver's level (kit/db): one statement each per call,
# whatever the number of creates. The first status event is read off the new transaction row
# itself, so no id has to come back first.
_INSERT_TRANSACTIONS = DriverInsert(_TRANSACTIONS)
_INSERT_FIRST_EVENTS = DriverStatement(
    insert(cast(Table, TransactionEvent.__table__)).from_select(
        ["transaction_id", "status", "reason", "at"],
        select(
            _TRANSACTIONS.c.id,
            _TRANSACTIONS.c.status,
            _TRANSACTIONS.c.reason,
            _TRANSACTIONS.c.status_changed_at,
        ).where(_TRANSACTIONS.c.trid == bindparam("trid")),
    )
)


def insert_created(conn: Connection, transactions: Sequence[Mapping[str, Any]]) -> None:
    """Insert new transactions and their first status events: two statements per call, for one
    create (its unit of work) or many (api/batch's group commit)."""
    _INSERT_TRANSACTIONS.execute(conn, transactions)
    _INSERT_FIRST_EVENTS.execute(conn, transactions)


def add_event(session: Session, transaction: Transaction) -> None:
    """The status event recording the transaction's current status."""
    session.add(
        TransactionEvent(
            transaction_id=transaction.id,
            status=transaction.status,
            reason=transaction.reason,
            at=transaction.status_changed_at,
        )
    )


def _with_merchant(trid: str) -> Select[Transaction, Account]:
    return (
        select(Transaction, Account)
        .join(Account, Account.id == Transaction.account_id)
        .where(Transaction.trid == trid)
    )


def get_visible(
    session: Session, scope: Account, trid: str, *, for_update: bool = False
) -> tuple[Transaction, Account] | None:
    """The transaction and its merchant, if ``scope`` owns it or is above its owner;
    ``for_update`` locks the transaction's row (PostgreSQL; SQLite serialises writers)."""
    query = _with_merchant(trid)
    if scope.role != Role.ADMIN:
        query = query.where(Account.path.startswith(scope.path, autoescape=True))
    if for_update:
        query = query.with_for_update(of=Transaction).execution_options(populate_existing=True)
    row = session.execute(query).first()
    return (row[0], row[1]) if row else None


_STATUS_VIEW = (
    select(
        Transaction.__table__.c.status,
        Transaction.__table__.c.reason,
        Transaction.__table__.c.track_id,
        Transaction.__table__.c.item_name,
        Transaction.__table__.c.payment_method,
        Transaction.__table__.c.is_refunded,
        Transaction.__table__.c.status_changed_at,
        Transaction.__table__.c.expires_at,
        Account.__table__.c.external_account_id,
        Account.__table__.c.path,
    )
    .join(Account.__table__, Account.__table__.c.id == Transaction.__table__.c.account_id)
    .where(Transaction.__table__.c.trid == bindparam("trid"))
)


class StatusView(NamedTuple):
    """What is_valid shows of a transaction, read without ORM objects."""

    status: str
    reason: str | None
    track_id: str | None
    item_name: str
    payment_method: str | None
    is_refunded: bool
    status_changed_at: datetime
    expires_at: datetime
    external_account_id: str | None


def status_view(conn: Connection, scope: Account, trid: str) -> StatusView | None:
    """What is_valid shows, as one Core row; the scope check is get_visible's, on the path."""
    return _view(conn.execute(_STATUS_VIEW, {"trid": trid}).first(), scope, _as_is)


# The same query as SQLite text, for the event loop's raw reader (api/routing's fast reads):
# SQLAlchemy's execution machinery costs ten times the query itself there.
_STATUS_VIEW_SQLITE = str(_STATUS_VIEW.compile(dialect=sqlite_dialect()))


def status_view_sqlite(dbapi: sqlite3.Connection, scope: Account, trid: str) -> StatusView | None:
    """status_view on a raw SQLite connection (datetimes are naive UTC text there)."""
    return _view(dbapi.execute(_STATUS_VIEW_SQLITE, (trid,)).fetchone(), scope, _utc_from_text)


def _view(
    row: Sequence[Any] | None, scope: Account, moment: Callable[[Any], datetime]
) -> StatusView | None:
    """A _STATUS_VIEW row as a StatusView, or None when ``scope`` may not see it."""
    if row is None or not _in_scope(scope, row[9]):
        return None
    return StatusView(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        bool(row[5]),
        moment(row[6]),
        moment(row[7]),
        row[8],
    )


def _as_is(moment: datetime) -> datetime:
    return moment


def _utc_from_text(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _in_scope(scope: Account, path: str) -> bool:
    return scope.role == Role.ADMIN or path.startswith(scope.path)


def get_with_merchant_by_checkout_token(
    session: Session, token: str, *, for_update: bool = False
) -> tuple[Transaction, Account] | None:
    """The transaction behind a checkout link and its merchant; ``for_update`` locks the row
    (PostgreSQL; SQLite's write transactions are serialised already)."""
    query = (
        select(Transaction, Account)
        .join(Account, Account.id == Transaction.account_id)
        .where(Transaction.checkout_token == token)
    )
    if for_update:
        query = query.with_for_update(of=Transaction).execution_options(populate_existing=True)
    row = session.execute(query).first()
    return (row[0], row[1]) if row else None


def get_of_account(
    session: Session, account: Account, trid: str, *, for_update: bool = False
) -> Transaction | None:
    """A transaction of ``account`` only (not of its descendants)."""
    query = select(Transaction).where(
        Transaction.trid == trid, Transaction.account_id == account.id
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def set_payment_method(
    session: Session, transaction: Transaction, payment_method: str, now: datetime
) -> None:
    _set(session, transaction, now, payment_method=payment_method)


def set_receipt_email(
    session: Session, transaction: Transaction, address: str, now: datetime
) -> None:
    _set(session, transaction, now, receipt_email=address)


def _set(session: Session, transaction: Transaction, now: datetime, **values: Any) -> None:
    """One UPDATE of ``values`` (and updated_at) on the row, then the object read back."""
    session.execute(
        update(Transaction)
        .where(Transaction.id == transaction.id)
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(transaction)


def change_status(
    session: Session,
    transaction: Transaction,
    *,
    to: TransactionStatus,
    reason: str | None,
    now: datetime,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Move from the status the caller saw to ``to``, if the status table allows it, setting
    ``values`` too in the same UPDATE (a PAID transaction's fee).

    False when the table forbids it or someone else moved the transaction first: the WHERE on
    the old status is the database-level guard, so of two concurrent changes exactly one wins.
    """
    if to not in TRANSITIONS[TransactionStatus(transaction.status)]:
        return False
    result = session.execute(
        update(Transaction)
        .where(Transaction.id == transaction.id, Transaction.status == transaction.status)
        .values(status=to.value, reason=reason, status_changed_at=now, updated_at=now)
        .values(**(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(transaction)
        return False
    session.refresh(transaction)
    add_event(session, transaction)
    return True


def paid_totals_by_qr(
    session: Session, account_ids: Sequence[int], qr_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """For each of ``qr_ids`` with PAID transactions of ``account_ids``: their count and total
    amount. One grouped query (the qr_id index), whatever the number of QR codes."""
    if not qr_ids:
        return {}
    rows = session.execute(
        select(
            Transaction.qr_id,
            func.count(),
            func.coalesce(func.sum(Transaction.item_amount + Transaction.tax_amount), 0),
        )
        .where(
            among(session, Transaction.qr_id, qr_ids),
            among(session, Transaction.account_id, account_ids),
            Transaction.status == TransactionStatus.PAID.value,
        )
        .group_by(Transaction.qr_id)
    ).all()
    return {str(row[0]): (int(row[1]), int(row[2])) for row in rows}


def fee_totals(
    session: Session, start: datetime, end: datetime, account_ids: Sequence[int] | None
) -> list[tuple[int, str, int, int, int, int, int]]:
    """Per account and currency, the PAID transactions with ``start <= paid_at < end``: count,
    totals, fee parts and fees. One grouped query (the paid_at index), ordered by account."""
    query = (
        select(
            Transaction.account_id,
            Transaction.currency,
            func.count(),
            func.coalesce(func.sum(Transaction.item_amount + Transaction.tax_amount), 0),
            func.coalesce(func.sum(Transaction.fee_variable), 0),
            func.coalesce(func.sum(Transaction.fee_fixed_part), 0),
            func.coalesce(func.sum(Transaction.fee), 0),
        )
        .where(
            Transaction.status == TransactionStatus.PAID.value,
            Transaction.paid_at >= start,
            Transaction.paid_at < end,
        )
        .group_by(Transaction.account_id, Transaction.currency)
        .order_by(Transaction.account_id, Transaction.currency)
    )
    if account_ids is not None:
        query = query.where(among(session, Transaction.account_id, account_ids))
    return [
        (int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4] or 0), int(r[5] or 0), int(r[6] or 0))
        for r in session.execute(query).all()
    ]


def last_paid_at(session: Session, account_id: int) -> datetime | None:
    """When the account's latest PAID transaction was paid."""
    return session.scalars(
        select(func.max(Transaction.paid_at)).where(
            Transaction.account_id == account_id,
            Transaction.status == TransactionStatus.PAID.value,
        )
    ).first()


# --- refunds ------------------------------------------------------------------------------------


def lock(session: Session, transaction: Transaction) -> None:
    """Lock the transaction's row and read it again (PostgreSQL; SQLite serialises writers)."""
    session.execute(
        select(Transaction.id)
        .where(Transaction.id == transaction.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    session.refresh(transaction)


def refunds_reserved(session: Session, transaction: Transaction) -> int:
    """The amount of the transaction's refunds, succeeded or still PENDING (the caller holds
    the transaction's row lock, so no other refund can be added meanwhile)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.transaction_id == transaction.id
        )
    )
    return int(total or 0)


def add_refund(session: Session, refund: Refund) -> Refund:
    session.add(refund)
    session.flush()
    return refund


def refund_of(session: Session, transaction: Transaction, refund_id: str) -> Refund | None:
    return session.scalars(
        select(Refund).where(Refund.transaction_id == transaction.id, Refund.refund_id == refund_id)
    ).first()


def refund_by_reference(
    session: Session, transaction: Transaction, provider: str, reference: str
) -> Refund | None:
    return session.scalars(
        select(Refund).where(
            Refund.transaction_id == transaction.id,
            Refund.provider == provider,
            Refund.provider_reference == reference,
        )
    ).first()


def stale_pending_refunds(
    session: Session, before: datetime, limit: int
) -> list[tuple[Refund, str]]:
    """PENDING refunds reserved before ``before`` (their request did not finish), oldest
    first, each with its transaction's trid."""
    rows = session.execute(
        select(Refund, Transaction.trid)
        .join(Transaction, Transaction.id == Refund.transaction_id)
        .where(Refund.status == RefundStatus.PENDING.value, Refund.created_at < before)
        .order_by(Refund.created_at, Refund.id)
        .limit(limit)
    ).all()
    return [(refund, trid) for refund, trid in rows]


def delete_refund(session: Session, refund: Refund) -> None:
    session.delete(refund)
    session.flush()


def refunds(session: Session, transaction: Transaction) -> Sequence[Refund]:
    return session.scalars(
        select(Refund).where(Refund.transaction_id == transaction.id).order_by(Refund.id)
    ).all()


def add_refunded(session: Session, transaction: Transaction, amount: int, now: datetime) -> None:
    """Count a succeeded refund on the transaction (its row is locked by the caller)."""
    refunded = transaction.refunded_amount + amount
    transaction.refunded_amount = refunded
    transaction.is_refunded = refunded >= transaction.total_amount
    transaction.updated_at = now
    session.flush()


def count_manual_resend(session: Session, transaction: Transaction, now: datetime) -> None:
    transaction.manual_resends += 1
    transaction.updated_at = now
    session.flush()


def note_request(session: Session, transaction: Transaction, at: datetime) -> None:
    """Record when the transaction's newest payment request was queued (the reminders' anchor)."""
    transaction.last_request_at = at
    session.flush()


def events(session: Session, transaction: Transaction) -> Sequence[TransactionEvent]:
    return session.scalars(
        select(TransactionEvent)
        .where(TransactionEvent.transaction_id == transaction.id)
        .order_by(TransactionEvent.id)
    ).all()


# --- the worker's reads and the schedules' queries ----------------------------------------------
# Not tenant-scoped: the worker acts for the platform on messages it already holds, and the
# schedules sweep every merchant. Never call these from a request handler.


class _EpochSeconds(FunctionElement[float]):
    """Seconds since 1970 of a UTC datetime column, on SQLite (naive text) and PostgreSQL."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(_EpochSeconds, "postgresql")
def _epoch_postgresql(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(_EpochSeconds, "sqlite")
def _epoch_sqlite(element: _EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday() of 1970-01-01 is 2440587.5; UTCDateTime stores UTC without an offset.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def get_with_merchant_by_trid(session: Session, trid: str) -> tuple[Transaction, Account] | None:
    """The transaction and its merchant by trid, for the worker only (no tenant filter)."""
    row = session.execute(_with_merchant(trid)).first()
    return (row[0], row[1]) if row else None


def due_for_expiry(session: Session, now: datetime, limit: int) -> Sequence[Transaction]:
    """PENDING transactions past their ``expires_at``, oldest expiry first."""
    return session.scalars(
        select(Transaction)
        .where(Transaction.status == TransactionStatus.PENDING.value, Transaction.expires_at <= now)
        .order_by(Transaction.expires_at, Transaction.id)
        .limit(limit)
    ).all()


def due_for_reminder(session: Session, now: datetime, limit: int) -> Sequence[Transaction]:
    """PENDING, unexpired payment requests owed an automatic resend.

    Owed: ``retry_period_days`` > 0, fewer than ``retry_attempts`` automatic resends so far, and
    at least ``retry_period_days`` since the last payment request queued for it (initial, manual
    or reminder: ``last_request_at``, or the creation time if there is none).
    """
    anchor = func.coalesce(Transaction.last_request_at, Transaction.created_at)
    return session.scalars(
        select(Transaction)
        .where(
            Transaction.status == TransactionStatus.PENDING.value,
            Transaction.kind == TransactionKind.PAYMENT_REQUEST.value,
            Transaction.retry_period_days > 0,
            Transaction.automatic_resends < Transaction.retry_attempts,
            Transaction.expires_at > now,
            _EpochSeconds(anchor) + Transaction.retry_period_days * 86400.0 <= now.timestamp(),
        )
        .order_by(Transaction.id)
        .limit(limit)
    ).all()


def count_automatic_resend(session: Session, transaction: Transaction, now: datetime) -> bool:
    """Count one automatic resend if nobody counted it first; True when this call did.

    The WHERE on the count the caller saw (and on PENDING) is the guard that keeps two
    schedulers running at once from both sending the same reminder.
    """
    result = session.execute(
        update(Transaction)
        .where(
            Transaction.id == transaction.id,
            Transaction.status == TransactionStatus.PENDING.value,
            Transaction.automatic_resends == transaction.automatic_resends,
        )
        .values(automatic_resends=Transaction.automatic_resends + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(transaction)
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def summaries_by_trids(session: Session, trids: Sequence[str]) -> Sequence[Any]:
    """(trid, track_id, status, item_amount, tax_amount, customer_name, customer_email,
    customer_phone, payment_method, is_refunded) rows: a Core select, no ORM objects (reports
    read them by the thousand)."""
    t = Transaction
    return session.execute(
        select(
            t.trid,
            t.track_id,
            t.status,
            t.item_amount,
            t.tax_amount,
            t.customer_name,
            t.customer_email,
            t.customer_phone,
            t.payment_method,
            t.is_refunded,
        ).where(among(session, Transaction.trid, trids))
    ).all()
