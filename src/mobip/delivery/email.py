"""E-mail over SMTP: the messages other domains compose (``composing.MailContent``), as MIME.

Each message is multipart: a text part and an HTML part, with the composer's inline image (the
payment request's QR code) as ``cid:`` in a multipart/related. What the messages say is their
composers' (transactions/messages.py for the payment request, its reminder and the receipt).
With ``MOBIP_SMTP_HOST`` set, messages go out through that server (STARTTLS, implicit TLS or
plain, with optional login); without it, development writes them to the local outbox
(``devoutbox``) and production fails each attempt visibly.

The recipient is checked by the rule creation applies (``kit.validation.sendable_email``): the
domain goes out in IDNA A-labels; an address with non-ASCII characters before the @ goes out
only with SMTPUTF8 (``MOBIP_SMTP_SMTPUTF8`` and the server's EHLO both saying so), else its
message fails at once with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol, cast

import aiosmtplib

from mobip.config import Settings, SmtpSecurity
from mobip.delivery import devoutbox
from mobip.delivery.composing import MailContent
from mobip.delivery.models import OutboxMessage
from mobip.delivery.worker import PermanentFailure
from mobip.kit.clock import Clock
from mobip.kit.runtime import Runtime
from mobip.kit.validation import NeedsSmtpUtf8, Refused, sendable_email

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    """A message ready to send: the envelope and the MIME bytes (CRLF line ends)."""

    sender: str  # envelope sender (MAIL FROM)
    recipient: str  # envelope recipient (RCPT TO)
    data: bytes
    smtputf8: bool = False  # the recipient has non-ASCII characters: MAIL FROM ... SMTPUTF8


class MailTransport(Protocol):
    async def send(self, mail: Mail, *, key: str) -> None:
        """Deliver ``mail``; ``key`` names the outbox message (stable across retries)."""
        ...


class NotConfigured(Exception):
    """No way to send is configured (production without ``MOBIP_SMTP_HOST`` or SMS provider)."""


def _all_permanent(codes: Sequence[int]) -> bool:
    return bool(codes) and all(500 <= code < 600 for code in codes)


class SmtpTransport:
    """One SMTP session per message, with the security and login the settings give.

    Refusals that retrying cannot fix fail the message at once: every recipient refused with a
    5xx reply, or the message data refused with a 5xx. Everything else (connection, timeout, 4xx,
    authentication or sender refused: the operator can fix those) is retried.
    """

    def __init__(self, settings: Settings) -> None:
        self.hostname = settings.smtp_host
        self.port = settings.resolved_smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        password = settings.smtp_password
        self.password = password.get_secret_value() if password else None
        self.timeout = settings.smtp_timeout_seconds
        self.tls_context: ssl.SSLContext | None = None
        if self.security is not SmtpSecurity.NONE:
            cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
            self.tls_context = ssl.create_default_context(cafile=cafile)

    async def send(self, mail: Mail, *, key: str) -> None:
        del key  # Message-ID already names the message for the receiving side
        try:
            await aiosmtplib.send(
                mail.data,
                sender=mail.sender,
                recipients=[mail.recipient],
                mail_options=["SMTPUTF8"] if mail.smtputf8 else None,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
                use_tls=self.security is SmtpSecurity.TLS,
                start_tls=self.security is SmtpSecurity.STARTTLS,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if _all_permanent([refused.code for refused in exc.recipients]):
                raise PermanentFailure(f"recipient refused: {_describe_refusals(exc)}") from exc
            raise
        except aiosmtplib.SMTPRecipientRefused as exc:
            if _all_permanent([exc.code]):
                raise PermanentFailure(f"recipient refused: {exc.code} {exc.message}") from exc
            raise
        except aiosmtplib.SMTPDataError as exc:
            if _all_permanent([exc.code]):
                raise PermanentFailure(f"message refused: {exc.code} {exc.message}") from exc
            raise
        except aiosmtplib.SMTPNotSupported as exc:
            # The same exception says a required STARTTLS is missing: that one is retried.
            if mail.smtputf8 and "SMTPUTF8" in str(exc):
                raise PermanentFailure(
                    f"not sent to {mail.recipient!r}: the address needs SMTPUTF8, which the "
                    "SMTP server does not advertise (MOBIP_SMTP_SMTPUTF8 says it does)"
                ) from exc
            raise


def _describe_refusals(exc: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)


class OutboxTransport:
    """Development: the message as an ``.eml`` file in ``DATA_DIR/outbox/`` instead of SMTP."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, mail: Mail, *, key: str) -> None:
        await asyncio.to_thread(devoutbox.save_email, self.folder, key, mail.data)


def transport_for(settings: Settings) -> MailTransport | None:
    """SMTP when a host is set; else the local outbox in development; else none (production)."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    if not settings.is_production:
        return OutboxTransport(devoutbox.directory(settings))
    return None


def _header_text(value: str) -> str:
    """One line of text, safe in a header (names come from merchants)."""
    return " ".join(value.split())


def mail_domain(settings: Settings) -> str:
    """The sender address's domain: Message-IDs and Content-IDs end with it."""
    return parseaddr(settings.resolved_smtp_from)[1].rpartition("@")[2] or "localhost"


def compose(
    rendered: MailContent,
    *,
    sender: str,
    to: str,
    message_id: str,
    clock: Clock,
) -> Mail:
    """multipart/alternative: text, then HTML (multipart/related with the QR when present).

    Built with the email package's legacy MIME classes (compat32): the same structure as with
    ``EmailMessage``, in about a quarter of the time (no header re-parsing and re-folding).
    """
    _, address = parseaddr(sender)
    # compat32 messages take Header values too; typeshed's MIMEMultipart says str only.
    message = cast("Message[str, str | Header]", MIMEMultipart("alternative"))
    # Header objects fold into RFC 2047 encoded words of legal length.
    message["Subject"] = Header(_header_text(rendered.subject), "utf-8")
    message["From"] = _from_header(_header_text(rendered.from_name), address)
    # An address needing SMTPUTF8 is written in UTF-8 (RFC 6532), never as an encoded word: the
    # compat32 generator copies a value holding surrogate escapes byte for byte.
    message["To"] = to if to.isascii() else to.encode().decode("ascii", "surrogateescape")
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = f"<{message_id}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    message.attach(_text_part(rendered.text, "plain"))
    html = _text_part(rendered.html, "html")
    if rendered.inline_png is None or rendered.inline_cid is None:
        message.attach(html)
    else:
        related = MIMEMultipart("related")
        related.attach(html)
        image = MIMEImage(rendered.inline_png, "png")
        image.add_header("Content-ID", f"<{rendered.inline_cid}>")
        image.add_header("Content-Disposition", "inline", filename="qr.png")
        related.attach(image)
        message.attach(related)
    return Mail(address, to, message.as_bytes(policy=_SMTP_POLICY), smtputf8=not to.isascii())


_SMTP_POLICY = compat32.clone(linesep="\r\n")


def _from_header(name: str, address: str) -> str | Header:
    if name.isascii():
        return formataddr((name, address))  # quotes a name with specials ("Shop, Inc.")
    header = Header(name, "utf-8")
    header.append(f"<{address}>", "us-ascii")
    return header


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    # Quoted-printable keeps mostly-ASCII text readable in the raw message (base64 would not).
    charset = Charset("utf-8")
    charset.body_encoding = QP
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, charset=charset)
    return part


class EmailSender:
    """Sends composed e-mails: checks the recipient, builds the MIME message, hands it over."""

    def __init__(self, clock: Clock, settings: Settings, transport: MailTransport | None) -> None:
        self.clock = clock
        self.settings = settings
        self.transport = transport
        self.sender = settings.resolved_smtp_from
        self.domain = mail_domain(settings)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> EmailSender:
        settings = runtime.settings
        return cls(runtime.clock, settings, transport_for(settings))

    async def deliver(self, mail: Mail, message: OutboxMessage) -> None:
        """Hand ``mail`` (built by ``mail``) to the transport."""
        if self.transport is None:
            raise NotConfigured("no SMTP server configured: set MOBIP_SMTP_HOST")
        key = devoutbox.file_stem(message.created_at, "email", message.id)
        await self.transport.send(mail, key=key)

    def mail(self, message: OutboxMessage, content: MailContent) -> Mail:
        """``content`` as the MIME message to ``message.target``; PermanentFailure for an address
        we cannot send to."""
        to = message.target
        try:
            recipient = sendable_email(to, smtputf8=self.settings.smtp_smtputf8)
        except NeedsSmtpUtf8 as exc:
            raise PermanentFailure(
                f"not sent to {to!r}: {exc} (MOBIP_SMTP_SMTPUTF8 is false)"
            ) from None
        except Refused as exc:
            raise PermanentFailure(f"not an e-mail address we can send to: {to!r}: {exc}") from None
        return compose(
            content,
            sender=self.sender,
            to=recipient,
            # The same Message-ID on every attempt, so a receiver can drop a duplicate.
            message_id=f"mobip.{message.id}.{message.subject or 'message'}@{self.domain}",
            clock=self.clock,
        )
