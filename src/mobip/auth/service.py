"""Credentials, access tokens and the throttling of failed attempts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from mobip.accounts import repository as accounts_repository
from mobip.accounts.models import Account, Role
from mobip.auth import repository
from mobip.auth.errors import (
    InvalidCredentials,
    InvalidToken,
    MissingToken,
    RoleNotAllowed,
    TooManyFailedLogins,
)
from mobip.config import Settings
from mobip.kit.security import hash_secret, new_id, secrets_equal

TOKEN_PREFIX = "mbt"  # noqa: S105 (a prefix, not a secret)
TOKEN_BYTES = 32  # 256 bits
# Compared against when the account is unknown, so both failures cost the same.
_NO_SUCH_SECRET = hash_secret("no account has this secret")


def issue_token(
    session: Session,
    settings: Settings,
    *,
    api_account_id: str,
    api_secret_key: str,
    ttl_hours: int,
    client_ip: str,
    now: datetime,
) -> str:
    """Check the credentials and return a new access token (shown once, stored as a hash)."""
    window = timedelta(seconds=settings.login_window_seconds)
    account_key = f"account:{api_account_id}"
    client_key = f"client:{client_ip}"
    _refuse_if_throttled(session, settings, account_key, client_key, now, window)

    account = accounts_repository.get_by_api_account_id(session, api_account_id)
    expected = account.secret_hash if account is not None else _NO_SUCH_SECRET
    matches = secrets_equal(hash_secret(api_secret_key), expected)
    if account is None or not matches:
        repository.add_failure(session, account_key, now, window)
        repository.add_failure(session, client_key, now, window)
        raise InvalidCredentials()

    repository.clear_failures(session, account_key)
    token = new_id(TOKEN_PREFIX, TOKEN_BYTES)
    repository.add_token(
        session,
        token_hash=hash_secret(token),
        account_id=account.id,
        issued_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
    )
    return token


def _refuse_if_throttled(
    session: Session,
    settings: Settings,
    account_key: str,
    client_key: str,
    now: datetime,
    window: timedelta,
) -> None:
    limits = {
        account_key: settings.login_max_failures_per_account,
        client_key: settings.login_max_failures_per_client,
    }
    for counter in repository.failures_in_window(session, list(limits), now, window):
        if counter.failures >= limits[counter.key]:
            retry_after = counter.window_start + window - now
            raise TooManyFailedLogins(int(retry_after.total_seconds()) + 1)


def authenticate(
    session: Session,
    settings: Settings,
    raw_token: str | None,
    now: datetime,
    *,
    touch: bool = False,
) -> Account:
    """The account a valid token belongs to; refreshes its inactivity timer when due.

    A token is valid until the earlier of issue + ttl and last use + the inactivity limit. The
    last-use time is written at most once per touch interval (``touch`` forces it, for login).
    """
    if not raw_token:
        raise MissingToken()
    found = repository.get_token_and_account(session, hash_secret(raw_token))
    if found is None:
        raise InvalidToken()
    token, account = found
    inactivity = timedelta(seconds=settings.token_inactivity_seconds)
    if now >= token.expires_at or now >= token.last_used_at + inactivity:
        raise InvalidToken()
    if touch or now - token.last_used_at >= timedelta(
        seconds=settings.token_touch_interval_seconds
    ):
        repository.touch_token(session, token.id, now)
    return account


def require_role(account: Account, *roles: Role) -> None:
    if account.role not in roles:
        raise RoleNotAllowed()
