from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.app import create_app
from mobip.delivery.models import OutboxMessage
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

URL = "/api/2.0/mobip/send_payment_request"
QR_URL = "/api/2.0/mobip/create_one_use_qr"
FIELDS = {
    "item_amount_in_cents": "1000",
    "tax_amount": "0",
    "redirect_url": "https://shop.example/ok",
    "item_name": "Tea",
    "customer_email": "c@example.com",
    "media": "EMAIL",
}


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.database.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(Transaction)) or 0,
            session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
        )


def send(client: TestClient, token: str, key: str | None, **overrides: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        URL, files=form(access_token=token, **{**FIELDS, **overrides}), headers=headers
    )


def test_same_key_same_parameters_replays_the_first_reply_byte_for_byte(
    client: TestClient, runtime: Runtime
) -> None:
    merchant = make_account(runtime)
    first = send(client, token_for(client, merchant), "order-1")
    # A new token (e.g. after the first expired) is still the same request.
    again = send(client, token_for(client, merchant), "order-1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert counts(runtime) == (1, 1)


def test_same_key_different_parameters_is_422_and_creates_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    token = token_for(client, make_account(runtime))
    assert send(client, token, "order-2").status_code == 200
    other = send(client, token, "order-2", item_amount_in_cents="2000")
    assert (other.status_code, other.json()["return_code"]) == (422, "5030")
    assert counts(runtime) == (1, 1)


def test_keys_are_per_account_and_expire_after_24_hours(
    client: TestClient, runtime: Runtime, clock: ManualClock
) -> None:
    alice = make_account(runtime, name="Alice")
    bob = make_account(runtime, name="Bob")
    assert send(client, token_for(client, alice), "k").status_code == 200
    assert send(client, token_for(client, bob), "k").status_code == 200
    assert counts(runtime) == (2, 2)
    clock.advance(hours=24)
    renewed = send(client, token_for(client, alice), "k", item_amount_in_cents="5")
    assert renewed.status_code == 200
    assert counts(runtime) == (3, 3)


def test_without_a_key_every_request_creates(client: TestClient, runtime: Runtime) -> None:
    token = token_for(client, make_account(runtime))
    send(client, token, None)
    send(client, token, None)
    assert counts(runtime) == (2, 2)


def test_a_failed_request_does_not_burn_the_key(client: TestClient, runtime: Runtime) -> None:
    token = token_for(client, make_account(runtime))
    bad = send(client, token, "k", media="FAX")
    assert bad.status_code == 400
    assert send(client, token, "k").status_code == 200
    assert counts(runtime) == (1, 1)


def test_bad_key_is_refused(client: TestClient, runtime: Runtime) -> None:
    token = token_for(client, make_account(runtime))
    reply = send(client, token, "k" * 256)
    assert (reply.status_code, reply.json()["return_code"]) == (400, "1002")
    assert "Idempotency-Key" in reply.json()["return_message"]
    assert counts(runtime) == (0, 0)


def test_one_use_qr_honours_the_key(client: TestClient, runtime: Runtime) -> None:
    token = token_for(client, make_account(runtime))
    fields = {
        "item_amount_in_cents": "100",
        "tax_amount_in_cents": "0",
        "redirect_url": "https://shop.example/ok",
        "call_back_url": "https://shop.example/cb",
        "item_name": "Tea",
    }
    replies = [
        client.post(
            QR_URL, files=form(access_token=token, **fields), headers={"Idempotency-Key": "q"}
        )
        for _ in range(2)
    ]
    assert replies[0].content == replies[1].content
    assert counts(runtime) == (1, 0)


def test_twenty_concurrent_identical_requests_create_exactly_one(
    client: TestClient, runtime: Runtime
) -> None:
    token = token_for(client, make_account(runtime))
    app = create_app(runtime)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(
                *(
                    http.post(
                        URL,
                        files=form(access_token=token, **FIELDS),
                        headers={"Idempotency-Key": "burst"},
                    )
                    for _ in range(20)
                )
            )

    replies = asyncio.run(burst())
    assert [r.status_code for r in replies] == [200] * 20, [r.text for r in replies]
    assert len({r.content for r in replies}) == 1
    assert counts(runtime) == (1, 1)
