"""The development outbox: without SMTP or an SMS provider, development writes e-mails (.eml) and
SMS (.json) to DATA_DIR/outbox/, and /dev/outbox lists them with their links (404 in production)."""

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

import pytest
import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from delivery.support import deliver, messages_of, new_request, with_settings
from mobip.accounts.models import Account
from mobip.app import create_app
from mobip.config import Environment
from mobip.delivery import devoutbox
from mobip.delivery.handlers import register_all
from mobip.delivery.models import OutboxStatus
from mobip.delivery.service import PAYMENT_REQUEST
from mobip.delivery.worker import Handlers
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
