"""The queries of feed/ tables (only this package queries them).

Every read or acknowledgement of lines takes the caller's scope: the ids of the accounts it may
see (its subtree, from accounts.service), or None for an admin (every account).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, insert, select, update
from sqlalchemy.orm import Session

from mobip.feed.models import FeedLine, LineType
from mobip.kit.db import among

Scope = Sequence[int] | None


def add_lines(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the lines (one statement); their ids are given in insertion order."""
    if rows:
        conn.execute(insert(FeedLine), list(rows))


def refunded_so_far(conn: Connection, trid: str) -> tuple[int, int]:
    """What the refund lines of ``trid`` returned so far: (amount, item_amount), positive."""
    amount, item = conn.execute(
        select(
            func.coalesce(func.sum(FeedLine.amount), 0),
            func.coalesce(func.sum(FeedLine.item_amount), 0),
        ).where(FeedLine.trid == trid, FeedLine.type == LineType.REFUND.value)
    ).one()
    return -int(amount), -int(item)


def _in_scope(session: Session, query: Select[Any], scope: Scope) -> Select[Any]:
    return query if scope is None else query.where(among(session, FeedLine.account_id, scope))


def pending_after(session: Session, scope: Scope, after: int, limit: int) -> Sequence[Row[Any]]:
    """The pending lines of ``scope`` with id_flux above ``after``, oldest first, at most
    ``limit`` (keyset pagination: each page is its own short read), as Core rows with the
    table's columns (a pull reads them by the hundred thousand: no ORM objects)."""
    table = FeedLine.__table__
    query = select(table).where(FeedLine.acked_at.is_(None), FeedLine.id > after)
    return session.execute(
        _in_scope(session, query, scope).order_by(FeedLine.id).limit(limit)
    ).all()


def acknowledge(session: Session, scope: Scope, trids: Sequence[str], now: datetime) -> set[str]:
    """Mark acknowledged every pending line of ``trids`` in ``scope``; the trids that had one.

    One UPDATE … WHERE acked_at IS NULL: two callers acknowledging the same trid at once both
    run it, and the second (PostgreSQL re-reads a row another transaction changed; SQLite has one
    writer) finds nothing left, so a trid is removed by one call only.
    """
    statement = (
        update(FeedLine)
        .where(FeedLine.acked_at.is_(None), among(session, FeedLine.trid, trids))
        .values(acked_at=now)
        .returning(FeedLine.trid)
    )
    if scope is not None:
        statement = statement.where(among(session, FeedLine.account_id, scope))
    return set(session.scalars(statement).all())


def trids_with_lines(session: Session, scope: Scope, trids: Sequence[str]) -> set[str]:
    """The trids of ``trids`` that have any line in ``scope``."""
    query = select(FeedLine.trid).where(among(session, FeedLine.trid, trids)).distinct()
    return set(session.scalars(_in_scope(session, query, scope)).all())
