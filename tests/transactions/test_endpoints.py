from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.delivery.models import OutboxMessage
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction
from transactions.support import counts, decode_png, one_use_qr, valid_request

API = "/api/2.0/mobip"


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, external_id="shop-1")


@pytest.fixture
def token(client: TestClient, merchant: NewCredentials) -> str:
    return token_for(client, merchant, api_ttl=720)


def post(client: TestClient, name: str, token: str, **fields: Any) -> Any:
    return client.post(f"{API}/{name}", files=form(access_token=token, **fields))


def get(client: TestClient, name: str, token: str, **fields: Any) -> Any:
    return client.request("GET", f"{API}/{name}", files=form(access_token=token, **fields))


def test_send_payment_request_happy_path(client: TestClient, runtime: Runtime, token: str) -> None:
    reply = post(client, "send_payment_request", token, **valid_request())
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"return_code", "trid", "url_checkout", "url_qr", "raw_qr", "track_id"}
    assert body["return_code"] == "0"
    assert body["trid"].startswith("tr_")
    assert body["track_id"] == "order-7"
    base = runtime.settings.resolved_base_url
    assert body["url_checkout"].startswith(f"{base}/pay/ck_")
    assert body["trid"] not in body["url_checkout"]
    assert body["url_qr"].startswith(f"{base}/qr/")
    assert decode_png(base64.b64decode(body["raw_qr"])) == [body["url_checkout"]]
    # The message is queued in the same transaction, for the chosen media.
    with runtime.database.transaction() as session:
        message = session.scalars(select(OutboxMessage)).one()
        stored = session.scalars(select(Transaction)).one()
    assert message.kind == "payment_request"
    assert message.target == "ada@example.com"
    assert message.load_payload() == {"trid": body["trid"], "media": "EMAIL", "occasion": "initial"}
    assert (stored.item_amount, stored.tax_amount, stored.currency) == (1250, 250, "EUR")
    assert stored.customer_phone == "+33612345678"
    assert stored.language == "FR"
    assert (stored.retry_period_days, stored.retry_attempts, stored.ttl_days) == (0, 3, 365)


def test_sms_request_queues_an_sms_to_the_e164_number(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    reply = post(client, "send_payment_request", token, **valid_request(media="sms"))
    assert reply.status_code == 200
    with runtime.database.transaction() as session:
        message = session.scalars(select(OutboxMessage)).one()
    assert message.target == "+33612345678"
    assert message.load_payload()["media"] == "SMS"


BAD_REQUESTS = [
    ({"item_amount_in_cents": "12.50"}, "item_amount_in_cents"),
    ({"item_amount_in_cents": "1e3"}, "item_amount_in_cents"),
    ({"item_amount_in_cents": ""}, "item_amount_in_cents"),
    ({"item_amount_in_cents": "-5"}, "item_amount_in_cents"),
    ({"item_amount_in_cents": "0"}, "item_amount_in_cents"),
    ({"item_amount_in_cents": None}, "item_amount_in_cents"),
    ({"tax_amount": "-1"}, "tax_amount"),
    ({"tax_amount": "1.5"}, "tax_amount"),
    ({"tax_amount": None}, "tax_amount"),
    ({"item_amount_in_cents": "99999999", "tax_amount": "2"}, "item_amount_in_cents"),
    ({"redirect_url": "javascript:alert(1)"}, "redirect_url"),
    ({"redirect_url": "data:text/html,hi"}, "redirect_url"),
    ({"redirect_url": "/relative/path"}, "redirect_url"),
    ({"redirect_url": "ftp://shop.example/x"}, "redirect_url"),
    ({"redirect_url": "https://" + "a" * 2050 + ".example"}, "redirect_url"),
    ({"redirect_url": None}, "redirect_url"),
    ({"call_back_url": "javascript:alert(1)"}, "call_back_url"),
    ({"call_back_url": "https://user:pw@shop.example/cb"}, "call_back_url"),
    # Address literals our outbound client would refuse are input errors at creation.
    ({"call_back_url": "http://10.0.0.7/cb"}, "call_back_url"),
    ({"call_back_url": "http://169.254.169.254/latest/meta-data"}, "call_back_url"),
    ({"call_back_url": "http://0.0.0.0:8080/cb"}, "call_back_url"),
    ({"call_back_url": "http://[::ffff:192.168.1.1]/cb"}, "call_back_url"),
    ({"call_back_url": "http://[::ffff:0:10.0.0.7]/cb"}, "call_back_url"),  # IPv4-translated
    ({"call_back_url": "http://[64:ff9b::10.0.0.7]/cb"}, "call_back_url"),  # NAT64
    ({"redirect_url": "https://xn--a.example/"}, "redirect_url"),  # not a valid A-label
    ({"call_back_url": "http://0x0a000001/cb"}, "call_back_url"),
    ({"item_name": None}, "item_name"),
    ({"item_name": "x" * 256}, "item_name"),
    ({"track_id": "t" * 256}, "track_id"),
    ({"customer_name": "n" * 256}, "customer_name"),
    ({"customer_email": "not-an-email"}, "customer_email"),
    ({"customer_email": None}, "customer_email"),
    ({"media": "FAX"}, "media"),
    ({"media": None}, "media"),
    ({"media": "SMS", "customer_phone": None}, "customer_phone"),
    ({"customer_phone": "0612345678"}, "customer_phone"),
    ({"customer_phone": "+33 1"}, "customer_phone"),
    ({"language": "DE"}, "language"),
    ({"retry_period": "-1"}, "retry_period"),
    ({"retry_period": "1.5"}, "retry_period"),
    ({"retry_attempts": "11"}, "retry_attempts"),
    ({"transaction_ttl": "0"}, "transaction_ttl"),
    ({"transaction_ttl": "366"}, "transaction_ttl"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_REQUESTS)
def test_send_payment_request_validation(
    client: TestClient, runtime: Runtime, token: str, overrides: dict[str, Any], field: str
) -> None:
    reply = post(client, "send_payment_request", token, **valid_request(**overrides))
    assert reply.status_code == 400, reply.text
    assert reply.json()["return_code"] in {"1001", "1002", "1003"}
    assert f"'{field}'" in reply.json()["return_message"]
    assert counts(runtime) == (0, 0)


def test_loopback_callbacks_only_outside_production(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    local = valid_request(call_back_url="http://127.0.0.1:9000/cb")
    assert post(client, "send_payment_request", token, **local).json()["return_code"] == "0"
    runtime.settings.env = runtime.settings.env.PRODUCTION
    refused = post(
        client, "send_payment_request", token, **{**local, "call_back_url": "https://127.0.0.1/cb"}
    )
    assert refused.status_code == 400
    assert "'call_back_url'" in refused.json()["return_message"]
    assert counts(runtime) == (1, 1)


def test_https_only_in_production(client: TestClient, runtime: Runtime, token: str) -> None:
    runtime.settings.env = runtime.settings.env.PRODUCTION
    reply = post(
        client, "send_payment_request", token, **valid_request(redirect_url="http://shop.example")
    )
    assert reply.status_code == 400
    assert "'redirect_url'" in reply.json()["return_message"]


def test_create_one_use_qr_happy_path_and_its_own_field_names(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    reply = post(client, "create_one_use_qr", token, **one_use_qr())
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"return_code", "trid", "url_qr", "url_checkout"}
    assert counts(runtime) == (1, 0)  # no message sent
    missing_callback = post(client, "create_one_use_qr", token, **one_use_qr(call_back_url=None))
    assert "'call_back_url'" in missing_callback.json()["return_message"]
    bad_tax = post(client, "create_one_use_qr", token, **one_use_qr(tax_amount_in_cents="x"))
    assert "'tax_amount_in_cents'" in bad_tax.json()["return_message"]
    assert counts(runtime) == (1, 0)


def test_is_valid_reply_fields(client: TestClient, token: str) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    reply = get(client, "is_valid", token, trid=trid)
    assert reply.json() == {
        "return_code": "0",
        "transaction_status": "PENDING",
        "track_id": "order-7",
        "reason": "",
        "payment_method": "",
        "desc": "Blue mug",
        "isRefunded": "false",
        "transaction_datetime": "2026-01-01T12:00:00Z",
        "external_accountid": "shop-1",
    }


def test_get_transaction_lists_every_field_history_and_messages(
    client: TestClient, runtime: Runtime, token: str, clock: ManualClock
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    clock.advance(minutes=5)
    assert post(client, "cancel_transaction", token, trid=trid).json() == {"return_code": "0"}
    data = get(client, "get_transaction", token, trid=trid).json()["transaction_data"]
    assert data["trid"] == trid
    assert data["transaction_status"] == "CANCELLED"
    assert data["reason"] == "CANCELLED_BY_MERCHANT"
    assert (data["item_amount_in_cents"], data["tax_amount_in_cents"]) == ("1250", "250")
    assert data["total_amount_in_cents"] == "1500"
    assert data["currency"] == "EUR"
    assert data["customer_phone"] == "+33612345678"
    assert data["expires_at"] == "2027-01-01T12:00:00Z"
    assert [h["status"] for h in data["status_history"]] == ["PENDING", "CANCELLED"]
    assert data["status_history"][1]["at"] == "2026-01-01T12:05:00Z"
    kinds = [(m["kind"], m["recipient"]) for m in data["messages"]]
    assert kinds == [
        ("payment_request", "a***@example.com"),
        ("callback", "https://shop.example/callback?x=1"),
    ]
    flat = str(data)
    assert "checkout_token" not in flat
    assert "secret" not in flat


def test_cancel_queues_the_callback_and_is_final(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    assert post(client, "cancel_transaction", token, trid=trid).status_code == 200
    with runtime.database.transaction() as session:
        callback = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "callback")
        ).one()
    assert callback.target == "https://shop.example/callback?x=1"
    assert callback.load_payload() == {
        "trid": trid,
        "track_id": "order-7",
        "resp_code": "CANCELLED",
    }
    again = post(client, "cancel_transaction", token, trid=trid)
    assert (again.status_code, again.json()["return_code"]) == (409, "5012")
    assert counts(runtime) == (1, 2)


def test_cancel_without_callback_url_queues_nothing(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request(call_back_url=None)).json()[
        "trid"
    ]
    assert post(client, "cancel_transaction", token, trid=trid).status_code == 200
    assert counts(runtime) == (1, 1)  # only the initial request


@pytest.mark.parametrize(
    ("status", "code"),
    [("PAID", "5011"), ("DENIED", "5013"), ("ERROR", "5014"), ("CANCELLED", "5012")],
)
def test_cancel_and_resend_on_each_final_status(
    client: TestClient, runtime: Runtime, token: str, status: str, code: str
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    with runtime.database.transaction() as session:
        stored = session.scalars(select(Transaction).where(Transaction.trid == trid)).one()
        stored.status = status
    before = counts(runtime)
    for name, extra in (("cancel_transaction", {}), ("resend", {"media": "EMAIL"})):
        reply = post(client, name, token, trid=trid, **extra)
        assert (reply.status_code, reply.json()["return_code"]) == (409, code)
    assert counts(runtime) == before


def test_expiry_is_applied_when_read(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, clock: ManualClock
) -> None:
    token = token_for(client, merchant)
    trid = post(client, "send_payment_request", token, **valid_request(transaction_ttl=2)).json()[
        "trid"
    ]
    clock.advance(days=2, seconds=-1)
    token = token_for(client, merchant)
    assert get(client, "is_valid", token, trid=trid).json()["transaction_status"] == "PENDING"
    clock.advance(seconds=1)
    reply = get(client, "is_valid", token, trid=trid).json()
    assert (reply["transaction_status"], reply["reason"]) == ("CANCELLED", "EXPIRED")
    assert reply["transaction_datetime"] == "2026-01-03T12:00:00Z"
    with runtime.database.transaction() as session:
        callbacks = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "callback")
        ).all()
    assert [c.load_payload()["resp_code"] for c in callbacks] == ["CANCELLED"]
    # Reading again does not cancel twice.
    get(client, "is_valid", token, trid=trid)
    assert counts(runtime) == (1, 2)


def test_resend_by_each_media_and_its_limit(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    assert post(client, "resend", token, trid=trid, media="sms").json() == {"return_code": "0"}
    with runtime.database.transaction() as session:
        latest = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert latest is not None
    assert (latest.target, latest.load_payload()["occasion"]) == ("+33612345678", "manual")
    for _ in range(runtime.settings.max_manual_resends - 1):
        assert post(client, "resend", token, trid=trid, media="EMAIL").status_code == 200
    over = post(client, "resend", token, trid=trid, media="EMAIL")
    assert (over.status_code, over.json()["return_code"]) == (409, "5020")
    assert counts(runtime) == (1, 1 + runtime.settings.max_manual_resends)


def test_resend_sms_without_phone_and_bad_media(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request(customer_phone=None)).json()[
        "trid"
    ]
    no_phone = post(client, "resend", token, trid=trid, media="SMS")
    assert no_phone.status_code == 400
    assert "'media'" in no_phone.json()["return_message"]
    bad = post(client, "resend", token, trid=trid, media="PIGEON")
    assert (bad.status_code, bad.json()["return_code"]) == (400, "1002")
    assert counts(runtime) == (1, 1)


ENDPOINTS = [
    ("GET", "is_valid", {}),
    ("GET", "get_transaction", {}),
    ("POST", "cancel_transaction", {}),
    ("POST", "resend", {"media": "EMAIL"}),
]


@pytest.mark.parametrize(("method", "name", "extra"), ENDPOINTS)
def test_cross_tenant_access_is_the_same_404(
    client: TestClient, runtime: Runtime, token: str, method: str, name: str, extra: dict[str, str]
) -> None:
    trid = post(client, "send_payment_request", token, **valid_request()).json()["trid"]
    stranger = token_for(client, make_account(runtime, name="Other shop"))
    before = counts(runtime)
    theirs = client.request(
        method, f"{API}/{name}", files=form(access_token=stranger, trid=trid, **extra)
    )
    unknown = client.request(
        method, f"{API}/{name}", files=form(access_token=stranger, trid="tr_unknown", **extra)
    )
    assert theirs.status_code == unknown.status_code == 404
    assert (
        theirs.json()
        == unknown.json()
        == {
            "return_code": "4010",
            "return_message": "Transaction not found",
        }
    )
    assert counts(runtime) == before


@pytest.mark.parametrize(("method", "name", "extra"), ENDPOINTS)
def test_partner_and_admin_above_the_merchant_can_read(
    client: TestClient, runtime: Runtime, method: str, name: str, extra: dict[str, str]
) -> None:
    admin = make_account(runtime, role=Role.ADMIN)
    partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    other_partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    shop = make_account(runtime, parent=partner)
    trid = post(client, "send_payment_request", token_for(client, shop), **valid_request()).json()[
        "trid"
    ]
    for caller, allowed in ((other_partner, False), (partner, True), (admin, True)):
        reply = client.request(
            method,
            f"{API}/{name}",
            files=form(access_token=token_for(client, caller), trid=trid, **extra),
        )
        # A second cancel is a 409 (already cancelled): the caller reached the transaction.
        reached = reply.status_code in (200, 409)
        assert reached is allowed, (caller.account.role, reply.text)
        assert reply.status_code in (200, 409, 404)


def test_only_merchants_create_transactions(client: TestClient, runtime: Runtime) -> None:
    partner = make_account(runtime, role=Role.PARTNER)
    reply = post(client, "send_payment_request", token_for(client, partner), **valid_request())
    assert (reply.status_code, reply.json()["return_code"]) == (403, "3001")
    assert counts(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("method", "name", "fields"),
    [
        ("POST", "send_payment_request", valid_request()),
        ("POST", "create_one_use_qr", one_use_qr()),
        ("GET", "is_valid", {}),
        ("GET", "get_transaction", {}),
        ("POST", "cancel_transaction", {}),
        ("POST", "resend", {"media": "EMAIL"}),
    ],
)
def test_xml_form_of_each_reply(
    client: TestClient, token: str, method: str, name: str, fields: dict[str, Any]
) -> None:
    if "trid" not in fields and name not in ("send_payment_request", "create_one_use_qr"):
        fields = {
            **fields,
            "trid": post(client, "send_payment_request", token, **valid_request()).json()["trid"],
        }
    reply = client.request(
        method, f"{API}/{name}", files=form(access_token=token, format="xml", **fields)
    )
    assert reply.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(reply.text)
    assert root.findtext("return_code") == "0"
    if name == "send_payment_request":
        url = root.findtext("url_checkout")
        assert decode_png(base64.b64decode(root.findtext("raw_qr") or "")) == [url]
    if name == "get_transaction":
        assert root.find("transaction_data/status_history/item/status") is not None


def test_transaction_ids_are_opaque_and_distinct(client: TestClient, token: str) -> None:
    replies = [post(client, "create_one_use_qr", token, **one_use_qr()).json() for _ in range(5)]
    trids = {r["trid"] for r in replies}
    tokens = {r["url_checkout"].rsplit("/", 1)[1] for r in replies}
    assert len(trids) == len(tokens) == 5
    for t in tokens:
        assert len(t.removeprefix("ck_")) >= 22  # ≥ 128 bits of randomness
