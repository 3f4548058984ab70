"""Auth's scheduled tasks on the injectable clock: expired access tokens and closed login-throttle
windows are purged (moved from tests/delivery/test_schedules.py, issue 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from delivery.support import run_schedules
from factories import make_account
from mobip.accounts.models import Account
from mobip.auth import repository as auth_repository
from mobip.auth import tasks
from mobip.auth.models import AccessToken, LoginThrottle
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.kit.security import hash_secret, new_id


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Maison Dupré").account


# --- token purge -----------------------------------------------------------------------------


def test_expired_tokens_are_purged(runtime: Runtime, merchant: Account, clock: ManualClock) -> None:
    now = clock.now()
    inactivity = timedelta(seconds=runtime.settings.token_inactivity_seconds)

    def token(issued_ago: timedelta, lifetime: timedelta, last_used_ago: timedelta) -> str:
        secret = new_id("mbt", 24)
        with runtime.database.transaction() as session:
            added = auth_repository.add_token(
                session,
                token_hash=hash_secret(secret),
                account_id=merchant.id,
                issued_at=now - issued_ago,
                expires_at=now - issued_ago + lifetime,
            )
            added.last_used_at = now - last_used_ago
        return hash_secret(secret)

    hour = timedelta(hours=1)
    fresh = token(hour, 24 * hour, timedelta(minutes=1))
    past_lifetime = token(25 * hour, 24 * hour, timedelta(minutes=1))
    idle = token(2 * inactivity, 24 * hour, inactivity)
    almost_idle = token(2 * inactivity, 24 * hour, inactivity - timedelta(seconds=1))
    assert run_schedules(runtime)[tasks.TOKENS_PURGED] == 2
    with runtime.database.session() as session:
        left = set(session.scalars(select(AccessToken.token_hash)))
    assert left == {fresh, almost_idle}
    assert past_lifetime not in left
    assert idle not in left
    assert run_schedules(runtime)[tasks.TOKENS_PURGED] == 0


def test_closed_login_throttle_windows_are_purged(runtime: Runtime, clock: ManualClock) -> None:
    window = timedelta(seconds=runtime.settings.login_window_seconds)
    with runtime.database.transaction() as session:
        auth_repository.add_failure(session, "client:198.51.100.1", clock.now(), window)
    clock.advance(window / 2)
    with runtime.database.transaction() as session:
        auth_repository.add_failure(session, "client:198.51.100.2", clock.now(), window)
    assert run_schedules(runtime)[tasks.THROTTLES_PURGED] == 0
    clock.advance(window / 2)  # the first window closes now; the second is half-way
    assert run_schedules(runtime)[tasks.THROTTLES_PURGED] == 1
    with runtime.database.session() as session:
        left = set(session.scalars(select(LoginThrottle.key)))
    assert left == {"client:198.51.100.2"}
