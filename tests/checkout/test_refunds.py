"""refund_transaction and refunds reported by Stripe's webhook (issue 13): through the app, the
sandbox and the local Stripe stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from checkout.fake_stripe import SECRET_KEY, FakeStripe
from checkout.support import csrf_of, outbox, pay_by_card, pay_path, reload, update_account
from factories import form, make_account, make_transaction, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.app import create_app
from mobip.checkout import refunds
from mobip.checkout import tasks as checkout_tasks
from mobip.checkout.providers.base import ProviderError
from mobip.checkout.providers.sandbox import SandboxProvider
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Refund, Transaction

REFUND = "/api/2.0/mobip/refund_transaction"
GET = "/api/2.0/mobip/get_transaction"


@pytest.fixture
def creds(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Café Lumière")


def refund(
    client: TestClient, token: str, trid: str, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    return client.post(
        REFUND, files=form(trid=trid, access_token=token, **fields), headers=headers or {}
    )


def refunds_of(runtime: Runtime, transaction: Transaction) -> list[Refund]:
    with runtime.database.session() as session:
        return list(
            session.scalars(
                select(Refund).where(Refund.transaction_id == transaction.id).order_by(Refund.id)
            )
        )


def refund_callbacks(runtime: Runtime, transaction: Transaction) -> list[dict[str, Any]]:
    return [
        payload
        for kind, _, payload in outbox(runtime, transaction)
        if kind == "callback" and payload.get("extra", {}).get("event") == "refund"
    ]


def _refuse(self: object, *args: object, **kwargs: object) -> object:
    """The sandbox's refund, refusing (monkeypatched in)."""
    raise ProviderError("sandbox: refused")


@pytest.fixture
def paid(runtime: Runtime, client: TestClient, creds: NewCredentials) -> Transaction:
    transaction = make_transaction(runtime, creds.account)  # total 1500
    pay_by_card(client, pay_path(transaction))
    return transaction


def test_partial_then_the_rest_then_nothing_left(
    runtime: Runtime, client: TestClient, creds: NewCredentials, paid: Transaction
) -> None:
    token = token_for(client, creds)
    first = refund(client, token, paid.trid, amount_in_cents=500)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["refund"]["amount_in_cents"] == "500"
    assert body["refund"]["status"] == "SUCCEEDED"
    assert body["refund"]["provider_reference"].startswith("re_sbx")
    assert (body["refunded_amount_in_cents"], body["isRefunded"]) == ("500", "false")
    # Default: all that is left.
    rest = refund(client, token, paid.trid).json()
    assert (rest["refund"]["amount_in_cents"], rest["isRefunded"]) == ("1000", "true")
    again = refund(client, token, paid.trid)
    assert (again.status_code, again.json()["return_code"]) == (409, "5052")
    data = client.get(GET, params={"trid": paid.trid, "access_token": token}).json()
    tx = data.get("transaction_data", data)
    assert tx["isRefunded"] == "true" and tx["refunded_amount"] == "1500"
    assert [r["amount_in_cents"] for r in tx["refunds"]] == ["500", "1000"]
    assert tx["transaction_status"] == "PAID"  # the status stays PAID (docs/fees.md)
    assert (tx["fee"], tx["net_amount"]) == ("0", "1500")
    # Each refund queued the merchant's callback: PROCESSED plus event=refund.
    callbacks = refund_callbacks(runtime, paid)
    assert [(c["resp_code"], c["extra"]["refund_amount_in_cents"]) for c in callbacks] == [
        ("PROCESSED", "500"),
        ("PROCESSED", "1000"),
    ]
    assert callbacks[-1]["extra"]["isRefunded"] == "true"


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [("1501", 409, "5051"), ("0", 400, "1002"), ("-5", 400, "1002"), ("1.5", 400, "1002")],
)
def test_over_zero_negative_and_malformed_amounts_are_refused_and_record_nothing(
    runtime: Runtime,
    client: TestClient,
    creds: NewCredentials,
    paid: Transaction,
    amount: str,
    status: int,
    code: str,
) -> None:
    reply = refund(client, token_for(client, creds), paid.trid, amount_in_cents=amount)
    assert (reply.status_code, reply.json()["return_code"]) == (status, code), reply.text
    assert "amount_in_cents" in reply.json()["return_message"]
    assert refunds_of(runtime, paid) == []
    assert reload(runtime, paid).refunded_amount == 0


def test_only_a_paid_transaction_is_refunded(
    runtime: Runtime, client: TestClient, creds: NewCredentials
) -> None:
    pending = make_transaction(runtime, creds.account)
    reply = refund(client, token_for(client, creds), pending.trid)
    assert (reply.status_code, reply.json()["return_code"]) == (409, "5050")


def test_another_merchants_transaction_is_not_found_and_a_partner_may_refund_below(
    runtime: Runtime, client: TestClient, creds: NewCredentials, paid: Transaction
) -> None:
    other = make_account(runtime, name="Other shop")
    reply = refund(client, token_for(client, other), paid.trid)
    assert (reply.status_code, reply.json()["return_code"]) == (404, "4010")
    assert refunds_of(runtime, paid) == []
    partner = make_account(runtime, role=Role.PARTNER, name="Partner")
    shop = make_account(runtime, parent=partner, name="Shop below")
    below = make_transaction(runtime, shop.account)
    pay_by_card(client, pay_path(below))
    done = refund(client, token_for(client, partner), below.trid, amount_in_cents=100)
    assert done.status_code == 200, done.text


def test_xml_reply(client: TestClient, creds: NewCredentials, paid: Transaction) -> None:
    reply = refund(client, token_for(client, creds), paid.trid, amount_in_cents=100, format="xml")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    assert "<refunded_amount_in_cents>100</refunded_amount_in_cents>" in reply.text
    over = refund(client, token_for(client, creds), paid.trid, amount_in_cents=9999, format="xml")
    assert over.status_code == 409 and "<return_code>5051</return_code>" in over.text


def test_idempotency_key_replays_the_first_reply_and_refunds_once(
    runtime: Runtime, client: TestClient, creds: NewCredentials, paid: Transaction
) -> None:
    token = token_for(client, creds)
    headers = {"Idempotency-Key": "refund-1"}
    first = refund(client, token, paid.trid, headers, amount_in_cents=300)
    second = refund(client, token, paid.trid, headers, amount_in_cents=300)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert [r.amount for r in refunds_of(runtime, paid)] == [300]
    other = refund(client, token, paid.trid, headers, amount_in_cents=301)
    assert other.json()["return_code"] == "5030"


def test_a_provider_refusal_records_nothing_and_frees_the_key(
    runtime: Runtime,
    client: TestClient,
    creds: NewCredentials,
    paid: Transaction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SandboxProvider, "refund", _refuse)
    token = token_for(client, creds)
    headers = {"Idempotency-Key": "refund-2"}
    reply = refund(client, token, paid.trid, headers, amount_in_cents=300)
    assert (reply.status_code, reply.json()["return_code"]) == (409, "5053")
    assert "nothing was refunded" in reply.json()["return_message"]
    assert refunds_of(runtime, paid) == [] and refund_callbacks(runtime, paid) == []
    monkeypatch.undo()
    # The key was given back: the same request now refunds.
    retried = refund(client, token, paid.trid, headers, amount_in_cents=300)
    assert retried.status_code == 200, retried.text


def test_concurrent_refunds_never_add_up_past_the_total(
    runtime: Runtime, creds: NewCredentials, paid: Transaction
) -> None:
    """Eight refunds of 400 of a 1500 transaction at once: three succeed, the rest are refused
    (5051), whatever the order; the transaction's row lock (PostgreSQL) or SQLite's single
    writer serialise the reservations."""
    with TestClient(create_app(runtime), client=("203.0.113.7", 50000)) as client:
        token = token_for(client, creds)
        barrier = threading.Barrier(8)
        codes: list[str] = []

        def one() -> None:
            barrier.wait()
            reply = refund(client, token, paid.trid, amount_in_cents=400)
            codes.append(reply.json()["return_code"])

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(codes) == ["0"] * 3 + ["5051"] * 5
    assert sum(r.amount for r in refunds_of(runtime, paid)) == 1200
    assert reload(runtime, paid).refunded_amount == 1200


# --- Stripe (the local stand-in) -----------------------------------------------------------------


@pytest.fixture
def stripe_paid(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, creds: NewCredentials
) -> Transaction:
    update_account(
        runtime,
        creds.account,
        provider="stripe",
        provider_public_key="pk_test_merchant",
        provider_private_key_encrypted=runtime.encryptor.encrypt(SECRET_KEY),
    )
    transaction = make_transaction(runtime, creds.account)
    page = stripe_client.get(pay_path(transaction))
    start = stripe_client.post(
        pay_path(transaction) + "/start",
        data={"csrf_token": csrf_of(page.text), "lang": "EN"},
        follow_redirects=False,
    )
    session_id = start.headers["location"].rsplit("/", 1)[1]
    fake.pay(session_id)
    back = stripe_client.get(
        f"{pay_path(transaction)}/return?session_id={session_id}", follow_redirects=False
    )
    assert back.status_code == 303
    assert reload(runtime, transaction).status == "PAID"
    return transaction


def deliver(client: TestClient, fake: FakeStripe, creds: NewCredentials, payload: bytes) -> Any:
    secret = fake.webhook_endpoints[-1]["secret"]
    reply = client.post(
        f"/webhooks/stripe/{creds.account.uid}",
        content=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": fake.sign(payload, secret),
        },
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_stripe_refund_uses_an_idempotency_key_from_our_refund_id_and_its_webhook_adds_nothing(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    creds: NewCredentials,
    stripe_paid: Transaction,
) -> None:
    reply = refund(
        stripe_client, token_for(stripe_client, creds), stripe_paid.trid, amount_in_cents=700
    )
    assert reply.status_code == 200, reply.text
    ours = reply.json()["refund"]
    assert len(fake.refunds) == 1
    made = fake.refunds[0]
    assert made["amount"] == 700 and made["metadata"]["mobip_refund_id"] == ours["refund_id"]
    assert fake.refund_keys == {f"mobip-{ours['refund_id']}": made}
    assert ours["provider_reference"] == made["id"]
    # Stripe's events about that refund (each type, and one twice) record nothing more.
    for event_type in ("refund.created", "refund.updated", "charge.refunded"):
        deliver(stripe_client, fake, creds, fake.refund_event(event_type, made))
    assert [r.amount for r in refunds_of(runtime, stripe_paid)] == [700]
    assert reload(runtime, stripe_paid).refunded_amount == 700


def test_a_refund_made_in_stripes_dashboard_is_recorded_once_with_its_callback(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    creds: NewCredentials,
    stripe_paid: Transaction,
) -> None:
    intent = next(s["payment_intent"] for s in fake.sessions.values() if s["payment_intent"])
    made = fake.add_refund(intent, 1500)
    event = fake.refund_event("charge.refunded", made)
    assert deliver(stripe_client, fake, creds, event)["result"] == "refunds recorded: 1"
    assert deliver(stripe_client, fake, creds, event)["result"] == "duplicate"
    later = deliver(stripe_client, fake, creds, fake.refund_event("refund.updated", made))
    assert later["result"] == "refunds recorded: 0"
    stored = refunds_of(runtime, stripe_paid)
    assert [(r.amount, r.source, r.provider_reference) for r in stored] == [
        (1500, "provider", made["id"])
    ]
    assert reload(runtime, stripe_paid).is_refunded
    assert len(refund_callbacks(runtime, stripe_paid)) == 1
    # Nothing left for refund_transaction.
    again = refund(stripe_client, token_for(stripe_client, creds), stripe_paid.trid)
    assert again.json()["return_code"] == "5052"


def test_stripe_down_records_nothing(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    creds: NewCredentials,
    stripe_paid: Transaction,
) -> None:
    fake.failing["/v1/refunds"] = 500
    reply = refund(stripe_client, token_for(stripe_client, creds), stripe_paid.trid)
    assert (reply.status_code, reply.json()["return_code"]) == (409, "5053")
    assert "Stripe" in reply.json()["return_message"]
    assert refunds_of(runtime, stripe_paid) == []
    assert reload(runtime, stripe_paid).refunded_amount == 0
    with runtime.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == 0


# --- refunds a stopped process left PENDING (checkout/tasks.py) ----------------------------------


def _reserve_and_stop(
    runtime: Runtime, creds: NewCredentials, paid: Transaction, amount: int
) -> None:
    """The first unit of work of refund_transaction committed, then the process stopped: no
    provider call, no outcome recorded."""
    with runtime.database.transaction() as session:
        refunds.plan_refund(session, creds.account, paid.trid, amount, runtime)


def test_a_refund_left_pending_by_a_stop_is_settled_by_the_worker_once_stale(
    runtime: Runtime, creds: NewCredentials, paid: Transaction, clock: ManualClock
) -> None:
    _reserve_and_stop(runtime, creds, paid, 400)
    assert [r.status for r in refunds_of(runtime, paid)] == ["PENDING"]
    assert checkout_tasks.settle_stale_refunds(runtime) == 0  # not stale yet: may be in progress
    clock.advance(seconds=checkout_tasks.STALE_AFTER.total_seconds() + 1)
    assert checkout_tasks.settle_stale_refunds(runtime) == 1
    [settled] = refunds_of(runtime, paid)
    assert settled.status == "SUCCEEDED" and settled.provider_reference
    assert reload(runtime, paid).refunded_amount == 400
    [callback] = refund_callbacks(runtime, paid)
    assert callback["extra"]["refund_amount_in_cents"] == "400"
    assert checkout_tasks.settle_stale_refunds(runtime) == 0  # once


def test_a_stale_refund_the_provider_refuses_is_released(
    runtime: Runtime,
    creds: NewCredentials,
    paid: Transaction,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _reserve_and_stop(runtime, creds, paid, 1500)
    monkeypatch.setattr(SandboxProvider, "refund", _refuse)
    clock.advance(seconds=checkout_tasks.STALE_AFTER.total_seconds() + 1)
    assert checkout_tasks.settle_stale_refunds(runtime) == 1
    assert refunds_of(runtime, paid) == [] and refund_callbacks(runtime, paid) == []
    assert reload(runtime, paid).refunded_amount == 0
