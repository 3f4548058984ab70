"""Merchant callbacks: a POST to ``call_back_url``, signed per Standard Webhooks, never redirected.

The fields ``resp_code``, ``trid`` and ``track_id`` go both in the URL's query string (after the
merchant's own query, which is kept as written) and as the form body. Headers ``webhook-id``
(stable across the retries of one message), ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` with the account's ``whsec_`` secret).

Outcomes: 2xx delivered; 410 Gone stops at once (failed); 3xx is a failure (not followed); other
statuses, timeouts and connection errors are retried; 429/503 with Retry-After wait that long.
A URL the SSRF guard refuses fails at once: retrying would ask the same question again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from mobip.delivery import service
from mobip.delivery.models import OutboxMessage
from mobip.delivery.service import CALLBACK_MAX_ATTEMPTS, Jitter, RetryPolicy
from mobip.delivery.worker import (
    AttemptDetail,
    DeliveryFailed,
    PermanentFailure,
    RetryLater,
    retry_after,
)
from mobip.kit.clock import Clock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from mobip.kit.security import Encryptor
from mobip.outbound.client import OutboundClient, OutboundError, OutboundRefused, client_for

# 12 attempts; delays 6 min, 12 min … doubling up to 24 h, each x uniform(0.8, 1.2): the last
# attempt comes at least 78 h (about 97 h on average) after the first.
CALLBACK_POLICY = RetryPolicy(
    max_attempts=CALLBACK_MAX_ATTEMPTS,
    base=timedelta(minutes=6),
    cap=timedelta(hours=24),
    jitter=Jitter.PROPORTIONAL,
)
# A Retry-After longer than this is not believed (the backoff's own cap).
MAX_RETRY_AFTER = timedelta(hours=24)
# How long a loaded secret is reused before it is read again (a rotation takes effect after it).
SECRET_CACHE_SECONDS = 30.0


def webhook_id(message: OutboxMessage) -> str:
    """The same for every attempt at one message, so receivers can drop duplicates."""
    return f"msg_mobip_{message.id}"


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    key = base64.b64decode(secret.removeprefix(service.CALLBACK_SECRET_PREFIX))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def callback_fields(message: OutboxMessage) -> list[tuple[str, str]]:
    payload = message.load_payload()
    return [
        ("resp_code", str(payload["resp_code"])),
        ("trid", str(payload["trid"])),
        ("track_id", str(payload.get("track_id") or "")),
        *((str(name), str(value)) for name, value in (payload.get("extra") or {}).items()),
    ]


def with_query(url: str, fields: Sequence[tuple[str, str]]) -> str:
    """``url`` with ``fields`` appended to its query; the existing query is kept as written.

    Ours come last, so a receiver that keeps the last of repeated names reads our values.
    """
    parts = urlsplit(url)
    extra = urlencode(fields)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class CallbackSender:
    """Sends the ``callback`` outbox messages through one SSRF-guarded client."""

    def __init__(
        self,
        database: Database,
        encryptor: Encryptor,
        clock: Clock,
        client: OutboundClient,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.encryptor = encryptor
        self.clock = clock
        self.client = client
        # The signature's timestamp is checked by the receiver against its own clock: real time.
        self.wall_clock = wall_clock
        self._secrets: dict[int, tuple[str, float]] = {}
        self._loading: dict[int, asyncio.Lock] = {}
        self._loading_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> CallbackSender:
        return cls(runtime.database, runtime.encryptor, runtime.clock, client_for(runtime.settings))

    async def send(self, message: OutboxMessage) -> AttemptDetail:
        """One attempt; returns what the receiver said, or raises the worker's outcome."""
        if message.account_id is None:
            raise PermanentFailure("the merchant account no longer exists")
        fields = callback_fields(message)
        body = urlencode(fields).encode("ascii")
        msg_id = webhook_id(message)
        timestamp = str(int(self.wall_clock()))
        secret = await self._secret(message.account_id)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(secret, msg_id, timestamp, body),
        }
        try:
            response = await self.client.request(
                "POST", with_query(message.target, fields), headers=headers, content=body
            )
        except OutboundRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        except OutboundError as exc:
            raise DeliveryFailed(str(exc)) from exc
        detail = AttemptDetail(response.status, response.excerpt())
        status = response.status
        if 200 <= status < 300:
            return detail
        if status == 410:
            raise PermanentFailure("HTTP 410 Gone: the receiver asked us to stop", detail=detail)
        if 300 <= status < 400:
            location = response.headers.get("location", "")[:200]
            raise DeliveryFailed(
                f"HTTP {status}: redirects are not followed (Location: {location})", detail=detail
            )
        delay = retry_after(response.headers.get("retry-after"), cap=MAX_RETRY_AFTER)
        if status in (429, 503) and delay is not None:
            raise RetryLater(f"HTTP {status}, Retry-After {delay}", delay=delay, detail=detail)
        raise DeliveryFailed(f"HTTP {status}", detail=detail)

    def _cached_secret(self, account_id: int) -> str | None:
        secret, fresh_until = self._secrets.get(account_id, ("", 0.0))
        return secret if fresh_until > time.monotonic() else None

    async def _secret(self, account_id: int) -> str:
        if (cached := self._cached_secret(account_id)) is not None:
            return cached
        # One load per account at a time: a batch of one merchant's callbacks reads it once.
        loop = asyncio.get_running_loop()
        if self._loading_loop is not loop:  # asyncio locks belong to one event loop
            self._loading, self._loading_loop = {}, loop
        lock = self._loading.setdefault(account_id, asyncio.Lock())
        async with lock:
            if (cached := self._cached_secret(account_id)) is not None:
                return cached  # loaded while this one waited for the lock
            secret = await asyncio.to_thread(self._load_secret, account_id)
            self._secrets[account_id] = (secret, time.monotonic() + SECRET_CACHE_SECONDS)
            return secret

    def _load_secret(self, account_id: int) -> str:
        # Immediate: the first use writes the new secret (SQLite's write lock taken at BEGIN).
        with self.database.transaction(immediate=True) as session:
            return service.callback_secret(session, account_id, self.encryptor, self.clock.now())

    async def aclose(self) -> None:
        await self.client.aclose()
