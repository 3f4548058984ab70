"""The create endpoints' group-committed path (api/batch) writes what the unit of work writes.

A caller whose token is in this process's cache has its rows prepared on the event loop and
written by the group commit; anyone else (token not cached, an Idempotency-Key) takes the
ordinary unit of work. Both must store the same rows and queue the same message.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts.service import NewCredentials
from mobip.api.batch import GroupCommit
from mobip.auth import service as auth_service
from mobip.delivery import service as delivery_service
from mobip.delivery.models import OutboxMessage
from mobip.kit.runtime import Runtime
from mobip.transactions import repository
from mobip.transactions.models import Transaction, TransactionEvent
from transactions.support import counts, decode_png, one_use_qr, valid_request

API = "/api/2.0/mobip"
# Set per row by the create itself, so they differ between any two creates.
UNIQUE = {"id", "trid", "checkout_token", "transaction_id", "target", "payload", "subject"}


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, external_id="shop-1")


@pytest.fixture
def token(client: TestClient, merchant: NewCredentials) -> str:
    token = token_for(client, merchant, api_ttl=720)
    warm = client.request("GET", f"{API}/is_valid", files=form(access_token=token, trid="tr_x"))
    assert warm.json()["return_code"] != "0"  # unknown trid; the token is now in the cache
    return token


def group_commit(client: TestClient) -> GroupCommit:
    group = client.app.state.group_commit  # type: ignore[attr-defined]
    assert isinstance(group, GroupCommit)
    return group


def create(
    client: TestClient, token: str, name: str, fields: dict[str, Any], **headers: str
) -> Any:
    reply = client.post(f"{API}/{name}", files=form(access_token=token, **fields), headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["return_code"] == "0", body
    return body


def rows_of(runtime: Runtime, trid: str) -> dict[str, Any]:
    """The transaction, its events and its messages as column dicts, per-create values left out."""

    def columns(obj: Any) -> dict[str, Any]:
        table = obj.__table__
        return {c.key: getattr(obj, c.key) for c in table.columns if c.key not in UNIQUE}

    with runtime.database.transaction() as session:
        transaction = session.scalars(select(Transaction).where(Transaction.trid == trid)).one()
        events = repository.events(session, transaction)
        messages = delivery_service.messages_about(
            session, account_id=transaction.account_id, subject=trid
        )
        return {
            "transaction": columns(transaction),
            "events": [columns(event) for event in events],
            "event_points_at_it": all(e.transaction_id == transaction.id for e in events),
            "messages": [
                {**columns(m), "payload": {**m.load_payload(), "trid": "-"}} for m in messages
            ],
            "message_subjects": [m.subject == trid for m in messages],
        }


@pytest.mark.parametrize(
    ("name", "fields"),
    [("send_payment_request", valid_request()), ("create_one_use_qr", one_use_qr())],
)
def test_both_paths_store_the_same_rows(
    client: TestClient,
    runtime: Runtime,
    merchant: NewCredentials,
    token: str,
    name: str,
    fields: dict[str, Any],
) -> None:
    group = group_commit(client)
    before = group.written
    batched = create(client, token, name, fields)
    assert group.written == before + 1, "a cached token's create goes through the group commit"

    runtime.state(auth_service.TokenCache).forget_account(merchant.account.id)
    ordinary = create(client, token, name, fields)
    assert group.written == before + 1, "an uncached token's create takes the unit of work"

    assert batched.keys() == ordinary.keys()
    assert batched["trid"] != ordinary["trid"]
    fast, slow = rows_of(runtime, batched["trid"]), rows_of(runtime, ordinary["trid"])
    assert fast == slow
    assert fast["event_points_at_it"] and all(fast["message_subjects"])
    assert len(fast["events"]) == 1
    assert len(fast["messages"]) == (1 if name == "send_payment_request" else 0)


@pytest.mark.parametrize(
    ("name", "fields"),
    [("send_payment_request", valid_request()), ("create_one_use_qr", one_use_qr())],
)
def test_the_group_commit_path_answers_in_xml_too(
    client: TestClient, runtime: Runtime, token: str, name: str, fields: dict[str, Any]
) -> None:
    group = group_commit(client)
    before, (transactions, _) = group.written, counts(runtime)
    reply = client.post(f"{API}/{name}", files=form(access_token=token, format="xml", **fields))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(reply.text)
    assert root.findtext("return_code") == "0"
    assert group.written == before + 1
    assert counts(runtime)[0] == transactions + 1
    with runtime.database.transaction() as session:
        assert (
            repository.get_with_merchant_by_trid(session, root.findtext("trid") or "") is not None
        )
    if name == "send_payment_request":
        raw_qr = base64.b64decode(root.findtext("raw_qr") or "")
        assert decode_png(raw_qr) == [root.findtext("url_checkout")]


def test_an_idempotency_key_takes_the_unit_of_work(client: TestClient, token: str) -> None:
    group = group_commit(client)
    before = group.written
    first = create(
        client, token, "send_payment_request", valid_request(), **{"Idempotency-Key": "k1"}
    )
    again = create(
        client, token, "send_payment_request", valid_request(), **{"Idempotency-Key": "k1"}
    )
    assert first == again
    assert group.written == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (valid_request(item_amount_in_cents="12.50"), "item_amount_in_cents"),
        (valid_request(redirect_url="javascript:alert(1)"), "redirect_url"),
        (valid_request(customer_email="not-an-address"), "customer_email"),
        (valid_request(media="SMS", customer_phone=None), "customer_phone"),
        (valid_request(language="DE"), "language"),
    ],
)
def test_bad_input_on_the_group_commit_path_writes_nothing(
    client: TestClient, runtime: Runtime, token: str, fields: dict[str, Any], field: str
) -> None:
    group = group_commit(client)
    before, rows = group.written, counts(runtime)
    reply = client.post(f"{API}/send_payment_request", files=form(access_token=token, **fields))
    assert reply.status_code in (400, 422), reply.text
    assert field in reply.json()["return_message"]
    assert counts(runtime) == rows
    assert group.written == before


def test_a_failed_write_answers_500_and_leaves_nothing(
    client: TestClient, runtime: Runtime, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply is sent only after the commit: a write that fails is never reported as done."""
    rows = counts(runtime)
    original = delivery_service.insert_messages

    def all_then_fail(conn: Any, messages: Any) -> None:
        original(conn, messages)  # the transaction, its event and its message are in
        raise RuntimeError("disk full")

    monkeypatch.setattr(delivery_service, "insert_messages", all_then_fail)
    reply = client.post(
        f"{API}/send_payment_request", files=form(access_token=token, **valid_request())
    )
    assert reply.status_code == 500
    assert reply.json()["return_code"] == "9001"
    assert counts(runtime) == rows


def test_many_concurrent_creates_are_all_stored(
    client: TestClient, runtime: Runtime, token: str
) -> None:
    """Requests at once share transactions; each gets its own trid and its own rows."""
    group = group_commit(client)
    before, (transactions, messages) = group.written, counts(runtime)

    def one(i: int) -> Any:
        return create(client, token, "send_payment_request", valid_request(track_id=f"c{i}"))

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(one, range(40)))
    assert len({r["trid"] for r in replies}) == 40
    assert {r["track_id"] for r in replies} == {f"c{i}" for i in range(40)}
    assert counts(runtime) == (transactions + 40, messages + 40)
    assert group.written == before + 40
    trids = sorted(r["trid"] for r in replies)
    with runtime.database.transaction() as session:
        events = session.execute(
            select(Transaction.trid, TransactionEvent.status)
            .join(TransactionEvent, TransactionEvent.transaction_id == Transaction.id)
            .where(Transaction.trid.in_(trids))
        ).all()
        subjects = session.scalars(
            select(OutboxMessage.subject).where(OutboxMessage.subject.in_(trids))
        ).all()
    assert sorted(trid for trid, _ in events) == trids  # one first event each, on its own row
    assert {status for _, status in events} == {"PENDING"}
    assert sorted(subjects) == trids  # one payment request each
