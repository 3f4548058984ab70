"""The development outbox: without SMTP or an SMS provider, development writes e-mails (.eml) and
SMS (.json) to DATA_DIR/outbox/, and /dev/outbox lists them with their links, then the callbacks
with their attempts, every date in one format (404 in production). Its layout at 1280 px:
tests/e2e/test_devoutbox_browser.py."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import io
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from markupsafe import escape
from PIL import Image
from starlette.testclient import TestClient

from callback_receiver import Receiver, Reply
from delivery.support import deliver, messages_of, new_request, with_settings
from mobip.accounts.models import Account
from mobip.app import create_app
from mobip.config import Environment
from mobip.delivery import devoutbox, service
from mobip.delivery.handlers import register_all
from mobip.delivery.models import OutboxStatus
from mobip.delivery.service import PAYMENT_REQUEST
from mobip.delivery.worker import Handlers
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from mobip.wiring import wire


@pytest.fixture
def folder(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "outbox"


def test_an_email_is_written_as_an_eml_file(
    runtime: Runtime, merchant: Account, folder: Path
) -> None:
    transaction = new_request(runtime, merchant, media="EMAIL")
    deliver(runtime)
    [message] = messages_of(runtime, transaction)
    assert message.status == OutboxStatus.DONE
    path = folder / f"20260101T120000-email-{message.id}.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["To"] == "zoe@example.com"
    assert parsed["Subject"] == "Payment request from Maison Dupré: Green tea"
    assert parsed["From"].addresses[0].addr_spec == "mobip@localhost"
    url = transactions_service.checkout_url(runtime.settings, transaction)
    text = parsed.get_body(("plain",))
    assert text is not None
    assert f"Pay here: {url}" in text.get_content()
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


def test_a_retried_message_overwrites_its_own_file(
    runtime: Runtime, merchant: Account, folder: Path
) -> None:
    transaction = new_request(runtime, merchant, media="EMAIL")
    [message] = messages_of(runtime, transaction)
    register_all(wire(runtime))
    registered = runtime.state(Handlers).registration(PAYMENT_REQUEST)
    assert registered is not None
    asyncio.run(registered.handler(message))
    runtime.clock.advance(minutes=5)  # type: ignore[attr-defined]
    asyncio.run(registered.handler(message))
    assert len(list(folder.iterdir())) == 1


def test_the_page_lists_emails_and_sms_with_their_links(
    runtime: Runtime, merchant: Account, client: TestClient
) -> None:
    by_sms = new_request(runtime, merchant, media="SMS", item_name="Black tea")
    by_email = new_request(runtime, merchant, media="EMAIL", item_name="Green tea")
    deliver(runtime)
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    email_url = transactions_service.checkout_url(runtime.settings, by_email)
    sms_url = transactions_service.checkout_url(runtime.settings, by_sms)
    assert f'<a href="{email_url}">{email_url}</a>' in html
    assert f'<a href="{sms_url}">{sms_url}</a>' in html
    assert "Payment request from Maison Dupré: Green tea" in html
    assert f"Maison Dupré: payment request of €12.50 for Black tea. Pay here: {sms_url}" in html
    assert html.count("zoe@example.com") == 1
    assert html.count("+33612345678") == 1
    # Newest first: the e-mail was queued after the SMS, in the same second.
    assert html.index("Green tea") < html.index("Black tea")


def test_one_email_is_shown_with_its_qr_inlined(
    runtime: Runtime, merchant: Account, client: TestClient
) -> None:
    transaction = new_request(runtime, merchant, media="EMAIL")
    deliver(runtime)
    [message] = messages_of(runtime, transaction)
    name = f"20260101T120000-email-{message.id}.eml"
    shown = client.get(f"/dev/outbox/{name}")
    assert shown.status_code == 200
    assert shown.headers["content-security-policy"] == (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    )
    assert "cid:" not in shown.text
    [data] = re.findall(r'src="data:image/png;base64,([^"]+)"', shown.text)
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    [code] = zxingcpp.read_barcodes(image)
    assert code.text == transactions_service.checkout_url(runtime.settings, transaction)
    assert f"/dev/outbox/{name}" in client.get("/dev/outbox").text


def test_one_sms_is_shown_as_its_json(
    runtime: Runtime, merchant: Account, client: TestClient
) -> None:
    transaction = new_request(runtime, merchant, media="SMS")
    deliver(runtime)
    [message] = messages_of(runtime, transaction)
    name = f"20260101T120000-sms-{message.id}.json"
    shown = client.get(f"/dev/outbox/{name}")
    assert shown.status_code == 200
    record: dict[str, Any] = shown.json()
    assert record["to"] == "+33612345678"
    assert record["sender"] == "MOBIP"
    assert record["date"] == "2026-01-01T12:00:00+00:00"


@pytest.mark.parametrize(
    "name",
    [
        "20260101T120000-email-9.eml",
        "..%2Fsecret_key",
        "secret_key",
        "x.txt",
        "%2E%2E%2Fmobip.sqlite3",
        "20260101T120000-sms-1.json%00",
    ],
)
def test_only_outbox_messages_can_be_shown(
    runtime: Runtime, client: TestClient, folder: Path, name: str
) -> None:
    folder.mkdir(parents=True)
    (folder / "x.txt").write_text("not a message")
    (runtime.settings.data_dir / "secret_key").write_text("do not show")
    reply = client.get(f"/dev/outbox/{name}")
    assert reply.status_code == 404
    assert "do not show" not in reply.text


def test_names_in_the_page_are_escaped(
    runtime: Runtime, client: TestClient, merchant: Account
) -> None:
    new_request(runtime, merchant, media="SMS", item_name="<script>alert(1)</script>")
    deliver(runtime)
    html = client.get("/dev/outbox").text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_empty_outbox(client: TestClient) -> None:
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert "No message yet." in page.text


def test_an_unreadable_file_is_skipped(folder: Path, client: TestClient) -> None:
    folder.mkdir(parents=True)
    (folder / "20260101T120000-sms-1.json").write_text("{not json")
    assert devoutbox.entries(folder) == []
    assert "No message yet." in client.get("/dev/outbox").text


@pytest.mark.parametrize("path", ["/dev/outbox", "/dev/outbox/20260101T120000-sms-1.json"])
def test_production_has_no_development_outbox(runtime: Runtime, folder: Path, path: str) -> None:
    folder.mkdir(parents=True)
    (folder / "20260101T120000-sms-1.json").write_text('{"to": "+33612345678", "text": "x"}')
    production = with_settings(
        runtime, env=Environment.PRODUCTION, base_url="https://pay.example.com"
    )
    with TestClient(create_app(production)) as client:
        assert client.get(path).status_code == 404


def test_entries_are_newest_first_by_time_then_id(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ("20260101T120000-sms-9", "20260101T120000-sms-10", "20251231T235959-sms-11"):
        (folder / f"{name}.json").write_text('{"to": "+33612345678", "text": "x"}')
    assert [e.name for e in devoutbox.entries(folder)] == [
        "20260101T120000-sms-10.json",
        "20260101T120000-sms-9.json",
        "20251231T235959-sms-11.json",
    ]


def queue_callback(runtime: Runtime, merchant: Account, url: str, trid: str, resp_code: str) -> int:
    with runtime.database.transaction() as session:
        return service.queue_callback(
            session,
            url=url,
            trid=trid,
            track_id="order-42",
            resp_code=resp_code,
            account_id=merchant.id,
            clock=runtime.clock,
        ).id


def test_the_page_lists_callbacks_with_what_was_sent_where_and_each_attempt(
    runtime: Runtime, clock: ManualClock, merchant: Account, client: TestClient, receiver: Receiver
) -> None:
    receiver.reply("/callback", Reply(500, b"down for maintenance"), Reply(200, b"ok"))
    url = receiver.url("/callback") + "?shop=7"
    sent = queue_callback(runtime, merchant, url, "tr_sent", "PROCESSED")
    deliver(runtime)  # HTTP 500: retried later
    clock.advance(hours=1)
    deliver(runtime)  # HTTP 200
    queued = queue_callback(
        runtime, merchant, "https://shop.example.com/cb", "tr_queued", "CANCELLED"
    )

    html = client.get("/dev/outbox").text
    assert "No callback yet." not in html
    # Newest first: the queued one, then the one sent.
    queued_row = html[html.index(f'id="callback-{queued}"') : html.index(f'id="callback-{sent}"')]
    sent_row = html[html.index(f'id="callback-{sent}"') :]

    requested = url + "&resp_code=PROCESSED&trid=tr_sent&track_id=order-42"
    assert f"POST {escape(requested)}</code>" in sent_row
    got = receiver.requests[-1]  # the page shows the URL the receiver was really sent
    assert (got.method, got.path, got.query) == (
        "POST",
        "/callback",
        parse_qs(urlsplit(requested).query),
    )
    for field in ("resp_code=PROCESSED", "trid=tr_sent", "track_id=order-42"):
        assert f"<li><code>{field}</code></li>" in sent_row
    assert f"webhook-id: msg_mobip_{sent}" in sent_row
    first, second = sent_row.split("<td>#")[1:3]
    for expected in ("1</td>", "2026-01-01 12:00:00 UTC", "failed, retried later", "<td>500</td>"):
        assert expected in first
    assert "down for maintenance" in first and "HTTP 500" in first
    for expected in ("2</td>", "2026-01-01 13:00:00 UTC", "delivered", "<td>200</td>", "ok"):
        assert expected in second
    assert "delivered 2026-01-01 13:00:00 UTC" in sent_row
    assert '<td class="nowrap">2 / 12</td>' in sent_row

    assert "POST https://shop.example.com/cb?resp_code=CANCELLED&amp;trid=tr_queued" in queued_row
    assert "Not attempted yet." in queued_row
    assert "next attempt 2026-01-01 13:00:00 UTC" in queued_row
    assert '<td class="nowrap">0 / 12</td>' in queued_row


def test_every_date_on_the_page_has_one_format(
    runtime: Runtime, merchant: Account, client: TestClient
) -> None:
    new_request(runtime, merchant, media="EMAIL")
    new_request(runtime, merchant, media="SMS")
    deliver(runtime)
    queue_callback(runtime, merchant, "https://shop.example.com/cb", "tr_x", "PROCESSED")
    html = client.get("/dev/outbox").text
    # The e-mail's date, the SMS's, the callback's queued and next-attempt dates.
    assert html.count("2026-01-01 12:00:00 UTC") == 4
    assert "Thu, 01 Jan 2026" not in html and "+0000" not in html  # e-mail header style
    assert "T12:00:00" not in html and "+00:00" not in html  # ISO with a T


def test_an_empty_outbox_has_no_callbacks_either(client: TestClient) -> None:
    html = client.get("/dev/outbox").text
    assert "No message yet." in html and "No callback yet." in html
