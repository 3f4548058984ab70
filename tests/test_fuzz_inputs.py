"""Arbitrary input in every declared field of every endpoint: never a 5xx, every reply parses.

Each case starts from a request the endpoint accepts (a valid token, an existing transaction)
and puts arbitrary text, or arbitrary bytes, in one field; the reply is asked as JSON or XML,
sent as multipart, urlencoded or a query string, and through the create endpoints' group
commit or their own unit of work (an Idempotency-Key takes the latter). On SQLite and
PostgreSQL. The examples are derandomised so that CI runs the same ones every time.
"""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from billing.support import make_invoice
from callback_receiver import Receiver, running_receiver
from factories import make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import UPDATABLE, NewCredentials
from mobip.api.routing import Endpoint, Field
from mobip.app import ENDPOINTS
from mobip.kit.runtime import Runtime
from products.support import make_reusable_qr, reusable_qr, serve_photos
from receivables.support import MAPPING, SPEC_EXAMPLE, import_lists, map_statuses
from transactions.support import one_use_qr, valid_request

# The client and its accounts are made once per test and shared by its examples on purpose
# (each example is a request that must not fail whatever state the ones before it left): the
# examples run in a function the test defines, so no fixture is reset between them and
# Hypothesis's function-scoped-fixture check has nothing to say.
FUZZ = settings(
    max_examples=16,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# The same for a test whose examples Hypothesis runs with pytest's function-scoped fixtures:
# they are shared by its examples on purpose, as above.
FUZZ_WITH_FIXTURES = settings(
    FUZZ,
    max_examples=8,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Values that found or could find a fault: NUL and other controls, bidi overrides, what
# PostgreSQL or an XML reply cannot hold, numbers at and past the 18 digits read, long text,
# IDN hosts, JSON with repeated keys or escaped surrogates.
SPECIAL = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x1b\x07",
    "\t\r\n",
    "\u202eabc",
    "\u2066x\u2069",
    "\x85\x9f\x7f",
    "\ufffe\uffff",
    "\U0010ffff",
    "-1",
    "0",
    "1",
    "999999999999999999",
    "1000000000000000000",
    "-999999999999999999",
    "1e3",
    "x" * 5000,
    "EMAIL",
    "sms",
    "fr",
    "https://例え.jp/merci",
    "https://bücher.example/",
    "http://[::ffff:0:127.0.0.1]/",
    "https://a:0/",
    "ü@example.com",
    '{"External_AccountID": "\\ud800"}',
    '{"External_AccountID": "a", "External_AccountID": "b"}',
    '{"Payment_Provider_login": "\\u0000"}',
    '{"\\udfff": 1}',
    "[]",
    "null",
]
BYTES = st.binary(max_size=40) | st.sampled_from(
    [b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"a\x00b", b"\xf4\x90\x80\x80"]
)
ACCOUNT_DATA = st.dictionaries(
    st.sampled_from(sorted(UPDATABLE)) | st.text(max_size=8),
    st.none() | st.text(max_size=20) | st.integers() | st.booleans(),
    max_size=4,
).map(json.dumps)


@dataclass
class Request:
    endpoint: Endpoint
    fields: dict[str, str | bytes]
    transport: str
    xml: bool
    idempotency_key: str | None
    # The endpoint's own method unless set (a read also answers POST: api/routing).
    method: str | None = None


def value_for(field: Field) -> st.SearchStrategy[str | bytes]:
    strategy: st.SearchStrategy[str | bytes] = st.text() | st.sampled_from(SPECIAL) | BYTES
    if field.name == "account_data":
        strategy = strategy | ACCOUNT_DATA
    return strategy


@pytest.fixture
def valid_fields(client: TestClient, runtime: Runtime) -> Iterator[dict[str, dict[str, str]]]:
    """For each endpoint, fields it accepts (a token, a transaction, an account in reach)."""
    admin = make_account(runtime, role=Role.ADMIN)
    merchant = make_account(runtime, parent=admin, external_id="shop-1")
    admin_token = token_for(client, admin, api_ttl=720)
    token = token_for(client, merchant, api_ttl=720)
    created = client.post(
        "/api/2.0/mobip/send_payment_request",
        files={k: (None, str(v)) for k, v in valid_request(access_token=token).items()},
    )
    trid = created.json()["trid"]
    by_transaction = {"access_token": token, "trid": trid}
    account = {"access_token": admin_token, "uid": merchant.account.uid}
    qr = {"access_token": token, "qr_id": make_reusable_qr(runtime, merchant)}
    invoice = {"access_token": token, "invoice_id": make_invoice(runtime, merchant.account)}
    # A real photo site on loopback for create_reusable_qr (admitted outside production).
    with running_receiver() as photo_site:
        serve_photos(photo_site)
        yield {
            **_valid_fields(merchant, token, admin_token, by_transaction, account, qr, photo_site),
            "get_invoice_list": {"access_token": admin_token, "uid": merchant.account.uid},
            "get_invoice": invoice,
            "get_stats": {"access_token": token, "month_period": "2026-11"},
            "get_mobip_transactions": {"access_token": admin_token, "limit": "5"},
            "set_mobip_transactions": {"access_token": admin_token, "trid_list": trid},
            **_receivables(runtime, merchant, token),
        }


def _receivables(
    runtime: Runtime, merchant: NewCredentials, token: str
) -> dict[str, dict[str, str]]:
    """An imported source (the spec's example) and its mapping, for the external invoices'."""
    import_lists(runtime, merchant.account, SPEC_EXAMPLE)
    map_statuses(runtime, merchant.account)
    source = {"access_token": token, "ExternalSourceId": "erp"}
    return {
        "set_external_invoices": {**source, "InvoicesLists": SPEC_EXAMPLE, "BatchId": "B1"},
        "set_external_invoice_status": {**source, **MAPPING},
        "get_external_invoices": {**source, "InvoicesList": "inv_000|inv_002"},
        "get_external_invoices_status": source,
        "request_invoices_payment": {**source, "CustomerId": "custom_1", "media": "EMAIL"},
    }


def _valid_fields(
    merchant: NewCredentials,
    token: str,
    admin_token: str,
    by_transaction: dict[str, str],
    account: dict[str, str],
    qr: dict[str, str],
    photo_site: Receiver,
) -> dict[str, dict[str, str]]:
    return {
        "get_token": {
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
            "api_ttl": "2",
        },
        "login": {"access_token": token},
        "send_payment_request": {k: str(v) for k, v in valid_request(access_token=token).items()},
        "create_one_use_qr": {k: str(v) for k, v in one_use_qr(access_token=token).items()},
        "is_valid": by_transaction,
        "get_transaction": by_transaction,
        "cancel_transaction": by_transaction,
        "resend": {**by_transaction, "media": "EMAIL"},
        "refund_transaction": {**by_transaction, "amount_in_cents": "100"},
        "get_account": {**account, "document_list": "", "document_only": "0"},
        "get_account_by_external_id": {
            "access_token": admin_token,
            "external_account_id": "shop-1",
        },
        "update_account": {**account, "account_data": '{"Payment_Provider_login": "me"}'},
        "create_reusable_qr": {
            "access_token": token,
            **{k: str(v) for k, v in reusable_qr(photo_site.url("/photo.png")).items()},
        },
        "get_reusable_qr": qr,
        "get_reusable_qr_list": {"access_token": token, "limit": "3"},
        "disable_reusable_qr": qr,
        "enable_reusable_qr": qr,
    }


def send(client: TestClient, request: Request) -> Any:
    endpoint = request.endpoint
    fields = dict(request.fields)
    if request.xml:
        fields["format"] = "xml"
    headers = {}
    if request.idempotency_key is not None:
        headers["Idempotency-Key"] = request.idempotency_key
    url = endpoint.full_path
    method = request.method or endpoint.method
    if request.transport == "multipart":
        files = {name: (None, value) for name, value in fields.items()}
        return client.request(method, url, files=files, headers=headers)
    encoded = "&".join(
        f"{quote_from_bytes(name.encode())}="
        + quote_from_bytes(value if isinstance(value, bytes) else value.encode())
        for name, value in fields.items()
    )
    if request.transport == "query":
        return client.request(method, f"{url}?{encoded}", headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return client.request(method, url, content=encoded.encode(), headers=headers)


def check_reply(reply: Any) -> None:
    assert reply.status_code < 500, reply.text
    media_type = reply.headers["content-type"]
    if media_type.startswith("application/xml"):
        root = ET.fromstring(reply.content)
        assert root.tag == "mobip"
        code = root.findtext("return_code")
    else:
        assert media_type == "application/json", media_type
        code = json.loads(reply.content.decode("utf-8"))["return_code"]
    assert code is not None
    assert (code == "0") == (reply.status_code == 200), reply.text


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_arbitrary_input_never_gets_a_5xx_and_the_reply_parses(
    client: TestClient, valid_fields: dict[str, dict[str, str]], endpoint: Endpoint
) -> None:
    # One client per endpoint (a database and an app each: the costly part), every field.
    for field in endpoint.inputs:
        fuzz_one_field(client, endpoint, field, valid_fields[endpoint.name])


def fuzz_one_field(
    client: TestClient, endpoint: Endpoint, field: Field, valid: dict[str, str]
) -> None:
    @FUZZ
    @given(
        value=value_for(field),
        transport=st.sampled_from(["multipart", "urlencoded", "query"]),
        xml=st.booleans(),
        own_unit_of_work=st.booleans(),
        method=st.sampled_from([m for m in endpoint.methods if m != "HEAD"]),
    )
    def fuzz(
        value: str | bytes, transport: str, xml: bool, own_unit_of_work: bool, method: str
    ) -> None:
        fields: dict[str, str | bytes] = {**valid, field.name: value}
        key = secrets.token_hex(8) if own_unit_of_work and endpoint.idempotent else None
        check_reply(send(client, Request(endpoint, fields, transport, xml, key, method)))

    fuzz()


@FUZZ_WITH_FIXTURES
@given(name=st.text(min_size=1) | st.sampled_from(["\x00", "a\u202eb", "x" * 3000, "format"]))
def test_arbitrary_field_names_never_get_a_5xx_and_the_reply_parses(
    client: TestClient, valid_fields: dict[str, dict[str, str]], name: str
) -> None:
    for endpoint in ENDPOINTS:
        for transport in ("multipart", "urlencoded", "query"):
            fields: dict[str, str | bytes] = {**valid_fields[endpoint.name], name: "1"}
            check_reply(send(client, Request(endpoint, fields, transport, True, None)))
