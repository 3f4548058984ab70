"""A read endpoint (the spec's GET) answers POST the same as GET; a write answers POST only.

Our extension of the spec (docs/api.md, "The envelope"): many HTTP clients, browsers' fetch among
them, cannot send a body with GET, and the spec's reads take their fields in one. On SQLite and
PostgreSQL, in JSON and XML, multipart and urlencoded, errors included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest
from starlette.testclient import TestClient

from billing.support import make_invoice
from factories import form, make_account, make_transaction, token_for
from mobip.accounts.models import Account, Role
from mobip.api.routing import READ_METHODS
from mobip.app import ENDPOINTS
from mobip.kit.runtime import Runtime
from products.support import make_reusable_qr
from receivables.support import SPEC_EXAMPLE, import_lists, map_statuses

READS = [endpoint for endpoint in ENDPOINTS if endpoint.reads]
WRITES = [endpoint for endpoint in ENDPOINTS if not endpoint.reads]
TOKEN = re.compile(rb"mbt_[A-Za-z0-9_-]+")
# Each endpoint's path by name (most are below /mobip, the partner feed's below /neosystems).
PATHS = {endpoint.name: endpoint.full_path for endpoint in ENDPOINTS}


def test_the_reads_are_the_spec_gets_and_the_writes_its_posts() -> None:
    assert sorted(endpoint.name for endpoint in READS) == [
        "get_account",
        "get_account_by_external_id",
        "get_external_invoices",
        "get_external_invoices_status",
        "get_invoice",
        "get_invoice_list",
        "get_mobip_transactions",
        "get_reusable_qr",
        "get_reusable_qr_list",
        "get_stats",
        "get_token",
        "get_transaction",
        "is_valid",
    ]
    assert all(endpoint.method == "GET" and endpoint.methods == READ_METHODS for endpoint in READS)
    assert all(endpoint.methods == ("POST",) for endpoint in WRITES)


@dataclass(frozen=True)
class Caller:
    token: str  # for the endpoint's own fields
    fields: dict[str, str]


@pytest.fixture
def callers(client: TestClient, runtime: Runtime) -> dict[str, Caller]:
    """Fields that make each read succeed, and the token that may call it."""
    admin = make_account(runtime, role=Role.ADMIN)
    partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    merchant = make_account(runtime, parent=partner, external_id="shop-7")
    trid = make_transaction(runtime, merchant.account).trid
    merchant_token = token_for(client, merchant)
    partner_token = token_for(client, partner)
    return {
        "get_token": Caller(
            "",
            {
                "api_account_id": merchant.account.api_account_id,
                "api_secret_key": merchant.api_secret_key,
            },
        ),
        "is_valid": Caller(merchant_token, {"trid": trid}),
        "get_transaction": Caller(merchant_token, {"trid": trid}),
        "get_account": Caller(partner_token, {"uid": merchant.account.uid}),
        "get_account_by_external_id": Caller(partner_token, {"external_account_id": "shop-7"}),
        "get_reusable_qr": Caller(partner_token, {"qr_id": make_reusable_qr(runtime, merchant)}),
        "get_reusable_qr_list": Caller(partner_token, {"limit": "5"}),
        "get_invoice": Caller(
            partner_token, {"invoice_id": make_invoice(runtime, merchant.account)}
        ),
        "get_invoice_list": Caller(partner_token, {"uid": merchant.account.uid}),
        "get_stats": Caller(partner_token, {"month_period": "2026-11"}),
        "get_mobip_transactions": Caller(partner_token, {"limit": "5"}),
        **_receivables(runtime, merchant.account, merchant_token),
    }


def _receivables(runtime: Runtime, merchant: Account, token: str) -> dict[str, Caller]:
    import_lists(runtime, merchant, SPEC_EXAMPLE)
    map_statuses(runtime, merchant)
    source = {"ExternalSourceId": "erp"}
    return {
        "get_external_invoices": Caller(token, {**source, "InvoicesList": "inv_000|inv_404"}),
        "get_external_invoices_status": Caller(token, source),
    }


def call(
    client: TestClient,
    method: str,
    name: str,
    caller: Caller,
    *,
    urlencoded: bool = False,
    **more: str,
) -> httpx.Response:
    fields = {**caller.fields, **more}
    headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
    url = PATHS[name]
    if urlencoded:
        return client.request(method, url, data=fields, headers=headers)
    return client.request(method, url, files=form(**fields), headers=headers)


def comparable(name: str, body: bytes) -> bytes:
    """A reply as compared: get_token gives a new token each time, the rest must be equal."""
    return TOKEN.sub(b"mbt_...", body) if name == "get_token" else body


@pytest.mark.parametrize("reply_format", ["json", "xml"])
@pytest.mark.parametrize("urlencoded", [False, True], ids=["multipart", "urlencoded"])
@pytest.mark.parametrize("name", [endpoint.name for endpoint in READS])
def test_a_read_answers_post_as_it_answers_get(
    client: TestClient,
    callers: dict[str, Caller],
    name: str,
    urlencoded: bool,
    reply_format: str,
) -> None:
    caller = callers[name]
    got = call(client, "GET", name, caller, urlencoded=urlencoded, format=reply_format)
    posted = call(client, "POST", name, caller, urlencoded=urlencoded, format=reply_format)
    assert got.status_code == posted.status_code == 200, posted.text
    assert got.headers["content-type"] == posted.headers["content-type"]
    assert comparable(name, posted.content) == comparable(name, got.content)
    assert b"<return_code>0</return_code>" in got.content or got.json()["return_code"] == "0"
    if name == "get_token":  # a real token, as good as GET's
        token = TOKEN.search(posted.content)
        assert token is not None
        check = call(
            client, "POST", "is_valid", Caller(token[0].decode(), callers["is_valid"].fields)
        )
        assert check.json()["return_code"] == "0"


@pytest.mark.parametrize("name", [endpoint.name for endpoint in READS])
def test_a_read_refuses_by_post_what_it_refuses_by_get(
    client: TestClient, callers: dict[str, Caller], name: str
) -> None:
    # An unknown field (1007, before authentication): the same status, the same reply.
    caller = callers[name]
    got = call(client, "GET", name, caller, currency="EUR")
    posted = call(client, "POST", name, caller, currency="EUR")
    assert (got.status_code, got.json()["return_code"]) == (400, "1007")
    assert (posted.status_code, posted.content) == (got.status_code, got.content)


@pytest.mark.parametrize("name", [endpoint.name for endpoint in READS])
def test_head_still_answers_a_read(
    client: TestClient, callers: dict[str, Caller], name: str
) -> None:
    reply = call(client, "HEAD", name, callers[name])
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("name", [endpoint.name for endpoint in WRITES])
def test_a_write_by_get_is_still_a_405_allowing_post_only(client: TestClient, name: str) -> None:
    for method in ("GET", "HEAD", "PUT"):
        reply = client.request(method, PATHS[name], files=form(trid="tr_x"))
        assert reply.status_code == 405, method
        assert reply.headers["allow"] == "POST"
        if method != "HEAD":
            assert reply.json()["return_code"] == "4005"
            assert reply.json()["return_message"] == f"{name} is called with POST, not {method}"


@pytest.mark.parametrize("name", [endpoint.name for endpoint in READS])
def test_a_read_by_another_method_is_a_405_allowing_get_head_and_post(
    client: TestClient, name: str
) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        reply = client.request(method, PATHS[name])
        assert reply.status_code == 405, method
        assert reply.headers["allow"] == "GET, HEAD, POST"
        assert reply.json() == {
            "return_code": "4005",
            "return_message": f"{name} is called with GET or POST, not {method}",
        }
