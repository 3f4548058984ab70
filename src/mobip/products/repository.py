"""Queries on reusable QR codes. Reads of merchant data take the caller as ``scope``: its own
QR codes or its descendants' (the materialised account ``path``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from mobip.accounts.models import Account, Role
from mobip.products.models import ReusableQr


def add(session: Session, values: dict[str, Any]) -> ReusableQr:
    qr = ReusableQr(**values)
    session.add(qr)
    session.flush()
    return qr


def _visible(scope: Account) -> Select[ReusableQr, Account]:
    query = select(ReusableQr, Account).join(Account, Account.id == ReusableQr.account_id)
    if scope.role != Role.ADMIN:
        query = query.where(Account.path.startswith(scope.path, autoescape=True))
    return query


def get_visible(session: Session, scope: Account, qr_id: str) -> tuple[ReusableQr, Account] | None:
    """The QR code and its merchant, if ``scope`` owns it or is above its owner."""
    row = session.execute(_visible(scope).where(ReusableQr.qr_id == qr_id)).first()
    return (row[0], row[1]) if row else None


def list_visible(
    session: Session, scope: Account, *, limit: int, before_id: int | None
) -> Sequence[tuple[ReusableQr, Account]]:
    """``scope``'s visible QR codes, newest first, after the cursor (ids below ``before_id``)."""
    query = _visible(scope)
    if scope.role == Role.MERCHANT:
        query = query.where(ReusableQr.account_id == scope.id)  # the index's leading column
    if before_id is not None:
        query = query.where(ReusableQr.id < before_id)
    rows = session.execute(query.order_by(ReusableQr.id.desc()).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def get_with_merchant(session: Session, qr_id: str) -> tuple[ReusableQr, Account] | None:
    """The QR code behind a product page and its merchant (the page is public by its id)."""
    row = session.execute(
        select(ReusableQr, Account)
        .join(Account, Account.id == ReusableQr.account_id)
        .where(ReusableQr.qr_id == qr_id)
    ).first()
    return (row[0], row[1]) if row else None


def set_status(session: Session, qr: ReusableQr, status: str, now: datetime) -> None:
    session.execute(
        update(ReusableQr)
        .where(ReusableQr.id == qr.id)
        .values(status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(qr)
