"""SMS through a provider (Twilio, an HTTP gateway, or files in development).

What a message says is its composer's (``composing.SmsContent``: transactions/messages.py for
the payment request and its reminder); ``fit_text`` is how a composer keeps it to GSM-7 (the
7-bit SMS alphabet) when the names allow it: a character outside GSM-7 turns the whole message
into UCS-2, which cuts a segment from 160 to 70 characters. Accented letters GSM-7 lacks are
written without their accent (ê → e), typographic quotes and dashes plainly; what cannot be
transliterated stays as is. When the text would need more than two segments, the names are
shortened, one after the other; the rest of the text (a link) is never cut.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote_plus

import httpx

from mobip.config import Settings, SmsProvider
from mobip.delivery import devoutbox
from mobip.delivery.composing import SmsContent
from mobip.delivery.email import NotConfigured
from mobip.delivery.models import OutboxMessage
from mobip.delivery.worker import (
    AttemptDetail,
    DeliveryFailed,
    PermanentFailure,
    RetryLater,
    retry_after,
)
from mobip.kit.clock import Clock
from mobip.kit.runtime import Runtime

# --- GSM 03.38 -------------------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these takes two septets: an escape, then the character.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE = 160  # septets in a message of one segment
GSM7_PART = 153  # septets per segment of a concatenated message (7 go to the header)
UCS2_SINGLE = 70  # UTF-16 code units
UCS2_PART = 67
MAX_SEGMENTS = 2

_PLAIN = {
    "\u00a0": " ",  # no-break space (French amounts: "12,50 €")
    "\u202f": " ",  # narrow no-break space (French thousands)
    "\u2009": " ",
    "\u2007": " ",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "«": '"',
    "»": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u2022": "-",
    "œ": "oe",
    "Œ": "OE",
    "\t": " ",
}


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _gsm_char(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _PLAIN:
        return _PLAIN[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and is_gsm7(base):
        return base
    return ch  # no GSM-7 spelling: the message will be UCS-2


def to_gsm7(text: str) -> str:
    """``text`` in GSM-7 where a faithful spelling exists (ê → e, curly quotes → ', … → ...)."""
    return "".join(_gsm_char(ch) for ch in text)


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int  # segments the message is sent as


def _count_parts(widths: list[int], single: int, part: int) -> int:
    """Segments for characters of these widths; a character never straddles two segments."""
    total = sum(widths)
    if total <= single:
        return 1
    count, used = 1, 0
    for width in widths:
        if used + width > part:
            count += 1
            used = 0
        used += width
    return count


def segments(text: str) -> Segments:
    """How many SMS segments ``text`` takes, and in which encoding."""
    if is_gsm7(text):
        widths = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segments("GSM-7", sum(widths), _count_parts(widths, GSM7_SINGLE, GSM7_PART))
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return Segments("UCS-2", sum(widths), _count_parts(widths, UCS2_SINGLE, UCS2_PART))


def _shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    return text[: max(0, length - 3)].rstrip() + "..."


MIN_NAME_CHARS = 12


def fit_text(
    text: Callable[[Mapping[str, str]], str],
    names: Mapping[str, str],
    *,
    max_segments: int = MAX_SEGMENTS,
) -> str:
    """``text(names)`` in GSM-7 where it can be, within ``max_segments`` when shortening the names
    allows: they are shortened in their order (the first down to MIN_NAME_CHARS before the next
    is touched), and what ``text`` adds around them (a link) never is."""
    current = {key: to_gsm7(" ".join(value.split())) for key, value in names.items()}

    def build(candidate: Mapping[str, str]) -> str:
        return to_gsm7(text(candidate))

    def fits(candidate: str) -> bool:
        return segments(candidate).count <= max_segments

    full = build(current)
    if fits(full):
        return full
    for key in names:

        def with_short(short: str, key: str = key) -> str:
            return build({**current, key: short})

        current[key], done = _longest_fitting(current[key], with_short, fits)
        if done:
            break
    return build(current)  # may still be long (UCS-2 names): sent in more segments


def _longest_fitting(
    name: str, build: Callable[[str], str], fits: Callable[[str], bool]
) -> tuple[str, bool]:
    """The longest shortening of ``name`` (not under MIN_NAME_CHARS) whose text fits."""
    low, high = MIN_NAME_CHARS, len(name) - 1
    best: str | None = None
    while low <= high:
        middle = (low + high) // 2
        short = _shorten(name, middle)
        if fits(build(short)):
            best, low = short, middle + 1
        else:
            high = middle - 1
    if best is None:
        return _shorten(name, MIN_NAME_CHARS), False
    return best, True


# --- providers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sms:
    to: str  # E.164
    text: str
    reference: str  # the outbox message, stable across retries


class SmsGateway(Protocol):
    async def send(self, sms: Sms) -> None:
        """Hand ``sms`` to the provider; PermanentFailure when retrying cannot help."""
        ...

    async def aclose(self) -> None:
        """Close the connections kept to the provider (at worker shutdown)."""
        ...


_EXCERPT_CHARS = 200
_DEFAULT_RETRY_AFTER = timedelta(minutes=1)


def http_client(timeout: float) -> httpx.AsyncClient:
    """The provider's client for the worker's lifetime: no redirects followed, bounded time.

    Kept-alive connections (and the TLS context) serve every message. Connections belong to the
    event loop that opened them: use the client in one loop and close it (``aclose``) there.
    Provider URLs are the operator's settings, not merchant input: no SSRF guard (a gateway may
    well be on a private network).
    """
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


# A Retry-After longer than this is not believed (a message's own backoff cap).
_MAX_RETRY_AFTER = timedelta(hours=1)


def _wait(response: httpx.Response) -> timedelta:
    delay = retry_after(response.headers.get("Retry-After"), cap=_MAX_RETRY_AFTER)
    return _DEFAULT_RETRY_AFTER if delay is None else delay


def check_response(provider: str, response: httpx.Response) -> None:
    """2xx: sent. 429: retry after Retry-After. 408, 401, 403, 3xx, 5xx: retried (a timeout, the
    operator's credentials, or the provider's trouble). Any other 4xx: the request itself is
    refused (e.g. an invalid number), so the message fails at once. The status and an excerpt of
    the answer go to the attempt log."""
    status = response.status_code
    if 200 <= status < 300:
        return
    excerpt = " ".join(response.text[:_EXCERPT_CHARS].split())
    detail = AttemptDetail(status, excerpt)
    error = f"{provider} answered HTTP {status}: {excerpt}"
    if status == 429:
        raise RetryLater(error, delay=_wait(response), detail=detail)
    if 400 <= status < 500 and status not in (401, 403, 408):
        raise PermanentFailure(error, detail=detail)
    raise DeliveryFailed(error, detail=detail)


class TwilioGateway:
    """Twilio's Programmable Messaging REST API: POST /2010-04-01/Accounts/{SID}/Messages.json.

    ``sender`` is a phone number or alphanumeric sender id (``From``), or a Messaging Service
    SID (``MG…``, sent as ``MessagingServiceSid``). ``base_url`` is Twilio's API unless tests point
    it at a local server.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str,
        client: httpx.AsyncClient,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.sender = sender
        self.client = client

    async def send(self, sms: Sms) -> None:
        origin = "MessagingServiceSid" if self.sender.startswith("MG") else "From"
        form = {"To": sms.to, origin: self.sender, "Body": sms.text}
        response = await self.client.post(self.url, data=form, auth=self.auth)
        check_response("Twilio", response)

    async def aclose(self) -> None:
        await self.client.aclose()


_PLACEHOLDER = re.compile(r"\{(to|text|sender|reference)\}")


class HttpGateway:
    """A generic HTTP SMS gateway: URL, method, one auth header, a body template.

    The template's placeholders ``{to}``, ``{text}``, ``{sender}`` and ``{reference}`` are
    replaced by values escaped for the content type: JSON string content for a ``json`` type,
    form encoding for ``application/x-www-form-urlencoded``, as is otherwise. With GET the
    rendered template (form-encoded) is the query string and there is no body.
    """

    def __init__(
        self,
        *,
        url: str,
        method: str,
        headers: Mapping[str, str],
        body_template: str,
        content_type: str,
        sender: str,
        client: httpx.AsyncClient,
    ) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers)
        self.body_template = body_template
        self.content_type = content_type
        self.sender = sender
        self.client = client

    def _escape(self, value: str) -> str:
        if self.method == "GET" or "x-www-form-urlencoded" in self.content_type:
            return quote_plus(value)
        if "json" in self.content_type:
            return json.dumps(value, ensure_ascii=False)[1:-1]
        return value

    def render(self, sms: Sms) -> str:
        values = {"to": sms.to, "text": sms.text, "sender": self.sender, "reference": sms.reference}
        return _PLACEHOLDER.sub(lambda m: self._escape(values[m.group(1)]), self.body_template)

    async def send(self, sms: Sms) -> None:
        rendered = self.render(sms)
        if self.method == "GET":
            separator = "&" if "?" in self.url else "?"
            response = await self.client.get(
                f"{self.url}{separator}{rendered}", headers=self.headers
            )
        else:
            response = await self.client.request(
                self.method,
                self.url,
                content=rendered.encode(),
                headers={**self.headers, "Content-Type": self.content_type},
            )
        check_response("the SMS gateway", response)

    async def aclose(self) -> None:
        await self.client.aclose()


class OutboxGateway:
    """Development: the SMS as a JSON file in ``DATA_DIR/outbox/`` (shown on /dev/outbox)."""

    def __init__(self, folder: Path, sender: str, clock: Clock) -> None:
        self.folder = folder
        self.sender = sender
        self.clock = clock

    async def send(self, sms: Sms) -> None:
        await asyncio.to_thread(
            devoutbox.save_sms,
            self.folder,
            sms.reference,
            to=sms.to,
            sender=self.sender,
            text=sms.text,
            at=self.clock.now(),
        )

    async def aclose(self) -> None:
        pass  # nothing kept open


def gateway_for(settings: Settings, clock: Clock) -> SmsGateway | None:
    """The configured provider (``MOBIP_SMS_PROVIDER``), the outbox in development, else none.

    ConfigurationError for an incomplete provider, from the same checks as start-up
    (``Settings.check``), for a runtime built without them.
    """
    provider = settings.resolved_sms_provider
    sender = settings.sms_sender or "MOBIP"
    if provider is SmsProvider.TWILIO:
        twilio = settings.twilio_account()
        return TwilioGateway(
            account_sid=twilio.sid,
            auth_token=twilio.auth_token,
            sender=twilio.sender,
            base_url=settings.twilio_base_url,
            client=http_client(settings.sms_timeout_seconds),
        )
    if provider is SmsProvider.HTTP:
        gateway = settings.sms_gateway()
        return HttpGateway(
            url=gateway.url,
            method=settings.sms_gateway_method,
            headers=gateway.headers,
            body_template=settings.sms_gateway_body,
            content_type=settings.sms_gateway_content_type,
            sender=sender,
            client=http_client(settings.sms_timeout_seconds),
        )
    if provider is SmsProvider.OUTBOX:
        return OutboxGateway(devoutbox.directory(settings), sender, clock)
    return None


class SmsSender:
    """Sends composed SMS through the gateway."""

    def __init__(self, gateway: SmsGateway | None) -> None:
        self.gateway = gateway

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> SmsSender:
        return cls(gateway_for(runtime.settings, runtime.clock))

    async def send(self, message: OutboxMessage, content: SmsContent) -> None:
        """Send ``content`` to ``message.target`` (E.164), referenced by the outbox message."""
        if self.gateway is None:
            raise NotConfigured("no SMS provider configured: set MOBIP_SMS_PROVIDER")
        reference = devoutbox.file_stem(message.created_at, "sms", message.id)
        await self.gateway.send(Sms(message.target, content.text, reference))

    async def aclose(self) -> None:
        """Close the gateway's connections; in the worker's event loop, once it has stopped."""
        if self.gateway is not None:
            await self.gateway.aclose()
