"""Headers every reply needs, set in one place (issue 9, item 7).

``Cache-Control: no-store`` on every API reply (RFC 6749 §5.1 for get_token), HSTS on every reply
in production only, and ``Allow`` on every 405, whichever kind of route answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from checkout.support import pay_path
from factories import form, make_account, make_transaction, token_for
from mobip.app import create_app
from mobip.checkout.qr_images import CACHE_CONTROL as QR_CACHE_CONTROL
from mobip.config import Environment, Settings
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from transactions.support import valid_request

API = "/api/2.0/mobip"
HSTS = "max-age=63072000; includeSubDomains"
CREATE = valid_request()  # send_payment_request's fields


def no_store(reply: httpx.Response) -> bool:
    return reply.headers.get_list("cache-control") == ["no-store"]


# --- Cache-Control ---------------------------------------------------------------------------


def test_get_token_replies_are_not_stored(client: TestClient, runtime: Runtime) -> None:
    merchant = make_account(runtime)
    good = client.get(
        f"{API}/get_token",
        params={
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
        },
    )
    assert good.status_code == 200 and no_store(good)
    assert good.headers["pragma"] == "no-cache"  # RFC 6749 §5.1 asks for it too
    bad = client.request(
        "GET", f"{API}/get_token", files=form(api_account_id="api_x", api_secret_key="mbs_x")
    )
    assert bad.status_code == 401 and no_store(bad)
    as_xml = client.get(
        f"{API}/get_token",
        params={
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
            "format": "xml",
        },
    )
    assert as_xml.headers["content-type"].startswith("application/xml") and no_store(as_xml)


def test_every_kind_of_api_reply_is_not_stored(client: TestClient, runtime: Runtime) -> None:
    token = token_for(client, make_account(runtime))
    replies = {}
    # Once through the token query, then with the token cached: the group-committed create.
    replies["create"] = client.post(
        f"{API}/send_payment_request", files=form(access_token=token, **CREATE)
    )
    replies["create (cached)"] = client.post(
        f"{API}/send_payment_request", files=form(access_token=token, **CREATE)
    )
    trid = replies["create"].json()["trid"]
    for name in ("is_valid", "is_valid (fast read)"):
        replies[name] = client.request(
            "GET", f"{API}/is_valid", files=form(access_token=token, trid=trid)
        )
    replies["xml"] = client.request(
        "GET", f"{API}/is_valid", files=form(access_token=token, trid=trid, format="xml")
    )
    keyed = {"Idempotency-Key": "order-7-attempt-1"}
    for name in ("idempotent", "idempotent replay"):
        replies[name] = client.post(
            f"{API}/send_payment_request", files=form(access_token=token, **CREATE), headers=keyed
        )
    replies["error"] = client.request("GET", f"{API}/is_valid", files=form(access_token=token))
    replies["401"] = client.post(f"{API}/login")
    replies["404"] = client.get(f"{API}/no_such_endpoint")
    replies["405"] = client.put(f"{API}/get_token")
    replies["405 (TRACE)"] = client.request("TRACE", f"{API}/get_token")
    replies["openapi"] = client.get("/api/2.0/openapi.json")
    for name, reply in replies.items():
        assert no_store(reply), (name, reply.status_code, reply.headers)
    assert replies["idempotent"].content == replies["idempotent replay"].content
    assert [replies[n].status_code for n in ("error", "401", "404", "405")] == [400, 401, 404, 405]


def test_a_routes_own_cache_control_is_kept(client: TestClient, runtime: Runtime) -> None:
    transaction = make_transaction(runtime, make_account(runtime).account)
    qr = client.get(f"/qr/{transaction.checkout_token}")
    assert qr.status_code == 200
    assert qr.headers.get_list("cache-control") == [QR_CACHE_CONTROL]
    page = client.get(pay_path(transaction))
    assert page.headers.get_list("cache-control") == ["no-store"]


# --- HSTS --------------------------------------------------------------------------------------


@pytest.fixture
def production(tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(
        env=Environment.PRODUCTION,
        base_url="https://pay.example.com",
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-key-" + "x" * 32,
        worker_enabled=False,
    )
    runtime = Runtime(settings, Database(db_url))
    with TestClient(
        create_app(runtime), base_url="https://pay.example.com", client=("203.0.113.7", 50000)
    ) as client:
        yield client, runtime
    runtime.database.dispose()


def test_hsts_on_every_reply_in_production(production: tuple[TestClient, Runtime]) -> None:
    client, runtime = production
    merchant = make_account(runtime)
    transaction = make_transaction(runtime, merchant.account)
    replies = {
        "get_token": client.request(
            "GET",
            f"{API}/get_token",
            files=form(
                api_account_id=merchant.account.api_account_id,
                api_secret_key=merchant.api_secret_key,
            ),
        ),
        "api error": client.post(f"{API}/login"),
        "api 404": client.get(f"{API}/nothing"),
        "healthz": client.get("/healthz"),
        "docs": client.get("/docs"),
        "static": client.get("/pay/static/checkout.css"),
        "page": client.get(pay_path(transaction)),
        "qr": client.get(f"/qr/{transaction.checkout_token}"),
        "404": client.get("/nothing-here"),
        "405": client.post("/healthz"),
        "dev outbox (404 in production)": client.get("/dev/outbox"),
    }
    for name, reply in replies.items():
        # One policy for the host: the checkout pages' own header is replaced, not doubled.
        assert reply.headers.get_list("strict-transport-security") == [HSTS], name


def test_no_hsts_outside_production(client: TestClient) -> None:
    for path in ("/healthz", f"{API}/nothing", "/docs"):
        assert "strict-transport-security" not in client.get(path).headers


# --- Allow on every 405 --------------------------------------------------------------------------


def allowed(reply: httpx.Response) -> set[str]:
    assert reply.status_code == 405, reply.text
    return {method.strip() for method in reply.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("TRACE", f"{API}/get_token", {"GET", "HEAD", "POST"}),
        ("PUT", f"{API}/get_token", {"GET", "HEAD", "POST"}),
        ("TRACE", f"{API}/send_payment_request", {"POST"}),
        ("GET", f"{API}/login", {"POST"}),
        ("POST", "/api/2.0/openapi.json", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("DELETE", "/readyz", {"GET", "HEAD"}),
        ("POST", "/docs", {"GET", "HEAD"}),
        ("PUT", "/docs/init.js", {"GET", "HEAD"}),
        ("POST", "/docs/static/swagger-ui.css", {"GET", "HEAD"}),
        ("POST", "/qr/ck_unknown", {"GET", "HEAD"}),
        ("PUT", "/pay/ck_unknown", {"GET", "HEAD", "POST"}),
        ("TRACE", "/pay/ck_unknown", {"GET", "HEAD", "POST"}),
        ("GET", "/pay/ck_unknown/start", {"POST"}),
        ("POST", "/pay/ck_unknown/return", {"GET", "HEAD"}),
        ("POST", "/pay/static/checkout.css", {"GET", "HEAD"}),
        ("GET", "/webhooks/stripe/acct_x", {"POST"}),
        ("POST", "/dev/outbox", {"GET", "HEAD"}),
        ("DELETE", "/dev/outbox/20260101T000000-email-1.eml", {"GET", "HEAD"}),
    ],
)
def test_every_405_says_which_methods_are_allowed(
    client: TestClient, method: str, path: str, expected: set[str]
) -> None:
    reply = client.request(method, path)
    assert allowed(reply) == expected
    if path.startswith("/api/"):
        assert reply.json()["return_code"] == "4005"
