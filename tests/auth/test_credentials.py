"""One request, one credential: a Bearer header and an access_token field must agree (issue 9, #7).

The token is read on two paths (api/routing): the ordinary one (auth.service.authenticate, a
token query) and the cached one taken when the token was found valid moments ago (is_valid's
fast read on SQLite, the group-committed creates on both databases). Both are checked.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.auth import service as auth_service
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction
from transactions.support import valid_request

API = "/api/2.0/mobip"
CREATE = valid_request()  # send_payment_request's fields


@pytest.fixture
def tokens(client: TestClient, runtime: Runtime) -> tuple[str, str]:
    """Tokens of two merchants, A and B."""
    a = make_account(runtime, name="Shop A")
    b = make_account(runtime, name="Shop B")
    return token_for(client, a), token_for(client, b)


def call(
    client: TestClient, name: str, *, header: str | None, field: str | None, **fields: Any
) -> httpx.Response:
    method = "GET" if name in ("is_valid", "get_transaction") else "POST"
    headers = {"Authorization": f"Bearer {header}"} if header else {}
    if field:
        fields["access_token"] = field
    return client.request(method, f"{API}/{name}", files=form(**fields), headers=headers)


def transactions(runtime: Runtime) -> int:
    with runtime.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Transaction)) or 0)


def assert_conflict(reply: httpx.Response) -> None:
    assert reply.status_code == 400, reply.text
    assert reply.json()["return_code"] == "1008"
    message = reply.json()["return_message"]
    assert "access_token" in message and "Authorization" in message


def test_header_for_a_and_field_for_b_is_refused_on_the_ordinary_path(
    client: TestClient, runtime: Runtime, tokens: tuple[str, str]
) -> None:
    a, b = tokens
    # Neither token is cached: the path with a token query.
    runtime.state(auth_service.TokenCache).clear()
    assert_conflict(call(client, "login", header=a, field=b))
    assert_conflict(call(client, "send_payment_request", header=a, field=b, **CREATE))
    assert transactions(runtime) == 0


def test_header_for_a_and_field_for_b_is_refused_on_the_cached_paths(
    client: TestClient, runtime: Runtime, tokens: tuple[str, str]
) -> None:
    a, b = tokens
    created = call(client, "send_payment_request", header=None, field=b, **CREATE).json()
    trid = created["trid"]
    for token in (a, b):  # both found valid moments ago: the cached paths answer
        assert call(client, "is_valid", header=None, field=token, trid=trid).status_code in (
            200,
            404,
        )
    cache = runtime.state(auth_service.TokenCache)
    now = runtime.clock.now()
    assert auth_service.cached_account(runtime.settings, a, now, tokens=cache) is not None
    assert auth_service.cached_account(runtime.settings, b, now, tokens=cache) is not None
    assert_conflict(call(client, "is_valid", header=a, field=b, trid=trid))
    assert_conflict(call(client, "send_payment_request", header=a, field=b, **CREATE))
    assert transactions(runtime) == 1


@pytest.mark.parametrize("cached", [False, True], ids=["ordinary", "cached"])
def test_the_same_token_in_header_and_field_is_fine(
    client: TestClient, runtime: Runtime, tokens: tuple[str, str], cached: bool
) -> None:
    a, _ = tokens
    if not cached:
        runtime.state(auth_service.TokenCache).clear()
    assert call(client, "login", header=a, field=a).json() == {"return_code": "0"}
    created = call(client, "send_payment_request", header=a, field=a, **CREATE)
    assert created.json()["return_code"] == "0", created.text
    reply = call(client, "is_valid", header=a, field=a, trid=created.json()["trid"])
    assert reply.json()["return_code"] == "0"


def test_a_header_of_another_scheme_is_not_a_second_credential(
    client: TestClient, tokens: tuple[str, str]
) -> None:
    a, _ = tokens
    reply = client.post(
        f"{API}/login", files=form(access_token=a), headers={"Authorization": "Basic eDp5"}
    )
    assert reply.json() == {"return_code": "0"}


@pytest.mark.parametrize("cached", [False, True], ids=["ordinary", "cached"])
def test_access_token_for_a_in_the_query_and_b_in_the_body_is_refused(
    client: TestClient, runtime: Runtime, tokens: tuple[str, str], cached: bool
) -> None:
    """The body wins over the query string for ordinary fields; for the credential it must not
    silently: the request would run as B while its URL names A."""
    a, b = tokens
    if cached:
        assert call(client, "login", header=None, field=a).json() == {"return_code": "0"}
        assert call(client, "login", header=None, field=b).json() == {"return_code": "0"}
    else:
        runtime.state(auth_service.TokenCache).clear()
    reply = client.post(
        f"{API}/send_payment_request?access_token={a}", files=form(access_token=b, **CREATE)
    )
    assert_conflict(reply)
    assert transactions(runtime) == 0
    same = client.post(f"{API}/login?access_token={a}", files=form(access_token=a))
    assert same.json() == {"return_code": "0"}
