"""Credentials, access tokens and the throttling of failed attempts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account
from mobip.accounts.service import NewCredentials
from mobip.auth import repository
from mobip.auth.errors import (
    InvalidCredentials,
    InvalidToken,
    MissingToken,
    TooManyFailedLogins,
)
from mobip.config import Settings
from mobip.kit.security import hash_secret, new_id, secrets_equal

log = logging.getLogger("mobip.auth")

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
    """Check the credentials and return a new access token (shown once, stored as a hash).

    Failures are counted per client address and per (address, api_account_id), never per
    account id alone: a secret is 256 random bits, so a lockout per account would protect
    nothing and let anyone who knows an account id block its owner.
    """
    window = timedelta(seconds=settings.login_window_seconds)
    where = {"api_account_id": api_account_id, "client_ip": client_ip}
    pair_key = f"pair:{client_ip} {api_account_id}"
    client_key = f"client:{client_ip}"
    _refuse_if_throttled(session, settings, pair_key, client_key, now, window, where)

    account = accounts_service.by_api_account_id(session, api_account_id)
    expected = account.secret_hash if account is not None else _NO_SUCH_SECRET
    matches = secrets_equal(hash_secret(api_secret_key), expected)
    if account is None or not matches:
        repository.add_failure(session, pair_key, now, window)
        repository.add_failure(session, client_key, now, window)
        # For alerting: guessing shows as a run of these from one address or on one account.
        log.warning("get_token: wrong credentials", extra={"fields": where})
        raise InvalidCredentials()

    repository.clear_failures(session, pair_key)
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
    pair_key: str,
    client_key: str,
    now: datetime,
    window: timedelta,
    where: dict[str, str],
) -> None:
    limits = {
        pair_key: (settings.login_max_failures_per_pair, "api_account_id and address"),
        client_key: (settings.login_max_failures_per_client, "address"),
    }
    for counter in repository.failures_in_window(session, list(limits), now, window):
        limit, reached = limits[counter.key]
        if counter.failures >= limit:
            log.warning("get_token: throttled", extra={"fields": {**where, "limit": reached}})
            retry_after = counter.window_start + window - now
            raise TooManyFailedLogins(int(retry_after.total_seconds()) + 1)


@dataclass
class _Known:
    """A token recently found valid, so most requests need no token query."""

    account: Account
    token_id: int
    expires_at: datetime
    last_used_at: datetime
    checked_at: datetime


CACHE_SECONDS = 5
_CACHE_MAX = 10_000


class TokenCache:
    """Token hash → what the database said at most CACHE_SECONDS ago; one per runtime
    (``runtime.state(TokenCache)``). A revoked token (secret rotated) is refused at once by the
    runtime that revoked it and within CACHE_SECONDS elsewhere."""

    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}

    def get(self, token_hash: str) -> _Known | None:
        return self._known.get(token_hash)

    def put(self, token_hash: str, known: _Known) -> None:
        if len(self._known) >= _CACHE_MAX:
            self._known.clear()
        self._known[token_hash] = known

    def drop(self, token_hash: str) -> None:
        self._known.pop(token_hash, None)

    def forget_account(self, account_id: int) -> None:
        """Drop the account's tokens (after its secret was rotated)."""
        for key, known in list(self._known.items()):
            if known.account.id == account_id:
                self._known.pop(key, None)

    def clear(self) -> None:
        self._known.clear()


def authenticate(
    session: Session,
    settings: Settings,
    raw_token: str | None,
    now: datetime,
    *,
    touch: bool = False,
    tokens: TokenCache,
) -> Account:
    """The account a valid token belongs to; refreshes its inactivity timer when due.

    A token is valid until the earlier of issue + ttl and last use + the inactivity limit. The
    last-use time is written at most once per touch interval (``touch`` forces it, for login).
    ``tokens`` is the runtime's cache (``runtime.state(TokenCache)``).
    """
    if not raw_token:
        raise MissingToken()
    token_hash = hash_secret(raw_token)
    known = _cached(tokens, token_hash, now, settings)
    if known is None:
        known = _load(session, tokens, token_hash, now)
        if not _valid(known, now, settings):
            tokens.drop(token_hash)
            raise InvalidToken()
    if touch or _touch_due(known, now, settings):
        repository.touch_token(session, known.token_id, now)
        known.last_used_at = now
    return known.account


def cached_account(
    settings: Settings,
    raw_token: str | None,
    now: datetime,
    *,
    tokens: TokenCache,
) -> Account | None:
    """The account of a token this runtime found valid moments ago, when no write is due.

    None means "ask the database" (unknown token, cache entry too old, or the last-use time due
    for its refresh): the caller then takes the ordinary path, ``authenticate``.
    """
    known = _cached(tokens, hash_secret(raw_token), now, settings) if raw_token else None
    if known is None or _touch_due(known, now, settings):
        return None
    return known.account


def _cached(cache: TokenCache, token_hash: str, now: datetime, settings: Settings) -> _Known | None:
    """The cache's entry for a token, if the database said it moments ago and it is still valid."""
    known = cache.get(token_hash)
    if known is None or not _fresh(known, now) or not _valid(known, now, settings):
        return None
    return known


def _fresh(known: _Known, now: datetime) -> bool:
    """Whether the database said this at most CACHE_SECONDS ago."""
    return timedelta(0) <= now - known.checked_at < timedelta(seconds=CACHE_SECONDS)


def _valid(known: _Known, now: datetime, settings: Settings) -> bool:
    """Before the end of its lifetime and of its inactivity window."""
    inactivity = timedelta(seconds=settings.token_inactivity_seconds)
    return now < known.expires_at and now < known.last_used_at + inactivity


def _touch_due(known: _Known, now: datetime, settings: Settings) -> bool:
    return now - known.last_used_at >= timedelta(seconds=settings.token_touch_interval_seconds)


def _load(session: Session, cache: TokenCache, token_hash: str, now: datetime) -> _Known:
    found = repository.get_token_and_account(session, token_hash)
    if found is None:
        cache.drop(token_hash)
        raise InvalidToken()
    token, account = found
    # Kept out of the session: a rollback must not expire the shared, read-only copy.
    session.expunge(account)
    known = _Known(account, token.id, token.expires_at, token.last_used_at, now)
    cache.put(token_hash, known)
    return known


def rotate_secret(
    session: Session, uid: str, now: datetime, *, tokens: TokenCache | None = None
) -> NewCredentials:
    """A new API secret for the account ``uid``; the old secret and every token issued with it
    stop working (at once for the runtime whose ``tokens`` are given, in the others within the
    cache's few seconds)."""
    created = accounts_service.rotate_secret(session, uid, now)
    repository.delete_tokens_of(session, created.account.id)
    session.flush()
    if tokens is not None:
        tokens.forget_account(created.account.id)
    return created
