from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.auth.models import AccessToken
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.kit.security import hash_secret

GET_TOKEN = "/api/2.0/mobip/get_token"
LOGIN = "/api/2.0/mobip/login"


def login(client: TestClient, token: str) -> tuple[int, dict[str, str]]:
    reply = client.post(LOGIN, files=form(access_token=token))
    return reply.status_code, reply.json()


def test_get_token_returns_a_prefixed_256_bit_token_stored_only_as_hash(
    client: TestClient, runtime: Runtime
) -> None:
    merchant = make_account(runtime)
    token = token_for(client, merchant)
    prefix, _, random_part = token.partition("_")
    assert prefix == "mbt"
    assert len(random_part) >= 43  # 32 bytes urlsafe base64
    with runtime.database.transaction() as session:
        stored = session.scalars(select(AccessToken.token_hash)).all()
    assert stored == [hash_secret(token)]
    assert token not in stored


def test_get_token_with_query_string_and_login_with_bearer_header(
    client: TestClient, runtime: Runtime
) -> None:
    merchant = make_account(runtime)
    reply = client.get(
        GET_TOKEN,
        params={
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
        },
    )
    assert reply.status_code == 200
    token = reply.json()["access_token"]
    ok = client.post(LOGIN, headers={"Authorization": f"Bearer {token}"})
    assert ok.json() == {"return_code": "0"}


@pytest.mark.parametrize("ttl", ["0", "721", "1.5", "abc", "-1", "1e3"])
def test_api_ttl_must_be_an_integer_between_1_and_720(
    client: TestClient, runtime: Runtime, ttl: str
) -> None:
    merchant = make_account(runtime)
    reply = client.request(
        "GET",
        GET_TOKEN,
        files=form(
            api_account_id=merchant.account.api_account_id,
            api_secret_key=merchant.api_secret_key,
            api_ttl=ttl,
        ),
    )
    assert reply.status_code == 400
    assert reply.json()["return_code"] == "1002"
    assert "api_ttl" in reply.json()["return_message"]
    with runtime.database.transaction() as session:
        assert session.scalars(select(AccessToken)).all() == []


def test_missing_credentials_name_the_field(client: TestClient) -> None:
    reply = client.request("GET", GET_TOKEN, files=form(api_account_id="api_x"))
    assert reply.status_code == 400
    assert reply.json()["return_code"] == "1001"
    assert "api_secret_key" in reply.json()["return_message"]


def test_unknown_account_and_wrong_secret_give_the_same_error(
    client: TestClient, runtime: Runtime
) -> None:
    merchant = make_account(runtime)
    wrong_secret = client.request(
        "GET",
        GET_TOKEN,
        files=form(api_account_id=merchant.account.api_account_id, api_secret_key="mbs_nope"),
    )
    unknown = client.request(
        "GET", GET_TOKEN, files=form(api_account_id="api_unknown", api_secret_key="mbs_nope")
    )
    assert wrong_secret.status_code == unknown.status_code == 401
    assert wrong_secret.json() == unknown.json()
    assert wrong_secret.json()["return_code"] == "2003"


def test_token_expires_after_its_ttl_even_when_used(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    merchant = make_account(runtime)
    token = token_for(client, merchant, api_ttl=2)
    for _ in range(3):
        clock.advance(minutes=35)
        assert login(client, token)[0] == 200
    clock.advance(minutes=16)  # 2 h 1 min after issue, 16 min after the last use
    status, reply = login(client, token)
    assert (status, reply["return_code"]) == (401, "2002")


def test_token_expires_after_an_hour_of_inactivity(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    merchant = make_account(runtime)
    token = token_for(client, merchant, api_ttl=24)
    clock.advance(minutes=59)
    assert login(client, token)[0] == 200  # refreshes the inactivity timer
    clock.advance(minutes=59)
    assert login(client, token)[0] == 200
    clock.advance(minutes=60)
    assert login(client, token) == (
        401,
        {
            "return_code": "2002",
            "return_message": "Invalid or expired access_token: call get_token again",
        },
    )


def test_use_refreshes_last_use_at_most_once_a_minute(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    merchant = make_account(runtime, role=Role.MERCHANT, external_id="ext-1")
    token = token_for(client, merchant, api_ttl=24)
    issued = clock.now()

    def last_used() -> object:
        with runtime.database.transaction() as session:
            return session.scalars(select(AccessToken.last_used_at)).one()

    lookup = {"access_token": token, "external_account_id": "ext-1"}
    clock.advance(seconds=30)
    found = client.request("GET", "/api/2.0/mobip/get_account_by_external_id", files=form(**lookup))
    assert found.status_code == 200, found.text
    assert last_used() == issued  # not written: less than a minute since the last write
    clock.advance(seconds=31)
    found = client.request("GET", "/api/2.0/mobip/get_account_by_external_id", files=form(**lookup))
    assert found.status_code == 200, found.text
    assert last_used() == issued + timedelta(seconds=61)


def test_missing_and_garbage_tokens(client: TestClient) -> None:
    missing = client.post(LOGIN)
    assert (missing.status_code, missing.json()["return_code"]) == (401, "2001")
    garbage = client.post(LOGIN, files=form(access_token="mbt_garbage"))
    assert (garbage.status_code, garbage.json()["return_code"]) == (401, "2002")


def test_rotated_secret_invalidates_old_secret_and_tokens(
    client: TestClient, runtime: Runtime
) -> None:
    from mobip.auth import service

    merchant = make_account(runtime)
    token = token_for(client, merchant)
    assert login(client, token)[0] == 200  # now cached: rotating must drop it from the cache
    with runtime.database.transaction() as session:
        rotated = service.rotate_secret(
            session,
            merchant.account.uid,
            runtime.clock.now(),
            tokens=runtime.state(service.TokenCache),
        )
    assert login(client, token)[0] == 401
    old = client.request(
        "GET",
        GET_TOKEN,
        files=form(
            api_account_id=merchant.account.api_account_id,
            api_secret_key=merchant.api_secret_key,
        ),
    )
    assert old.status_code == 401
    assert token_for(client, rotated)


def from_address(client: TestClient, address: str) -> TestClient:
    """Another client of the same app, calling from ``address``."""
    return TestClient(client.app, client=(address, 40000))


def test_failed_attempts_are_throttled_per_address_and_account_id(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    merchant = make_account(runtime)
    limit = runtime.settings.login_max_failures_per_pair
    bad = form(api_account_id=merchant.account.api_account_id, api_secret_key="mbs_wrong")
    for _ in range(limit):
        assert client.request("GET", GET_TOKEN, files=bad).status_code == 401
    throttled = client.request("GET", GET_TOKEN, files=bad)
    assert throttled.status_code == 429
    assert throttled.json()["return_code"] == "7001"
    retry_after = int(throttled.headers["Retry-After"])
    assert 0 < retry_after <= runtime.settings.login_window_seconds + 1
    # Even the right secret is refused from this address while the pair is throttled ...
    good = form(
        api_account_id=merchant.account.api_account_id, api_secret_key=merchant.api_secret_key
    )
    assert client.request("GET", GET_TOKEN, files=good).status_code == 429
    # ... and accepted once the window has passed.
    clock.advance(seconds=retry_after)
    assert client.request("GET", GET_TOKEN, files=good).status_code == 200


def test_failures_from_one_address_do_not_lock_the_account_for_another(
    client: TestClient, runtime: Runtime
) -> None:
    """Finding 5: knowing an api_account_id was enough to block its token issuance."""
    merchant = make_account(runtime)
    attacker, owner = client, from_address(client, "198.51.100.20")
    bad = form(api_account_id=merchant.account.api_account_id, api_secret_key="mbs_wrong")
    for _ in range(10):
        assert attacker.request("GET", GET_TOKEN, files=bad).status_code == 401
    good = form(
        api_account_id=merchant.account.api_account_id, api_secret_key=merchant.api_secret_key
    )
    assert owner.request("GET", GET_TOKEN, files=good).status_code == 200
    assert attacker.request("GET", GET_TOKEN, files=good).status_code == 429
    # The owner's success clears nothing of the attacker's: the pair's counter is per address.
    assert attacker.request("GET", GET_TOKEN, files=good).status_code == 429


def test_a_success_clears_the_pair_counter_only(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.login_max_failures_per_pair = 3
    runtime.settings.login_max_failures_per_client = 5
    merchant, other = make_account(runtime), make_account(runtime)
    bad = form(api_account_id=merchant.account.api_account_id, api_secret_key="mbs_wrong")
    good = form(
        api_account_id=merchant.account.api_account_id, api_secret_key=merchant.api_secret_key
    )
    for _ in range(2):
        assert client.request("GET", GET_TOKEN, files=bad).status_code == 401
    assert client.request("GET", GET_TOKEN, files=good).status_code == 200
    for _ in range(2):  # the pair starts again from 0; the address is at 4 of 5
        assert client.request("GET", GET_TOKEN, files=bad).status_code == 401
    other_good = form(
        api_account_id=other.account.api_account_id, api_secret_key=other.api_secret_key
    )
    assert client.request("GET", GET_TOKEN, files=other_good).status_code == 200
    assert client.request("GET", GET_TOKEN, files=bad).status_code == 401  # address: 5 of 5
    assert client.request("GET", GET_TOKEN, files=other_good).status_code == 429


def test_failed_attempts_are_logged_with_account_id_and_address(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime.settings.login_max_failures_per_pair = 2
    merchant = make_account(runtime)
    bad = form(api_account_id=merchant.account.api_account_id, api_secret_key="mbs_wrong")
    with caplog.at_level(logging.WARNING, logger="mobip.auth"):
        for _ in range(3):
            client.request("GET", GET_TOKEN, files=bad)
    logged = [(r.getMessage(), r.fields) for r in caplog.records if r.name == "mobip.auth"]
    where = {"api_account_id": merchant.account.api_account_id, "client_ip": "203.0.113.7"}
    assert logged == [
        ("get_token: wrong credentials", where),
        ("get_token: wrong credentials", where),
        ("get_token: throttled", {**where, "limit": "api_account_id and address"}),
    ]
    assert "mbs_wrong" not in caplog.text


def test_the_per_account_setting_of_old_still_sets_the_pair_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOBIP_LOGIN_MAX_FAILURES_PER_ACCOUNT", "7")
    assert Settings().login_max_failures_per_pair == 7
    monkeypatch.setenv("MOBIP_LOGIN_MAX_FAILURES_PER_PAIR", "4")
    assert Settings().login_max_failures_per_pair == 4
    assert Settings(login_max_failures_per_pair=3).login_max_failures_per_pair == 3


def test_failed_attempts_are_throttled_per_client_address(
    client: TestClient, runtime: Runtime
) -> None:
    runtime.settings.login_max_failures_per_client = 3
    merchant = make_account(runtime)
    for i in range(3):
        bad = form(api_account_id=f"api_unknown_{i}", api_secret_key="mbs_wrong")
        assert client.request("GET", GET_TOKEN, files=bad).status_code == 401
    good = form(
        api_account_id=merchant.account.api_account_id, api_secret_key=merchant.api_secret_key
    )
    throttled = client.request("GET", GET_TOKEN, files=good)
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers


def test_a_token_revoked_by_another_process_is_refused_within_the_cache_time(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    from sqlalchemy import delete

    from mobip.auth.service import CACHE_SECONDS

    merchant = make_account(runtime)
    token = token_for(client, merchant)
    assert login(client, token)[0] == 200  # now known to this process
    with runtime.database.transaction() as session:  # what `mobip account rotate-secret` does
        session.execute(delete(AccessToken))
    clock.advance(seconds=CACHE_SECONDS)
    assert login(client, token)[0] == 401
