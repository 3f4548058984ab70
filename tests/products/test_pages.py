"""The product page of a reusable QR code, its Pay (a new transaction each time), a disabled
QR's 410, the management endpoints and the poster, through the ASGI app (both databases)."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pypdfium2
import pytest
from pypdf import PdfReader
from sqlalchemy import select
from starlette.testclient import TestClient

from callback_receiver import Receiver
from checkout.support import card, csrf_of, outbox
from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.app import create_app
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction
from products.support import count_transactions, create, reusable_qr
from transactions.support import decode_png

API = "/api/2.0/mobip"


@pytest.fixture
def qr(client: TestClient, token: str, photos: Receiver) -> dict[str, Any]:
    fields = reusable_qr(
        photos.url("/photo.png"),
        item_video="https://video.example/mug",
        call_back_url="https://shop.example/callback",
        redirect_url="https://shop.example/thanks",
    )
    reply = create(client, token, **fields)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    body["path"] = f"/p/{body['qr_id']}"
    return body


def start(client: TestClient, path: str, **fields: str) -> httpx.Response:
    page = client.get(path)
    data = {"csrf_token": csrf_of(page.text), "quantity": "1", "lang": "EN", **fields}
    return client.post(path, data=data, follow_redirects=False)


def transactions_of(runtime: Runtime, qr_id: str) -> list[Transaction]:
    with runtime.database.transaction() as session:
        return list(
            session.scalars(
                select(Transaction).where(Transaction.qr_id == qr_id).order_by(Transaction.id)
            )
        )


def get_qr(client: TestClient, token: str, qr_id: str) -> httpx.Response:
    return client.get(f"{API}/get_reusable_qr", params={"access_token": token, "qr_id": qr_id})


def test_the_page_shows_the_product_with_the_checkout_look(
    client: TestClient, qr: dict[str, Any]
) -> None:
    page = client.get(qr["path"], headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.status_code == 200
    text = page.text
    assert "<h1" in text and "Blue mug" in text
    assert "Maison Dupré" in text and "Kitchen" in text
    assert "TEST MODE" in text  # the sandbox merchant: its payments are tests
    assert "Hand-made in Lyon." in text
    assert "€15.00" in text  # the price with its tax
    assert '<link rel="stylesheet" href="/pay/static/checkout.css">' in text
    assert re.search(r'<img class="product-photo" src="/p/photos/[0-9a-f]{64}\.jpg"', text)
    assert '<label for="quantity">Quantity</label>' in text
    assert "Your name" in text and "Your e-mail" in text
    assert re.search(r"</svg> Pay</button>", text)
    assert (
        '<a class="product-video" href="https://video.example/mug" target="_blank" '
        'rel="noopener noreferrer">' in text
    )
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "form-action 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "mobip_csrf=" in page.headers["set-cookie"] and "Path=/p" in page.headers["set-cookie"]


def test_the_page_speaks_french_by_accept_language_or_the_qr_language(
    client: TestClient, token: str, photos: Receiver, qr: dict[str, Any]
) -> None:
    french = client.get(qr["path"], headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in french.text
    assert '<label for="quantity">Quantité</label>' in french.text
    assert "15,00" in french.text
    # The QR's own language wins over the browser's; ?lang= over both.
    reply = create(client, token, **reusable_qr(photos.url("/photo.png"), language="fr"))
    path = f"/p/{reply.json()['qr_id']}"
    assert '<html lang="fr">' in client.get(path, headers={"Accept-Language": "en"}).text
    assert '<html lang="en">' in client.get(path + "?lang=EN").text


def test_pay_starts_a_new_transaction_and_redirects_to_its_checkout(
    client: TestClient, runtime: Runtime, token: str, qr: dict[str, Any]
) -> None:
    reply = start(
        client, qr["path"], quantity="2", customer_name="Ada", customer_email="ada@example.com"
    )
    assert reply.status_code == 303
    [transaction] = transactions_of(runtime, qr["qr_id"])
    assert reply.headers["location"] == f"/pay/{transaction.checkout_token}"
    assert (transaction.item_amount, transaction.tax_amount) == (2500, 500)
    assert transaction.quantity == 2
    assert transaction.track_id == "MUG-BLUE"
    assert transaction.call_back_url == "https://shop.example/callback"
    assert transaction.redirect_url == "https://shop.example/thanks"
    assert transaction.customer_email == "ada@example.com"
    assert transaction.status == "PENDING"
    assert transaction.kind == "product_payment"
    assert transaction.expires_at - transaction.created_at == __import__("datetime").timedelta(
        days=1
    )
    # Paid like any transaction: the callback names its trid and the QR's reference.
    page = client.get(reply.headers["location"])
    paid = client.post(
        reply.headers["location"],
        data={"csrf_token": csrf_of(page.text), **card()},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    callbacks = [p for kind, _, p in outbox(runtime, transaction) if kind == "callback"]
    assert callbacks == [
        {"trid": transaction.trid, "track_id": "MUG-BLUE", "resp_code": "PROCESSED"}
    ]
    data = client.get(
        f"{API}/get_transaction", params={"access_token": token, "trid": transaction.trid}
    ).json()["transaction_data"]
    assert (data["qr_id"], data["quantity"], data["transaction_status"]) == (
        qr["qr_id"],
        "2",
        "PAID",
    )
    assert data["total_amount_in_cents"] == "3000"
    # A second customer: a second, different transaction; the QR counts both payments.
    second = start(client, qr["path"])
    assert second.status_code == 303
    first_trid, second_trid = (t.trid for t in transactions_of(runtime, qr["qr_id"]))
    assert first_trid != second_trid
    stats = get_qr(client, token, qr["qr_id"]).json()["reusable_qr"]
    assert (stats["payments_count"], stats["payments_amount"]) == ("1", "3000")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": "0"}, "Enter a whole number from 1 to 99."),
        ({"quantity": "100"}, "Enter a whole number from 1 to 99."),
        ({"quantity": "two"}, "Enter a whole number from 1 to 99."),
        ({"customer_email": "not-an-address"}, "Enter a valid e-mail address"),
    ],
)
def test_invalid_form_fields_are_said_under_their_field(
    client: TestClient, runtime: Runtime, qr: dict[str, Any], fields: dict[str, str], message: str
) -> None:
    reply = start(client, qr["path"], **fields)
    assert reply.status_code == 400
    assert message in reply.text
    assert 'aria-invalid="true"' in reply.text
    assert count_transactions(runtime) == 0


def test_pay_without_the_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, qr: dict[str, Any]
) -> None:
    client.get(qr["path"])
    reply = client.post(qr["path"], data={"quantity": "1"}, follow_redirects=False)
    assert reply.status_code == 403
    assert count_transactions(runtime) == 0


def test_pay_is_rate_limited_per_client(
    client: TestClient, runtime: Runtime, qr: dict[str, Any]
) -> None:
    limit = runtime.settings.checkout_max_attempts_per_client
    for _ in range(limit):
        assert start(client, qr["path"]).status_code == 303
    refused = start(client, qr["path"])
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert count_transactions(runtime) == limit


def test_the_per_client_limit_is_shared_by_every_server_process(
    client: TestClient, runtime: Runtime, clock: ManualClock, qr: dict[str, Any]
) -> None:
    """Two apps on one database (`mobip serve --workers 2`): the starts are rows, so a client
    that used half its budget on each is refused by both, and another client is not."""
    runtime.settings.checkout_max_attempts_per_client = 4
    twin = Runtime(runtime.settings, runtime.database, runtime.clock)
    with TestClient(create_app(twin), client=("203.0.113.7", 50001)) as other:
        for app in (client, other, client, other):
            assert start(app, qr["path"]).status_code == 303
        assert start(other, qr["path"]).status_code == 429
        assert start(client, qr["path"]).status_code == 429
        clock.advance(seconds=runtime.settings.checkout_attempt_window_seconds)
        assert start(other, qr["path"]).status_code == 303  # the window moved on
    with TestClient(create_app(twin), client=("198.51.100.2", 50000)) as stranger:
        assert start(stranger, qr["path"]).status_code == 303
    assert count_transactions(runtime) == 6


def test_a_disabled_qr_shows_410_and_starts_nothing(
    client: TestClient, runtime: Runtime, token: str, qr: dict[str, Any]
) -> None:
    started = start(client, qr["path"])  # begun before the QR is disabled
    page = client.get(qr["path"])
    reply = client.post(
        f"{API}/disable_reusable_qr", files=form(access_token=token, qr_id=qr["qr_id"])
    )
    assert reply.json() == {"return_code": "0", "qr_id": qr["qr_id"], "status": "DISABLED"}
    gone = client.get(qr["path"])
    assert gone.status_code == 410
    assert "No longer available" in gone.text
    assert "<form" not in gone.text and "Pay</button>" not in gone.text
    posted = client.post(
        qr["path"],
        data={"csrf_token": csrf_of(page.text), "quantity": "1"},
        follow_redirects=False,
    )
    assert posted.status_code == 410
    assert count_transactions(runtime) == 1
    # The payment started before still finishes.
    checkout = client.get(started.headers["location"])
    paid = client.post(
        started.headers["location"],
        data={"csrf_token": csrf_of(checkout.text), **card()},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert get_qr(client, token, qr["qr_id"]).json()["reusable_qr"]["payments_count"] == "1"
    # Enabled again: payments start again.
    client.post(f"{API}/enable_reusable_qr", files=form(access_token=token, qr_id=qr["qr_id"]))
    assert start(client, qr["path"]).status_code == 303


def test_an_unknown_qr_is_a_404_page(client: TestClient) -> None:
    for path in ("/p/qr_AAAAAAAAAAAAAAAAAAAAAA", "/p/nonsense", "/p/photos/nope.jpg"):
        reply = client.get(path)
        assert reply.status_code == 404, path
    assert "Product not found" in client.get("/p/qr_AAAAAAAAAAAAAAAAAAAAAA").text
    assert client.get("/qr/qr_AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_get_reusable_qr_gives_every_field(
    client: TestClient, token: str, qr: dict[str, Any], merchant: NewCredentials
) -> None:
    data = get_qr(client, token, qr["qr_id"]).json()["reusable_qr"]
    assert data["status"] == "ACTIVE"
    assert (data["item_amount"], data["tax_amount"], data["currency"]) == ("1250", "250", "EUR")
    assert data["item_name"] == "Blue mug"
    assert data["item_reference"] == "MUG-BLUE"
    assert data["item_video"] == "https://video.example/mug"
    assert data["url_checkout"] == qr["url_checkout"] and data["url_qr"] == qr["url_qr"]
    assert (data["payments_count"], data["payments_amount"]) == ("0", "0")
    assert data["merchant_uid"] == merchant.account.uid
    xml = client.get(
        f"{API}/get_reusable_qr",
        params={"access_token": token, "qr_id": qr["qr_id"], "format": "xml"},
    )
    assert xml.status_code == 200 and "<item_name>Blue mug</item_name>" in xml.text


def test_other_merchants_get_the_same_404_and_parents_read(
    client: TestClient, runtime: Runtime, photos: Receiver
) -> None:
    partner = make_account(runtime, role=Role.PARTNER)
    child = make_account(runtime, parent=partner)
    stranger = make_account(runtime)
    child_token = token_for(client, child)
    qr_id = create(client, child_token, **reusable_qr(photos.url("/photo.png"))).json()["qr_id"]
    refused = get_qr(client, token_for(client, stranger), qr_id)
    unknown = get_qr(client, token_for(client, stranger), "qr_AAAAAAAAAAAAAAAAAAAAAA")
    assert refused.status_code == unknown.status_code == 404
    assert refused.json() == unknown.json()
    assert refused.json()["return_code"] == "4020"
    stranger_token = token_for(client, stranger)
    disable = client.post(
        f"{API}/disable_reusable_qr", files=form(access_token=stranger_token, qr_id=qr_id)
    )
    assert disable.status_code == 404
    partner_token = token_for(client, partner)
    assert get_qr(client, partner_token, qr_id).status_code == 200
    listed = client.get(f"{API}/get_reusable_qr_list", params={"access_token": partner_token})
    assert [q["qr_id"] for q in listed.json()["reusable_qrs"]] == [qr_id]
    empty = client.get(f"{API}/get_reusable_qr_list", params={"access_token": stranger_token})
    assert empty.json()["reusable_qrs"] == []


def test_the_list_is_newest_first_and_keyset_paginated(
    client: TestClient, token: str, photos: Receiver
) -> None:
    ids = [
        create(
            client, token, **reusable_qr(photos.url("/photo.png"), item_name=f"Item {n}")
        ).json()["qr_id"]
        for n in range(5)
    ]
    seen: list[str] = []
    after: str | None = None
    while True:
        params = {
            "access_token": token,
            "limit": "2",
            **({"starting_after": after} if after else {}),
        }
        body = client.get(f"{API}/get_reusable_qr_list", params=params).json()
        seen += [q["qr_id"] for q in body["reusable_qrs"]]
        if body["has_more"] == "false":
            break
        after = seen[-1]
    assert seen == ids[::-1]
    bad = client.get(
        f"{API}/get_reusable_qr_list",
        params={"access_token": token, "starting_after": "qr_AAAAAAAAAAAAAAAAAAAAAA"},
    )
    assert bad.status_code == 404 and "starting_after" in bad.json()["return_message"]


@pytest.mark.parametrize("paper", ["A4", "A6"])
def test_the_poster_is_a_one_page_pdf_with_the_name_price_and_a_qr_that_scans(
    client: TestClient, qr: dict[str, Any], paper: str
) -> None:
    reply = client.get(f"/qr/{qr['qr_id']}", params={"format": "pdf", "paper": paper})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(reply.content))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Blue mug" in text and "€15.00" in text and "Maison Dupré" in text
    assert "Scan to pay" in text
    document = pypdfium2.PdfDocument(reply.content)
    try:
        image = document[0].render(scale=4).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, "PNG")
    assert decode_png(out.getvalue()) == [qr["url_checkout"]]
    assert (
        client.get(f"/qr/{qr['qr_id']}", params={"format": "pdf", "paper": "A3"}).status_code == 400
    )
