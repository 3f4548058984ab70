"""Messages other domains queue: what their composers return, and the registry of composers.

The domain that queues a kind of message (transactions: the payment request, its reminder, the
receipt) registers a composer for it (``runtime.state(Composers)``, filled by ``mobip.wiring``).
At send time the worker's handler opens a read session and calls the composer, which loads what
the message is about through its own domain's code and returns the e-mail to send
(``MailContent``) or the SMS (``SmsContent``), or raises ``PermanentFailure`` when the message
should no longer go out (e.g. a payment request that can no longer be paid). Delivery then does
the rest: the recipient's checks, MIME, the transport, retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mobip.config import Settings
from mobip.delivery.models import OutboxMessage
from mobip.delivery.service import MESSAGE_POLICY, RetryPolicy
from mobip.kit.clock import Clock


@dataclass(frozen=True)
class MailContent:
    """An e-mail as its composer writes it; delivery adds the envelope and the headers."""

    from_name: str  # the display name of From (the address is the platform's)
    subject: str
    text: str
    html: str
    inline_png: bytes | None = None  # an image the HTML shows as cid:inline_cid
    inline_cid: str | None = None


@dataclass(frozen=True)
class SmsContent:
    """An SMS as its composer writes it (already fitted to its segments: ``sms.fit_text``)."""

    text: str


@dataclass(frozen=True)
class Composing:
    """What a composer is given besides the message."""

    session: Session  # a read session, closed once the composer returns
    clock: Clock
    settings: Settings
    mail_domain: str  # the sender address's domain: a Content-ID must end with it


Composer = Callable[[OutboxMessage, Composing], MailContent | SmsContent]


@dataclass(frozen=True)
class Composition:
    composer: Composer
    policy: RetryPolicy


class Composers:
    """The composed kinds of one runtime (``runtime.state(Composers)``) and their retry policy;
    the worker's handlers for them are made from it when the worker starts."""

    def __init__(self) -> None:
        self._kinds: dict[str, Composition] = {}

    def register(self, kind: str, composer: Composer, policy: RetryPolicy = MESSAGE_POLICY) -> None:
        """Compose the messages of ``kind`` with ``composer``; refused for a kind already taken."""
        if kind in self._kinds:
            raise ValueError(f"a composer is already registered for outbox kind {kind!r}")
        self._kinds[kind] = Composition(composer, policy)

    def __iter__(self) -> Iterator[tuple[str, Composition]]:
        return iter(list(self._kinds.items()))
