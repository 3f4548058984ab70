"""The whole API, driven as a careless client would, leaves no secret in the log (issue 9, #2).

Every endpoint is called with its token in the query string, in the body and in an
Authorization header; get_token with its secret in the query string and the body; a checkout
page takes card numbers; an unhandled error carries a secret in its exception text. Everything
every logger writes at DEBUG, through the handler ``configure_logging`` installs, is scanned.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from checkout.support import DECLINED, PAID, card, csrf_of
from factories import form, make_account
from mobip.accounts.models import Role
from mobip.app import ENDPOINTS
from mobip.auth import service as auth_service
from mobip.kit.logging import configure_logging
from mobip.kit.runtime import Runtime
from receivables.support import MAPPING, SPEC_EXAMPLE

API = "/api/2.0/mobip"
PLACES = ("query", "body", "header")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved_loggers = [(lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers]
    # SQLAlchemy keeps its loggers at WARNING unless told: at DEBUG it logs every statement's
    # parameters (checkout tokens among them) and every row.
    sqlalchemy_logger = logging.getLogger("sqlalchemy")
    saved_sqlalchemy = sqlalchemy_logger.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    sqlalchemy_logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        sqlalchemy_logger.setLevel(saved_sqlalchemy)
        for lg, (handlers, propagate, disabled) in zip(loggers, saved_loggers, strict=True):
            lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled


def call(client: TestClient, name: str, token: str, place: str, **fields: Any) -> dict[str, Any]:
    """One API call with the token in ``place``; the other fields in the body (multipart)."""
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    if place == "query":
        params["access_token"] = token
    elif place == "body":
        fields["access_token"] = token
    else:
        headers["Authorization"] = f"Bearer {token}"
    reply = client.request(
        endpoint.method,
        endpoint.full_path,
        params=params,
        files=form(**fields) if fields else None,
        headers=headers,
    )
    assert reply.status_code < 500, (name, place, reply.text)
    payload: dict[str, Any] = reply.json()
    return payload


def get_token(client: TestClient, account_id: str, secret: str, place: str) -> Any:
    credentials = {"api_account_id": account_id, "api_secret_key": secret}
    if place == "query":
        return client.get(f"{API}/get_token", params=credentials)
    if place == "urlencoded":
        return client.request(
            "GET",
            f"{API}/get_token",
            content="&".join(f"{k}={v}" for k, v in credentials.items()),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    return client.request("GET", f"{API}/get_token", files=form(**credentials))


def test_no_secret_token_or_card_number_in_any_log_line(
    client: TestClient,
    runtime: Runtime,
    log_output: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = make_account(runtime, role=Role.ADMIN, name="Platform")
    partner = make_account(runtime, role=Role.PARTNER, parent=admin, external_id="P1")
    merchant = make_account(runtime, parent=partner, external_id="M1")
    # Takes a provider key by update_account (its own: the merchant above keeps the sandbox).
    other = make_account(runtime, parent=partner, external_id="M2")
    stripe_key = "sk_test_" + "StripeKey1" * 3
    secrets = [admin.api_secret_key, partner.api_secret_key, merchant.api_secret_key]
    wrong_secret = "mbs_" + "wrongWRONG" * 4
    secrets += [wrong_secret, other.api_secret_key, stripe_key]

    tokens: dict[str, str] = {}
    for account, place in ((merchant, "query"), (partner, "body"), (merchant, "urlencoded")):
        reply = get_token(client, account.account.api_account_id, account.api_secret_key, place)
        assert reply.status_code == 200, reply.text
        tokens[account.account.uid] = reply.json()["access_token"]
        secrets.append(reply.json()["access_token"])
    for place in ("query", "body"):
        failed = get_token(client, merchant.account.api_account_id, wrong_secret, place)
        assert failed.status_code == 401
    merchant_token, partner_token = tokens[merchant.account.uid], tokens[partner.account.uid]

    called: set[str] = {"get_token"}
    checkout_urls: list[str] = []
    for place in PLACES:
        created = call(
            client,
            "send_payment_request",
            merchant_token,
            place,
            item_amount_in_cents=1250,
            tax_amount=250,
            redirect_url="https://shop.example/thanks",
            call_back_url="https://shop.example/callback",
            item_name="Blue mug",
            customer_email="ada@example.com",
            media="EMAIL",
        )
        qr = call(
            client,
            "create_one_use_qr",
            merchant_token,
            place,
            item_name="Tea",
            item_amount_in_cents=500,
            tax_amount_in_cents=0,
            redirect_url="https://shop.example/thanks",
            call_back_url="https://shop.example/callback",
        )
        checkout_urls += [created["url_checkout"], qr["url_checkout"]]
        secrets += [urlsplit(created["url_checkout"]).path.rsplit("/", 1)[-1]]
        trid = created["trid"]
        for _ in range(3):  # the second and third take the cached-token fast paths
            call(client, "is_valid", merchant_token, place, trid=trid)
        call(client, "get_transaction", merchant_token, place, trid=trid)
        call(client, "resend", merchant_token, place, trid=trid, media="EMAIL")
        call(client, "cancel_transaction", merchant_token, place, trid=qr["trid"])
        call(client, "login", merchant_token, place)
        call(client, "get_account", partner_token, place, uid=merchant.account.uid)
        call(client, "get_account_by_external_id", partner_token, place, external_account_id="M1")
        call(
            client,
            "update_account",
            partner_token,
            place,
            uid=other.account.uid,
            account_data=json.dumps({"Private_Payment_Provider_key": stripe_key}),
        )
        # Refused (nothing listens on the photo's port; the transaction is not PAID), logged all
        # the same: what counts here is what the log lines hold.
        reusable = call(
            client,
            "create_reusable_qr",
            merchant_token,
            place,
            item_amount=900,
            tax_amount=0,
            item_name="Mug",
            item_photo="http://127.0.0.1:9/mug.png",
        )
        qr_id = str(reusable.get("qr_id", "qr_unknown"))
        for name in ("get_reusable_qr", "disable_reusable_qr", "enable_reusable_qr"):
            call(client, name, merchant_token, place, qr_id=qr_id)
        call(client, "get_reusable_qr_list", merchant_token, place)
        call(client, "refund_transaction", merchant_token, place, trid=trid)
        call(client, "get_invoice_list", merchant_token, place)
        call(client, "get_invoice", merchant_token, place, invoice_id="inv_unknown")
        call(client, "get_stats", partner_token, place, uid=merchant.account.uid)
        call(client, "get_mobip_transactions", partner_token, place, limit="5")
        call(client, "set_mobip_transactions", partner_token, place, trid_list=trid)
        stats_file = call(
            client, "get_stats", merchant_token, place, day="2026-11-30", get_gz_file="1"
        )
        file_path = urlsplit(stats_file["url"]).path  # /stats/{file_id}/{token}.csv.gz
        secrets.append(file_path.rsplit("/", 1)[-1].removesuffix(".csv.gz"))
        assert client.get(file_path).status_code == 200
        source = {"ExternalSourceId": "erp"}
        call(
            client,
            "set_external_invoices",
            merchant_token,
            place,
            **source,
            InvoicesLists=SPEC_EXAMPLE,
        )
        call(client, "set_external_invoice_status", merchant_token, place, **source, **MAPPING)
        invoices = call(client, "get_external_invoices", merchant_token, place, **source)
        secrets.append(invoices["InvoicesList"][0]["url_portal"].rsplit("/", 1)[-1])
        call(client, "get_external_invoices_status", merchant_token, place, **source)
        call(
            client,
            "request_invoices_payment",
            merchant_token,
            place,
            **source,
            CustomerId="custom_1",
            media="EMAIL",
        )
        called |= {
            "set_external_invoices",
            "set_external_invoice_status",
            "get_external_invoices",
            "get_external_invoices_status",
            "request_invoices_payment",
            "get_stats",
            "get_mobip_transactions",
            "set_mobip_transactions",
            "get_invoice_list",
            "get_invoice",
            "create_reusable_qr",
            "get_reusable_qr",
            "get_reusable_qr_list",
            "disable_reusable_qr",
            "enable_reusable_qr",
            "refund_transaction",
            "send_payment_request",
            "create_one_use_qr",
            "is_valid",
            "get_transaction",
            "resend",
            "cancel_transaction",
            "login",
            "get_account",
            "get_account_by_external_id",
            "update_account",
        }
    assert called == {endpoint.name for endpoint in ENDPOINTS}, "a new endpoint: call it here"

    # The hosted page (a bearer link) takes card numbers, typed with and without spaces.
    cards = [DECLINED, PAID.replace(" ", "")]
    secrets += [*cards, DECLINED.replace(" ", "")]
    for url, number in zip(checkout_urls[0:4:2], cards, strict=True):  # not the cancelled QRs
        path = urlsplit(url).path
        page = client.get(path)
        assert page.status_code == 200, page.text
        client.post(path, data={"csrf_token": csrf_of(page.text), **card(number)})
        client.get(path.replace("/pay/", "/qr/"))

    # An unhandled error whose exception text carries the caller's secret and a card number.
    def failing_issue_token(*_: Any, api_secret_key: str, **__: Any) -> str:
        raise RuntimeError(f"database said no to {api_secret_key} / 4242 4242 4242 4242")

    monkeypatch.setattr(auth_service, "issue_token", failing_issue_token)
    crashed = get_token(client, merchant.account.api_account_id, merchant.api_secret_key, "query")
    assert crashed.status_code == 500

    output = log_output.getvalue()
    assert "unhandled error in get_token" in output and "RuntimeError" in output
    assert '"logger": "mobip.access"' in output
    assert '"logger": "sqlalchemy.engine.Engine"' in output  # DEBUG really logged everything
    leaked = [secret for secret in secrets if secret in output]
    assert leaked == []
    unmasked = re.findall(r"\b(?:mbs|mbt|ck|cp|sft|sk_test)_(?!\[REDACTED\])[\w-]+", output)
    assert unmasked == []
