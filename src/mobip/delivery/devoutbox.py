"""The development outbox: e-mails and SMS written to files instead of sent, and a page of them.

Without SMTP settings (or SMS provider) in development, the senders write each message to
``DATA_DIR/outbox/``: an e-mail as an ``.eml`` file (the exact bytes SMTP would carry), an SMS as a
small JSON file. The name comes from the outbox row, so a retried message overwrites its own file.
``/dev/outbox`` lists them newest first with their links, then the newest callbacks (really sent,
to the merchant's URL) with each attempt's outcome, read from the outbox tables; every date is in
one format, ``2026-11-30 12:34:56 UTC``. ``/dev/outbox/NAME`` shows one file. The routes exist
only in development (production answers 404).
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from mobip.config import Settings
from mobip.delivery import service
from mobip.delivery.callbacks import callback_fields, webhook_id, with_query
from mobip.delivery.models import OutboxAttempt, OutboxMessage, OutboxStatus
from mobip.delivery.rendering import TEMPLATES
from mobip.kit.runtime import Runtime, make_private_folder, write_private_file

_NAME = re.compile(r"^(\d{8}T\d{6})-(email|sms)-(\d{1,19})\.(eml|json)$")
_LINK = re.compile(r"https?://[^\s<>\"')]+")
# A shown e-mail may load only its own inline images (data: URIs) and inline styles.
_MAIL_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
MAX_ENTRIES = 500
MAX_CALLBACKS = 100


def utc_text(moment: datetime | None) -> str:
    """The page's one date format: ``2026-11-30 12:34:56 UTC``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # a date written without a zone is ours, in UTC
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def directory(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


def _write_atomically(path: Path, data: bytes) -> None:
    # Messages carry payment links and customers' addresses: folder 0700, files 0600.
    make_private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    write_private_file(temporary, data)
    os.replace(temporary, path)  # the page never sees half a file


def file_stem(created_at: datetime, kind: str, message_id: int) -> str:
    """``20260101T120000-email-42``: sorts by creation, one name per outbox message."""
    return f"{created_at:%Y%m%dT%H%M%S}-{kind}-{message_id}"


def save_email(folder: Path, stem: str, data: bytes) -> Path:
    """Write an e-mail's MIME bytes as ``STEM.eml``."""
    path = folder / f"{stem}.eml"
    _write_atomically(path, data)
    return path


def save_sms(folder: Path, stem: str, *, to: str, sender: str, text: str, at: datetime) -> Path:
    path = folder / f"{stem}.json"
    record = {"to": to, "sender": sender, "text": text, "date": at.isoformat()}
    _write_atomically(path, json.dumps(record, ensure_ascii=False, indent=1).encode())
    return path


@dataclass(frozen=True)
class Entry:
    """One message of the development outbox, as the page lists it."""

    name: str
    kind: str  # "e-mail" or "SMS"
    to: str
    date: str
    summary: str  # the subject of an e-mail, the text of an SMS
    links: list[str]


def _links(text: str) -> list[str]:
    return list(dict.fromkeys(_LINK.findall(text)))


def read_email(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _email_entry(path: Path) -> Entry:
    message = read_email(path)
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    date = message["Date"]
    return Entry(
        path.name,
        "e-mail",
        str(message["To"] or ""),
        utc_text(email.utils.parsedate_to_datetime(str(date))) if date else "",
        str(message["Subject"] or ""),
        _links(text),
    )


def _sms_entry(path: Path) -> Entry:
    record: dict[str, Any] = json.loads(path.read_text())
    text = str(record.get("text", ""))
    date = record.get("date")
    return Entry(
        path.name,
        "SMS",
        str(record.get("to", "")),
        utc_text(datetime.fromisoformat(str(date))) if date else "",
        text,
        _links(text),
    )


def _newest_first(path: Path) -> tuple[str, int]:
    # Creation second, then the outbox id: "…-email-10" after "…-email-9".
    found = _NAME.match(path.name)
    assert found is not None
    return found.group(1), int(found.group(3))


def entries(folder: Path) -> list[Entry]:
    """The newest ``MAX_ENTRIES`` messages, newest first (unreadable files are skipped)."""
    if not folder.is_dir():
        return []
    paths = sorted(
        (p for p in folder.iterdir() if _NAME.match(p.name)), key=_newest_first, reverse=True
    )
    found: list[Entry] = []
    for path in paths[:MAX_ENTRIES]:
        try:
            found.append(_email_entry(path) if path.suffix == ".eml" else _sms_entry(path))
        except (OSError, ValueError, UnicodeError):
            continue
    return found


# What each attempt's outcome meant for its callback (outbox_attempts.outcome).
_OUTCOMES = {
    "delivered": "delivered",
    "retry": "failed, retried later",
    "failed": "failed, gave up",
}


@dataclass(frozen=True)
class CallbackAttempt:
    """One attempt at a callback: when, how long, what the merchant's server answered."""

    number: int
    started: str
    outcome: str
    duration_ms: int
    status_code: int | None
    reply: str  # the first characters of the answer's body
    error: str


@dataclass(frozen=True)
class CallbackEntry:
    """One callback, as the page lists it: what was sent where, and each attempt."""

    id: int
    url: str  # as requested: the merchant's URL with our fields appended to its query
    fields: list[tuple[str, str]]  # the form body (the same fields)
    webhook_id: str
    subject: str  # the trid
    created: str
    status: str
    state: str  # delivered at …, next attempt at …, gave up at …
    attempts_made: int
    attempts_allowed: int
    attempts: list[CallbackAttempt]


def _state(message: OutboxMessage) -> str:
    if message.status == OutboxStatus.DONE.value:
        return f"delivered {utc_text(message.delivered_at)}"
    if message.status == OutboxStatus.FAILED.value:
        return f"gave up {utc_text(message.updated_at)}"
    return f"next attempt {utc_text(message.next_attempt_at)}"


def _callback_entry(message: OutboxMessage, log: Sequence[OutboxAttempt]) -> CallbackEntry:
    fields = callback_fields(message)
    return CallbackEntry(
        id=message.id,
        url=with_query(message.target, fields),
        fields=fields,
        webhook_id=webhook_id(message),
        subject=message.subject or "",
        created=utc_text(message.created_at),
        status=message.status,
        state=_state(message),
        attempts_made=message.attempts,
        attempts_allowed=message.max_attempts,
        attempts=[
            CallbackAttempt(
                number=attempt.number,
                started=utc_text(attempt.started_at),
                outcome=_OUTCOMES.get(attempt.outcome, attempt.outcome),
                duration_ms=attempt.duration_ms,
                status_code=attempt.status_code,
                reply=attempt.response_excerpt or "",
                error=attempt.error or "",
            )
            for attempt in log
        ],
    )


def callback_entries(session: Session, limit: int = MAX_CALLBACKS) -> list[CallbackEntry]:
    """The newest ``limit`` callbacks with their attempts, newest first."""
    rows = service.list_messages(session, kind=service.CALLBACK, limit=limit)
    return [_callback_entry(message, log) for message, log in rows]


def email_as_page(message: EmailMessage) -> str:
    """The HTML part of an e-mail with its ``cid:`` images inlined as data URIs."""
    html_part = message.get_body(("html",))
    if html_part is None:
        plain = message.get_body(("plain",))
        text = plain.get_content() if plain is not None else ""
        return str(Markup("<pre>{}</pre>").format(text))
    html: str = html_part.get_content()
    for part in message.walk():
        content_id = part.get("Content-ID")
        if not content_id or part.get_content_maintype() != "image":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        data = base64.b64encode(payload).decode("ascii")
        uri = f"data:{part.get_content_type()};base64,{data}"
        html = html.replace(f"cid:{content_id.strip('<>')}", uri)
    return html


def routes(runtime: Runtime) -> list[Route]:
    """``/dev/outbox`` and ``/dev/outbox/NAME``: call only in development."""
    folder = directory(runtime.settings)

    def page() -> str:
        callbacks = runtime.database.run(callback_entries, immediate=False)
        return TEMPLATES.render(
            "devoutbox.html",
            entries=entries(folder),
            callbacks=callbacks,
            max_callbacks=MAX_CALLBACKS,
            folder=str(folder),
        )

    async def index(_: Request) -> Response:
        # Files and a database read: off the event loop.
        return HTMLResponse(await run_in_threadpool(page), headers={"Cache-Control": "no-store"})

    async def show(request: Request) -> Response:
        name = request.path_params["name"]
        path = folder / name
        if not _NAME.match(name) or not path.is_file():
            return PlainTextResponse("no such message in the development outbox", 404)
        if path.suffix == ".json":
            return Response(path.read_bytes(), media_type="application/json")
        page = email_as_page(read_email(path))
        return HTMLResponse(
            page, headers={"Content-Security-Policy": _MAIL_CSP, "Cache-Control": "no-store"}
        )

    return [Route("/dev/outbox", index), Route("/dev/outbox/{name}", show)]
