"""Two tabs paying one transaction at once, and a double-submitted form: exactly one payment.

A real uvicorn server on loopback and concurrent HTTP clients released together by a barrier.
The guard is the database's (the row lock and ``change_status``'s compare-and-set); it matters
most on PostgreSQL, where requests really run in parallel; SQLite serialises the writers.

The Stripe cases talk to ``checkout.fake_stripe.FakeStripe``, a local HTTP server on loopback
answering like Stripe's API (not Stripe itself).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from checkout.fake_stripe import SECRET_KEY, FakeStripe
from checkout.support import (
    attempts,
    card,
    csrf_of,
    outbox,
    reload,
    serve_app,
    update_account,
)
from factories import make_account, make_transaction
from mobip.accounts.models import Account
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

TABS = 6


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def base(runtime: Runtime, fake: FakeStripe) -> Iterator[str]:
    runtime.settings.stripe_api_base = fake.url
    with serve_app(runtime) as url:
        yield url


def together(calls: list[tuple[httpx.Client, str]]) -> list[httpx.Response]:
    """GET each (client, path) from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def call(item: tuple[httpx.Client, str]) -> httpx.Response:
        client, path = item
        barrier.wait()
        return client.get(path)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(call, calls))


def stripe_merchant(runtime: Runtime) -> Account:
    merchant = make_account(runtime).account
    update_account(
        runtime,
        merchant,
        provider="stripe",
        provider_private_key_encrypted=runtime.encryptor.encrypt(SECRET_KEY),
    )
    return merchant


def open_session(client: httpx.Client, transaction: Transaction) -> str:
    path = f"/pay/{transaction.checkout_token}"
    token = csrf_of(client.get(path).text)
    reply = client.post(path + "/start", data={"csrf_token": token})
    assert reply.status_code == 303, reply.text
    return reply.headers["location"].rsplit("/", 1)[1]


def test_concurrent_payments_take_exactly_one(runtime: Runtime, base: str) -> None:
    merchant = make_account(runtime).account
    transaction = make_transaction(runtime, merchant)
    path = f"/pay/{transaction.checkout_token}"
    # Half the submissions come from separate tabs (own cookie and form), the other half are
    # the same form sent again (a double click): same cookie, same token.
    tabs = [httpx.Client(base_url=base, timeout=60) for _ in range(TABS // 2)]
    forms = [csrf_of(tab.get(path).text) for tab in tabs]
    senders = [(tab, token) for tab, token in zip(tabs, forms, strict=True)] * 2
    barrier = threading.Barrier(len(senders))

    def submit(sender: tuple[httpx.Client, str]) -> httpx.Response:
        tab, token = sender
        barrier.wait()
        return tab.post(path, data={"csrf_token": token, **card()})

    try:
        with ThreadPoolExecutor(len(senders)) as pool:
            replies = list(pool.map(submit, senders))
    finally:
        for tab in tabs:
            tab.close()

    redirected = [r for r in replies if r.status_code == 303]
    assert len(redirected) == 1, [r.status_code for r in replies]
    # The one payment goes on to our confirmation page; the others are shown that same page.
    assert redirected[0].headers["location"] == f"{path}?lang=EN&paid=1"
    others = [r for r in replies if r.status_code != 303]
    assert {r.status_code for r in others} == {409}
    for reply in others:
        assert re.search(r"<h1[^>]*>Payment successful</h1>", reply.text)
    assert reload(runtime, transaction).status == "PAID"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["paid"]
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("callback") == 1 and kinds.count("receipt") == 1


def test_two_tabs_paid_on_stripe_at_once_keep_one_payment(
    runtime: Runtime, base: str, fake: FakeStripe
) -> None:
    transaction = make_transaction(runtime, stripe_merchant(runtime))
    tabs = [httpx.Client(base_url=base, timeout=60) for _ in range(2)]
    try:
        first = open_session(tabs[0], transaction)
        fake.expire(first)  # so that the second tab gets a session of its own…
        second = open_session(tabs[1], transaction)
        fake.sessions[first]["status"] = "open"
        fake.pay(first)  # …and Stripe takes both payments
        fake.pay(second)
        path = f"/pay/{transaction.checkout_token}/return?session_id="
        replies = together([(tabs[0], path + first), (tabs[1], path + second)])
    finally:
        for tab in tabs:
            tab.close()
    assert sorted(r.status_code for r in replies) == [303, 409], [r.text for r in replies]
    [kept] = [r for r in replies if r.status_code == 303]
    [late] = [r for r in replies if r.status_code == 409]
    assert kept.headers["location"] == f"/pay/{transaction.checkout_token}?lang=EN&paid=1"
    assert re.search(r"<h1[^>]*>Payment successful</h1>", late.text)
    assert "has been refunded" in late.text
    assert reload(runtime, transaction).status == "PAID"
    outcomes = sorted(a.outcome for a in attempts(runtime, transaction))
    assert outcomes == ["duplicate", "paid", "started", "started"]
    assert len(fake.refunds) == 1
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("callback") == 1 and kinds.count("receipt") == 1


def test_the_return_and_the_webhook_of_one_payment_at_once_apply_it_once(
    runtime: Runtime, base: str, fake: FakeStripe
) -> None:
    merchant = stripe_merchant(runtime)
    transaction = make_transaction(runtime, merchant)
    with httpx.Client(base_url=base, timeout=60) as tab, httpx.Client(base_url=base) as stripe:
        session_id = open_session(tab, transaction)
        fake.pay(session_id)
        payload = fake.event("checkout.session.completed", session_id)
        signature = fake.sign(payload, fake.webhook_endpoints[-1]["secret"])
        barrier = threading.Barrier(2)

        def webhook() -> httpx.Response:
            barrier.wait()
            return stripe.post(
                f"/webhooks/stripe/{merchant.uid}",
                content=payload,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )

        def customer() -> httpx.Response:
            barrier.wait()
            return tab.get(f"/pay/{transaction.checkout_token}/return?session_id={session_id}")

        with ThreadPoolExecutor(2) as pool:
            hook, back = pool.submit(webhook), pool.submit(customer)
            assert hook.result().status_code == 200
            assert back.result().status_code == 303
    assert reload(runtime, transaction).status == "PAID"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started", "paid"]
    assert fake.refunds == []
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("callback") == 1 and kinds.count("receipt") == 1
