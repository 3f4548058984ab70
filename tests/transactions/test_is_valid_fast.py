"""is_valid's no-thread read on SQLite (api/routing fast reads) answers exactly as the slow path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from factories import form, make_account, make_transaction, token_for
from mobip.accounts.service import NewCredentials
from mobip.auth import service as auth_service
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service
from mobip.transactions.models import Transaction

API = "/api/2.0/mobip"


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records each answer of the fast read (None = it handed over to the slow path)."""
    calls: list[Any] = []
    original = service.is_valid_read_sqlite

    def spy(*args: Any) -> Any:
        try:
            reply = original(*args)
        except Exception as error:
            calls.append(error)
            raise
        calls.append(reply)
        return reply

    monkeypatch.setattr(service, "is_valid_read_sqlite", spy)
    return calls


def is_valid(client: TestClient, token: str, trid: str, **extra: Any) -> Any:
    return client.request(
        "GET", f"{API}/is_valid", files=form(access_token=token, trid=trid, **extra)
    )


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, external_id="shop-1")


def test_fast_and_slow_paths_give_the_same_bytes(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, fast_calls: list[Any]
) -> None:
    token = token_for(client, merchant)
    trid = make_transaction(runtime, merchant.account).trid
    # A read that loads the token takes the slow path; the cache is emptied before each, or the
    # XML read would be answered by the fast path too.
    runtime.state(auth_service.TokenCache).clear()
    slow_json = is_valid(client, token, trid)
    runtime.state(auth_service.TokenCache).clear()
    slow_xml = is_valid(client, token, trid, format="xml")
    assert fast_calls == []
    runtime.state(auth_service.TokenCache).clear()
    is_valid(client, token, trid)  # loads the token again; the next reads may take the fast path
    fast_json, fast_xml = is_valid(client, token, trid), is_valid(client, token, trid, format="xml")

    assert fast_json.status_code == slow_json.status_code == 200
    assert fast_json.content == slow_json.content
    assert fast_xml.content == slow_xml.content
    assert fast_json.json()["transaction_status"] == "PENDING"
    if runtime.database.is_sqlite:
        assert len(fast_calls) == 2 and all(isinstance(c, dict) for c in fast_calls)
    else:
        assert fast_calls == []  # PostgreSQL always takes a worker thread


def test_a_transaction_due_to_expire_is_handed_to_the_slow_path(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, fast_calls: list[Any]
) -> None:
    token = token_for(client, merchant)
    trid = make_transaction(runtime, merchant.account).trid
    is_valid(client, token, trid)  # the token is now in the cache
    with runtime.database.transaction() as session:  # due now, without moving the clock
        session.execute(
            update(Transaction)
            .where(Transaction.trid == trid)
            .values(expires_at=runtime.clock.now() - timedelta(seconds=1))
        )
    fast_calls.clear()

    reply = is_valid(client, token, trid).json()

    assert reply["transaction_status"] == "CANCELLED" and reply["reason"] == "EXPIRED"
    if runtime.database.is_sqlite:
        assert fast_calls == [None]  # the fast read saw the expiry was due and stepped aside


def test_another_merchants_cached_token_gets_the_same_404(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, fast_calls: list[Any]
) -> None:
    trid = make_transaction(runtime, merchant.account).trid
    other = token_for(client, make_account(runtime, external_id="shop-2"))
    unknown = is_valid(client, other, "tr_unknown")  # loads the other token
    fast_calls.clear()

    theirs = is_valid(client, other, trid)

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    if runtime.database.is_sqlite:
        assert len(fast_calls) == 1 and isinstance(fast_calls[0], Exception)


def test_a_stale_cache_entry_goes_back_to_the_database(
    client: TestClient,
    runtime: Runtime,
    merchant: NewCredentials,
    clock: ManualClock,
    fast_calls: list[Any],
) -> None:
    token = token_for(client, merchant)
    trid = make_transaction(runtime, merchant.account).trid
    is_valid(client, token, trid)
    clock.advance(timedelta(seconds=auth_service.CACHE_SECONDS))
    fast_calls.clear()

    assert is_valid(client, token, trid).json()["return_code"] == "0"
    assert fast_calls == []  # the cache entry was too old: the token was read again
