"""Queries on fee invoices, their counters and the monthly schedule. Reads of merchant data take
the caller as ``scope``: its own invoices or its descendants' (the materialised account path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from mobip.billing.models import Invoice, InvoiceCounter, InvoiceSchedule
from mobip.kit.db import among, insert_unless_present

SCHEDULE_ROW = 1


def lock_counter(session: Session, year: int) -> int:
    """The last number given in ``year``, its row locked until the transaction ends.

    Every issuer takes this lock first (PostgreSQL: FOR UPDATE; SQLite: the issuer began with
    BEGIN IMMEDIATE, the one writer), so two issuers run one after the other and the second
    sees what the first committed: numbers never repeat and never skip.
    """
    insert_unless_present(session, InvoiceCounter, ["year"], year=year, last_number=0)
    query = select(InvoiceCounter.last_number).where(InvoiceCounter.year == year)
    return int(session.execute(query.with_for_update()).scalar_one())


def set_counter(session: Session, year: int, last_number: int) -> None:
    session.execute(
        update(InvoiceCounter).where(InvoiceCounter.year == year).values(last_number=last_number)
    )


def chain_ends(session: Session) -> dict[int, datetime]:
    """Each invoiced account's last ``period_end``: where its next invoice starts."""
    rows = session.execute(
        select(Invoice.account_id, func.max(Invoice.period_end)).group_by(Invoice.account_id)
    ).all()
    return {int(account_id): end for account_id, end in rows}


def add_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the new invoices (one statement, executemany)."""
    if rows:
        session.execute(insert(Invoice), list(rows))


def issued_through(session: Session) -> datetime | None:
    """The month end up to which the monthly issuing is done, or None before its first run."""
    return session.execute(
        select(InvoiceSchedule.issued_through).where(InvoiceSchedule.id == SCHEDULE_ROW)
    ).scalar_one_or_none()


def set_issued_through(session: Session, moment: datetime) -> None:
    if not insert_unless_present(
        session, InvoiceSchedule, ["id"], id=SCHEDULE_ROW, issued_through=moment
    ):
        session.execute(
            update(InvoiceSchedule)
            .where(InvoiceSchedule.id == SCHEDULE_ROW)
            .values(issued_through=moment)
        )


def by_invoice_id(session: Session, invoice_id: str) -> Invoice | None:
    return session.scalars(select(Invoice).where(Invoice.invoice_id == invoice_id)).first()


def list_of_account(session: Session, account_id: int) -> Sequence[Invoice]:
    """The invoices of ``account_id``, newest period first."""
    query = select(Invoice).where(Invoice.account_id == account_id)
    return session.scalars(query.order_by(Invoice.period_end.desc(), Invoice.id.desc())).all()


def of_accounts(session: Session, account_ids: Sequence[int]) -> Sequence[Invoice]:
    """Every invoice of these accounts, in number order (tests and the operator)."""
    query = (
        select(Invoice)
        .where(among(session, Invoice.account_id, account_ids))
        .order_by(Invoice.number)
    )
    return session.execute(query).scalars().all()
