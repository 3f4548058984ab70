"""Delivery sends what any domain's composer writes, knowing nothing of the domain: a composer
registered for a kind returns an e-mail or an SMS (or refuses), and the worker does the rest."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from delivery.support import deliver, stored
from mobip.delivery.composing import Composers, Composing, MailContent, SmsContent
from mobip.delivery.models import OutboxMessage, OutboxStatus
from mobip.delivery.service import enqueue
from mobip.delivery.worker import PermanentFailure
from mobip.kit.runtime import Runtime

NOTE = "test.note"


def note(message: OutboxMessage, composing: Composing) -> MailContent | SmsContent:
    """A composer of another domain: the payload says what to write, and by which means."""
    payload = message.load_payload()
    if payload.get("refuse"):
        raise PermanentFailure("not sent: the note was withdrawn")
    if payload["by"] == "sms":
        return SmsContent(f"Note: {payload['text']}")
    return MailContent(
        from_name="Notes, Inc.",
        subject=f"Note {payload['text']}",
        text=f"{payload['text']}\n",
        html=f"<p>{payload['text']}</p>",
    )


def queue(runtime: Runtime, target: str, **payload: object) -> int:
    with runtime.database.transaction() as session:
        return enqueue(
            session, kind=NOTE, target=target, payload=payload, clock=runtime.clock, subject="n1"
        ).id


@pytest.fixture
def folder(runtime: Runtime) -> Path:
    runtime.state(Composers).register(NOTE, note)
    return runtime.settings.data_dir / "outbox"


def test_a_composed_email_and_sms_go_out_and_a_refusal_fails_at_once(
    runtime: Runtime, folder: Path
) -> None:
    by_mail = queue(runtime, "ann@example.com", by="email", text="hello")
    by_sms = queue(runtime, "+33612345678", by="sms", text="hello")
    refused = queue(runtime, "ann@example.com", by="email", text="x", refuse=True)
    assert deliver(runtime) == 3
    assert stored(runtime, by_mail).status == OutboxStatus.DONE
    mail = email.message_from_bytes(
        (folder / f"20260101T120000-email-{by_mail}.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "Note hello"
    assert mail["From"] == '"Notes, Inc." <mobip@localhost>'
    assert mail["Message-ID"] == f"<mobip.{by_mail}.n1@localhost>"
    assert stored(runtime, by_sms).status == OutboxStatus.DONE
    sms = json.loads((folder / f"20260101T120000-sms-{by_sms}.json").read_text())
    assert (sms["to"], sms["text"]) == ("+33612345678", "Note: hello")
    row = stored(runtime, refused)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error == "PermanentFailure: not sent: the note was withdrawn"


def test_a_kind_has_one_composer(runtime: Runtime) -> None:
    composers = runtime.state(Composers)
    composers.register(NOTE, note)
    with pytest.raises(ValueError, match=NOTE):
        composers.register(NOTE, note)
