"""E-mails through a real SMTP server (aiosmtpd on loopback): the payment request, the automatic
reminder and the receipt, in EN and FR, parsed back with the email package; SMTP refusals,
TLS (STARTTLS and implicit) with login, and what is not sent."""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from PIL import Image
from pydantic import SecretStr
from starlette.testclient import TestClient

from delivery import support
from delivery.support import deliver, messages_of, pay, run_schedules, stored, with_settings
from factories import form, free_port, make_account, token_for
from mobip.accounts.models import Account
from mobip.app import create_app
from mobip.config import Environment, Settings, SmtpSecurity
from mobip.delivery.models import OutboxStatus
from mobip.delivery.service import (
    MESSAGE_POLICY,
    PAYMENT_REQUEST,
    backoff_bounds,
    enqueue,
    queue_receipt,
)
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction
from mobip.transactions.tasks import REMINDERS
from tls_support import self_signed, server_context
from transactions.support import counts, valid_request

# --- a real SMTP receiver on loopback ------------------------------------------------------------


class Receiver:
    """aiosmtpd handler: records each message; tests set refusals for RCPT or DATA."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # each message as received, before any parsing
        self.mail_options: list[list[str]] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.raw.append(envelope.content)
        self.mail_options.append(list(envelope.mail_options))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"mobip" and auth_data.password == b"s3cret-pass"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def start(receiver: Receiver, **options: Any) -> Controller:
    controller = Controller(receiver, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


def smtp_at(runtime: Runtime, port: int, security: SmtpSecurity, **changes: Any) -> Runtime:
    """``runtime`` sending through the SMTP server on loopback at ``port``."""
    return with_settings(
        runtime, smtp_host="127.0.0.1", smtp_port=port, smtp_security=security, **changes
    )


@pytest.fixture
def smtp(receiver: Receiver) -> Iterator[int]:
    """A plain SMTP server on loopback; yields its port."""
    controller = start(receiver)
    yield controller.port
    controller.stop()


@pytest.fixture
def mailing(runtime: Runtime, smtp: int) -> Runtime:
    """The runtime, sending through the loopback SMTP server without TLS."""
    return smtp_at(
        runtime,
        smtp,
        SmtpSecurity.NONE,
        smtp_from="Payments <payments@mobip.test>",
    )


# --- transactions ------------------------------------------------------------------------------

# The amounts, names and links the expected e-mails below are written for.
new_request = partial(
    support.new_request,
    item_amount=123_450,
    tax_amount=250,
    item_name="Green tea, 250 g",
    redirect_url="https://shop.test/done",
    track_id="order-7",
    customer_name="Zoé",
)


def qr_text(message: EmailMessage) -> str:
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert image["Content-ID"]
    assert image.get_content_disposition() == "inline"
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.get_content())))
    return found.text


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


# --- the payment request -------------------------------------------------------------------------

EXPECTED = {
    "EN": {
        "subject": "Payment request from Maison Dupré: Green tea, 250 g",
        "amounts": ["€1,234.50", "€2.50", "€1,237.00"],
        "pay": "Pay here: ",
        "expires": "This request expires on January 31, 2026.",
        "button": "Pay €1,237.00",
    },
    "FR": {
        "subject": "Demande de paiement de Maison Dupré : Green tea, 250 g",
        "amounts": ["1\u202f234,50\xa0€", "2,50\xa0€", "1\u202f237,00\xa0€"],
        "pay": "Payer ici : ",
        "expires": "Cette demande expire le 31 janvier 2026.",
        "button": "Payer 1\u202f237,00\xa0€",
    },
}


@pytest.mark.parametrize("language", ["EN", "FR"])
def test_the_payment_request_arrives_in_the_transaction_language(
    mailing: Runtime, merchant: Account, receiver: Receiver, language: str
) -> None:
    transaction = new_request(mailing, merchant, language=language)
    assert deliver(mailing) == 1

    [message] = receiver.messages
    expected = EXPECTED[language]
    url = transactions_service.checkout_url(mailing.settings, transaction)
    assert message["Subject"] == expected["subject"]
    assert message["From"].addresses[0].display_name == "Maison Dupré"
    assert message["From"].addresses[0].addr_spec == "payments@mobip.test"
    assert message["To"] == "zoe@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert receiver.envelopes == [("payments@mobip.test", ["zoe@example.com"])]
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for amount in expected["amounts"]:
        assert amount in text
        assert amount in html
    assert "Green tea, 250 g" in text
    assert expected["pay"] + url in text
    assert expected["expires"] in text
    assert f'href="{url}"' in html
    assert expected["button"] in html
    assert "Maison Dupré" in html
    # The QR: an inline image of the HTML part, referenced by its Content-ID, reading as the link.
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert qr_text(message) == url
    # The link is the transaction's checkout page.
    assert urlsplit(url).path == f"/pay/{transaction.checkout_token}"
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.DONE
    assert message["Message-ID"] == f"<mobip.{row.id}.{transaction.trid}@mobip.test>"


# --- request, reminder and receipt end to end: the links are followed ---------------------------

# What each e-mail says in each language; the page the link opens says it in the same language.
JOURNEY = {
    "EN": {
        "request": "Payment request from Maison Dupré: ",
        "reminder": "Reminder: Maison Dupré is waiting for your payment of €1,237.00",
        "reminder_words": "A friendly reminder: Maison Dupré has not received your payment yet.",
        "receipt": "Your receipt from Maison Dupré: ",
        "paid": "Payment successful",
    },
    "FR": {
        "request": "Demande de paiement de Maison Dupré : ",
        # A header is one line of plain spaces: the locale's no-break spaces become spaces.
        "reminder": "Rappel : Maison Dupré attend votre paiement de 1 237,00 €",
        "reminder_words": "Petit rappel : Maison Dupré n'a pas encore reçu votre paiement.",
        "receipt": "Votre reçu de Maison Dupré : ",
        "paid": "Paiement réussi",
    },
}


def link_in(message: EmailMessage) -> str:
    """The one checkout link of the text part; the HTML part links to the same place."""
    text, html = parts(message)
    [url] = {word for word in text.split() if word.startswith("http")}
    assert f'href="{url}"' in html
    return url


def follow(client: TestClient, url: str) -> str:
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200
    return page.text


@pytest.mark.parametrize("language", ["EN", "FR"])
def test_request_reminder_and_receipt_arrive_and_their_links_open_the_transaction_page(
    mailing: Runtime, merchant: Account, receiver: Receiver, clock: ManualClock, language: str
) -> None:
    words = JOURNEY[language]
    mine = new_request(mailing, merchant, language=language, retry_period_days=2)
    other = new_request(
        mailing,
        merchant,
        language=language,
        retry_period_days=2,
        item_name="Black coffee",
        customer_email="ann@example.com",
    )
    assert deliver(mailing) == 2
    clock.advance(days=2)
    assert run_schedules(mailing)[REMINDERS] == 2
    assert deliver(mailing) == 2
    to_zoe = [m for m in receiver.messages if m["To"] == "zoe@example.com"]
    request, reminder = to_zoe
    assert request["Subject"] == words["request"] + "Green tea, 250 g"
    assert reminder["Subject"] == words["reminder"]
    assert words["reminder_words"] in parts(reminder)[0]
    assert words["reminder_words"] not in parts(request)[0]

    with TestClient(create_app(mailing)) as client:
        url = transactions_service.checkout_url(mailing.settings, mine)
        for message in (request, reminder):
            assert link_in(message) == url
            assert qr_text(message) == url
            page = follow(client, url)
            assert f'<html lang="{language.lower()}">' in page
            assert "Green tea, 250 g" in page
            assert "Black coffee" not in page
        assert "Black coffee" in follow(
            client, transactions_service.checkout_url(mailing.settings, other)
        )

        # Pay on the page the link opened (sandbox test card): checkout queues the receipt.
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
        assert token is not None
        paid = client.post(
            urlsplit(url).path,
            data={
                "csrf_token": token.group(1),
                "card_number": "4242 4242 4242 4242",
                "expiry": "12/30",
                "cvc": "123",
                "name_on_card": "Zoe Martin",
                "lang": language,
            },
            follow_redirects=False,
        )
        assert paid.status_code == 303
        assert deliver(mailing) >= 1  # the receipt (and the merchant's callback, if any)
        receipt = receiver.messages[-1]
        assert receipt["To"] == "zoe@example.com"
        assert receipt["Subject"] == words["receipt"] + "Green tea, 250 g"
        assert mine.trid in parts(receipt)[0]
        assert link_in(receipt) == url
        page = follow(client, link_in(receipt))
        assert words["paid"] in page
        assert "Green tea, 250 g" in page
    assert [m["To"] for m in receiver.messages].count("zoe@example.com") == 3


def test_an_amount_without_tax_shows_no_tax_line(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    new_request(mailing, merchant, tax_amount=0)
    deliver(mailing)
    text, html = parts(receiver.messages[0])
    assert "Tax" not in text
    assert "Tax" not in html
    assert "Total: €1,234.50" in text


def test_merchant_and_item_names_are_escaped_in_html_and_kept_on_one_header_line(
    mailing: Runtime, receiver: Receiver
) -> None:
    merchant = make_account(mailing, name="<b>Evil</b>\r\nBcc: x@evil.test").account
    new_request(mailing, merchant, item_name='<script>alert("x")</script>')
    deliver(mailing)
    [message] = receiver.messages
    assert "Bcc" not in message
    assert message["From"].addresses[0].display_name == "<b>Evil</b> Bcc: x@evil.test"
    assert receiver.envelopes[0][1] == ["zoe@example.com"]
    _, html = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<b>Evil</b>" not in html


# --- the reminder and the receipt ------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "words"),
    [
        ("EN", "Reminder: Maison Dupré is waiting for your payment", "A friendly reminder"),
        ("FR", "Rappel : Maison Dupré attend votre paiement", "Petit rappel"),
    ],
)
def test_the_automatic_reminder_arrives_after_the_retry_period(
    mailing: Runtime,
    merchant: Account,
    receiver: Receiver,
    clock: ManualClock,
    language: str,
    subject: str,
    words: str,
) -> None:
    transaction = new_request(mailing, merchant, language=language, retry_period_days=2)
    deliver(mailing)
    clock.advance(days=2)
    assert run_schedules(mailing)[REMINDERS] == 1
    assert deliver(mailing) == 1
    first, reminder = receiver.messages
    assert not first["Subject"].startswith(subject)
    assert reminder["Subject"].startswith(subject)
    text, _ = parts(reminder)
    assert words in text
    assert qr_text(reminder) == transactions_service.checkout_url(mailing.settings, transaction)


def test_a_manual_resend_is_the_request_again_not_the_reminder(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    transaction = new_request(mailing, merchant, language="FR")
    with mailing.database.transaction() as session:
        transactions_service.resend(
            session, merchant, transaction.trid, "EMAIL", mailing.settings, mailing.clock
        )
    assert deliver(mailing) == 2
    first, again = receiver.messages
    assert again["Subject"] == first["Subject"]
    assert again["Subject"].startswith("Demande de paiement de Maison Dupré")
    assert "Petit rappel" not in parts(again)[0]
    assert qr_text(again) == transactions_service.checkout_url(mailing.settings, transaction)


def receipt_for(runtime: Runtime, transaction: Transaction, language: str) -> int:
    """The receipt row as checkout queues it: kind receipt, payload {trid, language}."""
    with runtime.database.transaction() as session:
        return queue_receipt(
            session,
            target=transaction.customer_email or "",
            trid=transaction.trid,
            language=language,
            account_id=transaction.account_id,
            clock=runtime.clock,
        ).id


@pytest.mark.parametrize(
    ("language", "subject", "lines"),
    [
        (
            "EN",
            "Your receipt from Maison Dupré: Green tea, 250 g",
            ["Total paid: €1,237.00", "received on January 1, 2026, 1:00\u202fPM UTC."],
        ),
        (
            "FR",
            "Votre reçu de Maison Dupré : Green tea, 250 g",
            ["Total payé : 1\u202f237,00\xa0€", "a été reçu le 1 janvier 2026, 13:00 UTC."],
        ),
    ],
)
def test_the_receipt_arrives_in_the_requested_language(
    mailing: Runtime,
    merchant: Account,
    receiver: Receiver,
    clock: ManualClock,
    language: str,
    subject: str,
    lines: list[str],
) -> None:
    transaction = new_request(mailing, merchant, language="EN")
    deliver(mailing)
    clock.advance(hours=1)
    pay(mailing, transaction)
    message_id = receipt_for(mailing, transaction, language)
    assert deliver(mailing) == 1
    receipt = receiver.messages[-1]
    assert receipt["Subject"] == subject
    assert receipt["To"] == "zoe@example.com"
    text, html = parts(receipt)
    for line in lines:
        assert line in text
    assert transaction.trid in text
    assert transaction.trid in html
    assert not [p for p in receipt.walk() if p.get_content_maintype() == "image"]
    assert stored(mailing, message_id).status == OutboxStatus.DONE


def test_no_receipt_for_a_transaction_that_is_not_paid(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    transaction = new_request(mailing, merchant)
    deliver(mailing)
    message_id = receipt_for(mailing, transaction, "EN")
    deliver(mailing)
    assert len(receiver.messages) == 1  # the request only
    row = stored(mailing, message_id)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error == "PermanentFailure: no receipt: the transaction is PENDING"


# --- what is not sent ------------------------------------------------------------------------


def test_a_request_for_a_cancelled_transaction_is_not_sent(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    transaction = new_request(mailing, merchant)
    with mailing.database.transaction() as session:
        transactions_service.cancel(session, merchant, transaction.trid, mailing.clock)
    deliver(mailing)
    assert receiver.messages == []
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == 1
    assert row.last_error == (
        "PermanentFailure: not sent: the transaction is CANCELLED (CANCELLED_BY_MERCHANT)"
    )


def test_a_request_past_its_expiry_is_not_sent(
    mailing: Runtime, merchant: Account, receiver: Receiver, clock: ManualClock
) -> None:
    transaction = new_request(mailing, merchant)
    clock.advance(days=30)
    deliver(mailing)
    assert receiver.messages == []
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error == "PermanentFailure: not sent: the transaction has expired"


def test_an_unknown_transaction_fails_the_message(mailing: Runtime, receiver: Receiver) -> None:
    with mailing.database.transaction() as session:
        message_id = enqueue(
            session,
            kind=PAYMENT_REQUEST,
            target="zoe@example.com",
            payload={"trid": "tr_missing", "media": "EMAIL", "occasion": "initial"},
            clock=mailing.clock,
        ).id
    deliver(mailing)
    assert receiver.messages == []
    row = stored(mailing, message_id)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error == "PermanentFailure: transaction tr_missing not found"


def test_production_without_smtp_fails_each_attempt_visibly(
    runtime: Runtime, merchant: Account, tmp_path: Path
) -> None:
    production = with_settings(runtime, env=Environment.PRODUCTION, smtp_host=None)
    transaction = new_request(production, merchant)
    deliver(production)
    [row] = messages_of(production, transaction)
    assert row.status == OutboxStatus.PENDING  # retried: the operator can still configure SMTP
    assert row.last_error == "NotConfigured: no SMTP server configured: set MOBIP_SMTP_HOST"
    assert not (production.settings.data_dir / "outbox").exists()


# --- SMTP refusals -------------------------------------------------------------------------------


def test_a_recipient_refused_for_good_fails_the_message_at_once(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    receiver.rcpt_reply = "550 5.1.1 No such user"
    transaction = new_request(mailing, merchant)
    deliver(mailing)
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("PermanentFailure: recipient refused: zoe@example.com: 550")


def test_a_temporary_refusal_is_retried(
    mailing: Runtime, merchant: Account, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.rcpt_reply = "451 4.7.1 Greylisted, try again later"
    transaction = new_request(mailing, merchant)
    deliver(mailing)
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.last_error is not None
    assert "451" in row.last_error
    # The next attempt, once due, gets through.
    receiver.rcpt_reply = None
    clock.set(row.next_attempt_at)
    assert deliver(mailing) == 1
    assert len(receiver.messages) == 1
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.DONE
    assert row.attempts == 2


def test_message_data_refused_for_good_fails_the_message(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    receiver.data_reply = "554 5.7.1 Message rejected as spam"
    transaction = new_request(mailing, merchant)
    deliver(mailing)
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error is not None
    assert row.last_error.startswith("PermanentFailure: message refused: 554")


def test_an_unreachable_server_is_retried(runtime: Runtime, merchant: Account) -> None:
    unreachable = smtp_at(runtime, free_port(), SmtpSecurity.NONE)
    transaction = new_request(unreachable, merchant)
    deliver(unreachable)
    [row] = messages_of(unreachable, transaction)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("SMTPConnectError")


def test_attempts_back_off_with_jitter_and_the_last_one_fails_the_message_with_its_error(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    unreachable = smtp_at(runtime, free_port(), SmtpSecurity.NONE)
    transaction = new_request(unreachable, merchant)
    delays: list[timedelta] = []
    for attempt in range(1, MESSAGE_POLICY.max_attempts + 1):
        assert deliver(unreachable) == 1
        [row] = messages_of(unreachable, transaction)
        assert row.attempts == attempt
        if attempt == MESSAGE_POLICY.max_attempts:
            break
        assert row.status == OutboxStatus.PENDING
        delay = row.next_attempt_at - clock.now()
        low, high = backoff_bounds(MESSAGE_POLICY, attempt)
        assert low <= delay <= high
        delays.append(delay)
        clock.set(row.next_attempt_at - timedelta(seconds=1))
        assert deliver(unreachable) == 0  # not before it is due
        clock.set(row.next_attempt_at)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error is not None
    assert row.last_error.startswith(f"gave up after {MESSAGE_POLICY.max_attempts} attempts: ")
    assert "SMTPConnectError" in row.last_error
    # Jittered: drawn within the bounds, not the exponential delays themselves.
    assert len(set(delays)) == len(delays)
    assert any(delay < backoff_bounds(MESSAGE_POLICY, n)[1] for n, delay in enumerate(delays, 1))
    clock.advance(days=1)
    assert deliver(unreachable) == 0  # failed for good


# --- addresses: one rule at creation and at sending ---------------------------------------------


def raw_header(raw: bytes, name: bytes) -> bytes:
    match = re.search(rb"^" + name + rb": (.*?)\r\n", raw, re.MULTILINE)
    assert match, f"no {name!r} header"
    return match.group(1)


def test_an_idn_domain_is_stored_and_sent_in_punycode(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    transaction = new_request(mailing, merchant, customer_email="Zoe@Bücher.example")
    assert transaction.customer_email == "Zoe@xn--bcher-kva.example"
    deliver(mailing)
    [row] = messages_of(mailing, transaction)
    assert row.status == OutboxStatus.DONE, row.last_error
    assert receiver.envelopes == [("payments@mobip.test", ["Zoe@xn--bcher-kva.example"])]
    assert "SMTPUTF8" not in receiver.mail_options[0]  # not needed (the server offers it)
    # The address as it is, not an encoded word (mail servers refuse those inside an address).
    assert raw_header(receiver.raw[0], b"To") == b"Zoe@xn--bcher-kva.example"


def test_a_stored_address_that_could_not_be_sent_fails_at_once_with_the_reason(
    mailing: Runtime, merchant: Account, receiver: Receiver
) -> None:
    # Rows written before the rule (or by hand): the sender applies the same rule.
    transaction = new_request(mailing, merchant)
    messages = []
    for target in ["ü@example.com", "a" * 65 + "@example.com", "a@éxample.com"]:
        with mailing.database.transaction() as session:
            messages.append(
                enqueue(
                    session,
                    kind=PAYMENT_REQUEST,
                    target=target,
                    payload={"trid": transaction.trid, "media": "EMAIL", "occasion": "initial"},
                    clock=mailing.clock,
                ).id
            )
    deliver(mailing)
    needs_utf8, too_long, idn = (stored(mailing, message_id) for message_id in messages)
    assert needs_utf8.status == OutboxStatus.FAILED
    assert needs_utf8.attempts == 1
    assert needs_utf8.last_error is not None
    assert "SMTPUTF8" in needs_utf8.last_error and "MOBIP_SMTP_SMTPUTF8" in needs_utf8.last_error
    assert too_long.status == OutboxStatus.FAILED
    assert too_long.last_error is not None
    assert "too long" in too_long.last_error
    # An IDN domain stored in Unicode before the rule goes out in punycode.
    assert idn.status == OutboxStatus.DONE, idn.last_error
    assert ["a@xn--xample-9ua.com"] in [rcpt for _, rcpt in receiver.envelopes]


def test_the_creation_rule_refuses_what_could_not_be_sent(
    client: TestClient, runtime: Runtime, merchant: Account
) -> None:
    shop = make_account(runtime, name="Address shop")
    token = token_for(client, shop)
    for address in ["ü@example.com", "a" * 65 + "@example.com", "Zoé <zoe@example.com>"]:
        reply = client.post(
            "/api/2.0/mobip/send_payment_request",
            files=form(access_token=token, **valid_request(customer_email=address)),
        )
        assert reply.status_code == 400, reply.text
        assert reply.json()["return_code"] == "1002"
        assert "'customer_email'" in reply.json()["return_message"]
    assert counts(runtime) == (0, 0)


def test_with_smtputf8_a_non_ascii_local_part_is_sent_with_smtputf8(
    runtime: Runtime, merchant: Account, receiver: Receiver
) -> None:
    controller = start(receiver, enable_SMTPUTF8=True)
    try:
        utf8 = smtp_at(
            runtime,
            controller.port,
            SmtpSecurity.NONE,
            smtp_from="Payments <payments@mobip.test>",
            smtp_smtputf8=True,
        )
        transaction = new_request(utf8, merchant, customer_email="zoé@Bücher.example")
        deliver(utf8)
    finally:
        controller.stop()
    assert transaction.customer_email == "zoé@xn--bcher-kva.example"
    [row] = messages_of(utf8, transaction)
    assert row.status == OutboxStatus.DONE, row.last_error
    assert receiver.envelopes == [("payments@mobip.test", ["zoé@xn--bcher-kva.example"])]
    assert "SMTPUTF8" in receiver.mail_options[0]
    # RFC 6532: the header holds the address in UTF-8, not an encoded word.
    assert raw_header(receiver.raw[0], b"To") == "zoé@xn--bcher-kva.example".encode()


def test_smtputf8_allowed_but_not_advertised_by_the_server_fails_at_once(
    runtime: Runtime, merchant: Account, receiver: Receiver
) -> None:
    controller = start(receiver, enable_SMTPUTF8=False)  # no SMTPUTF8 in its EHLO reply
    try:
        utf8 = smtp_at(
            runtime,
            controller.port,
            SmtpSecurity.NONE,
            smtp_smtputf8=True,
        )
        transaction = new_request(utf8, merchant, customer_email="zoé@example.com")
        deliver(utf8)
    finally:
        controller.stop()
    assert receiver.messages == []
    [row] = messages_of(utf8, transaction)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == 1
    assert row.last_error is not None
    assert "SMTP server does not advertise" in row.last_error


# --- TLS and login -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through smtp_ca_file)."""
    return self_signed(tmp_path_factory.mktemp("tls"), common_name="mobip test SMTP")


def test_starttls_with_login(
    runtime: Runtime, merchant: Account, receiver: Receiver, certificate: tuple[Path, Path]
) -> None:
    controller = start(
        receiver,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=receiver.authenticate,
        auth_required=True,
    )
    try:
        secured = smtp_at(
            runtime,
            controller.port,
            SmtpSecurity.STARTTLS,
            smtp_username="mobip",
            smtp_password=SecretStr("s3cret-pass"),
            smtp_ca_file=certificate[0],
        )
        transaction = new_request(secured, merchant)
        deliver(secured)
        # A wrong password is retried (the operator fixes the setting), never failed at once.
        wrong = with_settings(secured, smtp_password=SecretStr("wrong"))
        second = new_request(wrong, merchant)
        deliver(wrong)
    finally:
        controller.stop()
    [done] = messages_of(secured, transaction)
    assert done.status == OutboxStatus.DONE, done.last_error
    assert len(receiver.messages) == 1
    # The client tries each mechanism the server offers (PLAIN, then LOGIN) with the wrong one.
    assert receiver.logins[0] == (b"mobip", b"s3cret-pass")
    assert set(receiver.logins[1:]) == {(b"mobip", b"wrong")}
    [refused] = messages_of(wrong, second)
    assert refused.status == OutboxStatus.PENDING
    assert refused.last_error is not None
    assert refused.last_error.startswith("SMTPAuthenticationError: (535")
    assert "wrong" not in refused.last_error


def test_implicit_tls(
    runtime: Runtime, merchant: Account, receiver: Receiver, certificate: tuple[Path, Path]
) -> None:
    # (aiosmtpd offers AUTH only after STARTTLS, so login is tested above.)
    controller = start(receiver, ssl_context=server_context(certificate))
    try:
        secured = smtp_at(
            runtime,
            controller.port,
            SmtpSecurity.TLS,
            smtp_ca_file=certificate[0],
        )
        transaction = new_request(secured, merchant)
        deliver(secured)
    finally:
        controller.stop()
    [done] = messages_of(secured, transaction)
    assert done.status == OutboxStatus.DONE, done.last_error
    assert len(receiver.messages) == 1


def test_starttls_is_required_not_opportunistic(
    runtime: Runtime, merchant: Account, receiver: Receiver, smtp: int
) -> None:
    # The plain server offers no STARTTLS: the message is not sent in the clear.
    strict = smtp_at(runtime, smtp, SmtpSecurity.STARTTLS)
    transaction = new_request(strict, merchant)
    deliver(strict)
    assert receiver.messages == []
    [row] = messages_of(strict, transaction)
    assert row.status == OutboxStatus.PENDING
    assert row.last_error is not None
    assert "STARTTLS" in row.last_error.upper()


def test_an_untrusted_certificate_is_refused(
    runtime: Runtime, merchant: Account, receiver: Receiver, certificate: tuple[Path, Path]
) -> None:
    controller = start(receiver, ssl_context=server_context(certificate))
    try:
        untrusting = smtp_at(
            runtime,
            controller.port,
            SmtpSecurity.TLS,
        )
        transaction = new_request(untrusting, merchant)
        deliver(untrusting)
    finally:
        controller.stop()
    assert receiver.messages == []
    [row] = messages_of(untrusting, transaction)
    assert row.status == OutboxStatus.PENDING
    assert row.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


# --- documentation -------------------------------------------------------------------------------


def test_every_email_sms_and_schedule_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `(MOBIP_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    ours = {
        f"MOBIP_{name.upper()}"
        for name in Settings.model_fields
        if name.startswith(("smtp_", "sms_", "twilio_", "schedule_"))
    }
    assert len(ours) >= 20
    assert ours - documented == set()
