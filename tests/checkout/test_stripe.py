"""Stripe with the merchant's keys, end to end through the app.

The official ``stripe`` library talks to a local HTTP server on loopback that answers like
Stripe's API for the calls MOBIP makes (``fake_stripe.FakeStripe``: Checkout Sessions, refunds,
webhook endpoints); MOBIP is pointed at it with ``MOBIP_STRIPE_API_BASE``. Webhooks are signed
the way Stripe signs them and checked by ``stripe.Webhook.construct_event``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from checkout.fake_stripe import SECRET_KEY, FakeStripe, parse_stripe_form
from checkout.support import (
    attempts,
    callback_codes,
    card,
    csrf_of,
    database_text,
    outbox,
    pay_path,
    reload,
    update_account,
)
from factories import form, make_account, make_transaction, token_for
from mobip.accounts.models import Account, Role
from mobip.checkout.models import ProviderEvent, ProviderWebhook
from mobip.checkout.providers.base import ProviderError
from mobip.checkout.providers.stripe import REFUND_EVENTS, SESSION_EVENTS, StripeProvider
from mobip.cli import app as cli_app
from mobip.kit.logging import JsonFormatter
from mobip.kit.runtime import Runtime
from mobip.kit.security import Encryptor
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    account = make_account(runtime, name="Café Lumière").account
    update_account(
        runtime,
        account,
        provider="stripe",
        provider_public_key="pk_test_merchant",
        provider_private_key_encrypted=runtime.encryptor.encrypt(SECRET_KEY),
    )
    return account


@pytest.fixture
def transaction(runtime: Runtime, merchant: Account) -> Transaction:
    return make_transaction(runtime, merchant)


def post_start(client: TestClient, transaction: Transaction, lang: str = "EN") -> httpx.Response:
    """The customer opens the page and presses "Continue to payment"."""
    page = client.get(pay_path(transaction))
    return client.post(
        pay_path(transaction) + "/start",
        data={"csrf_token": csrf_of(page.text), "lang": lang},
        follow_redirects=False,
    )


def start(client: TestClient, transaction: Transaction) -> str:
    reply = post_start(client, transaction)
    assert reply.status_code == 303, reply.text
    location: str = reply.headers["location"]
    return location


def session_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def webhook_secret(fake: FakeStripe) -> str:
    secret: str = fake.webhook_endpoints[-1]["secret"]
    return secret


def send_event(
    client: TestClient,
    merchant: Account,
    payload: bytes,
    signature: str | None,
) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    reply = client.post(f"/webhooks/stripe/{merchant.uid}", content=payload, headers=headers)
    return reply.status_code, reply.json()


def cancel(runtime: Runtime, merchant: Account, transaction: Transaction) -> None:
    """The merchant cancels ``transaction`` (through the transactions service, as the API does)."""
    with runtime.database.transaction() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        transactions_service.cancel(session, owner, transaction.trid, runtime.clock)


def deliver(
    client: TestClient, fake: FakeStripe, merchant: Account, payload: bytes
) -> tuple[int, dict[str, str]]:
    """``payload`` signed with the secret of the webhook MOBIP registered, as Stripe sends it."""
    return send_event(client, merchant, payload, fake.sign(payload, webhook_secret(fake)))


def test_fake_parses_stripe_form_encoding() -> None:
    parsed = parse_stripe_form(
        "line_items[0][quantity]=1&line_items[0][price_data][currency]=eur"
        "&line_items[1][quantity]=2&expand[0]=a.b&metadata[trid]=tr_1&mode=payment"
    )
    assert parsed == {
        "line_items": [{"quantity": "1", "price_data": {"currency": "eur"}}, {"quantity": "2"}],
        "expand": ["a.b"],
        "metadata": {"trid": "tr_1"},
        "mode": "payment",
    }


# --- starting --------------------------------------------------------------------------------


def test_the_page_sends_the_customer_to_a_checkout_session_for_the_transaction(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    page = stripe_client.get(pay_path(transaction))
    assert page.status_code == 200
    assert "Continue to payment" in page.text and "€15.00" in page.text
    assert 'name="card_number"' not in page.text and "TEST MODE" not in page.text
    csp = page.headers["content-security-policy"]
    assert f"form-action 'self' {fake.url};" in csp  # our forms, and the start to Stripe's page

    location = start(stripe_client, transaction)
    assert location.startswith(f"{fake.url}/c/pay/cs_test_")
    [created] = fake.created
    assert created["mode"] == "payment"
    assert created["client_reference_id"] == transaction.trid
    assert created["metadata"] == {"trid": transaction.trid}
    assert created["customer_email"] == "ada@example.com"
    assert created["locale"] == "en"
    assert created["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "eur",
                "unit_amount": "1250",
                "product_data": {"name": "Blue mug"},
            },
        },
        {
            "quantity": "1",
            "price_data": {
                "currency": "eur",
                "unit_amount": "250",
                "product_data": {"name": "Tax"},
            },
        },
    ]
    checkout = f"{BASE}/pay/{transaction.checkout_token}"
    assert created["success_url"] == f"{checkout}/return?session_id={{CHECKOUT_SESSION_ID}}"
    assert created["cancel_url"] == f"{checkout}?notice=not_completed"
    assert set(fake.authorizations) == {f"Bearer {SECRET_KEY}"}
    [attempt] = attempts(runtime, transaction)
    assert (attempt.outcome, attempt.provider_reference) == ("started", session_id_of(location))
    # MOBIP registered its webhook on the merchant's account; the secret is stored encrypted.
    [endpoint] = fake.webhook_endpoints
    assert endpoint["url"] == f"{BASE}/webhooks/stripe/{merchant.uid}"
    assert endpoint["enabled_events"] == [*SESSION_EVENTS, *REFUND_EVENTS]
    with runtime.database.transaction() as session:
        stored = session.scalars(select(ProviderWebhook)).one()
        assert runtime.encryptor.decrypt(stored.secret_encrypted) == endpoint["secret"]
    assert endpoint["secret"] not in database_text(runtime)
    assert SECRET_KEY not in database_text(runtime)


def test_a_second_start_resumes_the_open_session(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    first = start(stripe_client, transaction)
    assert start(stripe_client, transaction) == first
    assert len(fake.created) == 1 and len(fake.webhook_endpoints) == 1
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started"]
    fake.expire(session_id_of(first))
    assert start(stripe_client, transaction) != first
    assert len(fake.created) == 2


def test_stripe_down_changes_nothing_and_says_so(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    fake.fail_with = 500
    reply = post_start(stripe_client, transaction)
    assert reply.status_code == 409
    assert "The payment provider could not be reached" in reply.text and "5041" in reply.text
    assert reload(runtime, transaction).status == "PENDING"
    assert [(a.outcome, a.reason) for a in attempts(runtime, transaction)] == [
        ("error", "provider_unreachable")
    ]


def test_a_wrong_key_is_refused_by_stripe(
    runtime: Runtime,
    stripe_client: TestClient,
    merchant: Account,
    transaction: Transaction,
) -> None:
    update_account(
        runtime, merchant, provider_private_key_encrypted=runtime.encryptor.encrypt("sk_bad")
    )
    reply = post_start(stripe_client, transaction)
    assert reply.status_code == 409 and "5041" in reply.text
    assert reload(runtime, transaction).status == "PENDING"


# --- a merchant's key that cannot be decrypted (MOBIP_SECRET_KEY changed) ----------------------

# What the operator's previous MOBIP_SECRET_KEY encrypted: the current key cannot read it.
OLD_ENCRYPTOR = Encryptor("the-operators-previous-secret-key-" + "p" * 16)


def misconfiguration_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    """The checkout's ERROR lines, as production writes them (JSON with the extra fields)."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name.startswith("mobip.checkout.") and record.levelno == logging.ERROR
    ]


def assert_no_key_material(text: str, *ciphertexts: str) -> None:
    for secret in (SECRET_KEY, *ciphertexts):
        assert secret not in text


@pytest.mark.parametrize(
    ("lang", "title", "text"),
    [
        ("EN", "Payment unavailable", "This merchant cannot take payments at the moment."),
        ("FR", "Paiement indisponible", "Ce commerçant ne peut pas recevoir de paiements"),
    ],
)
def test_an_undecryptable_key_makes_payment_unavailable_and_changes_nothing(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    caplog: pytest.LogCaptureFixture,
    lang: str,
    title: str,
    text: str,
) -> None:
    caplog.set_level(logging.INFO)
    unreadable = OLD_ENCRYPTOR.encrypt(SECRET_KEY)
    update_account(runtime, merchant, provider_private_key_encrypted=unreadable)
    queued = outbox(runtime, transaction)
    assert [kind for kind, _, _ in queued] == ["payment_request"]

    reply = post_start(stripe_client, transaction, lang)
    assert reply.status_code == 503
    assert f"<h1>{title}</h1>" in reply.text and text in reply.text and "9040" in reply.text
    assert "Traceback" not in reply.text and "MOBIP_SECRET_KEY" not in reply.text
    assert_no_key_material(reply.text, unreadable)
    # The card form's "Pay" (posted to a page rendered before the merchant moved to Stripe).
    page = stripe_client.get(pay_path(transaction))
    paid = stripe_client.post(
        pay_path(transaction), data={**card(lang=lang), "csrf_token": csrf_of(page.text)}
    )
    assert paid.status_code == 503 and f"<h1>{title}</h1>" in paid.text

    # The merchant's configuration, not the customer's fault: nothing moved, nothing counted.
    unchanged = reload(runtime, transaction)
    assert (unchanged.status, unchanged.reason) == ("PENDING", None)
    assert unchanged.status_changed_at == transaction.status_changed_at
    assert attempts(runtime, transaction) == []
    assert outbox(runtime, transaction) == queued
    assert fake.authorizations == []  # Stripe was never called
    # The operator is told which account and why, without the key or its ciphertext.
    logged = misconfiguration_logs(caplog)
    assert len(logged) == 2
    for line in logged:
        assert line["level"] == "ERROR" and line["account_uid"] == merchant.uid
        assert line["reason"] == (
            "the stored Stripe secret key cannot be decrypted with MOBIP_SECRET_KEY"
        )
    formatter = JsonFormatter()
    assert_no_key_material("\n".join(formatter.format(r) for r in caplog.records), unreadable)


def test_an_undecryptable_key_at_the_return_or_webhook_applies_once_the_key_is_readable(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    readable = runtime.encryptor.encrypt(SECRET_KEY)
    unreadable = OLD_ENCRYPTOR.encrypt(SECRET_KEY)
    # The operator changes MOBIP_SECRET_KEY while the customer is on Stripe's page.
    update_account(runtime, merchant, provider_private_key_encrypted=unreadable)
    path = f"{pay_path(transaction)}/return?session_id={session_id}"
    reply = stripe_client.get(path, follow_redirects=False)
    assert reply.status_code == 503 and "Payment unavailable" in reply.text
    assert_no_key_material(reply.text, unreadable)
    payload = fake.event("checkout.session.completed", session_id)
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body["return_code"]) == (503, "9040")
    assert reload(runtime, transaction).status == "PENDING"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started"]
    assert [kind for kind, _, _ in outbox(runtime, transaction)] == ["payment_request"]
    with runtime.database.transaction() as session:  # not taken for handled: its retry applies
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
    assert [line["account_uid"] for line in misconfiguration_logs(caplog)] == [merchant.uid] * 2

    # The operator sets the key again: Stripe's retry of the webhook applies the payment.
    update_account(runtime, merchant, provider_private_key_encrypted=readable)
    assert deliver(stripe_client, fake, merchant, payload) == (
        200,
        {"return_code": "0", "result": "applied"},
    )
    assert reload(runtime, transaction).status == "PAID"
    back = stripe_client.get(path, follow_redirects=False)
    assert (back.status_code, back.headers["location"]) == (303, confirmation(transaction))


def test_an_undecryptable_webhook_secret_is_refused_until_it_is_readable(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    secret = webhook_secret(fake)
    unreadable = OLD_ENCRYPTOR.encrypt(secret)
    with runtime.database.transaction() as session:
        webhook = session.scalars(select(ProviderWebhook)).one()
        readable, webhook.secret_encrypted = webhook.secret_encrypted, unreadable
    payload = fake.event("checkout.session.completed", session_id)
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body["return_code"]) == (503, "9040")
    assert reload(runtime, transaction).status == "PENDING"
    [line] = misconfiguration_logs(caplog)
    assert line["account_uid"] == merchant.uid
    assert line["reason"] == (
        "the stored webhook signing secret cannot be decrypted with MOBIP_SECRET_KEY"
    )
    assert_no_key_material(json.dumps(line), secret, unreadable, readable)

    with runtime.database.transaction() as session:
        session.scalars(select(ProviderWebhook)).one().secret_encrypted = readable
    assert deliver(stripe_client, fake, merchant, payload)[0] == 200
    assert reload(runtime, transaction).status == "PAID"


def test_a_card_posted_to_a_stripe_merchant_is_refused_and_changes_nothing(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    # A card form (e.g. a page rendered before the merchant moved to Stripe): Stripe takes cards
    # on its own page only.
    page = stripe_client.get(pay_path(transaction))
    reply = stripe_client.post(
        pay_path(transaction),
        data={**card(), "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert reply.status_code == 409
    assert "<h1>Payment unavailable</h1>" in reply.text and "5040" in reply.text
    assert reload(runtime, transaction).status == "PENDING"
    assert attempts(runtime, transaction) == []
    assert fake.authorizations == []


def test_start_needs_the_csrf_token(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    stripe_client.get(pay_path(transaction))
    reply = stripe_client.post(pay_path(transaction) + "/start", data={"csrf_token": "0" * 64})
    assert reply.status_code == 403
    assert fake.created == [] and attempts(runtime, transaction) == []


def test_start_is_rate_limited(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    runtime.settings.checkout_max_attempts_per_transaction = 1
    start(stripe_client, transaction)
    reply = post_start(stripe_client, transaction)
    assert reply.status_code == 429 and "retry-after" in reply.headers
    assert len(fake.created) == 1


# --- the customer's return -------------------------------------------------------------------


def confirmation(transaction: Transaction) -> str:
    """Our confirmation page, where a paid customer is sent (it continues to the merchant)."""
    return f"{pay_path(transaction)}?lang=EN&paid=1"


def test_return_after_paying_marks_paid_and_redirects(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id, brand="mastercard", last4="4444")
    reply = stripe_client.get(
        f"{pay_path(transaction)}/return?session_id={session_id}", follow_redirects=False
    )
    assert (reply.status_code, reply.headers["location"]) == (303, confirmation(transaction))
    # Our confirmation page: the card as Stripe reported it, and the way on to the merchant.
    page = stripe_client.get(reply.headers["location"]).text
    assert "Payment successful" in page and "Mastercard •••• 4444" in page
    assert "TEST MODE" not in page  # Stripe moves real money (its own test mode is its own)
    link = re.search(r'<a class="button" id="continue" href="([^"]+)"', page)
    assert link is not None
    query = parse_qs(urlsplit(html.unescape(link.group(1))).query)
    assert query == {"order": ["7"], "trid": [transaction.trid], "status": ["PAID"]}
    paid = reload(runtime, transaction)
    assert (paid.status, paid.payment_method) == ("PAID", "card mastercard ****4444")
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("receipt") == 1 and kinds.count("callback") == 1
    assert [(a.outcome, a.provider_reference) for a in attempts(runtime, transaction)] == [
        ("started", session_id),
        ("paid", session_id),
    ]
    # Coming back to the return URL again (reload) redirects again and changes nothing.
    again = stripe_client.get(
        f"{pay_path(transaction)}/return?session_id={session_id}", follow_redirects=False
    )
    assert again.status_code == 303
    assert [kind for kind, _, _ in outbox(runtime, transaction)].count("callback") == 1


def test_stripe_down_at_the_return_changes_nothing_and_says_so(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    fake.fail_with = 500
    path = f"{pay_path(transaction)}/return?session_id={session_id}"
    reply = stripe_client.get(path, follow_redirects=False)
    assert reply.status_code == 409
    assert "The payment provider could not be reached" in reply.text and "5041" in reply.text
    assert reload(runtime, transaction).status == "PENDING"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started"]
    # Once Stripe answers again, coming back to the same URL applies the payment.
    fake.fail_with = None
    assert stripe_client.get(path, follow_redirects=False).status_code == 303
    assert reload(runtime, transaction).status == "PAID"


def test_return_without_payment_lets_the_customer_try_again(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    reply = stripe_client.get(f"{pay_path(transaction)}/return?session_id={session_id}")
    assert reply.status_code == 200
    assert "The payment was not completed. You can try again." in reply.text
    assert "Continue to payment" in reply.text
    assert reload(runtime, transaction).status == "PENDING"
    # Stripe's cancel URL says the same.
    cancelled = stripe_client.get(f"{pay_path(transaction)}?notice=not_completed")
    assert "The payment was not completed." in cancelled.text
    # A made-up session id is not asked for at all.
    calls = len(fake.authorizations)
    stripe_client.get(f"{pay_path(transaction)}/return?session_id=evil")
    assert len(fake.authorizations) == calls


def test_return_with_another_transactions_session_changes_nothing(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    other = make_transaction(runtime, merchant)
    session_id = session_id_of(start(stripe_client, other))
    fake.pay(session_id)
    reply = stripe_client.get(f"{pay_path(transaction)}/return?session_id={session_id}")
    assert reply.status_code == 200
    assert reload(runtime, transaction).status == "PENDING"
    assert reload(runtime, other).status == "PENDING"


def test_an_amount_that_does_not_match_is_an_error_never_paid(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, transaction: Transaction
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id, amount_total=1)
    reply = stripe_client.get(f"{pay_path(transaction)}/return?session_id={session_id}")
    assert "Payment error" in reply.text
    failed = reload(runtime, transaction)
    assert (failed.status, failed.reason) == ("ERROR", "AMOUNT_MISMATCH")
    assert callback_codes(runtime, transaction) == ["ERROR"]


# --- webhooks --------------------------------------------------------------------------------


def test_webhook_confirms_the_payment_once(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    payload = fake.event("checkout.session.completed", session_id, event_id="evt_1")
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body) == (200, {"return_code": "0", "result": "applied"})
    assert reload(runtime, transaction).status == "PAID"
    # Stripe delivers the same event again: recognised by its id, applied once.
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body["result"]) == (200, "duplicate")
    kinds = [kind for kind, _, _ in outbox(runtime, transaction)]
    assert kinds.count("callback") == 1 and kinds.count("receipt") == 1
    # The customer comes back afterwards: the same payment, straight to the merchant.
    back = stripe_client.get(
        f"{pay_path(transaction)}/return?session_id={session_id}", follow_redirects=False
    )
    assert (back.status_code, back.headers["location"]) == (303, confirmation(transaction))
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started", "paid"]


def test_an_event_stripe_cannot_confirm_is_not_recorded_so_its_retry_applies(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    payload = fake.event("checkout.session.completed", session_id, event_id="evt_1")
    fake.fail_with = 500  # the session the event names cannot be read again from Stripe
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert status == 409 and body["return_code"] == "5041"
    assert reload(runtime, transaction).status == "PENDING"
    with runtime.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
    # Stripe delivers the event again later: not taken for a duplicate, applied.
    fake.fail_with = None
    assert deliver(stripe_client, fake, merchant, payload) == (
        200,
        {"return_code": "0", "result": "applied"},
    )
    assert reload(runtime, transaction).status == "PAID"


@pytest.mark.parametrize("case", ["wrong secret", "tampered", "too old", "no signature"])
def test_webhook_signature_is_checked(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    case: str,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    fake.pay(session_id)
    payload = fake.event("checkout.session.completed", session_id)
    secret = webhook_secret(fake)
    signature: str | None = fake.sign(payload, secret)
    if case == "wrong secret":
        signature = fake.sign(payload, "whsec_other")
    elif case == "tampered":
        payload = payload.replace(b'"paid"', b'"unpaid"')
    elif case == "too old":
        signature = fake.sign(payload, secret, timestamp=int(time.time()) - 3600)
    else:
        signature = None
    status, body = send_event(stripe_client, merchant, payload, signature)
    assert status == 401 and body["return_code"] == "2010"
    assert reload(runtime, transaction).status == "PENDING"
    with runtime.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0


def test_webhook_for_an_unknown_or_non_stripe_account(
    runtime: Runtime, stripe_client: TestClient, fake: FakeStripe, merchant: Account
) -> None:
    payload = b'{"id": "evt_1"}'
    reply = stripe_client.post("/webhooks/stripe/acct_nobody", content=payload)
    assert reply.status_code == 404 and reply.json()["return_code"] == "4012"
    # A Stripe merchant whose webhook was never registered.
    reply = stripe_client.post(f"/webhooks/stripe/{merchant.uid}", content=payload)
    assert reply.status_code == 404
    sandbox_shop = make_account(runtime).account
    reply = stripe_client.post(f"/webhooks/stripe/{sandbox_shop.uid}", content=payload)
    assert reply.status_code == 404
    assert (
        stripe_client.post(f"/webhooks/sandbox/{sandbox_shop.uid}", content=payload).status_code
        == 404
    )


def test_old_or_out_of_order_events_never_move_a_status_backwards(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    before_paying = fake.event("checkout.session.async_payment_failed", session_id)
    fake.pay(session_id)
    completed = fake.event("checkout.session.completed", session_id)
    assert deliver(stripe_client, fake, merchant, completed)[0] == 200
    # An older failure arrives late: recorded as handled, but PAID stays PAID.
    status, body = deliver(stripe_client, fake, merchant, before_paying)
    assert (status, body["result"]) == (200, "recorded")
    paid = reload(runtime, transaction)
    assert (paid.status, paid.reason) == ("PAID", None)
    assert [a.outcome for a in attempts(runtime, transaction)] == ["started", "paid"]


def test_failed_async_payments_count_as_declines(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    for _ in range(3):
        payload = fake.event("checkout.session.async_payment_failed", session_id)
        assert deliver(stripe_client, fake, merchant, payload)[0] == 200
    denied = reload(runtime, transaction)
    assert (denied.status, denied.reason) == ("DENIED", "PAYMENT_FAILED")
    assert callback_codes(runtime, transaction) == ["PROCESSED"]


def test_other_events_are_acknowledged_and_ignored(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    payload = fake.event("checkout.session.expired", session_id)
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body["result"]) == (200, "ignored")
    assert reload(runtime, transaction).status == "PENDING"


def test_a_second_paid_session_is_refunded(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    first = session_id_of(start(stripe_client, transaction))
    fake.expire(first)  # the first tab's session ran out…
    second = session_id_of(start(stripe_client, transaction))
    fake.sessions[first]["status"] = "open"  # …but Stripe still took both payments
    fake.pay(first)
    fake.pay(second)
    for session_id in (first, second):
        payload = fake.event("checkout.session.completed", session_id)
        assert deliver(stripe_client, fake, merchant, payload)[0] == 200
    paid = reload(runtime, transaction)
    assert paid.status == "PAID"
    [refund] = fake.refunds
    assert refund["payment_intent"] == fake.sessions[second]["payment_intent"]
    assert refund["amount"] == 1500
    assert [(a.outcome, a.reason, a.provider_reference) for a in attempts(runtime, transaction)][
        -2:
    ] == [("paid", None, first), ("duplicate", "refunded", second)]
    assert [kind for kind, _, _ in outbox(runtime, transaction)].count("callback") == 1


def test_a_payment_after_the_link_was_cancelled_is_refunded_once(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    cancel(runtime, merchant, transaction)  # the merchant cancels meanwhile…
    fake.pay(session_id)  # …while the customer is paying on Stripe's page
    path = f"{pay_path(transaction)}/return?session_id={session_id}"
    reply = stripe_client.get(path)
    assert reply.status_code == 409
    assert "Payment cancelled" in reply.text
    assert "could not be applied to this link and has been refunded" in reply.text
    [refund] = fake.refunds
    assert (refund["payment_intent"], refund["amount"]) == (
        fake.sessions[session_id]["payment_intent"],
        1500,
    )
    assert reload(runtime, transaction).status == "CANCELLED"
    # The customer reloads, then Stripe's webhook arrives: nothing is refunded or recorded twice.
    assert "has been refunded" in stripe_client.get(path).text
    payload = fake.event("checkout.session.completed", session_id)
    assert deliver(stripe_client, fake, merchant, payload)[0] == 200
    assert len(fake.refunds) == 1
    assert [(a.outcome, a.reason) for a in attempts(runtime, transaction)] == [
        ("started", None),
        ("duplicate", "refunded"),
    ]
    assert callback_codes(runtime, transaction) == ["CANCELLED"]
    french = stripe_client.get(path + "&lang=FR").text
    assert "a été remboursé" in french


def test_a_refund_that_fails_is_recorded_said_and_logged_once(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session_id = session_id_of(start(stripe_client, transaction))
    cancel(runtime, merchant, transaction)
    fake.pay(session_id)
    fake.failing["/v1/refunds"] = 500
    path = f"{pay_path(transaction)}/return?session_id={session_id}"
    reply = stripe_client.get(path)
    assert reply.status_code == 409
    assert "Payment cancelled" in reply.text
    assert "It will be refunded; contact the merchant if you do not see the refund" in reply.text
    assert fake.refunds == [] and reload(runtime, transaction).status == "CANCELLED"
    assert [(a.outcome, a.reason) for a in attempts(runtime, transaction)] == [
        ("started", None),
        ("duplicate", "refund_failed"),
    ]
    failures = [
        r
        for r in caplog.records
        if r.name == "mobip.checkout.outcomes"
        and r.getMessage() == "could not refund a duplicate payment"
    ]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    # The webhook of the same payment: said the same way, neither tried nor recorded again.
    fake.failing.clear()
    payload = fake.event("checkout.session.completed", session_id)
    assert deliver(stripe_client, fake, merchant, payload)[0] == 200
    assert "It will be refunded" in stripe_client.get(path).text
    assert fake.refunds == []
    assert len(attempts(runtime, transaction)) == 2


def test_a_webhook_that_cannot_be_registered_does_not_stop_the_payment(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.failing["/v1/webhook_endpoints"] = 500
    session_id = session_id_of(start(stripe_client, transaction))
    assert fake.webhook_endpoints == []
    with runtime.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProviderWebhook)) == 0
    assert "could not register the Stripe webhook" in [r.getMessage() for r in caplog.records]
    # The customer's return still confirms the payment.
    fake.pay(session_id)
    back = stripe_client.get(
        f"{pay_path(transaction)}/return?session_id={session_id}", follow_redirects=False
    )
    assert (back.status_code, back.headers["location"]) == (303, confirmation(transaction))
    assert reload(runtime, transaction).status == "PAID"
    # The next start registers it.
    fake.failing.clear()
    start(stripe_client, make_transaction(runtime, merchant))
    [endpoint] = fake.webhook_endpoints
    assert endpoint["url"] == f"{BASE}/webhooks/stripe/{merchant.uid}"


def test_a_merchants_webhook_cannot_touch_another_merchants_transaction(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    merchant: Account,
    transaction: Transaction,
) -> None:
    other_shop = make_account(runtime, name="Other shop").account
    theirs = make_transaction(runtime, other_shop)
    session_id = session_id_of(start(stripe_client, transaction))
    # On its own Stripe account, this merchant makes a session claim the other shop's trid.
    fake.pay(session_id, client_reference_id=theirs.trid)
    payload = fake.event("checkout.session.completed", session_id)
    status, body = deliver(stripe_client, fake, merchant, payload)
    assert (status, body["result"]) == (200, "unknown transaction")
    assert reload(runtime, theirs).status == "PENDING"
    assert attempts(runtime, theirs) == []
    assert [kind for kind, _, _ in outbox(runtime, theirs)] == ["payment_request"]


# --- the adapter alone --------------------------------------------------------------------------


def test_refund_and_errors_of_the_adapter(fake: FakeStripe) -> None:
    provider = StripeProvider(SECRET_KEY, api_base=fake.url)
    fake.sessions["cs_test_1"] = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": "pi_1",
    }
    refund = provider.refund("cs_test_1", 700)
    assert refund.status == "succeeded" and refund.reference.startswith("re_")
    assert fake.refunds[-1]["payment_intent"] == "pi_1" and fake.refunds[-1]["amount"] == 700
    fake.sessions["cs_test_2"] = {
        **fake.sessions["cs_test_1"],
        "id": "cs_test_2",
        "payment_intent": None,
    }
    with pytest.raises(ProviderError, match="no payment"):
        provider.refund("cs_test_2", 700)
    with pytest.raises(ProviderError, match="AuthenticationError"):
        StripeProvider("sk_wrong", api_base=fake.url).refund("cs_test_1", 700)
    with pytest.raises(ValueError, match="positive"):
        provider.refund("cs_test_1", 0)


# --- choosing the provider: `mobip account set-provider`, keys through update_account ----------


def test_the_provider_is_set_by_the_cli_and_its_keys_by_update_account(
    runtime: Runtime,
    stripe_client: TestClient,
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    tmp_path: Path,
) -> None:
    partner = make_account(runtime, role=Role.PARTNER, name="Partner")
    shop = make_account(runtime, parent=partner, name="Shop")
    uid = shop.account.uid
    first = make_transaction(runtime, shop.account)
    assert "TEST MODE" in stripe_client.get(pay_path(first)).text  # the default: the sandbox

    # The operator's CLI, on the same database and with the same secret key (encryption).
    monkeypatch.setenv("MOBIP_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("MOBIP_SECRET_KEY", runtime.settings.resolved_secret_key)
    monkeypatch.setenv("MOBIP_STRIPE_API_BASE", fake.url)
    args = ["account", "set-provider", uid, "--provider", "stripe", "--private-key", SECRET_KEY]
    result = CliRunner().invoke(cli_app, [*args, "--public-key", "pk_test_shop"])
    assert result.exit_code == 0, result.output
    page = stripe_client.get(pay_path(first)).text
    assert "Continue to payment" in page and 'name="card_number"' not in page
    start(stripe_client, first)
    assert fake.authorizations and set(fake.authorizations) == {f"Bearer {SECRET_KEY}"}
    assert SECRET_KEY not in database_text(runtime)  # encrypted at rest

    # The partner replaces the merchant's key through the API: the next payment uses it, and
    # MOBIP registers its webhook again under the new key.
    rotated = "sk_test_rotated_" + "r" * 24
    fake.secret_keys.add(rotated)
    account_data = json.dumps({"Private_Payment_Provider_key": rotated})
    reply = stripe_client.request(
        "POST",
        "/api/2.0/mobip/update_account",
        files=form(
            access_token=token_for(stripe_client, partner), uid=uid, account_data=account_data
        ),
    )
    assert reply.status_code == 200, reply.text
    fake.authorizations.clear()
    second = make_transaction(runtime, shop.account)
    start(stripe_client, second)
    assert fake.authorizations and set(fake.authorizations) == {f"Bearer {rotated}"}
    assert len(fake.webhook_endpoints) == 2
    assert rotated not in database_text(runtime)

    # Back to the sandbox.
    result = CliRunner().invoke(cli_app, ["account", "set-provider", uid, "--provider", "sandbox"])
    assert result.exit_code == 0, result.output
    third = make_transaction(runtime, shop.account)
    assert "TEST MODE" in stripe_client.get(pay_path(third)).text
