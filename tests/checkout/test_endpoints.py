"""The hosted payment page with the sandbox provider, through the ASGI app (both databases)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from checkout.support import (
    DECLINED,
    NO_FUNDS,
    PAID,
    PROVIDER_ERROR,
    attempts,
    callback_codes,
    card,
    csrf_of,
    outbox,
    pay_path,
    reload,
    update_account,
)
from factories import make_account, make_transaction
from mobip.accounts.models import Account
from mobip.app import create_app
from mobip.checkout import csrf
from mobip.cli import app as cli_app
from mobip.config import Environment
from mobip.delivery import service as delivery_service
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction, TransactionKind


@pytest.fixture
def merchant(runtime: Runtime) -> Account:
    return make_account(runtime, name="Café Lumière").account


@pytest.fixture
def transaction(runtime: Runtime, merchant: Account) -> Transaction:
    return make_transaction(runtime, merchant)


def submit(
    client: TestClient, transaction: Transaction, number: str = PAID, **fields: str
) -> httpx.Response:
    page = client.get(pay_path(transaction))
    return client.post(
        pay_path(transaction),
        data={"csrf_token": csrf_of(page.text), **card(number, **fields)},
        follow_redirects=False,
    )


def heading(html: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert match
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def alert(html: str) -> str:
    match = re.search(r'role="alert">(.*?)</div>', html, re.S)
    assert match, "no alert on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# --- the payable page ------------------------------------------------------------------------


def test_payable_page_shows_merchant_item_amounts_customer_and_the_test_form(
    client: TestClient, transaction: Transaction
) -> None:
    page = client.get(pay_path(transaction))
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert "Café Lumière" in html and "Blue mug" in html and "Ada Lovelace" in html
    assert "€12.50" in html and "€2.50" in html and "€15.00" in html
    assert "TEST MODE" in html
    for label, name in [
        ("Card number", "card_number"),
        ("Expiry (MM/YY)", "expiry"),
        ("CVC", "cvc"),
        ("Name on card", "name_on_card"),
    ]:
        assert f'<label for="{name}">{label}</label>' in html
        assert f'id="{name}" name="{name}"' in html
    assert button(html) == "Pay €15.00"
    assert html.count("TEST MODE") == 1  # one discreet mark, not a banner and a panel
    assert "Customer" not in html  # the payer's name is in the form, not a summary row
    # Our own script only (formatting as you type), nothing from elsewhere.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/pay/static/checkout.js" defer>']
    assert "http://" not in html.replace("https://shop.example", "")


def button(html: str) -> str:
    """The text of the page's submit button (its accessible name)."""
    match = re.search(r'<button type="submit" class="pay">(.*?)</button>', html, re.S)
    assert match, "no Pay button"
    # Collapses spaces but keeps the no-break space French writes before "€".
    return re.sub(r"[ \t\n]+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


@pytest.mark.parametrize(
    ("language", "currency", "expected"),
    [("EN", "EUR", "Pay €15.00"), ("FR", "EUR", "Payer 15,00\u00a0€"), ("EN", "JPY", "Pay ¥1,500")],
)
def test_the_pay_button_says_the_total_as_the_language_writes_it(
    runtime: Runtime, client: TestClient, language: str, currency: str, expected: str
) -> None:
    shop = make_account(runtime, currency=currency).account
    amounts = (
        {"item_amount": 1250, "tax_amount": 250}
        if currency == "EUR"
        else {"item_amount": 1400, "tax_amount": 100}
    )
    transaction = make_transaction(runtime, shop, language=language, **amounts)
    assert button(client.get(pay_path(transaction)).text) == expected


def test_the_page_is_in_the_transactions_language_and_switchable(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    transaction = make_transaction(runtime, merchant, language="FR")
    french = client.get(pay_path(transaction)).text
    assert '<html lang="fr">' in french
    assert "MODE TEST" in french and "Numéro de carte" in french and "Payer" in french
    assert "12,50\u00a0€" in french and "15,00\u00a0€" in french
    english = client.get(pay_path(transaction) + "?lang=EN").text
    assert '<html lang="en">' in english and "Card number" in english and "€15.00" in english
    # The switch names the other language, in its own words.
    assert f'<a href="{pay_path(transaction)}?lang=FR" lang="fr" hreflang="fr">Français</a>' in (
        english
    )
    assert f'href="{pay_path(transaction)}?lang=EN"' in french and "Français</a>" not in french


def test_the_customer_name_prefills_the_name_on_card_only_when_known(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    anonymous = make_transaction(runtime, merchant, customer_name=None)
    html = client.get(pay_path(anonymous)).text
    assert "Blue mug" in html and "Ada Lovelace" not in html
    assert 'id="name_on_card" name="name_on_card" type="text" autocomplete="cc-name"' in html


def test_every_form_carries_the_csrf_token() -> None:
    from mobip.checkout import endpoints

    templates = Path(endpoints.__file__).parent / "templates"
    forms = [
        form
        for path in templates.glob("*.html")
        for form in re.findall(r"<form\b.*?</form>", path.read_text(), re.S)
    ]
    assert len(forms) == 2  # the card form and "continue to the provider"
    for form in forms:
        assert 'method="post"' in form
        assert '<input type="hidden" name="csrf_token" value="{{ csrf_token }}">' in form


def test_amounts_follow_the_currency(runtime: Runtime, client: TestClient) -> None:
    yen_shop = make_account(runtime, currency="JPY").account
    transaction = make_transaction(runtime, yen_shop, item_amount=1500, tax_amount=150)
    html = client.get(pay_path(transaction)).text
    assert "¥1,500" in html and "¥150" in html and "¥1,650" in html


def test_security_headers_on_pages_and_static_files(
    client: TestClient, transaction: Transaction
) -> None:
    for path in (pay_path(transaction), "/pay/static/checkout.css", "/pay/ck_unknown"):
        reply = client.get(path)
        csp = reply.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        # Scripts from our origin only (checkout.js): no inline script, no eval.
        assert "script-src 'self';" in csp and "unsafe" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert reply.headers["x-frame-options"] == "DENY"
    assert client.get("/pay/static/checkout.css").headers["content-type"].startswith("text/css")
    assert client.get(pay_path(transaction)).headers["cache-control"] == "no-store"
    # The card form ends on our own confirmation page: it posts nowhere else.
    page_csp = client.get(pay_path(transaction)).headers["content-security-policy"]
    assert "form-action 'self';" in page_csp
    assert "form-action 'self';" in client.get("/pay/ck_unknown").headers["content-security-policy"]
    script = client.get("/pay/static/checkout.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_unknown_link_is_a_404_page(client: TestClient) -> None:
    reply = client.get("/pay/ck_nothing_here")
    assert reply.status_code == 404
    assert heading(reply.text) == "Payment not found" and "4011" in reply.text
    assert client.get("/pay/" + "x" * 300).status_code == 404


# --- paying -----------------------------------------------------------------------------------


def test_paid_shows_the_confirmation_and_queues_receipt_and_callback(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    reply = submit(client, transaction)
    assert reply.status_code == 303
    location = urlsplit(reply.headers["location"])
    assert location.path == pay_path(transaction) and not location.netloc
    assert parse_qs(location.query) == {"lang": ["EN"], "paid": ["1"]}
    page = client.get(reply.headers["location"])
    assert heading(page.text) == "Payment successful"
    # It continues to the merchant's page by itself, and by a button.
    back = merchant_link(page.text)
    assert parse_qs(urlsplit(back).query) == {
        "order": ["7"],
        "trid": [transaction.trid],
        "status": ["PAID"],
    }
    # The continuation is checkout.js's (cancellable: WCAG 2.2.1), never a <meta refresh>.
    assert 'data-continue-after="6"' in page.text and 'id="stay"' in page.text
    assert '<script src="/pay/static/checkout.js" defer>' in page.text
    assert 'http-equiv="refresh"' not in page.text
    paid = reload(runtime, transaction)
    assert paid.status == "PAID" and paid.reason is None
    assert paid.payment_method == "card visa ****4242"
    kinds = [(kind, target, payload) for kind, target, payload in outbox(runtime, transaction)]
    assert (
        "receipt",
        "ada@example.com",
        {"trid": transaction.trid, "language": "EN", "test": True},
    ) in kinds
    callbacks = [payload for kind, _, payload in kinds if kind == "callback"]
    assert callbacks == [
        {"trid": transaction.trid, "track_id": "order-7", "resp_code": "PROCESSED"}
    ]
    [attempt] = attempts(runtime, transaction)
    assert (attempt.outcome, attempt.card_brand, attempt.card_last4) == ("paid", "visa", "4242")


def test_paid_status_receipt_and_callback_are_one_database_transaction(
    runtime: Runtime, merchant: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing the callback fails after the status and the receipt were written, none of
    them is kept: they are committed together or not at all."""
    transaction = make_transaction(runtime, merchant, language="FR")

    def broken_outbox(*args: object, **kwargs: object) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(delivery_service, "queue_callback", broken_outbox)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        assert submit(client, transaction).status_code == 500
        assert reload(runtime, transaction).status == "PENDING"
        assert [kind for kind, _, _ in outbox(runtime, transaction)] == ["payment_request"]
        assert attempts(runtime, transaction) == []
        monkeypatch.undo()
        assert submit(client, transaction).status_code == 303
    paid = reload(runtime, transaction)
    assert paid.status == "PAID"
    receipts = [(t, p) for k, t, p in outbox(runtime, transaction) if k == "receipt"]
    # The receipt goes in the transaction's language.
    assert receipts == [
        ("ada@example.com", {"trid": transaction.trid, "language": "FR", "test": True})
    ]


def test_hsts_when_served_over_https(runtime: Runtime, transaction: Transaction) -> None:
    runtime.settings.base_url = "https://pay.example"
    runtime.settings.__dict__.pop("resolved_base_url", None)
    with TestClient(create_app(runtime), base_url="https://pay.example") as client:
        page = client.get(pay_path(transaction))
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        assert "Secure" in page.headers["set-cookie"]


def input_value(page: str, name: str) -> str:
    """The value a page's input ``name`` holds."""
    match = re.search(rf'<input id="{name}" name="{name}"[^>]* value="([^"]*)"', page)
    assert match, f"no input {name}"
    return html.unescape(match.group(1))


def merchant_link(page: str) -> str:
    """Where the page's button leads back to the merchant."""
    match = re.search(r'<a class="button" id="continue" href="([^"]+)"', page)
    assert match, "no button back to the merchant"
    return html.unescape(match.group(1))


def confirmation_facts(page: str) -> dict[str, str]:
    """The confirmation page's check mark, title, amount, merchant, details and receipt line."""
    facts = {"title": heading(page)}
    facts["check mark"] = str('<svg class="check"' in page)
    for name, pattern in [
        ("amount", r'<p class="amount">(.*?)</p>'),
        ("paid to", r'<p class="paid-to">(.*?)</p>'),
        ("receipt", r'<p class="receipt-sent">(.*?)</p>'),
    ]:
        if (match := re.search(pattern, page, re.S)) is not None:
            facts[name] = html.unescape(match.group(1))
    for term, value in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", page):
        facts[html.unescape(term)] = html.unescape(re.sub(r"<[^>]+>", "", value))
    return facts


def test_the_confirmation_page_says_what_was_paid_with_which_card_and_where_the_receipt_went(
    client: TestClient, transaction: Transaction
) -> None:
    submit(client, transaction)
    page = client.get(pay_path(transaction))  # the link opened again later: the same page
    assert page.status_code == 200
    assert confirmation_facts(page.text) == {
        "title": "Payment successful",
        "check mark": "True",
        "amount": "€15.00",
        "paid to": "Paid to Café Lumière",
        "Date": "January 1, 2026, 12:00:00\u202fPM UTC",
        "Card": "Visa •••• 4242",
        "Item": "Blue mug",
        "Reference": transaction.trid,
        "receipt": "Receipt sent to a***@example.com",
    }
    assert "TEST MODE" in page.text  # a test payment stays marked after paying
    assert 'name="card_number"' not in page.text
    # Opened later, it does not leave by itself: only right after paying.
    assert "data-continue-after" not in page.text and "<script" not in page.text
    assert f"trid={transaction.trid}" in merchant_link(page.text)
    french = client.get(pay_path(transaction) + "?lang=FR").text
    facts = confirmation_facts(french)
    assert facts["title"] == "Paiement réussi" and facts["amount"] == "15,00\u00a0€"
    assert facts["Carte"] == "Visa •••• 4242" and "1 janvier 2026" in facts["Date"]
    assert facts["receipt"] == "Reçu envoyé à a***@example.com"


def test_a_paid_one_use_qr_shows_already_paid(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    qr = make_transaction(
        runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None, customer_email=None
    )
    assert submit(client, qr).status_code == 303
    facts = confirmation_facts(client.get(pay_path(qr)).text)
    assert facts["title"] == "Payment successful" and "receipt" not in facts
    # No customer e-mail and none typed: no receipt, the callback still goes.
    assert [kind for kind, _, _ in outbox(runtime, qr)] == ["callback"]


def test_paying_again_after_paid_takes_nothing(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    page = client.get(pay_path(transaction))
    token = csrf_of(page.text)
    first = client.post(
        pay_path(transaction), data={"csrf_token": token, **card()}, follow_redirects=False
    )
    assert first.status_code == 303
    second = client.post(
        pay_path(transaction), data={"csrf_token": token, **card()}, follow_redirects=False
    )
    assert second.status_code == 409
    assert heading(second.text) == "Payment successful"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["paid"]
    assert [k for k, _, _ in outbox(runtime, transaction)].count("callback") == 1


def test_declines_say_why_and_the_third_denies_the_transaction(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    first = submit(client, transaction, DECLINED)
    assert first.status_code == 402
    assert alert(first.text) == (
        "Your card was declined. Visa •••• 0002 — You can try again (2 attempts remaining)."
    )
    second = submit(client, transaction, NO_FUNDS)
    assert alert(second.text) == (
        "Your card was declined: insufficient funds. Visa •••• 9995 — "
        "You can try again (1 attempt remaining)."
    )
    assert reload(runtime, transaction).status == "PENDING"
    assert [k for k, _, _ in outbox(runtime, transaction)] == ["payment_request"]
    third = submit(client, transaction, DECLINED)
    assert third.status_code == 200
    assert heading(third.text) == "Payment denied"
    denied = reload(runtime, transaction)
    assert (denied.status, denied.reason) == ("DENIED", "CARD_DECLINED")
    assert callback_codes(runtime, transaction) == ["PROCESSED"]
    assert [(a.outcome, a.reason) for a in attempts(runtime, transaction)] == [
        ("declined", "card_declined"),
        ("declined", "insufficient_funds"),
        ("declined", "card_declined"),
    ]
    assert heading(client.get(pay_path(transaction)).text) == "Payment denied"


def test_decline_then_success(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    assert submit(client, transaction, DECLINED).status_code == 402
    assert submit(client, transaction, PAID).status_code == 303
    assert reload(runtime, transaction).status == "PAID"
    assert [a.outcome for a in attempts(runtime, transaction)] == ["declined", "paid"]


def test_provider_error_is_error_with_callback_error(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    reply = submit(client, transaction, PROVIDER_ERROR)
    assert heading(reply.text) == "Payment error"
    failed = reload(runtime, transaction)
    assert (failed.status, failed.reason) == ("ERROR", "PROCESSING_ERROR")
    assert callback_codes(runtime, transaction) == ["ERROR"]
    assert [(a.outcome, a.reason) for a in attempts(runtime, transaction)] == [
        ("error", "processing_error")
    ]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"card_number": "4242 4242 4242 4241"}, "card_number", "This card number is not valid."),
        ({"card_number": "4242"}, "card_number", "This card number is not valid."),
        (
            {"card_number": "5555 5555 5555 4444"},
            "card_number",
            "In test mode, use one of the test cards listed above.",
        ),
        ({"expiry": "12/25"}, "expiry", "This card has expired."),
        ({"expiry": "13/30"}, "expiry", "Enter the expiry date as MM/YY."),
        ({"expiry": "1230"}, "expiry", "Enter the expiry date as MM/YY."),
        ({"cvc": "12"}, "cvc", "Enter the 3 or 4 digits on the back of the card."),
        ({"name_on_card": "  "}, "name_on_card", "Enter the name printed on the card."),
    ],
)
def test_form_errors_name_the_field_and_record_nothing(
    runtime: Runtime,
    client: TestClient,
    transaction: Transaction,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    values = dict(fields)
    number = values.pop("card_number", PAID)
    reply = submit(client, transaction, number, **values)
    assert reply.status_code == 400
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in reply.text
    assert f'aria-describedby="{field}-error" aria-invalid="true"' in reply.text
    assert "4242 4242 4242 4241" not in reply.text and 'value="123"' not in reply.text
    assert attempts(runtime, transaction) == []
    assert reload(runtime, transaction).status == "PENDING"


def test_the_number_and_expiry_as_the_script_formats_them_are_accepted(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    reply = submit(client, transaction, "4242 4242 4242 4242", expiry="12 / 34", cvc=" 123 ")
    assert reply.status_code == 303
    assert reload(runtime, transaction).status == "PAID"


def test_the_number_and_expiry_unformatted_are_accepted(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    assert submit(client, transaction, "4242424242424242", expiry="12/34").status_code == 303
    assert reload(runtime, transaction).status == "PAID"


def test_a_decline_keeps_the_name_expiry_and_email_typed_never_the_card_number_or_cvc(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    qr = make_transaction(
        runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None, customer_email=None
    )
    reply = submit(
        client,
        qr,
        DECLINED,
        expiry="11 / 31",
        cvc="987",
        name_on_card="Grace Hopper",
        receipt_email="zoe@example.com",
    )
    assert reply.status_code == 402
    page = reply.text
    assert 'id="expiry" name="expiry"' in page and 'value="11 / 31"' in page
    assert 'value="Grace Hopper"' in page and 'value="zoe@example.com"' in page
    assert input_value(page, "card_number") == "" and input_value(page, "cvc") == ""
    assert re.search(r"(?<![\w-])987(?![\w-])", page) is None  # the CVC (not inside a token)
    # The decline is said at the top of the form, before its first field.
    assert page.index('class="notice"') < page.index('id="card_number"')
    assert page.index("<form") < page.index('class="notice"')


def test_the_receipt_goes_to_the_address_typed_when_the_merchant_gave_none(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    qr = make_transaction(
        runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None, customer_email=None
    )
    form = client.get(pay_path(qr)).text
    assert '<label for="receipt_email">E-mail for your receipt</label>' in form
    assert 'type="email" autocomplete="email"' in form
    reply = submit(client, qr, receipt_email="  Zoe@Example.COM ")
    assert reply.status_code == 303
    paid = reload(runtime, qr)
    assert (paid.status, paid.customer_email) == ("PAID", None)
    receipts = [(target, p) for kind, target, p in outbox(runtime, qr) if kind == "receipt"]
    assert receipts == [(paid.receipt_email, {"trid": qr.trid, "language": "EN", "test": True})]
    assert paid.receipt_email is not None and paid.receipt_email.lower() == "zoe@example.com"
    facts = confirmation_facts(client.get(reply.headers["location"]).text)
    assert facts["receipt"] == f"Receipt sent to {paid.receipt_email[0]}***@example.com"


@pytest.mark.parametrize("address", ["zoe", "zoe@", "zoe@example", "a b@example.com", "x" * 300])
def test_an_invalid_receipt_address_is_a_field_error_and_changes_nothing(
    runtime: Runtime, client: TestClient, merchant: Account, address: str
) -> None:
    qr = make_transaction(
        runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None, customer_email=None
    )
    reply = submit(client, qr, receipt_email=address, cvc="12")
    assert reply.status_code == 400
    # Every field at fault at once, each next to its field.
    assert '<p class="field-error" id="receipt_email-error">Enter an e-mail address' in reply.text
    assert '<p class="field-error" id="cvc-error">' in reply.text
    assert reload(runtime, qr).status == "PENDING" and attempts(runtime, qr) == []
    assert outbox(runtime, qr) == []


def test_with_the_merchants_customer_email_the_form_asks_no_address_and_says_where_it_goes(
    runtime: Runtime, client: TestClient, transaction: Transaction
) -> None:
    form = client.get(pay_path(transaction)).text
    assert 'name="receipt_email"' not in form
    assert "The receipt will be sent to a***@example.com." in form
    # An address posted anyway is not used: the merchant's customer_email wins.
    assert submit(client, transaction, receipt_email="eve@example.com").status_code == 303
    receipts = [target for kind, target, _ in outbox(runtime, transaction) if kind == "receipt"]
    assert receipts == ["ada@example.com"]
    assert reload(runtime, transaction).receipt_email is None


def test_expiry_this_month_is_accepted(
    runtime: Runtime, client: TestClient, transaction: Transaction, clock: ManualClock
) -> None:
    this_month = clock.now().strftime("%m/%y")
    assert submit(client, transaction, expiry=this_month).status_code == 303


# --- the other states ---------------------------------------------------------------------------


def test_cancelled_link(runtime: Runtime, client: TestClient, transaction: Transaction) -> None:
    token = csrf_of(client.get(pay_path(transaction)).text)  # a tab opened before the cancel
    with runtime.database.transaction() as session:
        merchant = session.get(Account, transaction.account_id)
        assert merchant is not None
        transactions_service.cancel(session, merchant, transaction.trid, runtime.clock)
    page = client.get(pay_path(transaction))
    assert heading(page.text) == "Payment cancelled"
    assert "status=CANCELLED" in page.text
    reply = client.post(
        pay_path(transaction), data={"csrf_token": token, **card()}, follow_redirects=False
    )
    assert reply.status_code == 409 and heading(reply.text) == "Payment cancelled"
    assert attempts(runtime, transaction) == []


def test_expired_link_is_cancelled_on_load(
    runtime: Runtime, client: TestClient, transaction: Transaction, clock: ManualClock
) -> None:
    clock.advance(days=31)
    page = client.get(pay_path(transaction))
    assert heading(page.text) == "Link expired"
    assert "This payment link expired on January 31, 2026" in page.text
    expired = reload(runtime, transaction)
    assert (expired.status, expired.reason) == ("CANCELLED", "EXPIRED")
    assert callback_codes(runtime, transaction) == ["CANCELLED"]


def test_sandbox_in_production_only_for_test_accounts(
    runtime: Runtime, client: TestClient, merchant: Account, transaction: Transaction
) -> None:
    runtime.settings.env = Environment.PRODUCTION
    page = client.get(pay_path(transaction))
    assert page.status_code == 409
    assert heading(page.text) == "Payment unavailable"
    assert 'name="card_number"' not in page.text
    update_account(runtime, merchant, is_test=True)
    page = client.get(pay_path(transaction))
    assert page.status_code == 200 and "TEST MODE" in page.text


def test_mobip_account_create_test_marks_a_test_account(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOBIP_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIP_DATA_DIR", str(tmp_path / "cli"))
    result = CliRunner().invoke(cli_app, ["account", "create", "--name", "QA", "--test", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["is_test"] is True
    result = CliRunner().invoke(cli_app, ["account", "create", "--name", "Shop", "--json"])
    assert json.loads(result.output)["is_test"] is False


def test_a_stripe_merchant_without_a_key_cannot_take_payments(
    runtime: Runtime, client: TestClient, merchant: Account, transaction: Transaction
) -> None:
    update_account(runtime, merchant, provider="stripe")
    page = client.get(pay_path(transaction))
    assert page.status_code == 409 and heading(page.text) == "Payment unavailable"


# --- CSRF -------------------------------------------------------------------------------------


def test_csrf_cookie_is_http_only_same_site_and_scoped(
    client: TestClient, transaction: Transaction
) -> None:
    cookie = client.get(pay_path(transaction)).headers["set-cookie"]
    assert cookie.startswith(f"{csrf.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/pay" in cookie
    # Once set, the cookie is kept (other tabs' forms stay valid).
    assert "set-cookie" not in client.get(pay_path(transaction)).headers


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cookie", "other link"])
def test_csrf_failures_are_refused_and_record_nothing(
    runtime: Runtime,
    client: TestClient,
    merchant: Account,
    transaction: Transaction,
    case: str,
) -> None:
    token = csrf_of(client.get(pay_path(transaction)).text)
    data = {"csrf_token": token, **card()}
    if case == "no token":
        del data["csrf_token"]
    elif case == "wrong token":
        data["csrf_token"] = "0" * 64
    elif case == "no cookie":
        client.cookies.clear()
    else:
        other = make_transaction(runtime, merchant)
        data["csrf_token"] = csrf_of(client.get(pay_path(other)).text)
    reply = client.post(pay_path(transaction), data=data, follow_redirects=False)
    assert reply.status_code == 403
    assert heading(reply.text) == "Page expired" and "3010" in reply.text
    assert reload(runtime, transaction).status == "PENDING"
    assert attempts(runtime, transaction) == []


def test_an_error_page_of_a_test_payment_says_test_mode_and_a_real_one_does_not(
    runtime: Runtime, client: TestClient, merchant: Account, transaction: Transaction
) -> None:
    """TEST MODE on every page of a test payment, error pages too (here: a refused form)."""
    refused = client.post(pay_path(transaction), data=card(), follow_redirects=False)
    assert refused.status_code == 403 and "3010" in refused.text
    assert "TEST MODE" in refused.text
    update_account(runtime, merchant, provider="stripe")
    unavailable = client.get(pay_path(transaction))
    assert unavailable.status_code == 409 and "TEST MODE" not in unavailable.text
    unknown = client.get("/pay/ck_" + "x" * 32)
    assert unknown.status_code == 404 and "TEST MODE" not in unknown.text


# --- rate limits --------------------------------------------------------------------------------


def test_attempts_per_transaction_are_limited_in_a_window(
    runtime: Runtime, client: TestClient, transaction: Transaction, clock: ManualClock
) -> None:
    runtime.settings.checkout_max_attempts_per_transaction = 2
    assert submit(client, transaction, DECLINED).status_code == 402
    clock.advance(seconds=60)
    assert submit(client, transaction, DECLINED).status_code == 402
    refused = submit(client, transaction, PAID)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(900 - 60 + 1)
    assert heading(refused.text) == "Too many attempts" and "7002" in refused.text
    assert "Please wait 15 minutes and try again." in refused.text
    assert reload(runtime, transaction).status == "PENDING"
    assert len(attempts(runtime, transaction)) == 2
    clock.advance(seconds=900 - 60)  # the first attempt leaves the window
    assert submit(client, transaction, PAID).status_code == 303


def test_attempts_per_client_are_limited_across_transactions(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    runtime.settings.checkout_max_attempts_per_client = 2
    first, second, third = (make_transaction(runtime, merchant) for _ in range(3))
    assert submit(client, first, DECLINED).status_code == 402
    assert submit(client, second, DECLINED).status_code == 402
    assert submit(client, third, PAID).status_code == 429
    assert attempts(runtime, third) == []
    # Another client address is not held back by this one.
    other = TestClient(client.app, client=("198.51.100.9", 40000))
    assert submit(other, third, PAID).status_code == 303
