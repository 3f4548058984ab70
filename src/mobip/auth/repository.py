"""Queries on access tokens and login throttling counters."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.orm import Session

from mobip.accounts.models import Account
from mobip.auth.models import AccessToken, LoginThrottle
from mobip.kit.db import UTCDateTime, upsert_statement


def add_token(
    session: Session, *, token_hash: str, account_id: int, issued_at: datetime, expires_at: datetime
) -> AccessToken:
    token = AccessToken(
        token_hash=token_hash,
        account_id=account_id,
        issued_at=issued_at,
        expires_at=expires_at,
        last_used_at=issued_at,
    )
    session.add(token)
    session.flush()
    return token


def get_token_and_account(session: Session, token_hash: str) -> tuple[AccessToken, Account] | None:
    row = session.execute(
        select(AccessToken, Account)
        .join(Account, Account.id == AccessToken.account_id)
        .where(AccessToken.token_hash == token_hash)
    ).first()
    return (row[0], row[1]) if row else None


def touch_token(session: Session, token_id: int, now: datetime) -> None:
    session.execute(update(AccessToken).where(AccessToken.id == token_id).values(last_used_at=now))


def delete_tokens_of(session: Session, account_id: int) -> None:
    session.execute(delete(AccessToken).where(AccessToken.account_id == account_id))


def failures_in_window(
    session: Session, keys: list[str], now: datetime, window: timedelta
) -> list[LoginThrottle]:
    """The counters of ``keys`` whose window is still open."""
    return list(
        session.scalars(
            select(LoginThrottle).where(
                LoginThrottle.key.in_(keys), LoginThrottle.window_start > now - window
            )
        )
    )


def add_failure(session: Session, key: str, now: datetime, window: timedelta) -> None:
    """Count one failure for ``key``: a closed window starts again at 1 (one atomic upsert)."""
    now_value = literal(now, UTCDateTime())
    expired = LoginThrottle.window_start <= literal(now - window, UTCDateTime())
    statement = (
        upsert_statement(session, LoginThrottle)
        .values(key=key, window_start=now, failures=1)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((expired, 1), else_=LoginThrottle.failures + 1),
                "window_start": case((expired, now_value), else_=LoginThrottle.window_start),
            },
        )
    )
    session.execute(statement)


def clear_failures(session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def delete_expired_tokens(session: Session, now: datetime, inactivity: timedelta) -> int:
    """Delete tokens past their lifetime or unused for ``inactivity``; how many were deleted."""
    result = session.execute(
        delete(AccessToken).where(
            or_(AccessToken.expires_at <= now, AccessToken.last_used_at <= now - inactivity)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_closed_windows(session: Session, now: datetime, window: timedelta) -> int:
    """Delete throttling counters whose window has closed (they count nothing any more)."""
    result = session.execute(
        delete(LoginThrottle).where(LoginThrottle.window_start <= now - window)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
